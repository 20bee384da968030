//! Issue 14, proved by an independent and demanding relying party: re-authentication
//! that cannot be skipped (acr, amr, auth_time, sid), claims released by scope,
//! prompts and consent, introspection (RFC 7662), revocation (RFC 7009), back-channel
//! logout (OIDC Back-Channel Logout 1.0) to a receiver on loopback, client_credentials
//! for services, Pushed Authorization Requests (RFC 9126), RFC 8414/9207 metadata
//! and disabled accounts. Everything goes over HTTP (pages, endpoints) or through the
//! `tweestap` binary; tokens are checked against the published JWKS with
//! `jsonwebtoken`, never with the server's own code.
//!
//! This module holds the relying party's tools: the clients, the requests, the
//! token endpoint, JWT checks and the command line; `browser` is a browser on the
//! pages (forms as they stand, redirects), `receiver` the back-channel receiver.

use crate::kit::commands::{output, tweestap_on};
use crate::kit::{Backend, TestApp, PASSWORD};
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Header, Validation};
use serde_json::Value;
use tweestap_domain::oidc::client::secret_hash;
use tweestap_domain::oidc::flow::s256;

mod backchannel;
pub mod browser;
mod claims;
mod consent;
mod disable;
mod discovery;
mod introspection;
mod par;
mod reauth;
pub mod receiver;
mod service;

pub const EMAIL: &str = "an@example.be";
pub const SECRET: &str = "geheim-van-het-strenge-portaal";
pub const SERVICE_SECRET: &str = "geheim-van-de-zaken-robot";
pub const CB: &str = "https://portal.example/cb";
pub const SPA_CB: &str = "http://127.0.0.1:9/cb";
pub const EXT_CB: &str = "https://extern.example/cb";
pub const STRICT_CB: &str = "https://strikt.example/cb";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk-streng";
pub const ACR_PWD: &str = "urn:tweestap:acr:pwd";
pub const ACR_REMEMBERED: &str = "urn:tweestap:acr:remembered";
pub const ACR_MFA: &str = "urn:tweestap:acr:mfa";
pub const API_AUDIENCE: &str = "https://api.tweestad.example";
pub const BACKCHANNEL_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// A relying party registered in the configuration.
#[derive(Clone, Copy)]
pub struct Rp {
    pub id: &'static str,
    pub secret: Option<&'static str>,
    pub cb: &'static str,
}

/// First party, confidential (RS256); back-channel logout when the app has a receiver.
pub const PORTAL: Rp = Rp {
    id: "portal",
    secret: Some(SECRET),
    cb: CB,
};
/// A browser app: public, PKCE.
pub const SPA: Rp = Rp {
    id: "spa",
    secret: None,
    cb: SPA_CB,
};
/// Third party, confidential, ES256: people consent first.
pub const EXTERN: Rp = Rp {
    id: "extern",
    secret: Some(SECRET),
    cb: EXT_CB,
};
/// Only Pushed Authorization Requests.
pub const STRICT: Rp = Rp {
    id: "strikt",
    secret: Some(SECRET),
    cb: STRICT_CB,
};

/// Where the clients' logout tokens go: `portal` to `<base>/portal`, `spa` to
/// `<base>/spa`, `extern` to `<base>/extern` (a receiver's base URL).
pub async fn app_with(backend: Backend, backchannel: Option<String>) -> TestApp {
    let hash = secret_hash(SECRET);
    let service_hash = secret_hash(SERVICE_SECRET);
    TestApp::start_configured(backend, move |c| {
        use tweestap::config::oidc::ClientConfig;
        let bc = |path: &str| backchannel.as_ref().map(|b| format!("{b}/{path}"));
        c.oidc.clients = vec![
            ClientConfig {
                id: PORTAL.id.into(),
                name: "Portaal".into(),
                redirect_uris: vec![CB.into()],
                secret_hash: Some(hash.clone()),
                backchannel_logout_uri: bc("portal"),
                ..Default::default()
            },
            ClientConfig {
                id: SPA.id.into(),
                name: "App".into(),
                redirect_uris: vec![SPA_CB.into()],
                public: true,
                backchannel_logout_uri: bc("spa"),
                ..Default::default()
            },
            ClientConfig {
                id: EXTERN.id.into(),
                name: "Extern Loket".into(),
                redirect_uris: vec![EXT_CB.into()],
                secret_hash: Some(hash.clone()),
                id_token_signed_response_alg: Some("ES256".into()),
                third_party: true,
                backchannel_logout_uri: bc("extern"),
                ..Default::default()
            },
            ClientConfig {
                id: STRICT.id.into(),
                name: "Strikt Portaal".into(),
                redirect_uris: vec![STRICT_CB.into()],
                secret_hash: Some(hash.clone()),
                require_par: true,
                ..Default::default()
            },
            ClientConfig {
                id: "zaken-robot".into(),
                name: "Zaken-robot".into(),
                secret_hash: Some(service_hash.clone()),
                service: true,
                scopes: vec!["zaken:lezen".into(), "zaken:schrijven".into()],
                audience: vec![API_AUDIENCE.into()],
                ..Default::default()
            },
            ClientConfig {
                id: "status-robot".into(),
                name: "Status-robot".into(),
                secret_hash: Some(service_hash.clone()),
                service: true,
                scopes: vec!["status".into()],
                ..Default::default()
            },
        ];
    })
    .await
}

/// An account with the authenticator app set up (through the API, in another
/// browser); the app's secret. The clock is on the next step afterwards.
pub async fn person(app: &TestApp) -> String {
    person_named(app, EMAIL).await
}

pub async fn person_named(app: &TestApp, email: &str) -> String {
    app.add_user(email).await;
    let (_, secret) = app.client().enroll(app, email).await;
    app.next_step();
    secret
}

pub fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An authorization request (a path of the server) with state st-1, nonce n-1 and
/// PKCE (S256 of [`VERIFIER`]); `extra` is appended as it stands (`&k=v...`).
pub fn authorize(rp: Rp, scope: &str, extra: &str) -> String {
    format!(
        "/oidc/authorize?response_type=code&client_id={}&redirect_uri={}&scope={}&state=st-1&nonce=n-1&code_challenge={}&code_challenge_method=S256{extra}",
        rp.id,
        enc(rp.cb),
        enc(scope),
        s256(VERIFIER)
    )
}

/// One query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    crate::kit::query_param(url, name)
}

/// The code of an authorization response to `rp`, after checking the state and
/// the issuer (RFC 9207) and that it is not an error.
pub fn code_in(app: &TestApp, rp: Rp, url: &str) -> String {
    assert!(
        url.starts_with(&format!("{}?", rp.cb)),
        "not back at {}: {url}",
        rp.id
    );
    assert_eq!(param(url, "error"), None, "{url}");
    assert_eq!(param(url, "state").as_deref(), Some("st-1"), "{url}");
    assert_eq!(
        param(url, "iss").as_deref(),
        Some(app.url.as_str()),
        "{url}"
    );
    param(url, "code").unwrap_or_else(|| panic!("no code in {url}"))
}

/// The error of an authorization response to `rp` (with state and iss checked).
pub fn error_in(app: &TestApp, rp: Rp, url: &str) -> String {
    assert!(
        url.starts_with(&format!("{}?", rp.cb)),
        "not back at {}: {url}",
        rp.id
    );
    assert_eq!(param(url, "code"), None, "an error with a code: {url}");
    assert_eq!(param(url, "state").as_deref(), Some("st-1"), "{url}");
    assert_eq!(
        param(url, "iss").as_deref(),
        Some(app.url.as_str()),
        "{url}"
    );
    param(url, "error").unwrap_or_else(|| panic!("no error in {url}"))
}

/// How a client authenticates at the token, introspection and revocation endpoints.
#[derive(Clone, Copy)]
pub enum Auth<'a> {
    Basic(&'a str, &'a str),
    Post(&'a str, &'a str),
    /// A public client: its client_id only.
    Id(&'a str),
    Nothing,
}

impl Auth<'static> {
    pub fn of(rp: Rp) -> Self {
        match rp.secret {
            Some(s) => Auth::Basic(rp.id, s),
            None => Auth::Id(rp.id),
        }
    }
}

/// POSTs a form to an endpoint of the server with a client's authentication: the
/// status and the JSON (Null when there is none).
pub async fn call(
    app: &TestApp,
    path: &str,
    form: &[(&str, &str)],
    auth: Auth<'_>,
) -> (u16, Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut r = reqwest::Client::new().post(format!("{}{path}", app.url));
    match auth {
        Auth::Basic(id, secret) => r = r.basic_auth(id, Some(secret)),
        Auth::Post(id, secret) => form.extend([("client_id", id), ("client_secret", secret)]),
        Auth::Id(id) => form.push(("client_id", id)),
        Auth::Nothing => {}
    }
    let r = r.form(&form).send().await.expect("request");
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The token endpoint for a code of `rp` (with the PKCE verifier).
pub async fn exchange(app: &TestApp, rp: Rp, code: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", rp.cb),
        ("code_verifier", VERIFIER),
    ];
    call(app, "/oidc/token", &form, Auth::of(rp)).await
}

/// The tokens for the authorization response `url` to `rp`.
pub async fn tokens(app: &TestApp, rp: Rp, url: &str) -> Value {
    let code = code_in(app, rp, url);
    let (s, t) = exchange(app, rp, &code).await;
    assert_eq!(s, 200, "token endpoint: {t}");
    assert_eq!(t["token_type"], "Bearer", "{t}");
    t
}

pub async fn refresh(app: &TestApp, rp: Rp, rt: &str) -> (u16, Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
    call(app, "/oidc/token", &form, Auth::of(rp)).await
}

pub async fn introspect(app: &TestApp, token: &str, auth: Auth<'_>) -> (u16, Value) {
    call(app, "/oidc/introspect", &[("token", token)], auth).await
}

/// Whether `token` is active, asked by the portal; an inactive answer must be
/// exactly `{"active":false}` (RFC 7662 2.2: nothing else about a dead token).
pub async fn active(app: &TestApp, token: &str, auth: Auth<'_>) -> bool {
    let (s, v) = introspect(app, token, auth).await;
    assert_eq!(s, 200, "introspection: {v}");
    match v["active"].as_bool() {
        Some(true) => true,
        Some(false) => {
            assert_eq!(
                v,
                serde_json::json!({ "active": false }),
                "inactive says more"
            );
            false
        }
        None => panic!("no active member: {v}"),
    }
}

pub async fn revoke(app: &TestApp, form: &[(&str, &str)], auth: Auth<'_>) -> (u16, Value) {
    call(app, "/oidc/revoke", form, auth).await
}

pub async fn userinfo(app: &TestApp, access: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(format!("{}/oidc/userinfo", app.url))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo");
    let s = r.status().as_u16();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// The published JWKS.
pub async fn jwks(app: &TestApp) -> Vec<Value> {
    let v: Value = reqwest::get(format!("{}/oidc/jwks", app.url))
        .await
        .expect("jwks")
        .json()
        .await
        .expect("jwks json");
    v["keys"].as_array().expect("keys").clone()
}

/// A JWS checked as a relying party does: the key named by the header's kid from
/// the published JWKS (RS256 or ES256 as the key says), the issuer and audience.
/// Expiry is not checked here (the app's clock is not the wall clock).
pub async fn verify_jwt(app: &TestApp, token: &str, aud: &str) -> (Header, Value) {
    let header = decode_header(token).expect("a JWS header");
    let kid = header.kid.clone().expect("kid in the header");
    let keys = jwks(app).await;
    let jwk = keys
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} is not in the JWKS"));
    let s = |k: &str| jwk[k].as_str().expect("jwk member");
    let (key, alg) = match s("kty") {
        "RSA" => (
            DecodingKey::from_rsa_components(s("n"), s("e")).expect("rsa"),
            Algorithm::RS256,
        ),
        "EC" => (
            DecodingKey::from_ec_components(s("x"), s("y")).expect("ec"),
            Algorithm::ES256,
        ),
        other => panic!("kty {other}"),
    };
    assert_eq!(header.alg, alg, "the header's alg is the key's");
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.required_spec_claims.clear();
    v.set_audience(&[aud]);
    v.set_issuer(&[app.url.as_str()]);
    let claims = decode::<Value>(token, &key, &v)
        .unwrap_or_else(|e| panic!("the JWS does not verify: {e}"))
        .claims;
    (header, claims)
}

/// The ID token of a token response, verified, for `aud`.
pub async fn id_claims(app: &TestApp, t: &Value, aud: &str) -> Value {
    let id_token = t["id_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no id_token: {t}"));
    verify_jwt(app, id_token, aud).await.1
}

/// `amr` as strings.
pub fn amr(claims: &Value) -> Vec<String> {
    claims["amr"]
        .as_array()
        .unwrap_or_else(|| panic!("no amr: {claims}"))
        .iter()
        .map(|m| m.as_str().expect("amr string").to_owned())
        .collect()
}

/// acr and amr tell one story: acr mfa iff amr has "mfa"; an mfa sign-in names its
/// second factor; pwd and remembered are the password alone.
pub fn assert_consistent(claims: &Value) {
    let amr = amr(claims);
    let acr = claims["acr"]
        .as_str()
        .unwrap_or_else(|| panic!("no acr: {claims}"));
    assert!(amr.contains(&"pwd".to_owned()), "{claims}");
    match acr {
        ACR_MFA => {
            assert!(
                amr.contains(&"mfa".to_owned()),
                "acr mfa without amr mfa: {claims}"
            );
            assert!(
                ["otp", "sms", "kba"]
                    .iter()
                    .any(|f| amr.contains(&(*f).to_owned())),
                "{claims}"
            );
        }
        ACR_PWD | ACR_REMEMBERED => assert_eq!(amr, ["pwd"], "{claims}"),
        other => panic!("acr {other}"),
    }
}

/// `aud` of a JWT or an introspection answer as a list (a string is one audience).
pub fn audiences(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| x.as_str().expect("aud string").to_owned())
            .collect(),
        other => panic!("aud {other}"),
    }
}

/// The account's id (the `sub` the provider should use).
pub async fn account_id(app: &TestApp, email: &str) -> String {
    let account = app
        .engine()
        .store()
        .account_by_email(&tweestap_domain::account::Email::parse(email).expect("email"))
        .await
        .expect("store")
        .expect("the account");
    account.id.0.to_string()
}

/// The audit log's event names, newest first.
pub async fn audit_events(app: &TestApp) -> Vec<String> {
    app.engine()
        .audit_log(500, None)
        .await
        .expect("audit log")
        .into_iter()
        .map(|r| r.event)
        .collect()
}

/// Runs the `tweestap` binary on the app's data directory and database.
pub async fn cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let mut c = tweestap_on(app);
    c.args(args);
    let out = output(c).await;
    (out.status.success(), out.stdout, out.stderr)
}

/// Moves the app's (manual) clock up to the wall clock, which the `tweestap`
/// binary stamps what it queues with: a logout the command line queued is due on
/// the server only once the server's time has reached it.
pub fn catch_up_with_the_command_line(app: &TestApp) {
    use tweestap_domain::clock::Clock;
    let behind = chrono::Utc::now() - app.clock.now();
    if behind > chrono::Duration::zero() {
        app.clock.advance(behind + chrono::Duration::seconds(1));
    }
}

/// A password sign-in through the API from a new browser: its status and state.
pub async fn api_login(app: &TestApp, email: &str) -> (u16, Value) {
    let r = app.client().login(email, PASSWORD).await;
    (r.status, r.body)
}
