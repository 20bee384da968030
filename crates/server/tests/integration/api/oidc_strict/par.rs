//! Pushed Authorization Requests (RFC 9126): pushed with client authentication,
//! used once by client_id and request_uri, within their lifetime, by their own
//! client; clients registered with require_par take nothing else.

use super::browser::{sign_in_for, visit, Landing};
use super::*;
use tweestap_domain::oidc::flow::s256;

crate::on_both_backends!(
    a_pushed_request_is_used_once_end_to_end,
    pushed_requests_are_refused_when_wrong,
    require_par_clients_take_only_pushed_requests,
);

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// The authorization parameters for `rp`, as pushed.
fn request(rp: Rp, scope: &'static str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("client_id", rp.id.into()),
        ("redirect_uri", rp.cb.into()),
        ("scope", scope.into()),
        ("state", "st-1".into()),
        ("nonce", "n-1".into()),
        ("code_challenge", s256(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ]
}

async fn push(app: &TestApp, form: &[(&'static str, String)], auth: Auth<'_>) -> (u16, Value) {
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    call(app, "/oidc/par", &form, auth).await
}

/// A pushed request for `rp`: its request_uri.
async fn pushed(app: &TestApp, rp: Rp, scope: &'static str) -> String {
    let (s, v) = push(app, &request(rp, scope), Auth::of(rp)).await;
    assert_eq!(s, 201, "{v}");
    let uri = v["request_uri"]
        .as_str()
        .unwrap_or_else(|| panic!("{v}"))
        .to_owned();
    assert!(uri.starts_with(PREFIX), "{uri}");
    assert!(
        uri.len() - PREFIX.len() >= 20,
        "too little randomness: {uri}"
    );
    assert_eq!(v["expires_in"], 90, "{v}");
    uri
}

fn by_reference(client_id: &str, uri: &str) -> String {
    format!(
        "/oidc/authorize?client_id={client_id}&request_uri={}",
        enc(uri)
    )
}

/// No code: an error page, or an error back to the client.
fn refused(l: &Landing, what: &str) {
    assert!(param(&l.url, "code").is_none(), "{what}: a code: {}", l.url);
    if (300..400).contains(&l.status) {
        assert!(param(&l.url, "error").is_some(), "{what}: {}", l.url);
    } else {
        assert!(l.status >= 400, "{what}: {} {}", l.status, l.url);
    }
}

async fn a_pushed_request_is_used_once_end_to_end(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let uri = pushed(&app, PORTAL, "openid email").await;
    let other = pushed(&app, PORTAL, "openid email").await;
    assert_ne!(uri, other);

    // Not signed in yet: the sign-in pages, then back with the pushed request's state.
    let c = app.client();
    let back = sign_in_for(&c, &app, &by_reference("portal", &uri), &secret, false).await;
    let claims = id_claims(&app, &tokens(&app, PORTAL, &back).await, "portal").await;
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["email"], EMAIL, "the pushed scope");
    assert_eq!(claims["acr"], ACR_MFA);

    // Used: never again, also not by a signed-in browser.
    let l = visit(&c, &by_reference("portal", &uri)).await;
    refused(&l, "a request_uri used twice");
    // The other one, signed in: straight back, with the pushed parameters only
    // (what the query adds besides client_id and request_uri does not count).
    let tampered = format!(
        "{}&state=ander&scope=openid%20profile&redirect_uri={}",
        by_reference("portal", &other),
        enc("https://evil.example/cb")
    );
    let l = visit(&c, &tampered).await;
    let claims = id_claims(&app, &tokens(&app, PORTAL, &l.url).await, "portal").await;
    assert!(
        claims.get("name").is_none(),
        "a scope from the query: {claims}"
    );
    let (s, v) = push(
        &app,
        &request(PORTAL, "openid"),
        Auth::Post("portal", SECRET),
    )
    .await;
    assert_eq!(s, 201, "{v}");
}

async fn pushed_requests_are_refused_when_wrong(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;

    // Only the client that pushed it may use it.
    let uri = pushed(&app, PORTAL, "openid").await;
    refused(
        &visit(&c, &by_reference("extern", &uri)).await,
        "another client's request_uri",
    );
    // Expired after its 90 seconds.
    let uri = pushed(&app, PORTAL, "openid").await;
    app.clock.advance(chrono::Duration::seconds(91));
    refused(
        &visit(&c, &by_reference("portal", &uri)).await,
        "an expired request_uri",
    );
    // Made up.
    refused(
        &visit(
            &c,
            &by_reference("portal", &format!("{PREFIX}verzonnen-verzonnen-verzonnen")),
        )
        .await,
        "an unknown request_uri",
    );

    // Pushing: client authentication, a valid request, no request_uri inside.
    let (s, e) = push(&app, &request(PORTAL, "openid"), Auth::Nothing).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (401, Some("invalid_client")),
        "{e}"
    );
    let (s, e) = push(
        &app,
        &request(PORTAL, "openid"),
        Auth::Basic("portal", "fout"),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (401, Some("invalid_client")),
        "{e}"
    );
    let mut with_uri = request(PORTAL, "openid");
    with_uri.push(("request_uri", format!("{PREFIX}abc")));
    let (s, e) = push(&app, &with_uri, Auth::of(PORTAL)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_request")),
        "{e}"
    );
    let mut bad_redirect = request(PORTAL, "openid");
    bad_redirect[2].1 = "https://evil.example/cb".into();
    let (s, e) = push(&app, &bad_redirect, Auth::of(PORTAL)).await;
    assert_eq!(s, 400, "an unregistered redirect_uri pushed: {e}");
    let mut no_openid = request(PORTAL, "openid");
    no_openid[3].1 = "email".into();
    let (s, e) = push(&app, &no_openid, Auth::of(PORTAL)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (400, Some("invalid_scope")),
        "{e}"
    );
    // Another client's parameters under this client's authentication.
    let (s, e) = push(&app, &request(EXTERN, "openid"), Auth::of(PORTAL)).await;
    assert!(
        s == 400 || s == 401,
        "pushed for another client_id: {s} {e}"
    );
}

async fn require_par_clients_take_only_pushed_requests(backend: Backend) {
    let app = app_with(backend, None).await;
    let secret = person(&app).await;
    let c = app.client();
    // Not pushed: invalid_request back to the client, signed in or not.
    let l = visit(&c, &authorize(STRICT, "openid", "")).await;
    assert_eq!(error_in(&app, STRICT, &l.url), "invalid_request");
    sign_in_for(&c, &app, &authorize(PORTAL, "openid", ""), &secret, false).await;
    let l = visit(&c, &authorize(STRICT, "openid", "")).await;
    assert_eq!(error_in(&app, STRICT, &l.url), "invalid_request");
    // Pushed: a code, and tokens.
    let uri = pushed(&app, STRICT, "openid").await;
    let l = visit(&c, &by_reference("strikt", &uri)).await;
    let claims = id_claims(&app, &tokens(&app, STRICT, &l.url).await, "strikt").await;
    assert_eq!(claims["nonce"], "n-1");
}
