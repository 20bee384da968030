//! Set-up links, the support reset and retention.

use super::mail_queue::mail;
use super::*;

conformance!(
    enrollment_links_claimed_once_and_superseded,
    support_reset_voids_factors_sessions_and_links,
    spent_links_and_sent_mail_purged,
    a_reset_link_sets_its_password_in_one_step_or_not_at_all,
);

fn link(account: AccountId, hash: &str, created_at: DateTime<Utc>) -> EnrollmentLink {
    EnrollmentLink {
        token_hash: TokenHash(hash.into()),
        account_id: account,
        purpose: LinkPurpose::Profile,
        created_at: us(created_at),
        expires_at: us(created_at + Duration::days(5)),
        used_at: None,
    }
}

async fn enrollment_links_claimed_once_and_superseded(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let first = link(a.id, "h1", t0());
    s.insert_enrollment_link(&first).await.unwrap();
    let got = s
        .enrollment_link(&first.token_hash)
        .await
        .unwrap()
        .expect("link");
    same(
        &(got.account_id, got.purpose, got.state(t0())),
        &(a.id, LinkPurpose::Profile, LinkState::Open),
    );
    let second = link(a.id, "h2", t0() + Duration::minutes(1));
    s.insert_enrollment_link(&second).await.unwrap();
    let got = s
        .enrollment_link(&first.token_hash)
        .await
        .unwrap()
        .expect("link");
    same(&got.state(t0()), &LinkState::Used);
    same(
        &s.claim_enrollment_link(&first.token_hash, t0())
            .await
            .unwrap(),
        &None,
    );
    // Past its time it cannot be claimed.
    let late = t0() + Duration::days(6);
    same(
        &s.claim_enrollment_link(&second.token_hash, late)
            .await
            .unwrap(),
        &None,
    );
    // Of many concurrent claims exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, h) = (s.clone(), second.token_hash.clone());
        tasks.push(tokio::spawn(async move {
            s.claim_enrollment_link(&h, t0()).await.unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        if t.await.unwrap() == Some(a.id) {
            won += 1;
        }
    }
    same(&won, &1);
    assert!(s
        .enrollment_link(&TokenHash("nope".into()))
        .await
        .unwrap()
        .is_none());
}

async fn support_reset_voids_factors_sessions_and_links(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let other = account(&s, "bo@example.be").await;
    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    s.confirm_factor(f.id, t0(), None, None).await.unwrap();
    s.insert_factor(&factor(other.id, t0())).await.unwrap();
    let gone = session(a.id, t0());
    s.insert_session(&gone).await.unwrap();
    let kept = session(other.id, t0());
    s.insert_session(&kept).await.unwrap();
    s.increment_failures(a.id, Guard::Code).await.unwrap();
    s.set_lock(a.id, Guard::Code, Some(t0() + Duration::hours(1)))
        .await
        .unwrap();
    let old = link(a.id, "old", t0());
    s.insert_enrollment_link(&old).await.unwrap();
    let mut new = link(a.id, "new", t0() + Duration::minutes(1));
    new.purpose = LinkPurpose::SupportReset;
    s.reset_two_factor(a.id, &new, None).await.unwrap();
    assert!(s.factors_of(a.id).await.unwrap().is_empty());
    same(&s.factors_of(other.id).await.unwrap().len(), &1);
    assert!(s.session(&gone.id_hash).await.unwrap().is_none());
    assert!(s.session(&kept.id_hash).await.unwrap().is_some());
    let acc = s.account_by_id(a.id).await.unwrap().expect("account");
    same(&(acc.code_failures, acc.code_locked_until), &(0, None));
    same(
        &s.enrollment_link(&old.token_hash)
            .await
            .unwrap()
            .map(|l| l.state(t0())),
        &Some(LinkState::Used),
    );
    let got = s
        .enrollment_link(&new.token_hash)
        .await
        .unwrap()
        .expect("new link");
    same(
        &(got.purpose, got.state(t0())),
        &(LinkPurpose::SupportReset, LinkState::Open),
    );
}

async fn spent_links_and_sent_mail_purged(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let old_open = link(a.id, "old-open", t0() - Duration::days(40));
    s.insert_enrollment_link(&old_open).await.unwrap(); // ended by the next insert
    let fresh = link(a.id, "fresh", t0());
    s.insert_enrollment_link(&fresh).await.unwrap();
    let m = mail("an@example.be", t0() - Duration::days(40));
    s.enqueue_mail(&m).await.unwrap();
    let queued = mail("an@example.be", t0() - Duration::days(40));
    s.enqueue_mail(&queued).await.unwrap();
    let claimed = s
        .claim_mail(t0(), t0() + Duration::minutes(5), Uuid::new_v4(), 1)
        .await
        .unwrap();
    same(&claimed.len(), &1);
    assert!(s.mark_mail_sent(&claimed[0], t0()).await.unwrap());
    let n = s.delete_spent(t0() - Duration::days(30)).await.unwrap();
    same(&n, &2);
    assert!(s
        .enrollment_link(&old_open.token_hash)
        .await
        .unwrap()
        .is_none());
    assert!(s
        .enrollment_link(&fresh.token_hash)
        .await
        .unwrap()
        .is_some());
    // Mail still queued is never dropped, however old.
    let counts = s.mail_counts().await.unwrap();
    same(
        &counts.iter().find(|(k, _)| k == "queued").map(|(_, n)| *n),
        &Some(1),
    );
}

/// A reset link is used and the new password set in one transaction (with its
/// notice), so a crash never leaves a used link and the old password: not someone
/// else's link, not twice, not once expired, and of concurrent uses exactly one.
async fn a_reset_link_sets_its_password_in_one_step_or_not_at_all(s: Dyn) {
    use tweestap_domain::store::NewPasswordReset;
    let a = account(&s, "an@example.be").await;
    let other = account(&s, "bo@example.be").await;
    let open = |hash: &str, at: DateTime<Utc>| NewPasswordReset {
        token_hash: TokenHash(hash.into()),
        account_id: a.id,
        created_at: at,
        expires_at: at + Duration::hours(1),
        invite: false,
    };
    let notice = || NewMail {
        account_id: Some(a.id),
        notice: Notice::PasswordChanged,
        ..mail("an@example.be", t0())
    };
    let hash_of = |id: AccountId| {
        let s = s.clone();
        async move { s.account_by_id(id).await.unwrap().unwrap().password_hash }
    };
    let changed = || {
        let s = s.clone();
        async move { s.mails_since(a.id, "password_changed", t0()).await.unwrap() }
    };
    let before = hash_of(a.id).await;
    let link = open("r1", t0());
    s.insert_password_reset(&link).await.unwrap();
    let h = &link.token_hash;
    let use_it = |account: AccountId, hash: &'static str, at: DateTime<Utc>| {
        let (s, h, n) = (s.clone(), h.clone(), notice());
        async move {
            s.use_password_reset(&h, account, hash, at, Some(&n))
                .await
                .unwrap()
        }
    };
    // Not for another account: nothing happens.
    assert!(!use_it(other.id, "$argon2id$bo", t0()).await);
    same(&hash_of(a.id).await, &before);
    same(&changed().await, &0);
    // Past its hour: nothing happens.
    assert!(!use_it(a.id, "$argon2id$late", t0() + Duration::hours(2)).await);
    same(&hash_of(a.id).await, &before);
    // Used: the password and its notice together; then never again.
    assert!(use_it(a.id, "$argon2id$new", t0()).await);
    same(&hash_of(a.id).await, &"$argon2id$new".to_owned());
    same(&changed().await, &1);
    assert!(s.password_reset_account(h, t0()).await.unwrap().is_none());
    assert!(!use_it(a.id, "$argon2id$again", t0()).await);
    same(&hash_of(a.id).await, &"$argon2id$new".to_owned());
    same(&changed().await, &1);
    // Of ten concurrent uses of a new link exactly one sets its password.
    let link = open("r2", t0() + Duration::minutes(1));
    s.insert_password_reset(&link).await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (s, h, n) = (s.clone(), link.token_hash.clone(), notice());
        tasks.push(tokio::spawn(async move {
            s.use_password_reset(&h, a.id, "$argon2id$raced", t0(), Some(&n))
                .await
                .unwrap()
        }));
    }
    let mut won = 0;
    for t in tasks {
        won += usize::from(t.await.unwrap());
    }
    same(&won, &1);
    same(&changed().await, &2);
}
