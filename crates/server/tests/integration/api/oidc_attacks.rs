//! Issue 14 attacked: a stranger, a person on someone else's browser and a
//! malicious portal try to get what the provider should refuse. Each test here
//! showed a real weakness when written, and passes once it is mended.
//!
//! The relying party's tools of `oidc_strict` are reused (its clients, requests,
//! token endpoint and JWT checks), and its browser on the pages.

use super::oidc_strict::{
    account_id, app_with, authorize, enc, id_claims, param, person, tokens, Rp, ACR_MFA, EMAIL,
    PORTAL, SPA,
};
use crate::kit::{Backend, Client, PASSWORD};
use serde_json::Value;

// The browser of `oidc_strict` (forms as they stand, redirects followed).
#[path = "oidc_strict/browser.rs"]
#[allow(dead_code)]
mod browser;
use browser::{form_with, send, sign_in_for, visit, Landing};

crate::on_both_backends!(
    select_account_post_cannot_skip_an_essential_acr,
    select_account_post_cannot_skip_prompt_login,
    max_age_holds_for_a_request_begun_elsewhere,
);

/// The essential acr `values` as the `claims` request parameter (encoded).
fn essential_acr(values: &[&str]) -> String {
    let claims =
        serde_json::json!({ "id_token": { "acr": { "essential": true, "values": values } } });
    format!("&claims={}", enc(&claims.to_string()))
}

/// The id of the pending request a sign-in page `l` will resume (its `rd`).
fn pending_request(l: &Landing) -> String {
    let rd = param(&l.url, "rd").unwrap_or_else(|| panic!("no rd in {}", l.url));
    assert!(rd.contains("/oidc/authorize/resume"), "{rd}");
    param(&rd, "request").unwrap_or_else(|| panic!("no request in {rd}"))
}

/// Presses "continue" on the account choice of pending request `id`: the page is
/// fetched for its CSRF token (any signed-in browser gets it for any request id).
async fn continue_as_signed_in(c: &Client, id: &str) -> Landing {
    let page = visit(c, &format!("/oidc/select-account?request={id}")).await;
    assert_eq!(page.status, 200, "{} {}", page.url, page.body);
    let f = form_with(&page.body, "request");
    send(c, &f, &[("choice", "continue")], None).await
}

/// The code (if any) the browser was sent back to `rp` with.
fn code_for(rp: Rp, l: &Landing) -> Option<String> {
    if l.url.starts_with(&format!("{}?", rp.cb)) {
        param(&l.url, "code")
    } else {
        None
    }
}

/// A portal demands acr mfa as essential; the browser is signed in with the
/// password only. The sign-in pages ask for more, but POSTing "continue" on the
/// account choice page (`/oidc/select-account`) with the pending request's id
/// skips them: a code whose ID token says acr pwd, against the essential claim.
///
/// Mend: `select_account_submit` must decide as `resume` does (reauth_after, the
/// remembered device, the essential acr), e.g. `r.resume(..)` before
/// `account_chosen`, or refuse a request that did not ask `select_account` at all.
async fn select_account_post_cannot_skip_an_essential_acr(backend: Backend) {
    let app = app_with(backend, None).await;
    app.add_user("bo@example.be").await;
    let c = app.client();
    let r = c.login("bo@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated", "{:?}", r.body);

    let asked = essential_acr(&[ACR_MFA]);
    let l = visit(&c, &authorize(SPA, "openid", &asked)).await;
    assert!(
        l.is_password_page(),
        "essential acr mfa on a password-only session: {} {}",
        l.status,
        l.url
    );
    let id = pending_request(&l);

    let after = continue_as_signed_in(&c, &id).await;
    if let Some(code) = code_for(SPA, &after) {
        let t = tokens(&app, SPA, &after.url).await;
        let claims = id_claims(&app, &t, "spa").await;
        panic!(
            "the account choice issued code {code} with acr {} although mfa was essential",
            claims["acr"]
        );
    }
    assert!(after.status < 500, "{} {}", after.status, after.url);
}

/// The portal asks `prompt=login` (a fresh sign-in, both factors) ten minutes
/// after the person signed in. Someone at the signed-in browser does not sign in:
/// they POST "continue" on the account choice for the pending request and get a
/// code whose auth_time is the old sign-in.
async fn select_account_post_cannot_skip_prompt_login(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    let back = sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;
    let first = id_claims(&app, &tokens(&app, PORTAL, &back).await, "portal").await;

    app.clock.advance(chrono::Duration::minutes(10));
    let l = visit(&c, &authorize(PORTAL, "openid", "&prompt=login")).await;
    assert!(l.is_password_page(), "{} {}", l.status, l.url);
    let id = pending_request(&l);

    let after = continue_as_signed_in(&c, &id).await;
    if code_for(PORTAL, &after).is_some() {
        let t = tokens(&app, PORTAL, &after.url).await;
        let claims = id_claims(&app, &t, "portal").await;
        panic!(
            "prompt=login answered without a sign-in: auth_time {} (the first sign-in's: {})",
            claims["auth_time"], first["auth_time"]
        );
    }
    assert!(after.status < 500, "{} {}", after.status, after.url);
}

/// `max_age=60` asked ten minutes after the sign-in, but the request is begun in
/// a browser without the session (any HTTP client: the pending request is not
/// bound to a browser) and resumed in the signed-in one: `resume` checks
/// `reauth_after`, which was never set, and not `max_age`, so a code comes back
/// with the ten-minute-old auth_time.
///
/// Mend: `AuthRequest::resume` must also hold the session's `auth_time` against
/// `max_age` (or `decide` must set `reauth_after` whenever `max_age` is given and
/// there is no session yet).
async fn max_age_holds_for_a_request_begun_elsewhere(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    let back = sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;
    let first = id_claims(&app, &tokens(&app, PORTAL, &back).await, "portal").await;
    assert_eq!(first["sub"], account_id(&app, EMAIL).await);

    app.clock.advance(chrono::Duration::minutes(10));
    let elsewhere = app.client();
    let l = visit(&elsewhere, &authorize(PORTAL, "openid", "&max_age=60")).await;
    assert!(l.is_password_page(), "{} {}", l.status, l.url);
    let id = pending_request(&l);

    let after = visit(&c, &format!("/oidc/authorize/resume?request={id}")).await;
    if code_for(PORTAL, &after).is_some() {
        let t: Value = tokens(&app, PORTAL, &after.url).await;
        let claims = id_claims(&app, &t, "portal").await;
        let age = app.clock_now() - claims["auth_time"].as_i64().expect("auth_time");
        panic!("max_age=60 answered with a sign-in {age} seconds old: {claims}");
    }
    assert!(after.status < 500, "{} {}", after.status, after.url);
}
