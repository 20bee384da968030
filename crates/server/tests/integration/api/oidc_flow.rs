//! The OpenID Connect code flow driven as a relying party would: reqwest for the
//! HTTP, jsonwebtoken to check the ID token against the published JWKS, and the
//! sign-in through tweestap's own pages (password, then the app's code).

use crate::support::{
    csrf_of, get, location, nth_mail, post_form, query_param, sign_in_through_pages, Backend,
    Client, TestApp, PASSWORD,
};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde_json::Value;
use tweestap_domain::oidc::client::secret_hash;
use tweestap_domain::oidc::flow::s256;

const SECRET: &str = "geheim-van-het-portaal";
const CB: &str = "https://portal.example/cb";
const SPA_CB: &str = "http://127.0.0.1:9/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-extra";

async fn app_with_clients(backend: Backend) -> TestApp {
    let hash = secret_hash(SECRET);
    TestApp::start_configured(backend, move |c| {
        c.oidc.clients = vec![
            tweestap::oidc::ClientConfig {
                id: "portal".into(),
                name: "Portaal".into(),
                redirect_uris: vec![CB.into()],
                secret_hash: Some(hash.clone()),
                ..Default::default()
            },
            tweestap::oidc::ClientConfig {
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
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp"]));
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

    // Missing and wrong verifiers.
    let k = code(&c, &app).await;
    assert_eq!(exchange(&app, &k, None).await.1["error"], "invalid_grant");
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

/// `prompt=login` and `max_age` send a signed-in person through the password and
/// the code again, and the request then completes with the new `auth_time`; a
/// recent enough sign-in passes straight through; `ui_locales` picks the language
/// of the pages on the way.
async fn freshness_and_language_requests_complete(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let c = app.client();
    let first = sign_in_and_return(
        &c,
        &app,
        &location(&get(&c, &authorize_url("portal", CB, &pkce())).await),
        &secret,
    )
    .await;
    let (s, t) = exchange(&app, &query_param(&first, "code").unwrap(), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    let signed_in_at = verify_id_token(&app, t["id_token"].as_str().unwrap(), "portal").await
        ["auth_time"]
        .as_i64()
        .unwrap();

    // Ten minutes later, max_age=3600 is satisfied at once ...
    app.clock.advance(chrono::Duration::minutes(10));
    let r = get(
        &c,
        &authorize_url("portal", CB, &format!("{}&max_age=3600", pkce())),
    )
    .await;
    assert!(location(&r).starts_with(CB), "{}", location(&r));
    // ... max_age=60 is not: the sign-in pages, then a code with a new auth_time.
    let r = get(
        &c,
        &authorize_url(
            "portal",
            CB,
            &format!("{}&max_age=60&ui_locales=en-GB%20nl", pkce()),
        ),
    )
    .await;
    let login = location(&r);
    assert!(login.contains("/login?rd="), "{login}");
    let page = get(&c, &login).await.text().await.unwrap();
    assert!(
        page.contains("<html lang=\"en\""),
        "ui_locales=en-GB: English pages"
    );
    app.next_step();
    let back = sign_in_and_return(&c, &app, &login, &secret).await;
    assert!(back.starts_with(CB), "{back}");
    assert_eq!(query_param(&back, "state").as_deref(), Some("st-1"));
    let (s, t) = exchange(&app, &query_param(&back, "code").unwrap(), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    let claims = verify_id_token(&app, t["id_token"].as_str().unwrap(), "portal").await;
    let renewed = claims["auth_time"].as_i64().unwrap();
    assert!(
        renewed >= signed_in_at + 600,
        "{renewed} after {signed_in_at}"
    );
    assert_eq!(claims["acr"], "urn:tweestap:acr:mfa");

    // prompt=login, a minute after that sign-in: asked again, then completed; the
    // language the browser now has (English) stays, ui_locales=nl switches it back.
    app.clock.advance(chrono::Duration::minutes(1));
    let r = get(
        &c,
        &authorize_url(
            "portal",
            CB,
            &format!("{}&prompt=login&ui_locales=nl", pkce()),
        ),
    )
    .await;
    let login = location(&r);
    assert!(login.contains("prompt=login"), "{login}");
    let page = get(&c, &login).await.text().await.unwrap();
    assert!(
        page.contains("<html lang=\"nl\""),
        "ui_locales=nl: Dutch pages"
    );
    app.next_step();
    let back = sign_in_and_return(&c, &app, &login, &secret).await;
    let (s, t) = exchange(&app, &query_param(&back, "code").unwrap(), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    let again = verify_id_token(&app, t["id_token"].as_str().unwrap(), "portal").await["auth_time"]
        .as_i64()
        .unwrap();
    assert!(again >= renewed + 60, "{again} after {renewed}");

    // A negative or non-numeric max_age is refused back to the portal.
    for bad in ["-1", "soon"] {
        let r = get(
            &c,
            &authorize_url("portal", CB, &format!("{}&max_age={bad}", pkce())),
        )
        .await;
        let to = location(&r);
        assert!(to.starts_with(CB), "{to}");
        assert_eq!(
            query_param(&to, "error").as_deref(),
            Some("invalid_request")
        );
    }
}

/// A logout request without a valid id_token_hint could come from any page: a
/// signed-in browser is asked first; nothing signed in, nothing to ask.
async fn logout_without_a_hint_asks_first(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", crate::support::PASSWORD)
            .await
            .status,
        200
    );
    let cb = urlencoding_cb();
    let r = get(
        &c,
        &format!("/oidc/logout?client_id=portal&post_logout_redirect_uri={cb}&state=bye"),
    )
    .await;
    assert_eq!(r.status().as_u16(), 200);
    let page = r.text().await.expect("page");
    assert!(
        page.contains("Afmelden?") && page.contains("name=\"state\" value=\"bye\""),
        "{page}"
    );
    assert_eq!(
        c.get("/api/v1/me").await.status,
        200,
        "not signed out by a mere link"
    );
    // A forged confirmation (no CSRF token) changes nothing.
    let r = post_form(
        &c,
        "/oidc/logout",
        &[("client_id", "portal"), ("state", "bye")],
    )
    .await;
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(c.get("/api/v1/me").await.status, 200);
    let token = csrf_of(&page);
    let r = post_form(
        &c,
        "/oidc/logout",
        &[
            ("csrf", token.as_str()),
            ("client_id", "portal"),
            ("post_logout_redirect_uri", CB),
            ("state", "bye"),
        ],
    )
    .await;
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(location(&r), format!("{CB}?state=bye"));
    assert_eq!(c.get("/api/v1/me").await.status, 401);
    // Signed out already: straight on.
    let r = get(
        &c,
        &format!("/oidc/logout?client_id=portal&post_logout_redirect_uri={cb}"),
    )
    .await;
    assert_eq!((r.status().as_u16(), location(&r)), (302, CB.to_owned()));
}

fn urlencoding_cb() -> String {
    url::form_urlencoded::byte_serialize(CB.as_bytes()).collect()
}

/// A browser app (the public client, served from its redirect URI's origin) may
/// call the token and userinfo endpoints across origins; any other origin may not,
/// and no origin is ever allowed to send cookies along.
async fn browser_apps_call_token_and_userinfo_from_their_origin(backend: Backend) {
    let app = app_with_clients(backend).await;
    let http = reqwest::Client::new();
    let spa_origin = "http://127.0.0.1:9";
    for path in ["/oidc/token", "/oidc/userinfo"] {
        let pre = http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.url))
            .header("origin", spa_origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
            .await
            .unwrap();
        assert!(pre.status().is_success(), "{path}: {}", pre.status());
        let h = pre.headers();
        assert_eq!(h["access-control-allow-origin"], spa_origin, "{path}");
        let methods = h["access-control-allow-methods"].to_str().unwrap();
        assert!(methods.contains("POST"), "{methods}");
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .to_ascii_lowercase();
        assert!(allowed.contains("authorization"), "{allowed}");
        assert!(h.get("access-control-allow-credentials").is_none());

        for other in ["https://evil.example", "http://127.0.0.1:10", "null"] {
            let pre = http
                .request(reqwest::Method::OPTIONS, format!("{}{path}", app.url))
                .header("origin", other)
                .header("access-control-request-method", "POST")
                .send()
                .await
                .unwrap();
            assert!(
                pre.headers().get("access-control-allow-origin").is_none(),
                "{path} from {other}"
            );
        }
    }
    // The answers themselves carry the header, errors included, so the app can
    // read why it was refused.
    let r = http
        .post(format!("{}/oidc/token", app.url))
        .header("origin", spa_origin)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", "spa"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(r.headers()["access-control-allow-origin"], spa_origin);
    let r = http
        .get(format!("{}/oidc/userinfo", app.url))
        .header("origin", "https://portal.example")
        .bearer_auth("nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://portal.example"
    );
    // The sign-in pages and the authorization endpoint are never opened to others.
    let r = http
        .get(format!("{}/oidc/authorize", app.url))
        .header("origin", spa_origin)
        .send()
        .await
        .unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

/// A client removed with `tweestap client remove` is cut off at once: its access
/// tokens no longer open userinfo and its refresh tokens no longer refresh.
async fn a_removed_client_is_cut_off(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let added = app
        .engine()
        .add_client(
            "Tijdelijk",
            &["https://tijdelijk.example/cb".into()],
            false,
            tweestap_domain::oidc::SigningAlg::Rs256,
        )
        .await
        .unwrap();
    let (id, client_secret) = (added.client.id, added.secret.unwrap());
    let cb = "https://tijdelijk.example/cb";
    let c = app.client();
    let login = location(&get(&c, &authorize_url(&id, cb, "")).await);
    let back = sign_in_and_return(&c, &app, &login, &secret).await;
    assert!(back.starts_with(cb), "{back}");
    let (s, t) = token(
        &app,
        &[
            ("grant_type", "authorization_code"),
            ("code", &query_param(&back, "code").unwrap()),
            ("redirect_uri", cb),
        ],
        Some((&id, &client_secret)),
    )
    .await;
    assert_eq!(s, 200, "{t}");
    let access = t["access_token"].as_str().unwrap();
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(userinfo(&app, access).await.0, 200);

    app.engine().remove_client(&id).await.unwrap();
    assert_eq!(userinfo(&app, access).await.0, 401);
    let (s, e) = token(
        &app,
        &[("grant_type", "refresh_token"), ("refresh_token", rt)],
        Some((&id, &client_secret)),
    )
    .await;
    assert_eq!((s, e["error"].as_str()), (401, Some("invalid_client")));
}

/// A portal's tokens for an@example.be, signed in through the pages.
async fn portal_tokens(
    c: &Client,
    app: &TestApp,
    password: &str,
    secret: &str,
) -> (String, String) {
    let login = location(&get(c, &authorize_url("portal", CB, &pkce())).await);
    let back = sign_in_with(c, app, &login, password, secret).await;
    let (s, t) = exchange(app, &query_param(&back, "code").unwrap(), Some(VERIFIER)).await;
    assert_eq!(s, 200, "{t}");
    (
        t["access_token"].as_str().unwrap().to_owned(),
        t["refresh_token"].as_str().unwrap().to_owned(),
    )
}

/// A new password (after "forgot your password") and a support reset of the
/// second factor end what portals hold: access tokens stop opening userinfo and
/// refresh tokens stop refreshing, at once, not after their 30 days.
async fn password_and_support_resets_cut_portals_off(backend: Backend) {
    let app = app_with_clients(backend).await;
    app.add_user("an@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    app.next_step();
    let ctx = tweestap_domain::audit::RequestContext::default();
    let engine = app.engine();

    let (access, rt) = portal_tokens(&app.client(), &app, PASSWORD, &secret).await;
    assert_eq!(userinfo(&app, &access).await.0, 200);
    engine
        .request_password_reset("an@example.be", &app.url, &ctx)
        .await
        .unwrap();
    let text = nth_mail(&app, "password-reset", 1).await;
    let prefix = format!("{}/password/reset/", app.url);
    let at = text.find(&prefix).expect("a reset link") + prefix.len();
    let new_password = "een gloednieuwe zin om te onthouden";
    engine
        .complete_password_reset(&text[at..at + 43], new_password, &ctx)
        .await
        .unwrap();
    assert_eq!(userinfo(&app, &access).await.0, 401);
    assert_eq!(refresh(&app, &rt).await.1["error"], "invalid_grant");

    app.next_step();
    let (access, rt) = portal_tokens(&app.client(), &app, new_password, &secret).await;
    assert_eq!(userinfo(&app, &access).await.0, 200);
    let account = engine
        .store()
        .account_by_email(&tweestap_domain::account::Email::parse("an@example.be").unwrap())
        .await
        .unwrap()
        .unwrap();
    engine
        .reset_two_factor(
            tweestap_domain::service::Actor::Console,
            account.id,
            "telefoon verloren",
            &app.url,
            &ctx,
        )
        .await
        .unwrap();
    assert_eq!(userinfo(&app, &access).await.0, 401);
    assert_eq!(refresh(&app, &rt).await.1["error"], "invalid_grant");
}

crate::on_both_backends!(
    logout_without_a_hint_asks_first,
    code_flow_with_pkce_through_the_sign_in_pages,
    authorization_requests_are_refused_safely,
    freshness_and_language_requests_complete,
    browser_apps_call_token_and_userinfo_from_their_origin,
    a_removed_client_is_cut_off,
    password_and_support_resets_cut_portals_off,
);
