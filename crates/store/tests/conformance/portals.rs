//! What portals hold of a browser sign-in: sids shared across a step-up, ending a
//! sid (tokens revoked, codes gone, logouts queued, in one transaction), the
//! logout queue's claims, consents, disabling an account, pushed requests used once.

use super::oidc::{stored_code, stored_token};
use super::*;
use tweestap_domain::oidc::backchannel::QueuedLogout;

conformance!(
    sessions_share_a_sid_and_a_step_up_keeps_only_the_new_one,
    ending_a_sid_revokes_its_tokens_and_queues_logouts,
    logouts_are_claimed_by_one_worker_retried_and_finished,
    consents_widen_and_their_withdrawal_revokes_the_clients_tokens,
    disabling_an_account_ends_everything_portals_hold,
    pushed_requests_are_taken_once,
    retention_forgets_what_expired_sign_ins_reached,
);

fn with_sid(account: AccountId, sid: &str, stage: SessionStage) -> Session {
    Session {
        sid: sid.into(),
        stage,
        ..session(account, t0())
    }
}

async fn sessions_share_a_sid_and_a_step_up_keeps_only_the_new_one(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let old = with_sid(a.id, "sid-a", SessionStage::Authenticated);
    let new = with_sid(a.id, "sid-a", SessionStage::SecondFactor);
    let other = with_sid(a.id, "sid-b", SessionStage::Authenticated);
    for x in [&old, &new, &other] {
        s.insert_session(x).await.unwrap();
    }
    let mut got: Vec<String> = s
        .sessions_with_sid("sid-a")
        .await
        .unwrap()
        .into_iter()
        .map(|x| x.id_hash.0)
        .collect();
    got.sort();
    let mut want = vec![old.id_hash.0.clone(), new.id_hash.0.clone()];
    want.sort();
    same(&got, &want);
    s.delete_other_sessions_with_sid("sid-a", &new.id_hash)
        .await
        .unwrap();
    let left = s.sessions_with_sid("sid-a").await.unwrap();
    same(&left.len(), &1);
    same(&left[0].id_hash, &new.id_hash);
    same(&s.sessions_with_sid("sid-b").await.unwrap().len(), &1);
}

async fn ending_a_sid_revokes_its_tokens_and_queues_logouts(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    s.insert_session(&with_sid(a.id, "sid-1", SessionStage::Authenticated))
        .await
        .unwrap();
    s.insert_session(&with_sid(a.id, "sid-2", SessionStage::Authenticated))
        .await
        .unwrap();
    // stored_token/stored_code are bound to sid-1; one of another sid, one offline.
    let bound = stored_token("at-1", TokenKind::Access, "fam-1", a.id);
    let mut elsewhere = stored_token("at-2", TokenKind::Access, "fam-2", a.id);
    elsewhere.sid = Some("sid-2".into());
    let mut offline = stored_token("rt-3", TokenKind::Refresh, "fam-3", a.id);
    offline.sid = None;
    for t in [&bound, &elsewhere, &offline] {
        s.insert_oidc_token(t).await.unwrap();
    }
    let code = stored_code("code-1", a.id);
    s.insert_oidc_code(&code).await.unwrap();
    for (sid, client) in [("sid-1", "loket"), ("sid-1", "portaal"), ("sid-2", "loket")] {
        s.record_session_client(sid, client, a.id, t0())
            .await
            .unwrap();
    }
    // Recording twice is harmless.
    s.record_session_client("sid-1", "loket", a.id, t0())
        .await
        .unwrap();
    let at = t0() + Duration::seconds(1);
    same(&s.end_sid("sid-1", at).await.unwrap(), &2);
    assert!(s.sessions_with_sid("sid-1").await.unwrap().is_empty());
    same(&s.sessions_with_sid("sid-2").await.unwrap().len(), &1);
    let t = |h: &str| {
        let s = s.clone();
        let h = h.to_owned();
        async move { s.oidc_token(&TokenHash(h)).await.unwrap().unwrap() }
    };
    same(&t("at-1").await.revoked_at, &Some(us(at)));
    same(&t("at-2").await.revoked_at, &None);
    same(&t("rt-3").await.revoked_at, &None);
    assert!(matches!(
        s.claim_oidc_code(&code.code_hash, at).await.unwrap(),
        CodeClaim::Unknown
    ));
    same(&s.pending_logouts().await.unwrap(), &2);
    // Ending it again queues nothing more.
    same(&s.end_sid("sid-1", at).await.unwrap(), &0);
    let claimed = s
        .claim_logouts(at, at + Duration::seconds(60), Uuid::new_v4(), 10)
        .await
        .unwrap();
    let mut clients: Vec<&str> = claimed.iter().map(|q| q.client_id.as_str()).collect();
    clients.sort();
    same(&clients, &vec!["loket", "portaal"]);
    for q in &claimed {
        same(&q.sid.as_str(), &"sid-1");
        same(&q.subject, &a.id.0.to_string());
        same(&q.attempts, &1);
    }
}

async fn queued(s: &Dyn, a: AccountId, sid: &str) {
    s.insert_session(&with_sid(a, sid, SessionStage::Authenticated))
        .await
        .unwrap();
    s.record_session_client(sid, "loket", a, t0())
        .await
        .unwrap();
    same(&s.end_sid(sid, t0()).await.unwrap(), &1);
}

async fn logouts_are_claimed_by_one_worker_retried_and_finished(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    queued(&s, a.id, "sid-1").await;
    let now = t0() + Duration::seconds(1);
    let lease = now + Duration::seconds(60);
    // Two workers at once: one gets it.
    let (x, y) = tokio::join!(
        s.claim_logouts(now, lease, Uuid::new_v4(), 10),
        s.claim_logouts(now, lease, Uuid::new_v4(), 10)
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    same(&(x.len() + y.len()), &1);
    let q: QueuedLogout = x.into_iter().chain(y).next().unwrap();
    // While the lease lasts nobody else gets it.
    assert!(s
        .claim_logouts(now, lease, Uuid::new_v4(), 10)
        .await
        .unwrap()
        .is_empty());
    // A stranger's claim cannot touch it.
    let stranger = QueuedLogout {
        claim: Uuid::new_v4(),
        ..q.clone()
    };
    assert!(!s.finish_logout(&stranger).await.unwrap());
    let later = now + Duration::seconds(20);
    assert!(s
        .retry_logout(&q, later, "the portal answered 500")
        .await
        .unwrap());
    assert!(s
        .claim_logouts(now, lease, Uuid::new_v4(), 10)
        .await
        .unwrap()
        .is_empty());
    let again = s
        .claim_logouts(later, later + Duration::seconds(60), Uuid::new_v4(), 10)
        .await
        .unwrap();
    same(&again.len(), &1);
    same(&again[0].attempts, &2);
    assert!(!s.finish_logout(&q).await.unwrap());
    assert!(s.finish_logout(&again[0]).await.unwrap());
    same(&s.pending_logouts().await.unwrap(), &0);
}

async fn consents_widen_and_their_withdrawal_revokes_the_clients_tokens(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    same(&s.oidc_consent(a.id, "portaal").await.unwrap(), &None);
    s.grant_oidc_consent(a.id, "portaal", "openid", t0())
        .await
        .unwrap();
    s.grant_oidc_consent(a.id, "portaal", "openid email", t0() + Duration::seconds(1))
        .await
        .unwrap();
    same(
        &s.oidc_consent(a.id, "portaal").await.unwrap().as_deref(),
        &Some("openid email"),
    );
    s.grant_oidc_consent(a.id, "ander", "openid", t0())
        .await
        .unwrap();
    let all = s.oidc_consents(a.id).await.unwrap();
    same(&all.len(), &2);
    same(&all[0].client_id.as_str(), &"ander");
    // stored_token's client is "portaal"; one of another client stays.
    let mine = stored_token("at-1", TokenKind::Access, "fam-1", a.id);
    let code = stored_code("code-9", a.id);
    s.insert_oidc_code(&code).await.unwrap();
    let mut theirs = stored_token("at-2", TokenKind::Access, "fam-2", a.id);
    theirs.client_id = "ander".into();
    s.insert_oidc_token(&mine).await.unwrap();
    s.insert_oidc_token(&theirs).await.unwrap();
    let at = t0() + Duration::seconds(2);
    assert!(s.revoke_oidc_consent(a.id, "portaal", at).await.unwrap());
    assert!(!s.revoke_oidc_consent(a.id, "portaal", at).await.unwrap());
    same(&s.oidc_consent(a.id, "portaal").await.unwrap(), &None);
    let got = s.oidc_token(&mine.token_hash).await.unwrap().unwrap();
    same(&got.revoked_at, &Some(us(at)));
    let got = s.oidc_token(&theirs.token_hash).await.unwrap().unwrap();
    same(&got.revoked_at, &None);
    // Its code not yet exchanged went along.
    assert!(matches!(
        s.claim_oidc_code(&code.code_hash, at).await.unwrap(),
        CodeClaim::Unknown
    ));
}

async fn disabling_an_account_ends_everything_portals_hold(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    let b = account(&s, "bo@example.be").await;
    s.insert_session(&with_sid(a.id, "sid-a", SessionStage::Authenticated))
        .await
        .unwrap();
    s.insert_session(&with_sid(b.id, "sid-b", SessionStage::Authenticated))
        .await
        .unwrap();
    s.record_session_client("sid-a", "loket", a.id, t0())
        .await
        .unwrap();
    s.record_session_client("sid-b", "loket", b.id, t0())
        .await
        .unwrap();
    let mut offline = stored_token("rt-1", TokenKind::Refresh, "fam-1", a.id);
    offline.sid = None;
    s.insert_oidc_token(&offline).await.unwrap();
    let at = t0() + Duration::seconds(1);
    s.set_disabled(a.id, Some(at)).await.unwrap();
    let got = s.account_by_id(a.id).await.unwrap().unwrap();
    same(&got.disabled_at, &Some(us(at)));
    assert!(s.sessions_with_sid("sid-a").await.unwrap().is_empty());
    same(&s.sessions_with_sid("sid-b").await.unwrap().len(), &1);
    // Even what outlives a session ends with the account.
    let got = s.oidc_token(&offline.token_hash).await.unwrap().unwrap();
    same(&got.revoked_at, &Some(us(at)));
    same(&s.pending_logouts().await.unwrap(), &1);
    s.set_disabled(a.id, None).await.unwrap();
    same(
        &s.account_by_id(a.id).await.unwrap().unwrap().disabled_at,
        &None,
    );
}

async fn pushed_requests_are_taken_once(s: Dyn) {
    let r = StoredRequest {
        id_hash: TokenHash("par-1".into()),
        request: "{\"pushed\":true}".into(),
        created_at: t0(),
        expires_at: t0() + Duration::seconds(90),
    };
    s.insert_oidc_request(&r).await.unwrap();
    let now = t0() + Duration::seconds(1);
    let (x, y) = tokio::join!(
        s.take_oidc_request(&r.id_hash, now),
        s.take_oidc_request(&r.id_hash, now)
    );
    let got: Vec<String> = [x.unwrap(), y.unwrap()].into_iter().flatten().collect();
    same(&got, &vec![r.request.clone()]);
    let late = StoredRequest {
        id_hash: TokenHash("par-2".into()),
        ..r.clone()
    };
    s.insert_oidc_request(&late).await.unwrap();
    same(
        &s.take_oidc_request(&late.id_hash, t0() + Duration::seconds(90))
            .await
            .unwrap(),
        &None,
    );
}

async fn retention_forgets_what_expired_sign_ins_reached(s: Dyn) {
    let a = account(&s, "an@example.be").await;
    s.insert_session(&with_sid(a.id, "live", SessionStage::Authenticated))
        .await
        .unwrap();
    s.record_session_client("live", "loket", a.id, t0())
        .await
        .unwrap();
    // Its session expired and was purged: nothing carries the sid any more.
    s.record_session_client("gone", "loket", a.id, t0())
        .await
        .unwrap();
    s.delete_spent(t0() + Duration::days(1)).await.unwrap();
    same(&s.end_sid("gone", t0()).await.unwrap(), &0);
    same(&s.end_sid("live", t0()).await.unwrap(), &1);
}
