//! OIDC Back-Channel Logout 1.0 to a receiver on loopback: a signed logout token
//! (typ logout+jwt; iss, aud, iat, exp, jti, sub, sid, the event; no nonce) POSTed
//! as a form when the session ends — sign-out, password change, support reset —
//! only to clients that got a code in that session, retried when the receiver fails.

use super::browser::{sign_in_for, sign_out_by_page, signed_in};
use super::receiver::Receiver;
use super::*;
use crate::kit::eventually;
use serde_json::json;

crate::on_both_backends!(
    sign_out_sends_one_signed_logout_token_per_session,
    password_change_and_support_reset_each_send_one,
    a_failing_receiver_gets_it_again_later,
    a_receiver_that_never_takes_it_is_given_up_and_audited,
    a_step_up_is_no_logout,
    logout_tokens_are_signed_with_the_clients_algorithm,
    someone_else_signing_in_at_a_step_up_ends_the_first_session,
    the_command_line_registers_a_backchannel_logout_uri,
);

/// A logout token checked as OIDC Back-Channel Logout 1.0 section 2.6 tells a
/// relying party to: signature (JWKS), typ, iss, aud, iat, exp, jti, the event, no
/// nonce; and the sub and sid of the session that ended.
pub async fn check_logout_token(
    app: &TestApp,
    token: &str,
    aud: &str,
    sub: &str,
    sid: &Value,
) -> Value {
    let (header, claims) = verify_jwt(app, token, aud).await;
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"), "typ");
    assert_eq!(claims["iss"], app.url.as_str());
    assert!(audiences(&claims["aud"]).contains(&aud.to_owned()));
    let iat = claims["iat"]
        .as_i64()
        .unwrap_or_else(|| panic!("no iat: {claims}"));
    let exp = claims["exp"]
        .as_i64()
        .unwrap_or_else(|| panic!("no exp: {claims}"));
    assert!(exp > iat, "{claims}");
    assert!(
        claims["jti"].as_str().is_some_and(|j| j.len() >= 16),
        "jti: {claims}"
    );
    assert_eq!(
        claims["events"],
        json!({ BACKCHANNEL_EVENT: {} }),
        "{claims}"
    );
    assert!(
        claims.get("nonce").is_none(),
        "a logout token with a nonce: {claims}"
    );
    assert_eq!(claims["sub"], sub, "{claims}");
    assert_eq!(&claims["sid"], sid, "{claims}");
    assert!(sid.as_str().is_some_and(|s| !s.is_empty()));
    claims
}

/// Waits until `path` accepted `n` logout tokens; all it accepted.
pub async fn accepted(rx: &Receiver, path: &str, n: usize) -> Vec<String> {
    eventually(15, &format!("{n} logout token(s) at {path}"), || {
        let got = rx.accepted(path).len();
        async move { got >= n }
    })
    .await;
    rx.accepted(path)
}

/// The sid and sub of a code's ID token for the portal.
async fn session_of(app: &TestApp, back: &str) -> (Value, String) {
    let claims = id_claims(app, &tokens(app, PORTAL, back).await, "portal").await;
    (
        claims["sid"].clone(),
        claims["sub"].as_str().unwrap().to_owned(),
    )
}

async fn sign_out_sends_one_signed_logout_token_per_session(backend: Backend) {
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let (c1, back1) = signed_in(&app, PORTAL, "openid", &secret).await;
    let (sid1, sub) = session_of(&app, &back1).await;
    let (c2, back2) = signed_in(&app, PORTAL, "openid", &secret).await;
    let (sid2, _) = session_of(&app, &back2).await;
    assert_ne!(sid1, sid2, "two browsers, two sessions");
    assert_eq!(sub, account_id(&app, EMAIL).await);

    sign_out_by_page(&c2).await;
    let got = accepted(&rx, "/portal", 1).await;
    let first = check_logout_token(&app, &got[0], "portal", &sub, &sid2).await;
    assert!(
        rx.posts("/extern").is_empty(),
        "a client without a code in the session"
    );
    let a = &app;
    eventually(
        5,
        "oidc_backchannel_logout_sent in the audit log",
        || async move {
            audit_events(a)
                .await
                .iter()
                .any(|e| e == "oidc_backchannel_logout_sent")
        },
    )
    .await;
    // The other browser is still signed in and its portal session untouched.
    assert_eq!(c1.get("/api/v1/me").await.status, 200);

    // The browser app gets a code in the first browser's session: the same sid.
    let l = super::browser::visit(&c1, &authorize(SPA, "openid", "")).await;
    let spa = id_claims(&app, &tokens(&app, SPA, &l.url).await, "spa").await;
    assert_eq!(
        spa["sid"], sid1,
        "one browser session, one sid for every client"
    );

    sign_out_by_page(&c1).await;
    let got = accepted(&rx, "/portal", 2).await;
    let second = check_logout_token(&app, &got[1], "portal", &sub, &sid1).await;
    let to_spa = accepted(&rx, "/spa", 1).await;
    assert_eq!(to_spa.len(), 1);
    check_logout_token(&app, &to_spa[0], "spa", &sub, &sid1).await;
    assert_ne!(first["jti"], second["jti"], "jti is unique");
    // Once each, not again later.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(rx.posts("/portal").len(), 2, "{:?}", rx.posts("/portal"));

    // The API's sign-out and RP-initiated logout send one too.
    let (c3, back3) = signed_in(&app, PORTAL, "openid", &secret).await;
    let (sid3, _) = session_of(&app, &back3).await;
    assert_eq!(c3.post("/api/v1/logout", json!({})).await.status, 200);
    let got = accepted(&rx, "/portal", 3).await;
    check_logout_token(&app, &got[2], "portal", &sub, &sid3).await;
    let (c4, back4) = signed_in(&app, PORTAL, "openid", &secret).await;
    let t = tokens(&app, PORTAL, &back4).await;
    let sid4 = id_claims(&app, &t, "portal").await["sid"].clone();
    let url = format!(
        "/oidc/logout?id_token_hint={}&post_logout_redirect_uri={}",
        t["id_token"].as_str().unwrap(),
        enc(CB)
    );
    let l = super::browser::visit(&c4, &url).await;
    assert_eq!(l.url, CB);
    let got = accepted(&rx, "/portal", 4).await;
    check_logout_token(&app, &got[3], "portal", &sub, &sid4).await;
}

async fn password_change_and_support_reset_each_send_one(backend: Backend) {
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let ctx = tweestap_domain::audit::RequestContext::default();
    let (_c, back) = signed_in(&app, PORTAL, "openid", &secret).await;
    let (sid, sub) = session_of(&app, &back).await;

    // A new password through "forgot your password".
    app.engine()
        .request_password_reset(EMAIL, &app.url, &ctx)
        .await
        .unwrap();
    let text = crate::kit::nth_mail(&app, "password-reset", 1).await;
    let prefix = format!("{}/password/reset/", app.url);
    let at = text.find(&prefix).expect("a reset link") + prefix.len();
    let new_password = "een heel ander wachtwoord dan eerst";
    app.engine()
        .complete_password_reset(&text[at..at + 43], new_password, &ctx)
        .await
        .unwrap();
    let got = accepted(&rx, "/portal", 1).await;
    check_logout_token(&app, &got[0], "portal", &sub, &sid).await;

    // Signed in again with the new password; then support resets the second factor
    // (the command line, as support on the server would).
    let c = app.client();
    let url = authorize(PORTAL, "openid", "");
    let page = super::browser::visit(&c, &url).await;
    let after = super::browser::password(&c, &page, EMAIL, new_password).await;
    let back = super::browser::code(&c, &app, &after, &secret, false).await;
    let (sid2, _) = session_of(&app, &back.url).await;
    assert_ne!(sid2, sid);
    let (ok, out, err) = cli(
        &app,
        &["user", "reset-2fa", EMAIL, "--reason", "telefoon kwijt"],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    catch_up_with_the_command_line(&app);
    let got = accepted(&rx, "/portal", 2).await;
    check_logout_token(&app, &got[1], "portal", &sub, &sid2).await;
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        rx.posts("/portal").len(),
        2,
        "one each: {:?}",
        rx.posts("/portal")
    );
}

/// The receiver answers 500 at first: the queue tries again (with back-off, on the
/// provider's clock), and the token arrives.
async fn a_failing_receiver_gets_it_again_later(backend: Backend) {
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let (c, back) = signed_in(&app, PORTAL, "openid", &secret).await;
    let (sid, sub) = session_of(&app, &back).await;
    rx.fail_next(2);
    sign_out_by_page(&c).await;
    eventually(40, "the logout token after two failures", || {
        app.clock.advance(chrono::Duration::seconds(20));
        let got = rx.accepted("/portal").len();
        async move { got >= 1 }
    })
    .await;
    let posts = rx.posts("/portal");
    assert_eq!(
        posts.iter().map(|p| p.answered).collect::<Vec<_>>(),
        [500, 500, 200],
        "{posts:?}"
    );
    let token = posts[2].logout_token().unwrap();
    check_logout_token(&app, &token, "portal", &sub, &sid).await;
    for p in &posts {
        let (_, claims) = verify_jwt(&app, &p.logout_token().unwrap(), "portal").await;
        assert_eq!(claims["sid"], sid, "every try is for the same session");
    }
    assert!(audit_events(&app)
        .await
        .iter()
        .any(|e| e == "oidc_backchannel_logout_sent"));
}

/// `tweestap client add ... --backchannel-logout-uri URL`: the client gets logout
/// tokens for its sessions; a URL that is neither https nor loopback is refused.
async fn the_command_line_registers_a_backchannel_logout_uri(backend: Backend) {
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let cb = "https://balie.example/cb";
    let uri = format!("{}/balie", rx.base);
    let (ok, out, err) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Balie",
            "--redirect-uri",
            cb,
            "--backchannel-logout-uri",
            &uri,
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(name))
            .unwrap_or_else(|| panic!("{name} in {out}"))
            .trim()
            .to_owned()
    };
    let balie = Rp {
        id: &*Box::leak(field("client_id:").into_boxed_str()),
        secret: Some(&*Box::leak(field("client_secret:").into_boxed_str())),
        cb,
    };
    // A logout URI that redirects: the token is not carried elsewhere (2.5).
    let (ok, out, err) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "Omleider",
            "--redirect-uri",
            "https://omleider.example/cb",
            "--backchannel-logout-uri",
            &format!("{}/redirect", rx.base),
        ],
    )
    .await;
    assert!(ok, "{out}\n{err}");
    let id: &'static str = Box::leak(
        out.lines()
            .find_map(|l| l.strip_prefix("client_id:"))
            .unwrap()
            .trim()
            .to_owned()
            .into_boxed_str(),
    );
    let omleider = Rp {
        id,
        secret: None,
        cb: "https://omleider.example/cb",
    };
    let c = app.client();
    let back = sign_in_for(&c, &app, &authorize(omleider, "openid", ""), &secret, false).await;
    code_in(&app, omleider, &back);
    sign_out_by_page(&c).await;
    let a = &app;
    eventually(15, "the logout token at /redirect", || {
        let n = rx.posts("/redirect").len();
        async move { n >= 1 }
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(
        rx.posts("/followed").is_empty(),
        "the redirect was followed"
    );
    assert!(
        !audit_events(a)
            .await
            .iter()
            .any(|e| e == "oidc_backchannel_logout_sent"),
        "a redirect counted as delivered"
    );

    let (ok, out, _) = cli(
        &app,
        &[
            "client",
            "add",
            "--name",
            "X",
            "--redirect-uri",
            cb,
            "--backchannel-logout-uri",
            "http://balie.example/bc",
        ],
    )
    .await;
    assert!(
        !ok,
        "a plain-http logout URI off loopback was accepted: {out}"
    );

    let c = app.client();
    let back = sign_in_for(&c, &app, &authorize(balie, "openid", ""), &secret, false).await;
    let claims = id_claims(&app, &tokens(&app, balie, &back).await, balie.id).await;
    sign_out_by_page(&c).await;
    let got = accepted(&rx, "/balie", 1).await;
    let sub = claims["sub"].as_str().unwrap();
    check_logout_token(&app, &got[0], balie.id, sub, &claims["sid"]).await;
    assert!(
        rx.posts("/portal").is_empty(),
        "the portal got no code in this session"
    );
}

/// A receiver that always answers 500: retried with back-off, then given up (the
/// audit log says oidc_backchannel_logout_failed), and not tried again after that.
async fn a_receiver_that_never_takes_it_is_given_up_and_audited(backend: Backend) {
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let (c, _) = signed_in(&app, PORTAL, "openid", &secret).await;
    rx.fail_next(usize::MAX);
    sign_out_by_page(&c).await;
    let a = &app;
    eventually(
        90,
        "oidc_backchannel_logout_failed in the audit log",
        || {
            a.clock.advance(chrono::Duration::minutes(10));
            async move {
                audit_events(a)
                    .await
                    .iter()
                    .any(|e| e == "oidc_backchannel_logout_failed")
            }
        },
    )
    .await;
    let tries = rx.posts("/portal").len();
    assert!(tries >= 3, "given up after {tries} tries");
    assert!(rx.accepted("/portal").is_empty());
    assert!(!audit_events(&app)
        .await
        .iter()
        .any(|e| e == "oidc_backchannel_logout_sent"));
    app.clock.advance(chrono::Duration::days(2));
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert_eq!(
        rx.posts("/portal").len(),
        tries,
        "tried again after giving up"
    );
}

/// A step-up (prompt=login: password and code again) keeps the browser's session
/// (same sid): the portal must not be told it ended, or it would sign the person out
/// right when they proved themselves again.
async fn a_step_up_is_no_logout(backend: Backend) {
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let (c, back) = signed_in(&app, PORTAL, "openid", &secret).await;
    let t = tokens(&app, PORTAL, &back).await;
    let sid = id_claims(&app, &t, "portal").await["sid"].clone();
    let page = super::browser::visit(&c, &authorize(PORTAL, "openid", "&prompt=login")).await;
    let after = super::browser::password(&c, &page, EMAIL, PASSWORD).await;
    let again = super::browser::code(&c, &app, &after, &secret, false).await;
    let (sid2, _) = session_of(&app, &again.url).await;
    assert_eq!(sid2, sid);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    assert!(
        rx.posts("/portal").is_empty(),
        "a step-up sent {:?}",
        rx.posts("/portal")
    );
    assert_eq!(c.get("/api/v1/me").await.status, 200);
}

/// The third-party client asks ES256 ID tokens: its logout token is ES256 too,
/// after the consent that let it in.
async fn logout_tokens_are_signed_with_the_clients_algorithm(backend: Backend) {
    use super::browser::{forms, send, visit};
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let c = app.client();
    let page = visit(&c, &authorize(EXTERN, "openid", "")).await;
    let after = super::browser::password(&c, &page, EMAIL, PASSWORD).await;
    let consent = super::browser::code(&c, &app, &after, &secret, false).await;
    let f = forms(&consent.body)
        .into_iter()
        .find(|f| f.buttons.iter().any(|b| b.1 == "allow"))
        .unwrap_or_else(|| panic!("no consent form: {}\n{}", consent.url, consent.body));
    let yes = f.buttons.iter().position(|b| b.1 == "allow");
    let back = send(&c, &f, &[], yes).await;
    let t = tokens(&app, EXTERN, &back.url).await;
    let claims = id_claims(&app, &t, "extern").await;
    sign_out_by_page(&c).await;
    let got = accepted(&rx, "/extern", 1).await;
    let header = jsonwebtoken::decode_header(&got[0]).unwrap();
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let sub = claims["sub"].as_str().unwrap();
    check_logout_token(&app, &got[0], "extern", sub, &claims["sid"]).await;
    assert!(rx.posts("/portal").is_empty());
}

/// At prompt=login someone else signs in on the same browser: that is no step-up.
/// The first person's session ends (logout token with their sid, tokens dead) and
/// the portal gets the second person with a new sid.
async fn someone_else_signing_in_at_a_step_up_ends_the_first_session(backend: Backend) {
    let rx = Receiver::start().await;
    let app = app_with(backend, Some(rx.base.clone())).await;
    let secret = person(&app).await;
    let bo_secret = person_named(&app, "bo@example.be").await;
    let (c, back) = signed_in(&app, PORTAL, "openid", &secret).await;
    let t = tokens(&app, PORTAL, &back).await;
    let an = id_claims(&app, &t, "portal").await;
    let page = super::browser::visit(&c, &authorize(PORTAL, "openid", "&prompt=login")).await;
    let after = super::browser::password(&c, &page, "bo@example.be", PASSWORD).await;
    let l = super::browser::code(&c, &app, &after, &bo_secret, false).await;
    let bo = id_claims(&app, &tokens(&app, PORTAL, &l.url).await, "portal").await;
    assert_eq!(bo["sub"], account_id(&app, "bo@example.be").await.as_str());
    assert_ne!(bo["sid"], an["sid"], "another person, the same sid");
    let got = accepted(&rx, "/portal", 1).await;
    check_logout_token(
        &app,
        &got[0],
        "portal",
        an["sub"].as_str().unwrap(),
        &an["sid"],
    )
    .await;
    let access = t["access_token"].as_str().unwrap();
    assert_eq!(
        userinfo(&app, access).await.0,
        401,
        "the first person's token lives on"
    );
}
