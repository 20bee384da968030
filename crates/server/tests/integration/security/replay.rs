//! Replaying a used code: a TOTP step, an SMS code, a recovery code, the mailed
//! code of "secure your account now", a password-reset link, a QR link, an OIDC
//! authorization code and a refresh token each work once — the second use is
//! refused, and two uses sent at once (from two browsers where each has its own,
//! or one) have exactly one winner. One table ([`REPLAYS`]); a new kind is one line.

use super::threat_kit::{
    authorize_url, follow, fresh_client, fresh_phone, link_token, mail_after, mail_count,
    mailed_qr_link, person_with_app, person_with_phone, portal_client, sms_code_after, sms_count,
    CALLBACK, PORTAL, VERIFIER,
};
use crate::kit::{code_in, sign_in_through_pages, Backend, Client, TestApp, PASSWORD};
use serde_json::{json, Value};
use std::future::Future;
use std::pin::Pin;

crate::on_both_backends!(replaying_a_used_code);

/// Rounds of two uses at once, per kind of code.
const ROUNDS: usize = 5;

/// One use of a code: who sends what where.
struct Use {
    http: reqwest::Client,
    path: String,
    body: Body,
}

enum Body {
    Json(Value),
    Form(Vec<(&'static str, String)>),
}

impl Use {
    fn json(c: &Client, path: &str, body: Value) -> Self {
        Self {
            http: c.http.clone(),
            path: path.to_owned(),
            body: Body::Json(body),
        }
    }

    /// Sends it to `app`: the status and the JSON answer.
    fn send(self, app: &TestApp) -> impl Future<Output = (u16, Value)> + Send + 'static {
        let r = self.http.post(format!("{}{}", app.url, self.path));
        let r = match self.body {
            Body::Json(v) => r.json(&v),
            Body::Form(f) => r.form(&f),
        };
        async move {
            let r = r.send().await.expect("request");
            let status = r.status().as_u16();
            (status, r.json().await.unwrap_or_default())
        }
    }
}

/// Who may win when a code is used twice.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Rule {
    /// A code a person types: the first use wins, also of two at once.
    OneWins,
    /// A code or token a portal presents: a second use is taken for theft (RFC 9700
    /// 4.2.4, 4.14.2), so whatever was issued from it dies, also to the first use
    /// (of two at once, at most one answer carries tokens, and they are dead).
    TheftRevokes,
}

type Prepare = for<'a> fn(&'a TestApp, String) -> Pin<Box<dyn Future<Output = [Use; 2]> + 'a>>;

macro_rules! replay {
    ($name:literal, $rule:expr, $prepare:path) => {
        ($name, $rule, |app, email| Box::pin($prepare(app, email)))
    };
}

/// Every kind of single-use code, and two uses of one (a use wins with 200).
#[rustfmt::skip]
const REPLAYS: &[(&str, Rule, Prepare)] = &[
    replay!("a TOTP step", Rule::OneWins, totp_step),
    replay!("an SMS code", Rule::OneWins, sms_code),
    replay!("a recovery code", Rule::OneWins, recovery_code),
    replay!("the mailed code of 'secure your account now'", Rule::OneWins, mailed_code),
    replay!("a password-reset link", Rule::OneWins, reset_link),
    replay!("a QR link", Rule::OneWins, qr_link),
    replay!("an OIDC authorization code", Rule::TheftRevokes, oidc_code),
    replay!("a refresh token", Rule::TheftRevokes, refresh_token),
];

/// A browser at the code step of `email`.
async fn at_code_step(app: &TestApp, email: &str) -> Client {
    let c = fresh_client(app);
    assert_eq!(
        c.login(email, PASSWORD).await.body["state"],
        "second_factor"
    );
    c
}

const SECOND_FACTOR: &str = "/api/v1/login/second-factor";

async fn totp_step(app: &TestApp, email: String) -> [Use; 2] {
    let secret = person_with_app(app, &email).await;
    let (one, two) = (
        at_code_step(app, &email).await,
        at_code_step(app, &email).await,
    );
    let body = json!({"method": "totp", "code": app.code(&secret)});
    [
        Use::json(&one, SECOND_FACTOR, body.clone()),
        Use::json(&two, SECOND_FACTOR, body),
    ]
}

async fn sms_code(app: &TestApp, email: String) -> [Use; 2] {
    person_with_phone(app, &email, &fresh_phone()).await;
    let c = at_code_step(app, &email).await;
    let before = sms_count(app);
    assert_eq!(c.post("/api/v1/login/sms", json!({})).await.status, 200);
    let body = json!({"method": "sms", "code": sms_code_after(app, before).await});
    [
        Use::json(&c, SECOND_FACTOR, body.clone()),
        Use::json(&c, SECOND_FACTOR, body),
    ]
}

async fn recovery_code(app: &TestApp, email: String) -> [Use; 2] {
    app.add_user(&email).await;
    let c = fresh_client(app);
    assert_eq!(c.login(&email, PASSWORD).await.status, 200);
    let r = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    let (secret, id) = (r.body["secret"].as_str(), r.body["id"].as_str());
    let confirm = format!("/api/v1/me/factors/totp/{}/confirm", id.expect("id"));
    let code = app.code(secret.expect("secret"));
    let r = c.post(&confirm, json!({ "code": code })).await;
    let codes = r.body["recovery_codes"].clone();
    let body = json!({"method": "recovery_code", "code": codes[0]});
    let (one, two) = (
        at_code_step(app, &email).await,
        at_code_step(app, &email).await,
    );
    [
        Use::json(&one, SECOND_FACTOR, body.clone()),
        Use::json(&two, SECOND_FACTOR, body),
    ]
}

async fn mailed_code(app: &TestApp, email: String) -> [Use; 2] {
    app.add_user(&email).await;
    let c = fresh_client(app);
    let before = mail_count(app, "email-code");
    let r = c
        .post(
            "/api/v1/secure",
            json!({"email": email, "password": PASSWORD}),
        )
        .await;
    assert_eq!(r.body["state"], "email_code_sent", "{:?}", r.body);
    let code = code_in(&mail_after(app, "email-code", before).await);
    let body = json!({ "code": code });
    [
        Use::json(&c, "/api/v1/secure/code", body.clone()),
        Use::json(&c, "/api/v1/secure/code", body),
    ]
}

async fn reset_link(app: &TestApp, email: String) -> [Use; 2] {
    app.add_user(&email).await;
    let before = mail_count(app, "password-reset");
    let c = fresh_client(app);
    let r = c
        .post("/api/v1/password/forgot", json!({ "email": email }))
        .await;
    assert_eq!(r.status, 202);
    let token = link_token(
        &mail_after(app, "password-reset", before).await,
        "/password/reset/",
    );
    let body = |n: u8| json!({"token": token, "password": format!("nieuw wachtwoord {n}")});
    [
        Use::json(&fresh_client(app), "/api/v1/password/reset", body(1)),
        Use::json(&fresh_client(app), "/api/v1/password/reset", body(2)),
    ]
}

async fn qr_link(app: &TestApp, email: String) -> [Use; 2] {
    let token = mailed_qr_link(app, &email).await;
    let path = format!("/api/v1/enrollment-links/{token}");
    let body = json!({"password": PASSWORD, "method": "app"});
    [
        Use::json(&fresh_client(app), &path, body.clone()),
        Use::json(&fresh_client(app), &path, body),
    ]
}

/// Signed in through the portal with `scope`: the authorization code it got back.
async fn portal_code(app: &TestApp, email: &str, scope: &str) -> String {
    let secret = person_with_app(app, email).await;
    let c = fresh_client(app);
    sign_in_through_pages(&c, app, "/login", (email, PASSWORD), &secret).await;
    match follow(app, &c, &authorize_url(app, scope, "")).await {
        Err(back) => crate::kit::query_param(&back, "code").expect("a code"),
        Ok(page) => panic!("no code for the portal: {page}"),
    }
}

fn token_use(app: &TestApp, form: Vec<(&'static str, String)>) -> Use {
    let mut form = form;
    form.push(("client_id", PORTAL.to_owned()));
    Use {
        http: fresh_client(app).http,
        path: "/oidc/token".into(),
        body: Body::Form(form),
    }
}

fn code_grant(code: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.to_owned()),
        ("redirect_uri", CALLBACK.into()),
        ("code_verifier", VERIFIER.into()),
    ]
}

async fn oidc_code(app: &TestApp, email: String) -> [Use; 2] {
    let code = portal_code(app, &email, "openid").await;
    [
        token_use(app, code_grant(&code)),
        token_use(app, code_grant(&code)),
    ]
}

async fn refresh_token(app: &TestApp, email: String) -> [Use; 2] {
    let code = portal_code(app, &email, "openid offline_access").await;
    let r = fresh_client(app)
        .http
        .post(format!("{}/oidc/token", app.url))
        .form(&[code_grant(&code), vec![("client_id", PORTAL.into())]].concat())
        .send()
        .await
        .expect("token");
    let tokens: Value = r.json().await.expect("json");
    let refresh = tokens["refresh_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no refresh token: {tokens}"))
        .to_owned();
    let grant = || {
        vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh.clone()),
        ]
    };
    [token_use(app, grant()), token_use(app, grant())]
}

/// Whether the tokens of a token answer still work: the access token at userinfo,
/// the refresh token (if any) at the token endpoint.
async fn live_tokens(app: &TestApp, answer: &Value) -> Vec<&'static str> {
    let mut live = Vec::new();
    let access = answer["access_token"].as_str().expect("an access token");
    let r = reqwest::Client::new()
        .get(format!("{}/oidc/userinfo", app.url))
        .bearer_auth(access)
        .send()
        .await
        .expect("userinfo");
    if r.status().as_u16() == 200 {
        live.push("access token");
    }
    if let Some(refresh) = answer["refresh_token"].as_str() {
        let grant = vec![
            ("grant_type", "refresh_token".into()),
            ("refresh_token", refresh.to_owned()),
        ];
        if token_use(app, grant).send(app).await.0 == 200 {
            live.push("refresh token");
        }
    }
    live
}

async fn replaying_a_used_code(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.oidc.clients = vec![portal_client()];
    })
    .await;
    for (i, (name, rule, prepare)) in REPLAYS.iter().enumerate() {
        // Once, and once more: the second is refused.
        let [first, again] = prepare(&app, format!("replay{i}-once@example.be")).await;
        let (status, answer) = first.send(&app).await;
        assert_eq!(status, 200, "{name}: the first use: {answer}");
        let (second, body) = again.send(&app).await;
        assert_ne!(second, 200, "{name}: used twice: {body}");
        assert!(second < 500, "{name}: {second} {body}");
        if *rule == Rule::TheftRevokes {
            let live = live_tokens(&app, &answer).await;
            assert!(
                live.is_empty(),
                "{name}: after a replay these live: {live:?}"
            );
        }

        // Twice at once: one wins (or, for a portal's, none keeps anything). A race
        // is a matter of chance: five rounds.
        for round in 0..ROUNDS {
            let email = format!("replay{i}-at-once{round}@example.be");
            let [one, two] = prepare(&app, email).await;
            let (one, two) = (tokio::spawn(one.send(&app)), tokio::spawn(two.send(&app)));
            let got = [one.await.expect("task"), two.await.expect("task")];
            let statuses: Vec<u16> = got.iter().map(|(s, _)| *s).collect();
            let wins: Vec<&Value> = got
                .iter()
                .filter(|(s, _)| *s == 200)
                .map(|(_, b)| b)
                .collect();
            assert!(statuses.iter().all(|s| *s < 500), "{name}: {got:?}");
            match rule {
                Rule::OneWins => assert_eq!(wins.len(), 1, "{name}: two at once: {got:?}"),
                Rule::TheftRevokes => {
                    assert!(wins.len() <= 1, "{name}: two at once: {got:?}");
                    for w in wins {
                        let live = live_tokens(&app, w).await;
                        assert!(
                            live.is_empty(),
                            "{name}: two at once, {live:?} live: {got:?}"
                        );
                    }
                }
            }
        }
    }
}
