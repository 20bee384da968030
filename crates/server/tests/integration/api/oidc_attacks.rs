//! Issue 14 attacked: a stranger, a person on someone else's browser and a
//! malicious portal try to get what the provider should refuse. Each test here
//! showed a real weakness when written, and passes once it is mended.
//!
//! The relying party's tools of `oidc_strict` are reused (its clients, requests,
//! token endpoint and JWT checks), and its browser on the pages.

use super::oidc_strict::{
    account_id, active, app_with, authorize, call, cli, code_in, enc, exchange, id_claims, param,
    person, tokens, Auth, Rp, ACR_MFA, EMAIL, EXTERN, PORTAL, SECRET, SPA,
};
use crate::kit::{eventually, Backend, Client, PASSWORD};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// The browser of `oidc_strict` (forms as they stand, redirects followed).
use super::oidc_strict::browser;
use super::oidc_strict::browser::{
    form_with, forms, send, sign_in_for, sign_out_by_page, visit, Landing,
};

crate::on_both_backends!(
    select_account_post_cannot_skip_an_essential_acr,
    select_account_post_cannot_skip_prompt_login,
    max_age_holds_for_a_request_begun_elsewhere,
    a_pushed_request_survives_being_shown_with_another_client_id,
    a_hanging_portal_does_not_hold_up_the_logouts_of_the_others,
    redirect_uris_with_control_characters_are_refused,
    someone_elses_id_token_hint_does_not_sign_out_without_asking,
    a_code_replayed_at_the_same_moment_leaves_no_live_token,
    a_withdrawn_consent_takes_the_codes_not_yet_exchanged_along,
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

/// A pushed request (RFC 9126) presented at the authorization endpoint with
/// another client's id is refused (right), but it is used up all the same: the
/// portal's own browser then gets the error page. Anyone who sees the request_uri
/// (it travels in the browser's address bar) can spoil the sign-in.
///
/// Mend: in `read_request`, look the pushed request up, check its client, and only
/// then take it (or take it with the client id in the `DELETE ... WHERE`).
async fn a_pushed_request_survives_being_shown_with_another_client_id(backend: Backend) {
    let app = app_with(backend, None).await;
    let form = [
        ("response_type", "code"),
        ("redirect_uri", PORTAL.cb),
        ("scope", "openid"),
        ("state", "st-1"),
    ];
    let (s, v) = call(&app, "/oidc/par", &form, Auth::Basic("portal", SECRET)).await;
    assert_eq!(s, 201, "{v}");
    let uri = v["request_uri"].as_str().expect("request_uri").to_owned();

    let c = app.client();
    let wrong = visit(
        &c,
        &format!("/oidc/authorize?client_id=spa&request_uri={}", enc(&uri)),
    )
    .await;
    assert!(
        wrong.status == 400 && !wrong.left(&app.url),
        "another client's request_uri: {} {}",
        wrong.status,
        wrong.url
    );
    let right = visit(
        &c,
        &format!("/oidc/authorize?client_id=portal&request_uri={}", enc(&uri)),
    )
    .await;
    assert!(
        right.is_password_page(),
        "the portal's own pushed request was spoiled by a stranger: {} {}",
        right.status,
        right.url
    );
}

/// A logout receiver: `/portal` never answers (a hanging portal), `/spa` answers
/// 200 and notes when the token came.
async fn hanging_receiver() -> (
    String,
    Arc<Mutex<Vec<Instant>>>,
    tokio::task::JoinHandle<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Arc<Mutex<Vec<Instant>>> = Arc::default();
    let s = seen.clone();
    let router = axum::Router::new()
        .route(
            "/portal",
            axum::routing::post(|| async {
                tokio::time::sleep(Duration::from_secs(120)).await;
                axum::http::StatusCode::OK
            }),
        )
        .route(
            "/spa",
            axum::routing::post(move || {
                let s = s.clone();
                async move {
                    s.lock().expect("lock").push(Instant::now());
                    axum::http::StatusCode::OK
                }
            }),
        );
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    (base, seen, task)
}

/// One browser sign-in reached two portals with back-channel logout; one of them
/// hangs. At sign-out the worker POSTs the tokens one after the other, each
/// waiting up to its 10 s timeout: the other portal hears of the logout only after
/// the hanging one timed out (with ten queued, a batch takes 100 s, beyond the
/// 60 s lease, so a second node claims and sends them again).
///
/// Mend: deliver concurrently (e.g. `futures::stream::iter(..).buffer_unordered`,
/// or a task per client), with the per-request timeout well under the lease.
async fn a_hanging_portal_does_not_hold_up_the_logouts_of_the_others(backend: Backend) {
    let (base, seen, task) = hanging_receiver().await;
    let app = app_with(backend, Some(base)).await;
    let secret = person(&app).await;
    let c = app.client();
    let back = sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;
    let (s, t) = exchange(&app, PORTAL, &code_in(&app, PORTAL, &back)).await;
    assert_eq!(s, 200, "{t}");
    let spa = visit(&c, &authorize(SPA, "openid", "")).await;
    let (s, t) = exchange(&app, SPA, &code_in(&app, SPA, &spa.url)).await;
    assert_eq!(s, 200, "{t}");

    let signed_out = Instant::now();
    sign_out_by_page(&c).await;
    eventually(20, "the logout token at /spa", || {
        let n = seen.lock().expect("lock").len();
        async move { n > 0 }
    })
    .await;
    let after = seen.lock().expect("lock")[0] - signed_out;
    task.abort();
    assert!(
        after < Duration::from_secs(4),
        "the app's logout token waited {after:?} behind the hanging portal's"
    );
}

/// Redirect URIs (and back-channel logout URIs) are checked by parsing them, and
/// the URL parser drops tabs and line breaks: `https://x.example/c<TAB>b` passes,
/// is stored as written, matches a request's `redirect_uri=...%09...` byte for byte,
/// and the answer is a 302 without a Location (the header cannot hold it).
///
/// Mend: `validate_redirect_uri` refuses any control character or space (or a
/// URI whose parsed form differs from what was written).
async fn redirect_uris_with_control_characters_are_refused(backend: Backend) {
    let app = app_with(backend, None).await;
    for bad in ["https://x.example/c\tb", "https://x.example/c\nb"] {
        let (ok, out, err) = cli(
            &app,
            &["client", "add", "--name", "Tab", "--redirect-uri", bad],
        )
        .await;
        assert!(
            !ok,
            "a redirect URI with a control character ({bad:?}) was registered: {out} {err}"
        );
        let (ok, out, err) = cli(
            &app,
            &[
                "client",
                "add",
                "--name",
                "Tab",
                "--redirect-uri",
                "https://x.example/cb",
                "--backchannel-logout-uri",
                bad,
            ],
        )
        .await;
        assert!(
            !ok,
            "a back-channel logout URI with a control character ({bad:?}): {out} {err}"
        );
    }
}

/// RP-initiated logout with an `id_token_hint` ends the browser's session without
/// asking; but the hint is only checked to be an ID token of ours, not one of
/// THIS sign-in. Anyone holding any ID token (their own, from the public app) can
/// send a victim's browser to `/oidc/logout?id_token_hint=<it>` (a top-level
/// navigation carries the Lax cookie) and sign them out of everything, the
/// portals told by back-channel logout (logout CSRF).
///
/// Mend: act without confirmation only when the hint's `sid` (or at least `sub`)
/// is the current session's (RP-Initiated Logout 1.0, 2: a hint that does not
/// match the session is suspect); otherwise show the confirmation page.
async fn someone_elses_id_token_hint_does_not_sign_out_without_asking(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let victim = app.client();
    let back = sign_in_for(
        &victim,
        &app,
        &authorize(PORTAL, "openid", ""),
        &secret,
        false,
    )
    .await;
    tokens(&app, PORTAL, &back).await;

    // The attacker's own account and ID token, through the public app.
    app.add_user("mallory@example.be").await;
    let mallory = app.client();
    let r = mallory.login("mallory@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated", "{:?}", r.body);
    let l = visit(&mallory, &authorize(SPA, "openid", "")).await;
    let t = tokens(&app, SPA, &l.url).await;
    let hint = t["id_token"].as_str().expect("id_token").to_owned();

    let l = visit(&victim, &format!("/oidc/logout?id_token_hint={hint}")).await;
    assert!(l.status < 500, "{} {}", l.status, l.url);
    assert_eq!(
        victim.get("/api/v1/me").await.status,
        200,
        "someone else's ID token signed the victim out without asking"
    );
}

/// The same code at the token endpoint twice at the same moment: one answer has
/// tokens, the other `invalid_grant` (a replay). RFC 6749 4.1.2: the tokens issued
/// with a code used twice are revoked; the replay's revocation runs before the
/// winner has stored its tokens, so they live on.
///
/// Mend: mark the code itself as replayed (e.g. `revoked_at` on `oidc_codes`) and
/// have the winner check it after storing its tokens (or store them in the
/// transaction that claims the code, with the loser's revocation waiting on it).
async fn a_code_replayed_at_the_same_moment_leaves_no_live_token(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;
    let mut survived = 0;
    for _ in 0..10 {
        let l = visit(&c, &authorize(PORTAL, "openid", "")).await;
        let code = code_in(&app, PORTAL, &l.url);
        let (a, b) = tokio::join!(exchange(&app, PORTAL, &code), exchange(&app, PORTAL, &code));
        let ok: Vec<&Value> = [&a, &b]
            .into_iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, t)| t)
            .collect();
        assert!(ok.len() <= 1, "one code, two token responses: {a:?} {b:?}");
        for (s, v) in [&a, &b] {
            assert!(
                *s == 200 || (*s == 400 && v["error"] == "invalid_grant"),
                "{s} {v}"
            );
        }
        for t in ok {
            let access = t["access_token"].as_str().expect("access_token");
            if active(&app, access, Auth::of(PORTAL)).await {
                survived += 1;
            }
        }
    }
    assert_eq!(
        survived, 0,
        "of 10 codes replayed at once, {survived} left a live access token"
    );
}

/// A third-party portal holds a code it has not exchanged yet (codes live 60 s)
/// when the person withdraws its consent in My Profile. The withdrawal revokes
/// the portal's tokens, but the code still buys fresh, live ones.
///
/// Mend: `revoke_oidc_consent` also deletes the person's unused codes of that
/// client (as `end_sid` does for a session), or `exchange_code` checks that a
/// third-party client's consent still stands.
async fn a_withdrawn_consent_takes_the_codes_not_yet_exchanged_along(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    let l = visit(&c, &authorize(EXTERN, "openid", "")).await;
    let after = browser::password(&c, &l, EMAIL, PASSWORD).await;
    let consent = browser::code(&c, &app, &after, &secret, false).await;
    assert!(!consent.left(&app.url), "no consent asked: {}", consent.url);
    let f = form_with(&consent.body, "request");
    let back = send(&c, &f, &[("choice", "allow")], None).await;
    tokens(&app, EXTERN, &back.url).await;

    // Consent given: the next request gets a code at once; the portal keeps it.
    let again = visit(&c, &authorize(EXTERN, "openid", "")).await;
    let code = code_in(&app, EXTERN, &again.url);

    let profile = visit(&c, "/account").await;
    let revoke = forms(&profile.body)
        .into_iter()
        .find(|f| f.action.contains("/consents/extern/"))
        .unwrap_or_else(|| panic!("no way to withdraw the consent:\n{}", profile.body));
    let done = send(&c, &revoke, &[], (!revoke.buttons.is_empty()).then_some(0)).await;
    assert!(done.status < 400, "{} {}", done.status, done.url);

    let (s, t) = exchange(&app, EXTERN, &code).await;
    if s == 200 {
        let access = t["access_token"].as_str().expect("access_token");
        assert!(
            !active(&app, access, Auth::of(PORTAL)).await,
            "a code issued before the consent was withdrawn bought a live token after it"
        );
    } else {
        assert_eq!(
            (s, t["error"].as_str()),
            (400, Some("invalid_grant")),
            "{t}"
        );
    }
}
