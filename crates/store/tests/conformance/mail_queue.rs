//! The mail queue.

use super::*;

conformance!(
    mail_claimed_when_due_leased_and_marked_once,
    concurrent_mail_claims_never_share_a_message,
    mails_counted_per_account_kind_and_hour,
);

pub(super) fn mail(to: &str, at: DateTime<Utc>) -> NewMail {
    NewMail {
        id: Uuid::new_v4(),
        account_id: None,
        to: to.into(),
        to_name: "An".into(),
        language: Language::En,
        notice: Notice::FactorRemoved {
            factor_kind: "totp".into(),
        },
        created_at: at,
    }
}

async fn mail_claimed_when_due_leased_and_marked_once(s: Dyn) {
    let t = us(t0());
    let m = mail("an@x.be", t);
    s.enqueue_mail(&m).await.unwrap();
    // Not due before it was queued.
    let early = t - Duration::seconds(1);
    assert!(s
        .claim_mail(early, early + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap()
        .is_empty());
    let first = s
        .claim_mail(t, t + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    let c = &first[0];
    assert_eq!((c.id, c.attempts, c.language), (m.id, 1, Language::En));
    assert_eq!(
        (c.to.as_str(), c.kind.as_str()),
        ("an@x.be", "factor_removed")
    );
    assert_eq!(Notice::from_json(&c.payload).unwrap(), m.notice);
    assert_eq!(c.created_at, t);
    // Held while the lease lasts...
    let later = t + Duration::minutes(4);
    assert!(s
        .claim_mail(later, later + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap()
        .is_empty());
    // ...and taken over when it ran out (its node died).
    let after = t + Duration::minutes(5);
    let second = s
        .claim_mail(after, after + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert_eq!((second.len(), second[0].attempts), (1, 2));
    // The first claim is lost: its marks do nothing.
    assert!(!s.mark_mail_sent(c, after).await.unwrap());
    assert!(!s.retry_mail(c, after, "x").await.unwrap());
    // A retry is due only at its time.
    let retry_at = after + Duration::seconds(30);
    assert!(s.retry_mail(&second[0], retry_at, "refused").await.unwrap());
    assert!(s
        .claim_mail(after, after + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap()
        .is_empty());
    let third = s
        .claim_mail(retry_at, retry_at + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert_eq!(third.len(), 1);
    assert!(s.mark_mail_sent(&third[0], retry_at).await.unwrap());
    assert!(!s.mark_mail_sent(&third[0], retry_at).await.unwrap());
    let much_later = t + Duration::days(9);
    assert!(s
        .claim_mail(much_later, much_later, Uuid::new_v4(), 5)
        .await
        .unwrap()
        .is_empty());

    let given_up = mail("bo@x.be", t);
    s.enqueue_mail(&given_up).await.unwrap();
    let g = s
        .claim_mail(t, t + Duration::minutes(5), Uuid::new_v4(), 5)
        .await
        .unwrap();
    assert!(s.fail_mail(&g[0], t, "550 no such user").await.unwrap());
    assert_eq!(
        s.mail_counts().await.unwrap(),
        vec![("failed".to_owned(), 1), ("sent".to_owned(), 1)]
    );
}

async fn mails_counted_per_account_kind_and_hour(s: Dyn) {
    let an = account(&s, "an@example.be").await;
    let bo = account(&s, "bo@example.be").await;
    let code_mail = |account: AccountId, at: DateTime<Utc>| NewMail {
        account_id: Some(account),
        notice: Notice::EmailCode {
            code_sealed: "sealed".into(),
        },
        ..mail("an@example.be", at)
    };
    let since = t0() - Duration::hours(1);
    s.enqueue_mail(&code_mail(an.id, since - Duration::seconds(1)))
        .await
        .unwrap();
    s.enqueue_mail(&code_mail(an.id, since)).await.unwrap();
    s.enqueue_mail(&code_mail(an.id, t0())).await.unwrap();
    s.enqueue_mail(&code_mail(bo.id, t0())).await.unwrap();
    let mut other_kind = mail("an@example.be", t0());
    other_kind.account_id = Some(an.id);
    s.enqueue_mail(&other_kind).await.unwrap();
    // Sent mail counts as much as queued mail.
    let claimed = s
        .claim_mail(t0(), t0() + Duration::minutes(5), Uuid::new_v4(), 10)
        .await
        .unwrap();
    assert!(s.mark_mail_sent(&claimed[0], t0()).await.unwrap());
    same(
        &s.mails_since(an.id, Notice::EMAIL_CODE, since)
            .await
            .unwrap(),
        &2,
    );
    same(
        &s.mails_since(bo.id, Notice::EMAIL_CODE, since)
            .await
            .unwrap(),
        &1,
    );
    same(
        &s.mails_since(an.id, "factor_removed", since).await.unwrap(),
        &1,
    );
}

async fn concurrent_mail_claims_never_share_a_message(s: Dyn) {
    let t = us(t0());
    for i in 0..40 {
        s.enqueue_mail(&mail(&format!("u{i}@x.be"), t))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                let mut got = Vec::new();
                loop {
                    let c = s
                        .claim_mail(t, t + Duration::minutes(5), Uuid::new_v4(), 3)
                        .await
                        .unwrap();
                    if c.is_empty() {
                        return got;
                    }
                    got.extend(c.into_iter().map(|m| m.id));
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let distinct: std::collections::HashSet<_> = all.iter().collect();
    assert_eq!((all.len(), distinct.len()), (40, 40));
}
