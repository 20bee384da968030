//! Accounts: their data, order, search, lock-out counters and language.

use super::*;

conformance!(
    ping_answers,
    accounts_round_trip,
    accounts_found_by_email_whatever_its_case,
    accounts_listed_in_byte_order_of_email,
    duplicate_email_or_id_conflicts,
    failures_count_lock_and_reset_per_guard,
    failures_of_unknown_account_are_an_error,
    parallel_failed_attempts_count_once_each_and_lock_at_the_threshold,
    language_remembered_per_account,
    accounts_searched_by_part_of_email_or_name,
    the_sign_in_read_is_the_account_its_factors_and_codes,
);

async fn ping_answers(s: Dyn) {
    s.ping().await.unwrap();
}

async fn accounts_round_trip(s: Dyn) {
    for (email, role) in [
        ("user@x.be", Role::User),
        ("support@x.be", Role::Support),
        ("admin@x.be", Role::Admin),
    ] {
        let mut a = new_account(email);
        a.role = role;
        a.name = "Zoë d'Hondt 🙂".into();
        s.insert_account(&a).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(got.id, a.id);
        assert_eq!(got.email, a.email);
        assert_eq!(got.name, a.name);
        assert_eq!(got.role, role);
        assert_eq!(got.password_hash, a.password_hash);
        assert_eq!(got.created_at, us(a.created_at));
        assert_eq!(got.code_failures, 0);
        assert_eq!(got.password_failures, 0);
        assert_eq!(got.code_locked_until, None);
        assert_eq!(got.password_locked_until, None);
    }
    assert!(s
        .account_by_id(AccountId::random())
        .await
        .unwrap()
        .is_none());
}

async fn accounts_found_by_email_whatever_its_case(s: Dyn) {
    let a = account(&s, "An.Peeters@Example.BE").await;
    let found = s
        .account_by_email(&Email::parse("  AN.PEETERS@example.be ").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, a.id);
    assert_eq!(found.email.as_str(), "an.peeters@example.be");
    assert!(s
        .account_by_email(&Email::parse("someone.else@example.be").unwrap())
        .await
        .unwrap()
        .is_none());
}

pub(super) async fn accounts_listed_in_byte_order_of_email(s: Dyn) {
    // A locale-aware collation would ignore the punctuation and order these otherwise.
    for e in [
        "b.c@x.be", "ab@x.be", "a@x.be", "a.b@x.be", "a-z@x.be", "a_b@x.be",
    ] {
        account(&s, e).await;
    }
    let listed: Vec<String> = s
        .list_accounts()
        .await
        .unwrap()
        .into_iter()
        .map(|a| a.email.as_str().to_owned())
        .collect();
    assert_eq!(
        listed,
        ["a-z@x.be", "a.b@x.be", "a@x.be", "a_b@x.be", "ab@x.be", "b.c@x.be"]
    );
}

async fn duplicate_email_or_id_conflicts(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    assert!(matches!(
        s.insert_account(&new_account("AN@X.be")).await,
        Err(StoreError::Conflict)
    ));
    let mut same_id = new_account("other@x.be");
    same_id.id = a.id;
    assert!(matches!(
        s.insert_account(&same_id).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(s.list_accounts().await.unwrap().len(), 1);
}

async fn failures_count_lock_and_reset_per_guard(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let other = account(&s, "other@x.be").await;
    let lock = t0() + Duration::seconds(60);
    for (guard, other_guard) in [
        (Guard::Code, Guard::Password),
        (Guard::Password, Guard::Code),
    ] {
        let failures = |acc: &tweestap_domain::account::Account, g: Guard| match g {
            Guard::Code => (acc.code_failures, acc.code_locked_until),
            Guard::Password => (acc.password_failures, acc.password_locked_until),
        };
        s.increment_failures(a.id, other_guard).await.unwrap();
        s.set_lock(a.id, other_guard, Some(lock)).await.unwrap();
        for n in 1..=3 {
            assert_eq!(s.increment_failures(a.id, guard).await.unwrap(), n);
        }
        s.set_lock(a.id, guard, Some(lock)).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(failures(&got, guard), (3, Some(us(lock))));

        s.set_lock(a.id, guard, None).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(
            failures(&got, guard),
            (3, None),
            "set_lock(None) keeps the count"
        );

        s.set_lock(a.id, guard, Some(lock)).await.unwrap();
        s.reset_failures(a.id, guard).await.unwrap();
        let got = s.account_by_id(a.id).await.unwrap().unwrap();
        assert_eq!(failures(&got, guard), (0, None));
        assert_eq!(
            failures(&got, other_guard),
            (1, Some(us(lock))),
            "the other guard is untouched"
        );
        assert_eq!(s.increment_failures(a.id, guard).await.unwrap(), 1);

        let untouched = s.account_by_id(other.id).await.unwrap().unwrap();
        assert_eq!(failures(&untouched, guard), (0, None));

        s.reset_failures(a.id, guard).await.unwrap();
        s.reset_failures(a.id, other_guard).await.unwrap();
    }
}

async fn failures_of_unknown_account_are_an_error(s: Dyn) {
    let r = s.increment_failures(AccountId::random(), Guard::Code).await;
    assert!(matches!(r, Err(StoreError::Other(_))), "{r:?}");
    // Locking or resetting nobody is not an error.
    s.set_lock(AccountId::random(), Guard::Code, Some(t0()))
        .await
        .unwrap();
    s.reset_failures(AccountId::random(), Guard::Password)
        .await
        .unwrap();
}

/// Wrong codes in parallel on several accounts and both guards (on PostgreSQL
/// written together, several to a statement): each counts once, in turn, up to
/// the threshold, which locks; those after it are refused and recorded as
/// locked; every one has its audit row; an unknown account counts nothing.
async fn parallel_failed_attempts_count_once_each_and_lock_at_the_threshold(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bo@x.be").await;
    let hold = t0() + Duration::minutes(5);
    let nobody = AccountId::random();
    // (account, guard, threshold, attempts)
    let plan = [
        (a.id, "an@x.be", Guard::Code, 5, 12),
        (b.id, "bo@x.be", Guard::Code, 100, 10),
        (b.id, "bo@x.be", Guard::Password, 100, 8),
        (nobody, "nobody@x.be", Guard::Code, 5, 3),
    ];
    let mut tries = Vec::new();
    for round in 0..12 {
        for (i, (id, email, guard, max, attempts)) in plan.into_iter().enumerate() {
            if round >= attempts {
                continue;
            }
            let s = s.clone();
            tries.push(tokio::spawn(async move {
                let mut failed = audit(t0(), "code_failed", Some(email));
                failed.detail = Some(format!("try {round}"));
                let got = s
                    .reserve_failed_attempt(id, guard, max, hold, t0(), &failed, Some("locked"))
                    .await
                    .unwrap();
                (i, got)
            }));
        }
    }
    let mut counted: Vec<Vec<u32>> = vec![Vec::new(); plan.len()];
    let mut refused = vec![0; plan.len()];
    for t in tries {
        match t.await.unwrap() {
            (i, Some(n)) => counted[i].push(n),
            (i, None) => refused[i] += 1,
        }
    }
    for c in &mut counted {
        c.sort_unstable();
    }
    assert_eq!(
        counted[0],
        (1..=5).collect::<Vec<_>>(),
        "to the threshold, once each"
    );
    assert_eq!(refused[0], 7, "the rest find it locked");
    assert_eq!(counted[1], (1..=10).collect::<Vec<_>>());
    assert_eq!(counted[2], (1..=8).collect::<Vec<_>>());
    assert_eq!(
        (counted[3].len(), refused[3]),
        (0, 3),
        "nobody counts nothing"
    );
    assert_eq!(refused[1] + refused[2], 0);

    let got = s.account_by_id(a.id).await.unwrap().unwrap();
    assert_eq!(
        (got.code_failures, got.code_locked_until),
        (5, Some(us(hold)))
    );
    assert_eq!(
        (got.password_failures, got.password_locked_until),
        (0, None)
    );
    let got = s.account_by_id(b.id).await.unwrap().unwrap();
    assert_eq!((got.code_failures, got.code_locked_until), (10, None));
    assert_eq!(
        (got.password_failures, got.password_locked_until),
        (8, None)
    );

    let details = |email: &'static str| {
        let s = s.clone();
        async move {
            let rows = s.list_audit(100, Some(email)).await.unwrap();
            assert!(rows.iter().all(|r| r.event == "code_failed"));
            let mut d: Vec<String> = rows.into_iter().filter_map(|r| r.detail).collect();
            d.sort_unstable();
            d
        }
    };
    let an = details("an@x.be").await;
    assert_eq!(an.len(), 12, "every attempt recorded: {an:?}");
    assert_eq!(an.iter().filter(|d| *d == "locked").count(), 7, "{an:?}");
    assert_eq!(details("bo@x.be").await.len(), 18);
    assert_eq!(details("nobody@x.be").await, ["locked"; 3]);
}

async fn language_remembered_per_account(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    assert_eq!(
        s.account_by_id(a.id).await.unwrap().unwrap().language,
        Language::Nl
    );
    s.set_language(a.id, Language::En).await.unwrap();
    assert_eq!(
        s.account_by_id(a.id).await.unwrap().unwrap().language,
        Language::En
    );
}

async fn accounts_searched_by_part_of_email_or_name(s: Dyn) {
    let mut an = new_account("an.peeters@example.be");
    an.name = "An Peeters".into();
    s.insert_account(&an).await.unwrap();
    let mut bo = new_account("bo@example.be");
    bo.name = "Bo Janssens".into();
    s.insert_account(&bo).await.unwrap();
    let mut desk = new_account("info_desk@example.be");
    desk.name = "Onthaal".into();
    s.insert_account(&desk).await.unwrap();
    let emails = |v: Vec<tweestap_domain::account::Account>| {
        v.into_iter()
            .map(|a| a.email.to_string())
            .collect::<Vec<_>>()
    };
    same(
        &emails(s.search_accounts("peet", 50).await.unwrap()),
        &vec!["an.peeters@example.be".to_owned()],
    );
    same(
        &emails(s.search_accounts("JANSSENS", 50).await.unwrap()),
        &vec!["bo@example.be".to_owned()],
    );
    same(
        &emails(s.search_accounts("example.be", 2).await.unwrap()).len(),
        &2,
    );
    // Wildcards typed by a person are plain characters.
    same(
        &emails(s.search_accounts("_", 50).await.unwrap()),
        &vec!["info_desk@example.be".to_owned()],
    );
    same(
        &emails(s.search_accounts("%", 50).await.unwrap()),
        &Vec::<String>::new(),
    );
    same(&emails(s.search_accounts("", 50).await.unwrap()).len(), &3);
    // A new address; another account's address conflicts.
    let to = Email::parse("an@example.be").unwrap();
    s.change_email(an.id, &to).await.unwrap();
    same(
        &s.account_by_email(&to).await.unwrap().map(|a| a.id),
        &Some(an.id),
    );
    let taken = Email::parse("bo@example.be").unwrap();
    assert!(matches!(
        s.change_email(an.id, &taken).await,
        Err(StoreError::Conflict)
    ));
}

/// The password step's one read gives what the reads it replaces give: the
/// account, its factors (confirmed or not, in `factors_of`'s order) and its
/// unused recovery codes, none of another account's.
async fn the_sign_in_read_is_the_account_its_factors_and_codes(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bert@x.be").await;
    let c = account(&s, "cas@x.be").await;
    let mut confirmed = factor(a.id, t0() + Duration::seconds(10));
    confirmed.confirmed_at = Some(t0() + Duration::seconds(11));
    let mut sms = factor(a.id, t0() + Duration::seconds(5));
    sms.kind = FactorKind::Sms;
    sms.confirmed_at = Some(t0() + Duration::seconds(6));
    for f in [&confirmed, &factor(a.id, t0()), &sms, &factor(b.id, t0())] {
        s.insert_factor(f).await.unwrap();
    }
    let macs = |tag: &str| (0..4).map(|i| format!("{tag}-{i}")).collect::<Vec<_>>();
    s.replace_recovery_codes(a.id, &macs("a"), t0())
        .await
        .unwrap();
    s.replace_recovery_codes(c.id, &macs("c"), t0())
        .await
        .unwrap();
    assert!(s.use_recovery_code(a.id, "a-2", t0()).await.unwrap());

    for (who, factors, codes) in [(&a, 3, 3), (&b, 1, 0), (&c, 0, 4)] {
        let found = s.account_for_sign_in(&who.email).await.unwrap().unwrap();
        let account = s.account_by_email(&who.email).await.unwrap().unwrap();
        same(&found.account, &account);
        same(&found.factors, &s.factors_of(who.id).await.unwrap());
        assert_eq!(found.factors.len(), factors, "{}", who.email.as_str());
        assert_eq!(found.recovery_codes_left, codes, "{}", who.email.as_str());
        assert_eq!(
            found.recovery_codes_left,
            s.recovery_codes_left(who.id).await.unwrap()
        );
    }
    let unknown = Email::parse("nobody@x.be").unwrap();
    assert!(s.account_for_sign_in(&unknown).await.unwrap().is_none());
}
