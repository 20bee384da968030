//! Session fixation: an attacker plants a session id in the victim's browser (a
//! sibling host's cookie, a link with a cookie-setting page) before the victim signs
//! in, hoping to share the sign-in. Planted are a made-up id, the attacker's own
//! sign-in of the victim's account waiting for its code (the attacker knows the
//! password, not the code), the attacker's own full session of another account, an
//! enrolment-only session and one waiting for the mailed code of "secure your
//! account". Whatever the victim then does — the password, the app's code, a
//! passkey (as the second step or alone), a recovery code, a remembered browser,
//! setting up the app, the mailed code — through the pages and the API, the id
//! after it is a new one and every id before it is dead.

use super::cast::{self, People, ADMIN, SUPPORT, USER};
use super::routes::{bare_client, csrf_pair, csrf_token_in, send, session_cookie, Answer, Body};
use crate::kit::passkey::SoftKey;
use crate::kit::{Backend, TestApp, PASSWORD};
use serde_json::{json, Value};
use tweestap_domain::token::Token;

crate::on_both_backends!(session_fixation);

/// The victim's browser: the planted cookie is given with each request, as the
/// browser would send it.
struct Victim<'a> {
    app: &'a TestApp,
    http: reqwest::Client,
    csrf_cookie: String,
}

impl Victim<'_> {
    async fn api(&self, path: &str, cookies: &str, body: Value) -> Answer {
        send(
            &self.http,
            &self.app.url,
            "POST",
            path,
            cookies,
            Body::Json(body),
        )
        .await
    }

    /// A form of the pages, with this browser's CSRF token (as the page showing the
    /// form gives it, for the session cookie the browser holds).
    async fn form(&self, path: &str, cookies: &str, fields: &[(&str, &str)]) -> Answer {
        let mut f: Vec<(String, String)> = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let cookies = format!("{cookies}; {}", self.csrf_cookie);
        let csrf = csrf_token_in(&self.http, &self.app.url, &cookies).await;
        f.push(("csrf".into(), csrf));
        send(
            &self.http,
            &self.app.url,
            "POST",
            path,
            &cookies,
            Body::Form(f),
        )
        .await
    }

    /// The session the answer sets: not any of `before`, and alive at `stage`.
    async fn renewed(&self, a: &Answer, before: &[&str], what: &str) -> String {
        assert!(a.status < 400, "{what}: {} {:.300}", a.status, a.body);
        let new = session_cookie(a);
        for old in before {
            assert_ne!(&new, old, "{what}: the planted id was kept");
        }
        new
    }

    /// The session `cookie` names is fully signed in.
    async fn signed_in(&self, cookie: &str, what: &str) {
        let me = send(
            &self.http,
            &self.app.url,
            "GET",
            "/api/v1/me",
            cookie,
            Body::None,
        )
        .await;
        assert_eq!(me.status, 200, "{what}: the new session works");
    }

    /// Every id in `old` is dead: not stored, and refused.
    async fn dead(&self, old: &[&str], what: &str) {
        for o in old {
            assert_eq!(
                cast::stage_of(self.app, o).await,
                None,
                "{what}: {o} lives on"
            );
            let me = send(
                &self.http,
                &self.app.url,
                "GET",
                "/api/v1/me",
                o,
                Body::None,
            )
            .await;
            assert_eq!(me.status, 401, "{what}: {o} still answers");
            let r = send(
                &self.http,
                &self.app.url,
                "GET",
                "/auth/request",
                o,
                Body::None,
            )
            .await;
            assert_eq!(r.status, 401, "{what}: {o} passes forward-auth");
        }
    }
}

/// An id no sign-in ever had.
fn made_up() -> String {
    format!("tweestap_session={}", Token::generate().as_str())
}

async fn session_fixation(backend: Backend) {
    let app = cast::suite_app(backend, false).await;
    let people = cast::cast(&app).await;
    let http = bare_client();
    let (csrf_cookie, _) = csrf_pair(&http, &app.url).await;
    let v = Victim {
        app: &app,
        http,
        csrf_cookie,
    };
    let (mut key, recovery) = passkey_and_recovery_codes(&app, &people).await;
    let mut recovery = recovery.into_iter();
    let login = json!({"email": ADMIN, "password": PASSWORD});

    // A made-up id, then the password and the code: API and pages.
    let planted = made_up();
    let a = v.api("/api/v1/login", &planted, login.clone()).await;
    let half = v.renewed(&a, &[&planted], "API password").await;
    app.next_step();
    let code = json!({"method": "totp", "code": app.code(&people.secret)});
    let a = v.api("/api/v1/login/second-factor", &half, code).await;
    let full = v.renewed(&a, &[&planted, &half], "API code").await;
    v.signed_in(&full, "API code").await;
    v.dead(&[&planted, &half], "API code").await;

    let planted = made_up();
    let pw = [("email", ADMIN), ("password", PASSWORD)];
    let a = v.form("/login", &planted, &pw).await;
    let half = v.renewed(&a, &[&planted], "page password").await;
    app.next_step();
    let a = v
        .form("/login/code", &half, &[("code", &app.code(&people.secret))])
        .await;
    let full = v.renewed(&a, &[&planted, &half], "page code").await;
    v.signed_in(&full, "page code").await;
    v.dead(&[&planted, &half], "page code").await;

    // The attacker's own sign-in of the victim's account, waiting for its code.
    let planted = cast::login(&app, ADMIN).await;
    app.next_step();
    let code = json!({"method": "totp", "code": app.code(&people.secret)});
    let a = v.api("/api/v1/login/second-factor", &planted, code).await;
    let full = v.renewed(&a, &[&planted], "planted, API code").await;
    v.signed_in(&full, "planted, API code").await;
    v.dead(&[&planted], "planted, API code").await;

    let planted = cast::login(&app, ADMIN).await;
    app.next_step();
    let a = v
        .form(
            "/login/code",
            &planted,
            &[("code", &app.code(&people.secret))],
        )
        .await;
    let full = v.renewed(&a, &[&planted], "planted, page code").await;
    v.signed_in(&full, "planted, page code").await;
    v.dead(&[&planted], "planted, page code").await;

    let planted = cast::login(&app, ADMIN).await;
    let a = v.form("/login", &planted, &pw).await;
    let half = v.renewed(&a, &[&planted], "planted, page password").await;
    v.dead(&[&planted], "planted, page password").await;
    app.next_step();
    let a = v
        .form("/login/code", &half, &[("code", &app.code(&people.secret))])
        .await;
    let full = v
        .renewed(&a, &[&planted, &half], "planted, page password and code")
        .await;
    v.signed_in(&full, "planted, page password and code").await;
    v.dead(&[&half], "planted, page password and code").await;

    // A passkey as the second step.
    let planted = cast::login(&app, ADMIN).await;
    let answer = passkey_answer(&v, &mut key, &planted).await;
    let a = v
        .api(
            "/api/v1/login/passkey",
            &planted,
            json!({"credential": answer}),
        )
        .await;
    let full = v.renewed(&a, &[&planted], "planted, API passkey").await;
    v.signed_in(&full, "planted, API passkey").await;
    v.dead(&[&planted], "planted, API passkey").await;

    let planted = cast::login(&app, ADMIN).await;
    let answer = passkey_answer(&v, &mut key, &planted).await.to_string();
    let fields = [("from", "code"), ("credential", answer.as_str())];
    let a = v.form("/login/passkey", &planted, &fields).await;
    assert_eq!(a.location().as_deref(), Some("/"), "{:?}", a.location());
    let full = v.renewed(&a, &[&planted], "planted, page passkey").await;
    v.signed_in(&full, "planted, page passkey").await;
    v.dead(&[&planted], "planted, page passkey").await;

    // A passkey alone (no password), over a made-up id and over the attacker's own
    // full session of another account.
    let attacker = cast::login(&app, SUPPORT).await;
    v.signed_in(&attacker, "the attacker's own session").await;
    for planted in [made_up(), attacker] {
        let answer = passkey_answer(&v, &mut key, "").await;
        let a = v
            .api(
                "/api/v1/login/passkey",
                &planted,
                json!({"credential": answer}),
            )
            .await;
        let full = v.renewed(&a, &[&planted], "API passkey alone").await;
        v.signed_in(&full, "API passkey alone").await;
        v.dead(&[&planted], "API passkey alone").await;
    }

    // A recovery code.
    let planted = cast::login(&app, ADMIN).await;
    let code = json!({"method": "recovery_code", "code": recovery.next().expect("a code")});
    let a = v.api("/api/v1/login/second-factor", &planted, code).await;
    let full = v
        .renewed(&a, &[&planted], "planted, API recovery code")
        .await;
    v.signed_in(&full, "planted, API recovery code").await;
    v.dead(&[&planted], "planted, API recovery code").await;

    let planted = cast::login(&app, ADMIN).await;
    let one = recovery.next().expect("a code");
    let a = v.form("/login/recovery", &planted, &[("code", &one)]).await;
    let full = v
        .renewed(&a, &[&planted], "planted, page recovery code")
        .await;
    v.signed_in(&full, "planted, page recovery code").await;
    v.dead(&[&planted], "planted, page recovery code").await;

    // A remembered browser: the password alone signs in.
    let planted = cast::login(&app, ADMIN).await;
    let cookies = format!("{planted}; {}", people.device_cookie);
    let a = v.api("/api/v1/login", &cookies, login.clone()).await;
    let full = v
        .renewed(&a, &[&planted], "planted, remembered browser")
        .await;
    v.signed_in(&full, "planted, remembered browser").await;
    v.dead(&[&planted], "planted, remembered browser").await;

    // The attacker's own full session, then the victim's whole sign-in on the pages.
    let planted = cast::login(&app, SUPPORT).await;
    let a = v.form("/login", &planted, &pw).await;
    let half = v
        .renewed(&a, &[&planted], "attacker's session, page password")
        .await;
    v.dead(&[&planted], "attacker's session, page password")
        .await;
    app.next_step();
    let a = v
        .form("/login/code", &half, &[("code", &app.code(&people.secret))])
        .await;
    let full = v
        .renewed(&a, &[&planted, &half], "attacker's session, page code")
        .await;
    v.signed_in(&full, "attacker's session, page code").await;

    enrolment_and_mailed_code(&v).await;
}

/// An enrolment-only session (the attacker knows the password of an account that
/// must set up two-step verification) in which the victim sets up the app; and a
/// session of "secure your account now" in which the victim types the mailed code.
async fn enrolment_and_mailed_code(v: &Victim<'_>) {
    let app = v.app;
    let planted = cast::login(app, USER).await;
    let a = v.api("/api/v1/me/factors/totp", &planted, json!({})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let setup: Value = serde_json::from_str(&a.body).expect("json");
    let (id, secret) = (
        setup["id"].as_str().expect("id"),
        setup["secret"].as_str().expect("key"),
    );
    let path = format!("/api/v1/me/factors/totp/{id}/confirm");
    let a = v
        .api(&path, &planted, json!({"code": app.code(secret)}))
        .await;
    let full = v
        .renewed(&a, &[&planted], "planted enrolment, app set up")
        .await;
    v.signed_in(&full, "planted enrolment, app set up").await;
    v.dead(&[&planted], "planted enrolment, app set up").await;

    let secure = json!({"email": SUPPORT, "password": PASSWORD});
    let a = v.api("/api/v1/secure", "", secure).await;
    let planted = session_cookie(&a);
    let code = crate::kit::code_in(&crate::kit::nth_mail(app, "email-code", 1).await);
    let a = v
        .api("/api/v1/secure/code", &planted, json!({"code": code}))
        .await;
    let enrolling = v
        .renewed(&a, &[&planted], "planted secure, mailed code")
        .await;
    v.dead(&[&planted], "planted secure, mailed code").await;
    let a = v
        .api("/api/v1/me/factors/totp", &enrolling, json!({}))
        .await;
    let setup: Value = serde_json::from_str(&a.body).expect("json");
    let (id, secret) = (
        setup["id"].as_str().expect("id"),
        setup["secret"].as_str().expect("key"),
    );
    let path = format!("/api/v1/me/factors/totp/{id}/confirm");
    let a = v
        .api(&path, &enrolling, json!({"code": app.code(secret)}))
        .await;
    let full = v
        .renewed(&a, &[&planted, &enrolling], "planted secure, app set up")
        .await;
    v.signed_in(&full, "planted secure, app set up").await;
    v.dead(&[&enrolling], "planted secure, app set up").await;
}

/// The administrator's passkey and a fresh set of recovery codes.
async fn passkey_and_recovery_codes(app: &TestApp, people: &People) -> (SoftKey, Vec<String>) {
    let http = bare_client();
    let full = cast::signed_in_admin(app, people).await;
    let post = |path: String, body: Value| {
        let (http, full) = (http.clone(), full.clone());
        async move { send(&http, &app.url, "POST", &path, &full, Body::Json(body)).await }
    };
    let body = json!({"password": PASSWORD, "name": "laptop"});
    let a = post("/api/v1/me/factors/passkey".into(), body).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let begun: Value = serde_json::from_str(&a.body).expect("json");
    let mut key = SoftKey::for_app(&app.url);
    let credential = key.register(&begun["options"]);
    let id = begun["id"].as_str().expect("id");
    let path = format!("/api/v1/me/factors/passkey/{id}/confirm");
    let a = post(path, json!({"credential": credential})).await;
    assert_eq!(a.status, 200, "{}", a.body);
    let a = post(
        "/api/v1/me/recovery-codes".into(),
        json!({"password": PASSWORD}),
    )
    .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let codes: Value = serde_json::from_str(&a.body).expect("json");
    let codes = codes["recovery_codes"].as_array().expect("codes");
    let codes = codes
        .iter()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect();
    app.next_step();
    (key, codes)
}

/// The key's answer to options asked under `cookies`.
async fn passkey_answer(v: &Victim<'_>, key: &mut SoftKey, cookies: &str) -> Value {
    let a = v
        .api("/api/v1/login/passkey/options", cookies, json!({}))
        .await;
    assert_eq!(a.status, 200, "{}", a.body);
    let options: Value = serde_json::from_str(&a.body).expect("json");
    key.assert(&options["options"])
}
