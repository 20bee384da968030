//! Sealed secrets page by page, and their replacement under a new key: what
//! `tweestap keys rotate-secret` relies on.

use super::*;
use tweestap_domain::store::{Resealed, SealedAt, SealedKind, SealedValue};

conformance!(sealed_values_come_page_by_page_and_are_replaced_only_where_unchanged);

/// Every value of `kind`, page by page of `size`.
async fn all_of(s: &Dyn, kind: SealedKind, size: u32) -> Vec<SealedValue> {
    let mut all: Vec<SealedValue> = Vec::new();
    let mut after: Option<SealedAt> = None;
    loop {
        let page = s.sealed_values(kind, after.as_ref(), size).await.unwrap();
        assert!(page.len() <= size as usize);
        let Some(last) = page.last() else {
            return all;
        };
        after = Some(last.at.clone());
        all.extend(page);
    }
}

async fn sealed_values_come_page_by_page_and_are_replaced_only_where_unchanged(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let mut factors = Vec::new();
    for i in 0..5u8 {
        let mut f = factor(a.id, t0());
        f.secret_sealed = vec![i, 0, 255];
        s.insert_factor(&f).await.unwrap();
        factors.push(f);
    }
    let key = SigningKey {
        kid: "kid-1".into(),
        alg: SigningAlg::Es256,
        private_sealed: vec![9, 8, 7],
        public_jwk: serde_json::json!({"kty": "EC", "kid": "kid-1"}),
        created_at: t0(),
        retired_at: None,
    };
    s.insert_signing_key(&key).await.unwrap();
    let mail = NewMail {
        id: Uuid::new_v4(),
        account_id: Some(a.id),
        to: "an@x.be".into(),
        to_name: "An".into(),
        language: Language::Nl,
        notice: Notice::PasswordReset {
            link_sealed: "c2VhbGVk".into(),
        },
        created_at: t0(),
    };
    s.enqueue_mail(&mail).await.unwrap();

    // Pages of two: every factor once.
    let seen = all_of(&s, SealedKind::FactorSecret, 2).await;
    assert_eq!(seen.len(), 5, "{seen:?}");
    for f in &factors {
        let want = SealedValue {
            at: SealedAt::Factor(f.id),
            value: f.secret_sealed.clone(),
        };
        assert!(seen.contains(&want), "{want:?} in {seen:?}");
    }
    let keys = all_of(&s, SealedKind::SigningKey, 2).await;
    assert_eq!(
        keys,
        vec![SealedValue {
            at: SealedAt::SigningKey("kid-1".into()),
            value: vec![9, 8, 7],
        }]
    );
    let mails = all_of(&s, SealedKind::MailPayload, 2).await;
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].at, SealedAt::Mail(mail.id));
    assert_eq!(mails[0].value, mail.notice.to_json().into_bytes());

    // A batch: a row still as read changes; one changed meanwhile, one gone, do not.
    let new_notice = Notice::PasswordReset {
        link_sealed: "bmlldXc".into(),
    };
    let batch = vec![
        Resealed {
            at: SealedAt::Factor(factors[0].id),
            old: factors[0].secret_sealed.clone(),
            new: vec![42, 42],
        },
        Resealed {
            at: SealedAt::Factor(factors[1].id),
            old: vec![7, 7, 7],
            new: vec![43, 43],
        },
        Resealed {
            at: SealedAt::Factor(FactorId(Uuid::new_v4())),
            old: vec![1],
            new: vec![2],
        },
        Resealed {
            at: SealedAt::SigningKey("kid-1".into()),
            old: vec![9, 8, 7],
            new: vec![44],
        },
        Resealed {
            at: SealedAt::Mail(mail.id),
            old: mail.notice.to_json().into_bytes(),
            new: new_notice.to_json().into_bytes(),
        },
    ];
    assert_eq!(s.replace_sealed(&batch).await.unwrap(), 3);
    let now = s.factors_of(a.id).await.unwrap();
    let of = |id: FactorId| {
        now.iter()
            .find(|f| f.id == id)
            .unwrap()
            .secret_sealed
            .clone()
    };
    assert_eq!(of(factors[0].id), vec![42, 42]);
    assert_eq!(of(factors[1].id), factors[1].secret_sealed);
    assert_eq!(s.signing_keys().await.unwrap()[0].private_sealed, vec![44]);
    let mails = all_of(&s, SealedKind::MailPayload, 10).await;
    assert_eq!(mails[0].value, new_notice.to_json().into_bytes());
    assert_eq!(s.replace_sealed(&[]).await.unwrap(), 0);

    // A page of one kind does not follow a row of another.
    let wrong = SealedAt::Factor(factors[0].id);
    assert!(s
        .sealed_values(SealedKind::SigningKey, Some(&wrong), 2)
        .await
        .is_err());
}
