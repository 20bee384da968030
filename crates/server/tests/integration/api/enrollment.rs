//! The set-up journeys of the manuals: "secure your account now" from the sign-in
//! page (a mailed 6-digit code), and "enable" on My Profile (a mailed single-use
//! link to the personal QR page that also needs the password).

use crate::kit::{
    code_in, eventually, nth_mail, outbox, page, stored_texts, submit, text_part, Backend, Client,
    SmtpSink, TestApp, PASSWORD,
};
use chrono::Duration;
use serde_json::json;

mod choice;
mod mailed_link;

/// The token of the `/enroll/` link in a mail text.
fn link_token(text: &str, base: &str) -> String {
    let prefix = format!("{base}/enroll/");
    let at = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link in {text}"))
        + prefix.len();
    text[at..at + 43].to_owned()
}

/// A code that is not `code`.
fn other_than(code: &str) -> String {
    let n: u32 = code.parse().expect("digits");
    format!("{:06}", (n + 1) % 1_000_000)
}

async fn events(app: &TestApp, email: &str) -> Vec<(String, Option<String>)> {
    app.engine()
        .audit_log(500, Some(email))
        .await
        .expect("audit")
        .into_iter()
        .map(|r| (r.event, r.detail))
        .collect()
}

/// Sets up the app in an enrolment-only session and confirms it; returns the secret.
async fn set_up_app(app: &TestApp, c: &Client) -> String {
    let r = c.post("/api/v1/me/factors/totp", json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    let id = r.body["id"].as_str().expect("id");
    let r = c
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    secret
}

/// The whole wizard over the API, with the code read from a real SMTP server.
async fn secure_your_account_now_with_a_mailed_code(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_smtp(backend, sink.url()).await;
    app.add_user("an@example.be").await;
    let c = app.client();

    // Wrong password and unknown address answer alike, and mail nothing.
    for (email, password) in [("an@example.be", "wrong"), ("nobody@example.be", PASSWORD)] {
        let r = c
            .post(
                "/api/v1/secure",
                json!({ "email": email, "password": password }),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (401, Some("invalid_credentials"))
        );
    }
    let r = c
        .post(
            "/api/v1/secure",
            json!({ "email": "an@example.be", "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("email_code_sent")),
        "{:?}",
        r.body
    );
    // Half-way, the session is good for nothing else.
    assert_eq!(c.get("/api/v1/me").await.status, 401);

    let got = sink.wait_for(1).await;
    assert_eq!(got[0].rcpt_to, vec!["<an@example.be>".to_owned()]);
    let text = text_part(&got[0].parsed());
    let code = code_in(&text);
    assert!(text.contains("10 minuten"), "{text}");
    // At rest, the code row keeps only a MAC and the queued mail only a sealed code.
    let macs = stored_texts(
        &app,
        "SELECT code_mac FROM session_codes WHERE purpose = 'email'",
    )
    .await;
    assert_eq!(macs.len(), 1);
    assert!(!macs[0].contains(&code) && macs[0].len() == 64, "{macs:?}");
    let payloads = stored_texts(&app, "SELECT payload FROM mail_queue").await;
    assert!(
        payloads.iter().any(|p| p.contains("email_code")),
        "{payloads:?}"
    );
    assert!(payloads.iter().all(|p| !p.contains(&code)), "{payloads:?}");

    let r = c
        .post("/api/v1/secure/code", json!({ "code": other_than(&code) }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_code"))
    );
    let r = c.post("/api/v1/secure/code", json!({ "code": code })).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("enrollment_required")),
        "{:?}",
        r.body
    );
    // The code is used up with the session it belonged to.
    let r = c.post("/api/v1/secure/code", json!({ "code": code })).await;
    assert_eq!(r.status, 401);

    // The enrolment-only session sets up the app without asking the password again.
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    let secret = set_up_app(&app, &c).await;
    let me = c.get("/api/v1/me").await;
    assert_eq!(
        me.body["factors"].as_array().map(Vec::len),
        Some(1),
        "{:?}",
        me.body
    );

    // Done, signed in; the next sign-in asks for the app's code.
    let fresh = app.client();
    let r = fresh.login("an@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor");
    app.next_step();
    let r = fresh
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let ev: Vec<String> = events(&app, "an@example.be")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    for e in [
        "email_code_sent",
        "email_code_failed",
        "email_verified",
        "factor_added",
    ] {
        assert!(ev.contains(&e.to_owned()), "{e} missing from {ev:?}");
    }
}

/// Five tries, ten minutes, three mails per attempt.
async fn mailed_codes_have_five_tries_ten_minutes_and_three_sends(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let start = json!({ "email": "an@example.be", "password": PASSWORD });
    assert_eq!(c.post("/api/v1/secure", start.clone()).await.status, 200);
    let code = code_in(&nth_mail(&app, "email-code", 1).await);
    for n in 1..=4 {
        let r = c
            .post("/api/v1/secure/code", json!({ "code": other_than(&code) }))
            .await;
        assert_eq!(r.body["error"], "invalid_code", "try {n}");
    }
    let r = c
        .post("/api/v1/secure/code", json!({ "code": other_than(&code) }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("code_expired"))
    );
    // Past its tries even the right code is refused.
    let r = c.post("/api/v1/secure/code", json!({ "code": code })).await;
    assert_eq!(r.body["error"], "code_expired");

    // A new code: the old one stays dead.
    let r = c.post("/api/v1/secure/code/resend", json!({})).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("email_code_sent"))
    );
    let second = code_in(&nth_mail(&app, "email-code", 2).await);
    if second != code {
        let r = c.post("/api/v1/secure/code", json!({ "code": code })).await;
        assert_eq!(r.body["error"], "invalid_code");
    }
    // Ten minutes on the dot: expired.
    app.clock.advance(Duration::minutes(10));
    let r = c
        .post("/api/v1/secure/code", json!({ "code": second }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("code_expired")),
        "{:?}",
        r.body
    );

    // The third mail is the last one for this attempt.
    assert_eq!(
        c.post("/api/v1/secure/code/resend", json!({})).await.status,
        200
    );
    let r = c.post("/api/v1/secure/code/resend", json!({})).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (429, Some("too_many_requests"))
    );
    let third = code_in(&nth_mail(&app, "email-code", 3).await);
    assert_eq!(outbox(&app, "email-code").len(), 3);
    app.clock.advance(Duration::minutes(9));
    let r = c
        .post("/api/v1/secure/code", json!({ "code": third }))
        .await;
    assert_eq!(r.body["state"], "enrollment_required", "{:?}", r.body);

    // A half-finished attempt dies after ten quiet minutes.
    let d = app.client();
    assert_eq!(d.post("/api/v1/secure", start).await.status, 200);
    let code = code_in(&nth_mail(&app, "email-code", 4).await);
    app.clock.advance(Duration::minutes(11));
    let r = d.post("/api/v1/secure/code", json!({ "code": code })).await;
    assert_eq!(r.status, 401, "{:?}", r.body);
}

/// Whoever knows the password can start attempt after attempt; the account gets at
/// most five mailed codes an hour over all of them. Past that every answer (API and
/// page) is the same as before, but nothing is mailed or replaced, and the refusal
/// is audited.
async fn at_most_five_code_mails_an_hour_per_account(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let start = json!({ "email": "an@example.be", "password": PASSWORD });
    let sent = (200, Some("email_code_sent"));
    // Two attempts of three mails each: the sixth is not mailed.
    let mut attempts = Vec::new();
    for _ in 0..2 {
        let c = app.client();
        let r = c.post("/api/v1/secure", start.clone()).await;
        assert_eq!((r.status, r.body["state"].as_str()), sent, "{:?}", r.body);
        for _ in 0..2 {
            let r = c.post("/api/v1/secure/code/resend", json!({})).await;
            assert_eq!((r.status, r.body["state"].as_str()), sent, "{:?}", r.body);
        }
        attempts.push(c);
    }
    // A third attempt is answered alike, over the API and on the pages.
    let c = app.client();
    let r = c.post("/api/v1/secure", start.clone()).await;
    assert_eq!((r.status, r.body["state"].as_str()), sent, "{:?}", r.body);
    let r = c.post("/api/v1/secure/code/resend", json!({})).await;
    assert_eq!((r.status, r.body["state"].as_str()), sent, "{:?}", r.body);
    let p = app.client();
    let (_, form) = page(&p, "/secure").await;
    let r = submit(
        &p,
        &form,
        "/secure",
        &[("email", "an@example.be"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!((r.0, r.2.as_deref()), (303, Some("/secure/code")));
    let (_, code_page) = page(&p, "/secure/code").await;
    let r = submit(&p, &code_page, "/secure/code/resend", &[]).await;
    assert_eq!(r.0, 200);
    assert!(r.1.contains("nieuwe code"), "{}", r.1);

    nth_mail(&app, "email-code", 5).await;
    eventually(10, "all mail sent", || async {
        !app.mail_counts().await.contains_key("queued")
    })
    .await;
    assert_eq!(outbox(&app, "email-code").len(), 5);
    let ev = events(&app, "an@example.be").await;
    let count = |event: &str, detail: &str| {
        ev.iter()
            .filter(|(e, d)| e == event && d.as_deref().unwrap_or("").starts_with(detail))
            .count()
    };
    assert_eq!(count("email_code_sent", ""), 5, "{ev:?}");
    // The sixth mail, and the start and resend of each later attempt (API, page).
    assert_eq!(
        count("email_code_failed", "rate limited, not sent"),
        5,
        "{ev:?}"
    );
    // No code was stored for a refused start, so none works there.
    let r = c
        .post("/api/v1/secure/code", json!({ "code": "123456" }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("code_expired"))
    );
    // A refused resend leaves the code mailed before it working.
    let fifth = code_in(&nth_mail(&app, "email-code", 5).await);
    let r = attempts[1]
        .post("/api/v1/secure/code", json!({ "code": fifth }))
        .await;
    assert_eq!(r.body["state"], "enrollment_required", "{:?}", r.body);

    // An hour later codes are mailed again.
    app.clock.advance(Duration::hours(1) + Duration::seconds(1));
    let c = app.client();
    let r = c.post("/api/v1/secure", start).await;
    assert_eq!((r.status, r.body["state"].as_str()), sent, "{:?}", r.body);
    let sixth = code_in(&nth_mail(&app, "email-code", 6).await);
    let r = c
        .post("/api/v1/secure/code", json!({ "code": sixth }))
        .await;
    assert_eq!(r.body["state"], "enrollment_required", "{:?}", r.body);
}

/// With a factor already, "secure your account" is an ordinary sign-in with the code.
async fn securing_an_account_that_has_an_app_asks_its_code(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    let c = app.client();
    let r = c
        .post(
            "/api/v1/secure",
            json!({ "email": "an@example.be", "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.body["state"], "second_factor", "{:?}", r.body);
    assert_eq!(r.body["methods"], json!(["totp", "recovery_code"]));
    app.next_step();
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200);
    let sent: Vec<String> = events(&app, "an@example.be")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    assert!(!sent.contains(&"email_code_sent".to_owned()), "{sent:?}");
}

crate::on_both_backends!(
    secure_your_account_now_with_a_mailed_code,
    mailed_codes_have_five_tries_ten_minutes_and_three_sends,
    at_most_five_code_mails_an_hour_per_account,
    securing_an_account_that_has_an_app_asks_its_code,
);
