//! The set-up journeys of the manuals: "secure your account now" from the sign-in
//! page (a mailed 6-digit code), and "enable" on My Profile (a mailed single-use
//! link to the personal QR page that also needs the password).

use crate::support::{
    eventually, nth_mail, outbox, page, stored_texts, submit, text_part, Backend, Client, SmtpSink,
    TestApp, PASSWORD,
};
use chrono::Duration;
use serde_json::json;

/// The 6-digit code in a mail text.
fn code_in(text: &str) -> String {
    text.split_whitespace()
        .find(|w| w.len() == 6 && w.bytes().all(|b| b.is_ascii_digit()))
        .unwrap_or_else(|| panic!("no code in {text}"))
        .to_owned()
}

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

/// My Profile → password → a mailed single-use link → password on its page → QR →
/// code → done, signed in.
async fn enable_from_my_profile_with_a_mailed_link(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "authenticated"
    );
    let r = c
        .post("/api/v1/me/enrollment-link", json!({ "password": "wrong" }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("invalid_password"))
    );
    let r = c
        .post(
            "/api/v1/me/enrollment-link",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (202, Some("link_sent")),
        "{:?}",
        r.body
    );
    let expires: chrono::DateTime<chrono::Utc> = r.body["expires_at"]
        .as_str()
        .expect("expires_at")
        .parse()
        .expect("RFC 3339");
    let now = chrono::DateTime::from_timestamp(app.clock_now(), 0).expect("time");
    assert_eq!((expires - now).num_days(), 5);

    let text = nth_mail(&app, "enrollment-link", 1).await;
    assert!(text.contains("5 dagen"), "{text}");
    let token = link_token(&text, &app.url);

    // Someone with only the mailbox (another browser) gets nowhere without the password.
    let mailbox = app.client();
    let r = mailbox
        .get(&format!("/api/v1/enrollment-links/{token}"))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        (
            r.body["state"].as_str(),
            r.body["password_required"].as_bool()
        ),
        (Some("open"), Some(true))
    );
    let path = format!("/api/v1/enrollment-links/{token}");
    let r = mailbox.post(&path, json!({})).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("invalid_password"))
    );
    let r = mailbox.post(&path, json!({ "password": "guess" })).await;
    assert_eq!(r.status, 403);
    // Still usable by its owner after failed tries.
    let r = mailbox.post(&path, json!({ "password": PASSWORD })).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    let id = r.body["id"].as_str().expect("id").to_owned();
    // Only the set-up is open to this browser until the code is confirmed.
    assert_eq!(mailbox.get("/api/v1/me").await.status, 200);
    assert_eq!(
        mailbox
            .post(
                "/api/v1/me/enrollment-link",
                json!({ "password": PASSWORD })
            )
            .await
            .body["error"],
        "enrollment_required"
    );
    let r = mailbox
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = mailbox
        .post("/api/v1/me/enrollment-link", json!({ "password": "x" }))
        .await;
    assert_eq!(
        r.body["error"], "invalid_password",
        "now fully signed in: {:?}",
        r.body
    );

    // Used: it says so, and cannot be used again.
    let r = mailbox
        .get(&format!("/api/v1/enrollment-links/{token}"))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (410, Some("link_used"))
    );
    let r = app
        .client()
        .post(&path, json!({ "password": PASSWORD }))
        .await;
    assert_eq!(r.body["error"], "link_used");
    let ev: Vec<String> = events(&app, "an@example.be")
        .await
        .into_iter()
        .map(|e| e.0)
        .collect();
    for e in [
        "enrollment_link_sent",
        "enrollment_link_opened",
        "enrollment_link_invalid",
        "factor_added",
    ] {
        assert!(ev.contains(&e.to_owned()), "{e} missing from {ev:?}");
    }
}

/// Expired, superseded, unknown and malformed links; and a link is no way around an
/// existing second factor.
async fn links_expire_are_superseded_and_never_bypass_a_factor(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
    let ask = || {
        c.post(
            "/api/v1/me/enrollment-link",
            json!({ "password": PASSWORD }),
        )
    };
    assert_eq!(ask().await.status, 202);
    assert_eq!(ask().await.status, 202);
    let first = link_token(&nth_mail(&app, "enrollment-link", 1).await, &app.url);
    let second = link_token(&nth_mail(&app, "enrollment-link", 2).await, &app.url);
    let state = |t: String| {
        let c = app.client();
        async move { c.get(&format!("/api/v1/enrollment-links/{t}")).await }
    };
    assert_eq!(
        state(first.clone()).await.body["error"],
        "link_used",
        "a newer link ends the older"
    );
    assert_eq!(state(second.clone()).await.body["state"], "open");
    let r = state("A".repeat(43)).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (404, Some("invalid_link"))
    );
    assert_eq!(state("short".into()).await.status, 404);

    app.clock.advance(Duration::days(5));
    let r = state(second.clone()).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (410, Some("link_expired"))
    );
    let r = app
        .client()
        .post(
            &format!("/api/v1/enrollment-links/{second}"),
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.body["error"], "link_expired");

    // With an app set up, password + mailbox cannot add another phone: only a session
    // of the account that got past its code can.
    let c = app.client();
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    assert_eq!(
        c.post(
            "/api/v1/me/enrollment-link",
            json!({ "password": PASSWORD })
        )
        .await
        .status,
        202
    );
    let token = link_token(&nth_mail(&app, "enrollment-link", 3).await, &app.url);
    let path = format!("/api/v1/enrollment-links/{token}");
    let r = app
        .client()
        .post(&path, json!({ "password": PASSWORD }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("unauthenticated"))
    );
    assert_eq!(c.get(&path).await.body["password_required"], false);
    let r = c.post(&path, json!({})).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let other = r.body["secret"].as_str().expect("secret");
    assert_ne!(other, secret);
}

/// The same journeys through the pages (forms without JavaScript).
async fn pages_walk_both_journeys(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, login) = page(&c, "/login").await;
    assert!(login.contains("href=\"/secure\""), "{login}");

    let (status, form) = page(&c, "/secure").await;
    assert_eq!(status, 200);
    let r = submit(
        &c,
        &form,
        "/secure",
        &[("email", "an@example.be"), ("password", "nope")],
    )
    .await;
    assert_eq!(r.0, 401);
    assert!(r.1.contains("klopt niet"), "{}", r.1);
    let r = submit(
        &c,
        &form,
        "/secure",
        &[("email", "an@example.be"), ("password", PASSWORD)],
    )
    .await;
    assert_eq!((r.0, r.2.as_deref()), (303, Some("/secure/code")));
    let (_, code_page) = page(&c, "/secure/code").await;
    assert!(code_page.contains("Bevestig je e-mailadres"), "{code_page}");
    let code = code_in(&nth_mail(&app, "email-code", 1).await);
    let r = submit(
        &c,
        &code_page,
        "/secure/code",
        &[("code", &other_than(&code))],
    )
    .await;
    assert_eq!(r.0, 401);
    assert!(r.1.contains("klopt niet"), "{}", r.1);
    let r = submit(&c, &code_page, "/secure/code/resend", &[]).await;
    assert!(r.1.contains("nieuwe code"), "{}", r.1);
    let code = code_in(&nth_mail(&app, "email-code", 2).await);
    let r = submit(&c, &code_page, "/secure/code", &[("code", &code)]).await;
    assert_eq!((r.0, r.2.as_deref()), (303, Some("/account/2fa/enable")));
    let (_, choose) = page(&c, "/account/2fa/enable").await;
    assert!(
        choose.contains("name=\"method\"") && !choose.contains("id=\"password\""),
        "{choose}"
    );
    let r = submit(&c, &choose, "/account/2fa/enable", &[("method", "totp")]).await;
    assert_eq!(r.0, 303);
    let setup = r.2.expect("to the QR page");
    assert!(setup.starts_with("/account/2fa/setup/"), "{setup}");
    let (_, qr) = page(&c, &setup).await;
    let secret = key_on(&qr);
    let r = submit(&c, &qr, &setup, &[("code", &app.code(&secret))]).await;
    // The first factor comes with its recovery codes, shown once.
    assert_eq!(r.0, 200);
    assert!(
        r.1.contains("Je herstelcodes") && r.1.contains("account?done=enabled\""),
        "{}",
        r.1
    );
    let (status, profile) = page(&c, "/account?done=enabled").await;
    assert_eq!(status, 200, "signed in");
    assert!(profile.contains("Klaar!"), "{profile}");

    // My Profile of someone else: the link by mail, then the link's page.
    app.add_user("bo@example.be").await;
    let b = app.client_in(Some("en"));
    assert_eq!(b.login("bo@example.be", PASSWORD).await.status, 200);
    let (_, enable) = page(&b, "/account/2fa/enable").await;
    assert!(
        enable.contains("value=\"mail\"") && enable.contains("value=\"here\""),
        "{enable}"
    );
    let r = submit(
        &b,
        &enable,
        "/account/2fa/enable",
        &[("password", PASSWORD), ("delivery", "mail")],
    )
    .await;
    assert_eq!(r.0, 200);
    assert!(
        r.1.contains("Check your mailbox") && r.1.contains("5 days"),
        "{}",
        r.1
    );
    let text = nth_mail(&app, "enrollment-link", 1).await;
    assert!(
        text.contains("5 days"),
        "written in the language asked in: {text}"
    );
    let token = link_token(&text, &app.url);
    let link = format!("/enroll/{token}");

    let stranger = app.client_in(Some("en"));
    let (status, enroll) = page(&stranger, &link).await;
    assert_eq!(status, 200);
    assert!(
        enroll.contains("bo@example.be") && enroll.contains("id=\"password\""),
        "{enroll}"
    );
    let r = submit(&stranger, &enroll, &link, &[("password", "guess")]).await;
    assert_eq!(r.0, 403);
    assert!(
        r.1.contains("not right") || r.1.contains("wrong"),
        "{}",
        r.1
    );
    let r = submit(&stranger, &enroll, &link, &[("password", PASSWORD)]).await;
    assert_eq!(r.0, 303);
    let setup = r.2.expect("to the QR page");
    let (_, qr) = page(&stranger, &setup).await;
    assert!(qr.contains("<svg"), "{qr}");
    let secret = key_on(&qr);
    let r = submit(&stranger, &qr, &setup, &[("code", &app.code(&secret))]).await;
    assert_eq!(r.0, 200);
    assert!(r.1.contains("Your recovery codes"), "{}", r.1);
    assert_eq!(page(&stranger, "/account").await.0, 200);

    // The used link, an expired one and a made-up one each get a page that says so.
    let (status, used) = page(&app.client(), &link).await;
    assert_eq!(status, 410);
    assert!(
        used.contains("al gebruikt") && used.contains("Mijn profiel"),
        "{used}"
    );
    let (status, unknown) = page(&app.client(), &format!("/enroll/{}", "x".repeat(43))).await;
    assert_eq!(status, 404);
    assert!(unknown.contains("niet geldig"), "{unknown}");
    app.add_user("cy@example.be").await;
    let cy = app.client();
    assert_eq!(cy.login("cy@example.be", PASSWORD).await.status, 200);
    assert_eq!(
        cy.post(
            "/api/v1/me/enrollment-link",
            json!({ "password": PASSWORD })
        )
        .await
        .status,
        202
    );
    let cy_link = format!(
        "/enroll/{}",
        link_token(&nth_mail(&app, "enrollment-link", 2).await, &app.url)
    );
    app.clock.advance(Duration::days(6));
    let (status, expired) = page(&app.client(), &cy_link).await;
    assert_eq!(status, 410);
    assert!(expired.contains("verlopen"), "{expired}");
}

/// The key shown on a QR page (grouped in fours), without the spaces.
fn key_on(html: &str) -> String {
    let at = html.find("class=\"key\"").expect("key on the page");
    let rest = &html[at..];
    let start = rest.find('>').expect("tag") + 1;
    let end = rest.find("</").expect("end");
    rest[start..end].split_whitespace().collect()
}

crate::on_both_backends!(
    secure_your_account_now_with_a_mailed_code,
    mailed_codes_have_five_tries_ten_minutes_and_three_sends,
    at_most_five_code_mails_an_hour_per_account,
    securing_an_account_that_has_an_app_asks_its_code,
    enable_from_my_profile_with_a_mailed_link,
    links_expire_are_superseded_and_never_bypass_a_factor,
    pages_walk_both_journeys,
);
