//! Changes whose consequences are written in the same transaction.

use super::mail_queue::mail;
use super::oidc::{stored_code, stored_token};
use super::*;

conformance!(
    password_change_and_support_reset_end_portal_grants,
    changes_and_their_notices_are_stored_together,
);

/// A password change or a support reset ends what portals hold of that account:
/// tokens revoked, unexchanged codes gone (a used one stays, for replay detection);
/// another account's grants are untouched.
async fn password_change_and_support_reset_end_portal_grants(s: Dyn) {
    let an = account(&s, "an@example.be").await;
    let bo = account(&s, "bo@example.be").await;
    let grants = |who: AccountId, tag: &str| {
        (
            stored_code(&format!("code-{tag}"), who),
            stored_code(&format!("used-{tag}"), who),
            stored_token(&format!("at-{tag}"), TokenKind::Access, tag, who),
            stored_token(&format!("rt-{tag}"), TokenKind::Refresh, tag, who),
        )
    };
    for (who, tag) in [(an.id, "an1"), (bo.id, "bo1")] {
        let (code, used, at, rt) = grants(who, tag);
        s.insert_oidc_code(&code).await.unwrap();
        s.insert_oidc_code(&used).await.unwrap();
        assert!(matches!(
            s.claim_oidc_code(&used.code_hash, t0()).await.unwrap(),
            CodeClaim::Fresh(_)
        ));
        s.insert_oidc_token(&at).await.unwrap();
        s.insert_oidc_token(&rt).await.unwrap();
    }
    let at = t0() + Duration::minutes(1);
    s.change_password(an.id, "$argon2id$new", at, None)
        .await
        .unwrap();
    let revoked = |h: &str| {
        let s = s.clone();
        let h = TokenHash(h.into());
        async move { s.oidc_token(&h).await.unwrap().unwrap().revoked_at }
    };
    assert_eq!(revoked("at-an1").await, Some(us(at)));
    assert_eq!(revoked("rt-an1").await, Some(us(at)));
    assert!(!s
        .use_refresh_token(&TokenHash("rt-an1".into()), at)
        .await
        .unwrap());
    assert_eq!(
        s.claim_oidc_code(&TokenHash("code-an1".into()), at)
            .await
            .unwrap(),
        CodeClaim::Unknown
    );
    assert!(matches!(
        s.claim_oidc_code(&TokenHash("used-an1".into()), at)
            .await
            .unwrap(),
        CodeClaim::Reused(_)
    ));
    // Bo's are untouched.
    assert_eq!(revoked("at-bo1").await, None);
    assert_eq!(revoked("rt-bo1").await, None);

    // A support reset does the same for bo.
    let link = EnrollmentLink {
        token_hash: TokenHash("reset-link".into()),
        account_id: bo.id,
        purpose: LinkPurpose::SupportReset,
        created_at: at,
        expires_at: at + Duration::days(5),
        used_at: None,
    };
    s.reset_two_factor(bo.id, &link, None).await.unwrap();
    assert_eq!(revoked("at-bo1").await, Some(us(at)));
    assert_eq!(revoked("rt-bo1").await, Some(us(at)));
    assert_eq!(
        s.claim_oidc_code(&TokenHash("code-bo1".into()), at)
            .await
            .unwrap(),
        CodeClaim::Unknown
    );
}

/// A change and its notice are written together: the notice is queued exactly when
/// the change happens (a factor confirmed or removed, a password changed, a support
/// reset), never for a change that did not happen; so are a factor's confirmation
/// and the recovery codes that come with it.
async fn changes_and_their_notices_are_stored_together(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let notice = |kind: Notice| NewMail {
        account_id: Some(a.id),
        notice: kind,
        ..mail("an@example.be", t0())
    };
    let queued = |kind: &'static str| {
        let s = s.clone();
        async move { s.mails_since(a.id, kind, t0()).await.unwrap() }
    };
    let added = || Notice::FactorAdded {
        factor_kind: "totp".into(),
    };
    let removed = || Notice::FactorRemoved {
        factor_kind: "totp".into(),
    };

    let f = factor(a.id, t0());
    s.insert_factor(&f).await.unwrap();
    // A first factor comes with its recovery codes, in the same transaction.
    s.replace_recovery_codes(a.id, &["old".to_owned()], t0())
        .await
        .unwrap();
    let macs = ["mac-1".to_owned(), "mac-2".to_owned()];
    assert!(s
        .confirm_factor(f.id, t0(), Some(&notice(added())), Some(&macs))
        .await
        .unwrap());
    same(&queued("factor_added").await, &1);
    same(&s.recovery_codes_left(a.id).await.unwrap(), &2);
    assert!(s.use_recovery_code(a.id, "mac-1", t0()).await.unwrap());
    assert!(!s.use_recovery_code(a.id, "old", t0()).await.unwrap());
    // Confirming again changes nothing, and queues and replaces nothing.
    assert!(!s
        .confirm_factor(
            f.id,
            t0(),
            Some(&notice(added())),
            Some(&["mac-3".to_owned()])
        )
        .await
        .unwrap());
    same(&queued("factor_added").await, &1);
    same(&s.recovery_codes_left(a.id).await.unwrap(), &1);

    let device = RememberedDevice {
        id: Uuid::new_v4(),
        token_hash: TokenHash("device".into()),
        account_id: a.id,
        label: "Firefox · Linux".into(),
        created_at: t0(),
        last_used_at: t0(),
        expires_at: t0() + Duration::days(7),
    };
    s.insert_device(&device).await.unwrap();
    assert!(s
        .remove_factor(f.id, Some(a.id), Some(&notice(removed())))
        .await
        .unwrap());
    same(&queued("factor_removed").await, &1);
    assert!(s.devices_of(a.id).await.unwrap().is_empty());
    assert!(!s
        .remove_factor(f.id, Some(a.id), Some(&notice(removed())))
        .await
        .unwrap());
    same(&queued("factor_removed").await, &1);
    // Without devices to forget, the others stay.
    let g = factor(a.id, t0());
    s.insert_factor(&g).await.unwrap();
    s.insert_device(&device).await.unwrap();
    assert!(s.remove_factor(g.id, None, None).await.unwrap());
    same(&s.devices_of(a.id).await.unwrap().len(), &1);

    s.change_password(
        a.id,
        "$argon2id$new",
        t0(),
        Some(&notice(Notice::PasswordChanged)),
    )
    .await
    .unwrap();
    same(&queued("password_changed").await, &1);

    let link = EnrollmentLink {
        token_hash: TokenHash("reset-with-mail".into()),
        account_id: a.id,
        purpose: LinkPurpose::SupportReset,
        created_at: t0(),
        expires_at: t0() + Duration::days(5),
        used_at: None,
    };
    let reset = Notice::TwoFactorReset {
        link_sealed: "sealed".into(),
        valid_days: 5,
    };
    s.reset_two_factor(a.id, &link, Some(&notice(reset)))
        .await
        .unwrap();
    same(&queued("two_factor_reset").await, &1);
}
