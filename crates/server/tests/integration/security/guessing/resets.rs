//! Guessing across a password reset: whoever reads the person's mailbox can choose
//! a new password as often as the reset mails allow, but that gives no new code
//! tries — the code step's lock and the recovery codes' lock outlive the reset, on
//! either node — and the reset link itself cannot be guessed.

use super::codes::six_digits;
use crate::kit::{Client, TestApp, PASSWORD};
use crate::security::threat_kit::{
    fresh_client, link_token, mail_after, mail_count, person_with_app, Nodes,
};
use serde_json::json;

const NEW: &str = "gekozen door wie de mailbox leest";

/// A new password for `email` through the mailed link, asked on `app` (`outbox`:
/// the node whose data directory holds the outbox).
async fn reset(app: &TestApp, outbox: &TestApp, email: &str) {
    let before = mail_count(outbox, "password-reset");
    let c = fresh_client(app);
    let r = c
        .post("/api/v1/password/forgot", json!({ "email": email }))
        .await;
    assert_eq!(r.status, 202);
    let mail = mail_after(outbox, "password-reset", before).await;
    let token = link_token(&mail, "/password/reset/");
    // The link cannot be guessed: others of its shape are refused.
    for i in 0..20 {
        let forged = format!("{}{:03}", &token[..40], i);
        let body = json!({"token": forged, "password": NEW});
        let r = c.post("/api/v1/password/reset", body).await;
        assert_eq!(r.body["error"], "invalid_token", "{forged}: {:?}", r.body);
    }
    let r = c
        .post(
            "/api/v1/password/reset",
            json!({"token": token, "password": NEW}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// A browser at the code step of `email` on `app`, with `password`.
async fn at_code_step(app: &TestApp, email: &str, password: &str) -> Client {
    let c = fresh_client(app);
    let r = c.login(email, password).await;
    assert_eq!(r.body["state"], "second_factor", "{:?}", r.body);
    c
}

async fn second_factor(c: &Client, method: &str, code: &str) -> (u16, String) {
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({"method": method, "code": code}),
        )
        .await;
    let error = r.body["error"].as_str().unwrap_or_default().to_owned();
    (r.status, error)
}

/// Five wrong app codes and five wrong recovery codes lock both; a reset of the
/// password (on the other node) unlocks neither. Returns a line for the report.
pub async fn a_reset_gives_no_new_tries(nodes: &Nodes) -> String {
    let (a, b) = (&nodes.a, &nodes.b);
    let email = "mailbox-gelezen@example.be";
    let secret = person_with_app(a, email).await;
    let c = at_code_step(a, email, PASSWORD).await;
    for i in 0..5 {
        let wrong = crate::security::threat_kit::wrong_code(a, Some(&secret), i);
        assert_eq!(second_factor(&c, "totp", &wrong).await.0, 401);
    }
    for i in 0..5 {
        let wrong = format!("bbbbb-{:05}", 20_000 + i);
        assert_eq!(second_factor(&c, "recovery_code", &wrong).await.0, 401);
    }
    reset(b, a, email).await;
    let c = at_code_step(a, email, NEW).await;
    let right = a.code(&secret);
    let locked = (429, "too_many_attempts".to_owned());
    assert_eq!(second_factor(&c, "totp", &right).await, locked, "app");
    let r = second_factor(&c, "recovery_code", &six_digits(1)).await;
    assert_eq!(r, locked, "recovery codes");
    "password reset: the code step's and the recovery codes' locks outlive it; 20 forged links refused".to_owned()
}
