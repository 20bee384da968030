//! The paths that check a password: how their answers read, and how a victim of
//! each is prepared.

use super::codes::{asked_to_sign_in_again, set};
use super::{Answer, Ask, Right, Target, Verdict, GUESS};
use crate::kit::{Client, TestApp, PASSWORD};
use crate::security::threat_kit::{form_fields, fresh_client, fresh_phone, mailed_qr_link, Nodes};
use reqwest::Method;
use serde_json::{json, Value};

/// Sign-in and "secure your account now": a throttled attempt answers as a wrong
/// password does, so only the audit trail tells them apart.
pub fn sign_in(a: &Answer) -> Verdict {
    match (a.status, a.error().as_str()) {
        (200, _) => Verdict::Accepted,
        (401, "invalid_credentials") => Verdict::Unclear,
        _ => panic!("an unexpected answer: {} {}", a.status, a.body),
    }
}

/// Password confirmations in a session.
pub fn api_password(a: &Answer) -> Verdict {
    match (a.status, a.error().as_str()) {
        (200 | 202 | 204, _) => Verdict::Accepted,
        (403, "invalid_password") => Verdict::Wrong,
        (429, "too_many_attempts") => Verdict::Refused,
        _ => panic!("an unexpected answer: {} {}", a.status, a.body),
    }
}

/// A QR link's password: throttled, wrong or missing answer alike.
pub fn link_password(a: &Answer) -> Verdict {
    match (a.status, a.error().as_str()) {
        (200, _) => Verdict::Accepted,
        (403, "invalid_password") => Verdict::Unclear,
        _ => panic!("an unexpected answer: {} {}", a.status, a.body),
    }
}

/// The sign-in page: the right password goes on to the code.
pub fn page_password(a: &Answer) -> Verdict {
    match a.status {
        303 if a.location == "/login/code" => Verdict::Accepted,
        401 => Verdict::Unclear,
        _ => panic!(
            "an unexpected answer: {} {} {}",
            a.status,
            a.location,
            a.body.chars().take(500).collect::<String>()
        ),
    }
}

fn guessed_password(i: usize) -> String {
    format!("raden maar {i}")
}

fn target(c: Client, ask: Ask, email: String) -> Target {
    Target {
        http: c.http,
        ask,
        right: Right::Fixed(PASSWORD.to_owned()),
        wrong: guessed_password,
        email,
    }
}

fn ask(method: Method, path: &str, body: Value) -> Ask {
    Ask::Json(method, path.to_owned(), body)
}

/// A signed-in browser of a new account without a second factor.
async fn signed_in(app: &TestApp, email: &str) -> Client {
    app.add_user(email).await;
    let c = fresh_client(app);
    assert_eq!(
        c.login(email, PASSWORD).await.body["state"],
        "authenticated"
    );
    c
}

pub async fn sign_in_password(n: &Nodes, email: String) -> Target {
    n.a.add_user(&email).await;
    let body = json!({"email": email, "password": GUESS});
    let ask = ask(Method::POST, "/api/v1/login", body);
    target(fresh_client(&n.a), ask, email)
}

pub async fn secure_password(n: &Nodes, email: String) -> Target {
    n.a.add_user(&email).await;
    let body = json!({"email": email, "password": GUESS});
    let ask = ask(Method::POST, "/api/v1/secure", body);
    target(fresh_client(&n.a), ask, email)
}

pub async fn remove_factor(n: &Nodes, email: String) -> Target {
    n.a.add_user(&email).await;
    let c = fresh_client(&n.a);
    let (id, _) = c.enroll(&n.a, &email).await;
    n.a.next_step();
    let path = format!("/api/v1/me/factors/{id}");
    let ask = ask(Method::DELETE, &path, json!({ "password": GUESS }));
    target(c, ask, email)
}

pub async fn new_recovery_codes(n: &Nodes, email: String) -> Target {
    n.a.add_user(&email).await;
    let c = fresh_client(&n.a);
    c.enroll(&n.a, &email).await;
    n.a.next_step();
    let body = json!({ "password": GUESS });
    let ask = ask(Method::POST, "/api/v1/me/recovery-codes", body);
    target(c, ask, email)
}

pub async fn begin_app(n: &Nodes, email: String) -> Target {
    let c = signed_in(&n.a, &email).await;
    let body = json!({ "password": GUESS });
    let ask = ask(Method::POST, "/api/v1/me/factors/totp", body);
    target(c, ask, email)
}

pub async fn begin_phone(n: &Nodes, email: String) -> Target {
    let c = signed_in(&n.a, &email).await;
    let body = json!({ "phone": fresh_phone(), "password": GUESS });
    let ask = ask(Method::POST, "/api/v1/me/factors/sms", body);
    target(c, ask, email)
}

pub async fn request_qr_link(n: &Nodes, email: String) -> Target {
    let c = signed_in(&n.a, &email).await;
    let body = json!({ "password": GUESS });
    let ask = ask(Method::POST, "/api/v1/me/enrollment-link", body);
    target(c, ask, email)
}

pub async fn qr_link_password(n: &Nodes, email: String) -> Target {
    let token = mailed_qr_link(&n.a, &email).await;
    let path = format!("/api/v1/enrollment-links/{token}");
    let body = json!({ "password": GUESS, "method": "app" });
    let ask = ask(Method::POST, &path, body);
    // A stranger's browser: no session of the account.
    target(fresh_client(&n.a), ask, email)
}

pub async fn oidc_reauth_password(n: &Nodes, email: String) -> Target {
    let (c, _, page) = asked_to_sign_in_again(&n.a, &email, "&prompt=login").await;
    let mut fields = form_fields(&page, "password");
    assert!(
        fields.iter().any(|(k, v)| k == "prompt" && v == "login"),
        "{fields:?}"
    );
    set(&mut fields, "password", GUESS);
    target(c, Ask::Form("/login".into(), fields), email)
}
