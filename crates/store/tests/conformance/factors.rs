//! Second factors and the atomic steps and counters around them.

use super::*;

conformance!(
    factors_insert_confirm_delete,
    totp_step_claimed_once,
    concurrent_claims_of_one_step_accept_exactly_one,
    concurrent_claims_of_rising_steps_end_at_the_highest,
    concurrent_failures_all_count,
    second_steps_read_at_once,
);

async fn factors_insert_confirm_delete(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bert@x.be").await;

    // Inserted out of order; listed by creation time.
    let mut used = factor(a.id, t0() + Duration::seconds(10));
    used.confirmed_at = Some(t0() + Duration::nanoseconds(20_001));
    used.last_used_at = Some(t0() + Duration::seconds(11));
    used.last_step = Some(58_333_334);
    let fresh = factor(a.id, t0());
    let of_b = factor(b.id, t0());
    for f in [&used, &fresh, &of_b] {
        s.insert_factor(f).await.unwrap();
    }
    assert!(matches!(
        s.insert_factor(&fresh).await,
        Err(StoreError::Conflict)
    ));

    let listed = s.factors_of(a.id).await.unwrap();
    let mut want_fresh = fresh.clone();
    want_fresh.created_at = us(fresh.created_at);
    let mut want_used = used.clone();
    want_used.created_at = us(used.created_at);
    want_used.confirmed_at = used.confirmed_at.map(us);
    want_used.last_used_at = used.last_used_at.map(us);
    same(&listed, &vec![want_fresh, want_used]);
    assert!(s.factors_of(AccountId::random()).await.unwrap().is_empty());

    // Confirming happens once; a confirmed factor keeps its first confirmation.
    let at = t0() + Duration::seconds(30) + Duration::nanoseconds(1_999);
    assert!(s.confirm_factor(fresh.id, at, None, None).await.unwrap());
    assert!(!s
        .confirm_factor(fresh.id, at + Duration::seconds(1), None, None)
        .await
        .unwrap());
    assert!(!s.confirm_factor(used.id, at, None, None).await.unwrap());
    assert!(!s
        .confirm_factor(FactorId(Uuid::new_v4()), at, None, None)
        .await
        .unwrap());
    let listed = s.factors_of(a.id).await.unwrap();
    assert_eq!(listed[0].confirmed_at, Some(us(at)));
    assert_eq!(listed[1].confirmed_at, used.confirmed_at.map(us));

    // Only unconfirmed factors of that account go.
    let pending = factor(a.id, t0() + Duration::seconds(20));
    s.insert_factor(&pending).await.unwrap();
    s.delete_unconfirmed_factors(a.id).await.unwrap();
    let ids: Vec<FactorId> = s
        .factors_of(a.id)
        .await
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, [fresh.id, used.id]);
    assert_eq!(s.factors_of(b.id).await.unwrap().len(), 1);

    assert!(s.remove_factor(fresh.id, None, None).await.unwrap());
    assert!(!s.remove_factor(fresh.id, None, None).await.unwrap());
    let ids: Vec<FactorId> = s
        .factors_of(a.id)
        .await
        .unwrap()
        .iter()
        .map(|f| f.id)
        .collect();
    assert_eq!(ids, [used.id]);
}

async fn totp_step_claimed_once(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let at = |n: i64| t0() + Duration::seconds(n) + Duration::nanoseconds(777);
    let state = || async {
        let f = s.factors_of(a.id).await.unwrap().remove(0);
        (f.last_step, f.last_used_at)
    };

    assert!(s.claim_totp_step(f.id, 10, at(1)).await.unwrap());
    assert_eq!(state().await, (Some(10), Some(us(at(1)))));
    assert!(
        !s.claim_totp_step(f.id, 10, at(2)).await.unwrap(),
        "same step"
    );
    assert!(
        !s.claim_totp_step(f.id, 9, at(3)).await.unwrap(),
        "earlier step"
    );
    assert_eq!(
        state().await,
        (Some(10), Some(us(at(1)))),
        "a replay changes nothing"
    );
    assert!(
        s.claim_totp_step(f.id, 11, at(4)).await.unwrap(),
        "later step"
    );
    assert_eq!(state().await, (Some(11), Some(us(at(4)))));
    assert!(!s
        .claim_totp_step(FactorId(Uuid::new_v4()), 12, at(5))
        .await
        .unwrap());
    assert_eq!(
        s.factors_of(a.id).await.unwrap()[0].secret_sealed,
        f.secret_sealed
    );
}

async fn concurrent_claims_of_one_step_accept_exactly_one(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_totp_step(f.id, 58_333_334, Utc::now()).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            accepted += 1;
        }
    }
    assert_eq!(accepted, 1);
    assert_eq!(
        s.factors_of(a.id).await.unwrap()[0].last_step,
        Some(58_333_334)
    );
}

async fn concurrent_claims_of_rising_steps_end_at_the_highest(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    let tasks: Vec<_> = (1..=20)
        .map(|step| {
            let s = s.clone();
            tokio::spawn(async move { s.claim_totp_step(f.id, step, Utc::now()).await })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        if t.await.unwrap().unwrap() {
            accepted += 1;
        }
    }
    assert!(accepted >= 1);
    assert_eq!(s.factors_of(a.id).await.unwrap()[0].last_step, Some(20));
}

async fn concurrent_failures_all_count(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    for guard in [Guard::Code, Guard::Password] {
        let tasks: Vec<_> = (0..20)
            .map(|_| {
                let s = s.clone();
                tokio::spawn(async move { s.increment_failures(a.id, guard).await })
            })
            .collect();
        let mut seen = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap().unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=20).collect::<Vec<u32>>(),
            "each caller sees its own count"
        );
    }
    let got = s.account_by_id(a.id).await.unwrap().unwrap();
    assert_eq!((got.code_failures, got.password_failures), (20, 20));
}

fn device(account: AccountId, last_used_at: DateTime<Utc>) -> RememberedDevice {
    RememberedDevice {
        id: Uuid::new_v4(),
        token_hash: TokenHash(format!("{:x}", Uuid::new_v4().as_u128())),
        account_id: account,
        label: "Firefox · Linux".into(),
        created_at: t0(),
        last_used_at,
        expires_at: t0() + Duration::days(7),
    }
}

/// The profile's one read: exactly what factors_of, devices_of,
/// recovery_codes_left and oidc_consents read one by one, for accounts with
/// several, one or none of each, and nothing of another account's.
async fn second_steps_read_at_once(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bert@x.be").await;
    let c = account(&s, "cas@x.be").await;
    let d = account(&s, "dirk@x.be").await;
    let mut confirmed = factor(a.id, t0() + Duration::seconds(10));
    confirmed.confirmed_at = Some(t0() + Duration::seconds(11));
    for f in [&confirmed, &factor(a.id, t0()), &factor(b.id, t0())] {
        s.insert_factor(f).await.unwrap();
    }
    for (who, secs) in [(a.id, 5), (a.id, 50), (a.id, 20), (b.id, 1), (d.id, 3)] {
        s.insert_device(&device(who, t0() + Duration::seconds(secs)))
            .await
            .unwrap();
    }
    let macs = |tag: &str| (0..3).map(|i| format!("{tag}-{i}")).collect::<Vec<_>>();
    s.replace_recovery_codes(a.id, &macs("a"), t0())
        .await
        .unwrap();
    s.replace_recovery_codes(b.id, &macs("b"), t0())
        .await
        .unwrap();
    assert!(s.use_recovery_code(a.id, "a-1", t0()).await.unwrap());
    for (who, client) in [(a.id, "portaal"), (a.id, "ander"), (d.id, "portaal")] {
        s.grant_oidc_consent(who, client, "openid", t0())
            .await
            .unwrap();
    }

    for who in [a.id, b.id, c.id, d.id] {
        let steps = s.second_steps_of(who).await.unwrap();
        same(&steps.factors, &s.factors_of(who).await.unwrap());
        same(&steps.devices, &s.devices_of(who).await.unwrap());
        same(
            &steps.recovery_codes_left,
            &s.recovery_codes_left(who).await.unwrap(),
        );
        same(
            &(steps.consents as usize),
            &s.oidc_consents(who).await.unwrap().len(),
        );
        // The same read with the session and its account, in one query.
        let x = session(who, t0());
        s.insert_session(&x).await.unwrap();
        let (one_session, one_account, one_steps) = s
            .session_with_second_steps(&x.id_hash)
            .await
            .unwrap()
            .unwrap();
        let (session, account) = s.session_with_account(&x.id_hash).await.unwrap().unwrap();
        same(&one_session, &session);
        same(&one_account, &account);
        same(&one_steps, &steps);
    }
    assert!(s
        .session_with_second_steps(&TokenHash("0".repeat(64)))
        .await
        .unwrap()
        .is_none());
    // Several of each, none at all, and devices without factors.
    for (who, want) in [
        (a.id, (2, 3, 2, 2)),
        (c.id, (0, 0, 0, 0)),
        (d.id, (0, 1, 0, 1)),
    ] {
        let got = s.second_steps_of(who).await.unwrap();
        let counts = (
            got.factors.len(),
            got.devices.len(),
            got.recovery_codes_left,
            got.consents,
        );
        same(&counts, &want);
    }
}
