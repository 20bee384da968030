//! Re-authentication means both factors: `prompt=login`, an exceeded `max_age`
//! (also 0) and a requested `acr` the session does not meet ask the password AND the
//! code, also on a remembered browser; acr, amr, auth_time and sid tell the truth.

use super::browser::{code, password, sign_in_for, sign_out_by_page, visit, Landing};
use super::*;
use crate::kit::Client;

crate::on_both_backends!(
    prompt_login_and_max_age_ask_the_code_on_a_remembered_browser,
    a_remembered_browser_alone_is_not_mfa,
    acr_mfa_is_not_granted_to_a_password_only_session,
    essential_acr_that_cannot_be_met_is_an_error,
    a_recovery_code_is_mfa_by_otp,
);

/// The claims essential acr `values` (the `claims` request parameter, encoded).
pub fn essential_acr(values: &[&str]) -> String {
    let claims =
        serde_json::json!({ "id_token": { "acr": { "essential": true, "values": values } } });
    format!("&claims={}", enc(&claims.to_string()))
}

/// A request with `extra` from the signed-in, remembered browser `c`: the sign-in
/// page, the password, then (never skipped) the code page; the ID token's claims.
async fn step_up(c: &Client, app: &TestApp, secret: &str, extra: &str, what: &str) -> Value {
    let page = visit(c, &authorize(PORTAL, "openid", extra)).await;
    assert!(
        page.is_password_page(),
        "{what}: not asked to sign in again: {} {}",
        page.status,
        page.url
    );
    let after: Landing = password(c, &page, EMAIL, PASSWORD).await;
    assert!(
        after.is_code_page(),
        "{what}: the remembered browser skipped the code; landed on {} {}",
        after.status,
        after.url
    );
    let back = code(c, app, &after, secret, false).await;
    let t = tokens(app, PORTAL, &back.url).await;
    let claims = id_claims(app, &t, "portal").await;
    assert_eq!(claims["acr"], ACR_MFA, "{what}: {claims}");
    let amr = amr(&claims);
    for m in ["pwd", "otp", "mfa"] {
        assert!(amr.contains(&m.to_owned()), "{what}: {m} not in {amr:?}");
    }
    assert_consistent(&claims);
    assert_eq!(claims["nonce"], "n-1", "{what}");
    claims
}

/// The case through the pages: "remember this device", then prompt=login,
/// max_age=1 two seconds later, and max_age=0 at once.
async fn prompt_login_and_max_age_ask_the_code_on_a_remembered_browser(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    let back = sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, true).await;
    let first = id_claims(&app, &tokens(&app, PORTAL, &back).await, "portal").await;
    assert_eq!(first["acr"], ACR_MFA, "{first}");
    assert_consistent(&first);
    let sid = first["sid"]
        .as_str()
        .unwrap_or_else(|| panic!("no sid: {first}"))
        .to_owned();
    assert!(!sid.is_empty());
    assert_eq!(first["sub"], account_id(&app, EMAIL).await);

    // Ten minutes on: prompt=login.
    app.clock.advance(chrono::Duration::minutes(10));
    let started = app.clock_now();
    let claims = step_up(&c, &app, &secret, "&prompt=login", "prompt=login").await;
    let at = claims["auth_time"].as_i64().expect("auth_time");
    assert!(
        at >= started,
        "auth_time {at} is before this sign-in ({started})"
    );
    assert!(at > first["auth_time"].as_i64().unwrap());
    assert_eq!(
        claims["sid"],
        sid.as_str(),
        "a step-up keeps the browser's sid"
    );

    // max_age=1, two seconds later.
    app.clock.advance(chrono::Duration::seconds(2));
    let started = app.clock_now();
    let claims = step_up(&c, &app, &secret, "&max_age=1", "max_age=1").await;
    let again = claims["auth_time"].as_i64().unwrap();
    assert!(again >= started, "auth_time {again} < {started}");

    // max_age=0 at once, in the same second as that auth_time.
    let started = app.clock_now();
    let claims = step_up(&c, &app, &secret, "&max_age=0", "max_age=0").await;
    assert!(claims["auth_time"].as_i64().unwrap() >= started);

    // A fresh enough sign-in still passes straight through (max_age=3600).
    let r = visit(&c, &authorize(PORTAL, "openid", "&max_age=3600")).await;
    let claims = id_claims(&app, &tokens(&app, PORTAL, &r.url).await, "portal").await;
    assert_eq!(claims["acr"], ACR_MFA);
    assert!(claims["auth_time"].as_i64().unwrap() >= again, "{claims}");
}

/// Signed out and back in on the remembered browser: only the password is asked,
/// and the ID token says so (acr remembered, amr pwd), never acr mfa. Asking
/// acr_values=mfa of that session asks the code.
async fn a_remembered_browser_alone_is_not_mfa(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, true).await;
    sign_out_by_page(&c).await;

    app.clock.advance(chrono::Duration::hours(1));
    let page = visit(&c, &authorize(PORTAL, "openid", "")).await;
    let back = password(&c, &page, EMAIL, PASSWORD).await;
    assert!(
        back.left(&app.url),
        "the remembered browser was asked more: {} {}",
        back.status,
        back.url
    );
    let claims = id_claims(&app, &tokens(&app, PORTAL, &back.url).await, "portal").await;
    assert_eq!(claims["acr"], ACR_REMEMBERED, "{claims}");
    assert_eq!(amr(&claims), ["pwd"], "{claims}");
    assert_consistent(&claims);

    // acr_values=mfa is above this session: password and code.
    let claims = step_up(
        &c,
        &app,
        &secret,
        &format!("&acr_values={}", enc(ACR_MFA)),
        "acr_values",
    )
    .await;
    assert!(claims["auth_time"].as_i64().is_some());
}

/// An account without a second factor (two-step verification optional) signed in
/// with its password: a request for acr mfa gets no code at once; the way goes
/// through the sign-in or the set-up. Without acr_values the same session gets a
/// code whose ID token says pwd.
async fn acr_mfa_is_not_granted_to_a_password_only_session(backend: Backend) {
    let app = app_with(backend, None).await;
    app.add_user("bo@example.be").await;
    let c = app.client();
    let r = c.login("bo@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated", "{:?}", r.body);

    let plain = visit(&c, &authorize(SPA, "openid", "")).await;
    let claims = id_claims(&app, &tokens(&app, SPA, &plain.url).await, "spa").await;
    assert_eq!(
        (claims["acr"].as_str(), amr(&claims)),
        (Some(ACR_PWD), vec!["pwd".to_owned()])
    );

    let asked = format!("&acr_values={}", enc(ACR_MFA));
    let l = visit(&c, &authorize(SPA, "openid", &asked)).await;
    assert!(
        !l.left(&app.url),
        "acr mfa asked of a password-only session went straight back: {}",
        l.url
    );
    assert!(l.status < 400, "{} {}", l.status, l.url);
    // The sign-in (password again) leads to the set-up of a second factor, not to
    // a code; set up, the request completes with acr mfa.
    assert!(l.is_password_page(), "{} {}", l.status, l.url);
    let choose = password(&c, &l, "bo@example.be", PASSWORD).await;
    assert!(
        !choose.left(&app.url),
        "a code without a second factor: {}",
        choose.url
    );
    assert!(
        !choose.is_password_page(),
        "asked the password twice: {}",
        choose.url
    );
    let (back, detour) = set_up_the_app(&c, &app, choose).await;
    let claims = id_claims(&app, &tokens(&app, SPA, &back).await, "spa").await;
    assert_eq!(claims["acr"], ACR_MFA, "{claims}");
    assert_consistent(&claims);
    assert_eq!(
        detour, None,
        "after the set-up the pages did not lead back to the client; only / did"
    );
}

/// Through the set-up pages from the method choice: the app, its key from the page,
/// its code; onwards (past the recovery codes) until the browser leaves the server.
/// Where the pages left the person (if anywhere) before "/" took them on.
async fn set_up_the_app(c: &Client, app: &TestApp, mut l: Landing) -> (String, Option<String>) {
    let mut detour = None;
    use super::browser::send;
    for _ in 0..6 {
        if l.left(&app.url) {
            return (l.url, detour);
        }
        if l.url.contains("/account?") && detour.is_none() {
            // Dropped on My Profile: does the pending request still go on from /?
            detour = Some(l.url.clone());
            l = visit(c, "/").await;
            continue;
        }
        assert_eq!(l.status, 200, "{}\n{}", l.url, l.body);
        let f = if let Some(at) = l.body.find("id=\"secret-key\">") {
            let rest = &l.body[at + 16..];
            let key: String = rest[..rest.find('<').unwrap()].replace(' ', "");
            app.next_step();
            let f = super::browser::form_with(&l.body, "code");
            let code = app.code(&key);
            l = send(c, &f, &[("code", &code)], None).await;
            continue;
        } else if l.body.contains("name=\"method\"") {
            super::browser::form_with(&l.body, "method")
        } else {
            // Past the set-up (the recovery codes): the link that goes on.
            let Some(at) = l.body.find("\" class=\"button\"") else {
                panic!("stuck on {}:\n{}", l.url, l.body)
            };
            let start = l.body[..at].rfind("href=\"").unwrap() + 6;
            let href = super::browser::unescape(&l.body[start..at]);
            l = visit(c, &href).await;
            continue;
        };
        let button = (!f.buttons.is_empty()).then_some(0);
        l = send(c, &f, &[], button).await;
    }
    panic!(
        "the set-up did not lead back to the client: {}\n{}",
        l.url, l.body
    );
}

/// Essential acr (the claims parameter) with prompt=none on a weaker session, or
/// with a value the provider does not know: error=unmet_authentication_requirements
/// back to the client with state and iss. Voluntary acr_values with prompt=none get
/// a code with the real acr; an mfa session meets essential mfa.
async fn essential_acr_that_cannot_be_met_is_an_error(backend: Backend) {
    let app = app_with(backend, None).await;
    app.add_user("bo@example.be").await;
    let bo = app.client();
    assert_eq!(bo.login("bo@example.be", PASSWORD).await.status, 200);
    let essential = essential_acr(&[ACR_MFA]);
    for (extra, what) in [
        (
            format!("&prompt=none{essential}"),
            "essential mfa, prompt=none",
        ),
        (
            essential_acr(&["urn:example:acr:iris-scan"]),
            "essential unknown acr",
        ),
        (
            format!(
                "&prompt=none{}",
                essential_acr(&["urn:example:acr:iris-scan"])
            ),
            "essential unknown acr, prompt=none",
        ),
    ] {
        let l = visit(&bo, &authorize(SPA, "openid", &extra)).await;
        assert!(l.left(&app.url), "{what}: stayed on {} {}", l.status, l.url);
        assert_eq!(
            error_in(&app, SPA, &l.url),
            "unmet_authentication_requirements",
            "{what}"
        );
    }
    // OIDC Core 5.5.1: "value" (one) as well as "values"; a malformed claims
    // parameter is invalid_request.
    let single =
        serde_json::json!({ "id_token": { "acr": { "essential": true, "value": ACR_MFA } } });
    let extra = format!("&prompt=none&claims={}", enc(&single.to_string()));
    let l = visit(&bo, &authorize(SPA, "openid", &extra)).await;
    assert_eq!(
        error_in(&app, SPA, &l.url),
        "unmet_authentication_requirements"
    );
    let l = visit(&bo, &authorize(SPA, "openid", "&claims=%7Bnot%20json")).await;
    assert_eq!(error_in(&app, SPA, &l.url), "invalid_request");
    // Voluntary: a code, with the truth.
    let l = visit(
        &bo,
        &authorize(
            SPA,
            "openid",
            &format!("&prompt=none&acr_values={}", enc(ACR_MFA)),
        ),
    )
    .await;
    let claims = id_claims(&app, &tokens(&app, SPA, &l.url).await, "spa").await;
    assert_eq!(claims["acr"], ACR_PWD, "{claims}");

    // A full sign-in meets essential mfa, also with prompt=none afterwards.
    let secret = person(&app).await;
    let c = app.client();
    sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;
    let l = visit(
        &c,
        &authorize(PORTAL, "openid", &format!("&prompt=none{essential}")),
    )
    .await;
    let claims = id_claims(&app, &tokens(&app, PORTAL, &l.url).await, "portal").await;
    assert_eq!(claims["acr"], ACR_MFA, "{claims}");
    // Essential pwd or mfa: the strongest met is fine.
    let l = visit(
        &c,
        &authorize(
            PORTAL,
            "openid",
            &format!("&prompt=none{}", essential_acr(&[ACR_PWD, ACR_MFA])),
        ),
    )
    .await;
    let claims = id_claims(&app, &tokens(&app, PORTAL, &l.url).await, "portal").await;
    assert!(
        [ACR_PWD, ACR_MFA].contains(&claims["acr"].as_str().unwrap()),
        "{claims}"
    );
}

/// A sign-in with a recovery code instead of the app's code: acr mfa, amr pwd, otp
/// and mfa (RFC 8176 "otp": a recovery code is a one-time password from a printed
/// list; "kba" is for knowledge questions, which tweestap never asks).
async fn a_recovery_code_is_mfa_by_otp(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let api = app.client();
    assert_eq!(
        api.login(EMAIL, PASSWORD).await.body["state"],
        "second_factor"
    );
    let r = api
        .post(
            "/api/v1/login/second-factor",
            serde_json::json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = api
        .post(
            "/api/v1/me/recovery-codes",
            serde_json::json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let recovery = r.body["recovery_codes"][0]
        .as_str()
        .expect("a code")
        .to_owned();
    app.next_step();

    let c = app.client();
    let page = visit(&c, &authorize(PORTAL, "openid", "")).await;
    let at_code = password(&c, &page, EMAIL, PASSWORD).await;
    assert!(at_code.is_code_page());
    let page = visit(&c, "/login/recovery").await;
    let form = super::browser::form_with(&page.body, "code");
    let back = super::browser::send(&c, &form, &[("code", &recovery)], None).await;
    assert!(
        back.left(&app.url),
        "{} {}\n{}",
        back.status,
        back.url,
        back.body
    );
    let claims = id_claims(&app, &tokens(&app, PORTAL, &back.url).await, "portal").await;
    assert_eq!(claims["acr"], ACR_MFA, "{claims}");
    let mut amr = amr(&claims);
    amr.sort();
    assert_eq!(amr, ["mfa", "otp", "pwd"], "{claims}");
}
