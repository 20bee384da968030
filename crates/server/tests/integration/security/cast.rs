//! The app and the people the web-facing threat tests share: an administrator with
//! an authenticator app and a remembered browser, a user whose role must set up
//! two-step verification first, a support person without a second factor (for
//! "secure your account now"), a portal behind OpenID Connect and one behind
//! forward-auth.

use super::routes::{bare_client, send, session_cookie, Body, Fill};
use crate::kit::{Backend, TestApp, PASSWORD};
use serde_json::json;
use tweestap::config::oidc::ClientConfig;
use tweestap_domain::oidc::client::secret_hash;
use tweestap_domain::policy::TwoFactorMode;
use tweestap_domain::session::SessionStage;
use tweestap_domain::token::Token;

pub const ADMIN: &str = "beheer@tweestad.example";
pub const USER: &str = "nieuw@tweestad.example";
pub const SUPPORT: &str = "hulp@tweestad.example";
/// The portal's client id, secret and only redirect URI.
pub const CLIENT: &str = "portaal";
pub const CLIENT_SECRET: &str = "geheim-van-het-portaal-voor-de-suite";
pub const CALLBACK: &str = "https://portaal.tweestad.example/cb";
/// The portal behind forward-auth (`[forward_auth] return_hosts`).
pub const RETURN_HOST: &str = "intranet.tweestad.example";

/// A tweestap as the suite wants it; `https`: with an https `public_url` (so its
/// cookies are `Secure`).
pub async fn suite_app(backend: Backend, https: bool) -> TestApp {
    let hash = secret_hash(CLIENT_SECRET);
    TestApp::start_configured(backend, move |c| {
        c.policy.roles.user.two_factor = Some(TwoFactorMode::Required);
        c.forward_auth.return_hosts = vec![RETURN_HOST.into()];
        if https {
            c.public_url = "https://login.tweestad.example".into();
        }
        c.oidc.clients = vec![ClientConfig {
            id: CLIENT.into(),
            name: "Portaal".into(),
            redirect_uris: vec![CALLBACK.into()],
            secret_hash: Some(hash.clone()),
            ..Default::default()
        }];
    })
    .await
}

/// What the suite knows of its people.
pub struct People {
    /// The administrator's app key.
    pub secret: String,
    pub admin_factor: String,
    pub admin_device: String,
    /// The remembered browser's cookie (`tweestap_device=...`).
    pub device_cookie: String,
    pub admin_id: String,
    pub user_id: String,
}

pub async fn account_id(app: &TestApp, email: &str) -> String {
    let email = tweestap_domain::account::Email::parse(email).expect("email");
    let a = app.engine().store().account_by_email(&email).await;
    a.expect("store").expect("the account").id.0.to_string()
}

/// Adds the people; the administrator sets up the app and signs in once with
/// "remember this browser". The clock is on a fresh step afterwards.
pub async fn cast(app: &TestApp) -> People {
    app.add_admin(ADMIN).await;
    app.add_user(USER).await;
    app.engine()
        .add_account(
            SUPPORT,
            "Hulp Desk",
            tweestap_domain::account::Role::Support,
            PASSWORD,
        )
        .await
        .expect("account");
    let http = bare_client();
    let (admin_factor, secret) = enroll(app, &http, ADMIN).await;
    app.next_step();
    let pending = login(app, ADMIN).await;
    let done = send(
        &http,
        &app.url,
        "POST",
        "/api/v1/login/second-factor",
        &pending,
        Body::Json(json!({"method": "totp", "code": app.code(&secret), "remember_device": true})),
    )
    .await;
    assert_eq!(done.status, 200, "{}", done.body);
    let device_cookie = format!(
        "tweestap_device={}",
        done.cookie("tweestap_device").expect("device cookie")
    );
    let full = session_cookie(&done);
    let list = send(
        &http,
        &app.url,
        "GET",
        "/api/v1/me/devices",
        &full,
        Body::None,
    )
    .await;
    let v: serde_json::Value = serde_json::from_str(&list.body).expect("devices");
    let admin_device = v["devices"][0]["id"].as_str().expect("a device").to_owned();
    app.next_step();
    People {
        secret,
        admin_factor,
        admin_device,
        device_cookie,
        admin_id: account_id(app, ADMIN).await,
        user_id: account_id(app, USER).await,
    }
}

/// Sets up an authenticator app for `email` (no factor yet): its id and key. With
/// cookies given by hand, so `Secure` ones work over the tests' plain http too.
pub async fn enroll(app: &TestApp, http: &reqwest::Client, email: &str) -> (String, String) {
    let session = login(app, email).await;
    let post = |path: &'static str, body: serde_json::Value| {
        send(http, &app.url, "POST", path, &session, Body::Json(body))
    };
    let r = post("/api/v1/me/factors/totp", json!({ "password": PASSWORD })).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let v: serde_json::Value = serde_json::from_str(&r.body).expect("json");
    let (id, secret) = (
        v["id"].as_str().expect("id"),
        v["secret"].as_str().expect("secret"),
    );
    let path = format!("/api/v1/me/factors/totp/{id}/confirm");
    let body = Body::Json(json!({ "code": app.code(secret) }));
    let r = send(http, &app.url, "POST", &path, &session, body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    (id.to_owned(), secret.to_owned())
}

/// The password step through the API: the new session's cookie (`name=value`).
pub async fn login(app: &TestApp, email: &str) -> String {
    let a = send(
        &bare_client(),
        &app.url,
        "POST",
        "/api/v1/login",
        "",
        Body::Json(json!({"email": email, "password": PASSWORD})),
    )
    .await;
    assert_eq!(a.status, 200, "{email}: {}", a.body);
    session_cookie(&a)
}

/// The administrator fully signed in (password and a new code): a session cookie.
pub async fn signed_in_admin(app: &TestApp, people: &People) -> String {
    let pending = login(app, ADMIN).await;
    app.next_step();
    let a = send(
        &bare_client(),
        &app.url,
        "POST",
        "/api/v1/login/second-factor",
        &pending,
        Body::Json(json!({"method": "totp", "code": app.code(&people.secret)})),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    session_cookie(&a)
}

/// The stage of the session a `tweestap_session=...` cookie names, if it lives.
pub async fn stage_of(app: &TestApp, cookie: &str) -> Option<SessionStage> {
    let value = cookie.strip_prefix("tweestap_session=")?;
    let token = Token::from_client(value)?;
    let info = app.engine().session(&token).await.expect("store");
    info.map(|i| i.session.stage)
}

/// Plausible values for the administrator's routes.
pub fn admin_fill(app: &TestApp, people: &People) -> Fill {
    Fill {
        email: ADMIN.into(),
        password: PASSWORD.into(),
        code: app.code(&people.secret),
        factor: people.admin_factor.clone(),
        device: people.admin_device.clone(),
        account: people.user_id.clone(),
        client: CLIENT.into(),
    }
}

/// An authorization request of the portal, as a query (`?...`).
pub fn authorize_query(redirect_uri: &str) -> String {
    let enc = |s: &str| -> String { url::form_urlencoded::byte_serialize(s.as_bytes()).collect() };
    format!(
        "?response_type=code&client_id={CLIENT}&redirect_uri={}&scope=openid&state=st&nonce=n&code_challenge={}&code_challenge_method=S256",
        enc(redirect_uri),
        tweestap_domain::oidc::flow::s256("suite-verifier-suite-verifier-suite-verifier-0123")
    )
}

/// A pending authorization request's id (begun by a browser without a session).
pub async fn pending_request(app: &TestApp) -> String {
    let path = format!("/oidc/authorize{}", authorize_query(CALLBACK));
    let a = send(&bare_client(), &app.url, "GET", &path, "", Body::None).await;
    let to = a.location().expect("to the sign-in");
    let rd = crate::kit::query_param(&format!("http://x{to}"), "rd")
        .or_else(|| crate::kit::query_param(&to, "rd"))
        .unwrap_or_else(|| panic!("no rd in {to}"));
    crate::kit::query_param(&rd, "request").unwrap_or_else(|| panic!("no request in {rd}"))
}

/// The query that makes a route's request plausible (the OIDC pages want a request).
pub fn query_for(path: &str, request: &str) -> String {
    match path {
        "/oidc/authorize" => authorize_query(CALLBACK),
        "/oidc/authorize/resume" | "/oidc/consent" | "/oidc/select-account" => {
            format!("?request={request}")
        }
        "/oidc/logout" => format!("?client_id={CLIENT}"),
        _ => String::new(),
    }
}
