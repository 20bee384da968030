//! The OpenID Connect code flow driven as a relying party would: reqwest for the
//! HTTP, jsonwebtoken to check the ID token against the published JWKS, and the
//! sign-in through tweestap's own pages (password, then the app's code).

use crate::kit::{
    csrf_of, get, location, nth_mail, post_form, query_param, sign_in_through_pages, Backend,
    Client, TestApp, PASSWORD,
};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tweestap_domain::oidc::client::secret_hash;
use tweestap_domain::oidc::flow::s256;

mod sessions;

const SECRET: &str = "geheim-van-het-portaal";
const CB: &str = "https://portal.example/cb";
const SPA_CB: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra";

async fn app_with_clients(backend: Backend) -> TestApp {
    let hash = secret_hash(SECRET);
    TestApp::start_configured(backend, move |c| {
        c.oidc.clients = vec![
            tweestap::config::oidc::ClientConfig {
                id: "portal".into(),
                name: "Portaal".into(),
                redirect_uris: vec![CB.into()],
                secret_hash: Some(hash.clone()),
                ..Default::default()
            },
            tweestap::config::oidc::ClientConfig {
                id: "spa".into(),
                name: "App".into(),
                redirect_uris: vec![SPA_CB.into()],
                public: true,
                ..Default::default()
            },
        ];
    })
    .await
}

fn authorize_url(client: &str, redirect: &str, extra: &str) -> String {
    let r: String = url::form_urlencoded::byte_serialize(redirect.as_bytes()).collect();
    format!(
        "/oidc/authorize?response_type=code&client_id={client}&redirect_uri={r}&scope=openid%20email%20offline_access&state=st-1&nonce=n-1{extra}"
    )
}

fn pkce() -> String {
    format!(
        "&code_challenge={}&code_challenge_method=S256",
        s256(VERIFIER)
    )
}

/// A code for an already signed-in browser.
async fn code(c: &Client, app: &TestApp) -> String {
    let r = get(c, &authorize_url("portal", CB, &pkce())).await;
    let to = location(&r);
    assert_eq!(r.status().as_u16(), 302, "{to}");
    assert!(to.starts_with(CB), "{to}");
    assert_eq!(query_param(&to, "state").as_deref(), Some("st-1"));
    assert_eq!(query_param(&to, "iss").as_deref(), Some(app.url.as_str()));
    query_param(&to, "code").expect("code")
}

async fn token(app: &TestApp, form: &[(&str, &str)], basic: Option<(&str, &str)>) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{}/oidc/token", app.url))
        .form(form);
    if let Some((id, secret)) = basic {
        r = r.basic_auth(id, Some(secret));
    }
    let r = r.send().await.expect("token");
    let status = r.status().as_u16();
    if status == 200 {
        assert_eq!(r.headers()["cache-control"], "no-store");
    }
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn exchange(app: &TestApp, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", CB),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token(app, &form, Some(("portal", SECRET))).await
}

async fn refresh(app: &TestApp, rt: &str) -> (u16, Value) {
    token(
        app,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt),
            ("client_id", "portal"),
            ("client_secret", SECRET),
        ],
        None,
    )
    .await
}

async fn verify_id_token(app: &TestApp, token: &str, aud: &str) -> Value {
    let jwks: Value = reqwest::get(format!("{}/oidc/jwks", app.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = decode_header(token).unwrap().kid.expect("kid");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("published key");
    assert_eq!(jwk["alg"], "RS256");
    let key =
        DecodingKey::from_rsa_components(jwk["n"].as_str().unwrap(), jwk["e"].as_str().unwrap())
            .unwrap();
    let mut v = Validation::new(Algorithm::RS256);
    // The test clock is not the wall clock.
    v.validate_exp = false;
    v.set_audience(&[aud]);
    v.set_issuer(&[app.url.as_str()]);
    decode::<Value>(token, &key, &v)
        .expect("valid ID token")
        .claims
}

async fn userinfo(app: &TestApp, access: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/oidc/userinfo", app.url))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn code_flow_with_pkce_through_the_sign_in_pages(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let c = app.client();

    // Not signed in: to the sign-in page, which comes back to the request.
    let r = get(
        &c,
        &authorize_url(
            "portal",
            CB,
            &format!("{}&login_hint=an%40example.be", pkce()),
        ),
    )
    .await;
    assert_eq!(r.status().as_u16(), 302);
    let login = location(&r);
    assert!(
        login.starts_with(&format!("{}/login?rd=", app.url)),
        "{login}"
    );
    let page = get(&c, &login).await.text().await.unwrap();
    assert!(
        page.contains("value=\"an@example.be\""),
        "login_hint prefills"
    );
    sign_in_through_pages(&c, &app, &login, ("an@example.be", PASSWORD), &secret).await;
    let r = get(&c, "/").await;
    let resume = location(&r);
    assert!(
        resume.contains("/oidc/authorize/resume?request="),
        "{resume}"
    );
    let r = get(&c, &resume).await;
    let back = location(&r);
    assert!(back.starts_with(&format!("{CB}?code=")), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-1"));
    let first = query_param(&back, "code").unwrap();

    // The code, with the verifier, for tokens.
    let (s, t) = exchange(&app, &first, Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    let claims = verify_id_token(&app, t["id_token"].as_str().unwrap(), "portal").await;
    let account = app
        .engine()
        .store()
        .account_by_email(&tweestap_domain::account::Email::parse("an@example.be").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claims["sub"], account.id.0.to_string());
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert!(claims["sid"].as_str().is_some_and(|s| s.len() == 32));
    assert_eq!(claims["acr"], "urn:tweestap:acr:mfa");
    assert_eq!(claims["nonce"], "n-1");
    assert_eq!(claims["email"], "an@example.be");
    assert_eq!(claims["email_verified"], true);
    assert!(claims["auth_time"].is_i64());
    let access = t["access_token"].as_str().unwrap().to_owned();
    let rt1 = t["refresh_token"].as_str().unwrap().to_owned();
    let (s, ui) = userinfo(&app, &access).await;
    assert_eq!(s, 200);
    assert_eq!(ui["sub"], account.id.0.to_string());
    assert_eq!(ui["email"], "an@example.be");
    assert_eq!(userinfo(&app, "nonsense").await.0, 401);

    // A reused code is refused and what it issued dies.
    let (s, e) = exchange(&app, &first, Some(VERIFIER)).await;
    assert_eq!((s, e["error"].as_str()), (400, Some("invalid_grant")));
    assert_eq!(refresh(&app, &rt1).await.1["error"], "invalid_grant");
    assert_eq!(userinfo(&app, &access).await.0, 401);

    // Missing and wrong verifiers (a missing parameter is a malformed request).
    let k = code(&c, &app).await;
    assert_eq!(exchange(&app, &k, None).await.1["error"], "invalid_request");
    let k = code(&c, &app).await;
    let wrong = "x".repeat(50);
    assert_eq!(
        exchange(&app, &k, Some(&wrong)).await.1["error"],
        "invalid_grant"
    );

    // A wrong secret.
    let k = code(&c, &app).await;
    let (s, e) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &k),
            ("redirect_uri", CB),
            ("code_verifier", VERIFIER),
        ],
        Some(("portal", "wrong")),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));

    // An expired code (60 seconds).
    let k = code(&c, &app).await;
    app.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(
        exchange(&app, &k, Some(VERIFIER)).await.1["error"],
        "invalid_grant"
    );

    // Refresh rotation and reuse detection.
    let k = code(&c, &app).await;
    let (s, t) = exchange(&app, &k, Some(VERIFIER)).await;
    assert_eq!(s, 200);
    let r1 = t["refresh_token"].as_str().unwrap().to_owned();
    let (s, t2) = refresh(&app, &r1).await;
    assert_eq!(s, 200, "{t2}");
    let r2 = t2["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2);
    verify_id_token(&app, t2["id_token"].as_str().unwrap(), "portal").await;
    assert_eq!(refresh(&app, &r1).await.1["error"], "invalid_grant");
    // The reuse revoked the family: the newest refresh token is dead as well.
    assert_eq!(refresh(&app, &r2).await.1["error"], "invalid_grant");

    // RP-initiated logout back to a registered address, with the state.
    let id_token = t["id_token"].as_str().unwrap();
    let bad = get(&c, &format!("/oidc/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F")).await;
    assert_eq!(bad.status().as_u16(), 400);
    assert!(location(&bad).is_empty());
    let r = get(&c, &format!("/oidc/logout?id_token_hint={id_token}&post_logout_redirect_uri=https%3A%2F%2Fportal.example%2Fcb&state=bye")).await;
    assert_eq!(location(&r), format!("{CB}?state=bye"));
    assert_eq!(get(&c, "/auth/request").await.status().as_u16(), 401);
    // Signed out: a new request goes to the sign-in page again.
    let r = get(&c, &authorize_url("portal", CB, &pkce())).await;
    assert!(location(&r).contains("/login?rd="));
}

async fn authorization_requests_are_refused_safely(backend: Backend) {
    let app = app_with_clients(backend).await;
    let c = app.client();
    // Unknown client or unregistered redirect URI: a page, never a redirect.
    for url in [
        authorize_url("portal", "https://evil.example/cb", &pkce()),
        authorize_url("nobody", CB, &pkce()),
        authorize_url("portal", &format!("{CB}/"), &pkce()),
    ] {
        let r = get(&c, &url).await;
        assert_eq!(r.status().as_u16(), 400, "{url}");
        assert!(location(&r).is_empty(), "{url}");
    }
    // After the redirect URI is known, errors go back to it with the state.
    let cases = [
        (authorize_url("spa", SPA_CB, ""), "invalid_request"),
        (
            authorize_url("spa", SPA_CB, "&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghij123&code_challenge_method=plain"),
            "invalid_request",
        ),
        (authorize_url("portal", CB, "&prompt=none"), "login_required"),
        (
            authorize_url("portal", CB, "").replace("response_type=code", "response_type=token"),
            "unsupported_response_type",
        ),
        (
            authorize_url("portal", CB, "").replace("scope=openid%20", "scope="),
            "invalid_scope",
        ),
    ];
    for (url, error) in cases {
        let r = get(&c, &url).await;
        let to = location(&r);
        assert_eq!(r.status().as_u16(), 302, "{url}");
        assert_eq!(query_param(&to, "error").as_deref(), Some(error), "{url}");
        assert_eq!(query_param(&to, "state").as_deref(), Some("st-1"));
        assert_eq!(query_param(&to, "iss").as_deref(), Some(app.url.as_str()));
    }

    // A public client: PKCE and no secret (token_endpoint_auth_method none).
    app.add_user("bo@example.be").await;
    let r = get(&c, &authorize_url("spa", SPA_CB, &pkce())).await;
    let login = location(&r);
    let page = get(&c, &login).await.text().await.unwrap();
    let r = post_form(
        &c,
        "/login",
        &[
            ("csrf", &csrf_of(&page)),
            ("email", "bo@example.be"),
            ("password", PASSWORD),
        ],
    )
    .await;
    assert_eq!(location(&r), "/");
    let resume = location(&get(&c, "/").await);
    let back = location(&get(&c, &resume).await);
    let k = query_param(&back, "code").expect("code");
    let (s, t) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &k),
            ("redirect_uri", SPA_CB),
            ("client_id", "spa"),
            ("code_verifier", VERIFIER),
        ],
        None,
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let claims = verify_id_token(&app, t["id_token"].as_str().unwrap(), "spa").await;
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["acr"], "urn:tweestap:acr:pwd");

    // prompt=login asks for the password again even when signed in.
    let r = get(
        &c,
        &authorize_url("spa", SPA_CB, &format!("{}&prompt=login", pkce())),
    )
    .await;
    let login = location(&r);
    assert!(login.contains("prompt=login"), "{login}");
    assert_eq!(get(&c, &login).await.status().as_u16(), 200);

    // The audit log saw it all.
    let events: Vec<String> = app
        .engine()
        .audit_log(100, None)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert!(events.iter().any(|e| e == "oidc_code_issued"));
    assert!(events.iter().any(|e| e == "oidc_tokens_issued"));
}

/// Signs in through the pages from `login` (a sign-in URL carrying the pending
/// request) and follows the way back; the authorization response's URL.
async fn sign_in_and_return(c: &Client, app: &TestApp, login: &str, secret: &str) -> String {
    sign_in_with(c, app, login, PASSWORD, secret).await
}

async fn sign_in_with(
    c: &Client,
    app: &TestApp,
    login: &str,
    password: &str,
    secret: &str,
) -> String {
    sign_in_through_pages(c, app, login, ("an@example.be", password), secret).await;
    let resume = location(&get(c, "/").await);
    assert!(resume.contains("/oidc/authorize/resume?"), "{resume}");
    location(&get(c, &resume).await)
}

crate::on_both_backends!(
    code_flow_with_pkce_through_the_sign_in_pages,
    authorization_requests_are_refused_safely,
);
