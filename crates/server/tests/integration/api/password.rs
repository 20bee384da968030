//! Forgotten password: the same answer for every address, a sealed single-use link
//! by mail, sessions ended, the second factor kept.

use crate::kit::{csrf_of, eventually, nth_mail, outbox, stored_texts, Backend, TestApp, PASSWORD};
use chrono::Duration;
use serde_json::json;

const NEW: &str = "a brand new sentence to remember";

/// The token of the link in a reset mail.
fn token_in(text: &str, base: &str) -> String {
    let prefix = format!("{base}/password/reset/");
    let at = text
        .find(&prefix)
        .unwrap_or_else(|| panic!("no link in {text}"))
        + prefix.len();
    text[at..at + 43].to_owned()
}

async fn events(app: &TestApp, email: Option<&str>) -> Vec<String> {
    app.engine()
        .audit_log(500, email)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.event)
        .collect()
}

async fn forgot_answers_alike_and_mails_a_single_use_link(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    let old_session = c; // signed in, to be ended by the reset

    // A browser remembered before the reset, to be forgotten by it.
    let remembered = app.client();
    assert_eq!(
        remembered.login("an@example.be", PASSWORD).await.body["state"],
        "second_factor"
    );
    app.next_step();
    let r = remembered
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret), "remember_device": true }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        remembered.login("an@example.be", PASSWORD).await.body["state"],
        "authenticated"
    );

    let other = app.client();
    // A forged Host must not steer the link (host header poisoning): the link below
    // must still start with the server's own address.
    let known = other
        .http
        .post(format!("{}/api/v1/password/forgot", other.base))
        .header("host", "evil.example")
        .json(&json!({ "email": "an@example.be" }))
        .send()
        .await
        .expect("request");
    let known = crate::kit::Reply {
        status: known.status().as_u16(),
        body: known.json().await.expect("json"),
    };
    let unknown = other
        .post(
            "/api/v1/password/forgot",
            json!({ "email": "nobody@example.be" }),
        )
        .await;
    let invalid = other
        .post(
            "/api/v1/password/forgot",
            json!({ "email": "not an address" }),
        )
        .await;
    assert_eq!(
        (known.status, &known.body),
        (202, &json!({"state": "sent_if_exists"}))
    );
    assert_eq!((unknown.status, &unknown.body), (known.status, &known.body));
    assert_eq!((invalid.status, &invalid.body), (known.status, &known.body));

    let text = nth_mail(&app, "password-reset", 1).await;
    assert!(text.contains("Hallo Test Gebruiker,"), "{text}");
    let token = token_in(&text, &app.url);
    // At rest the queued mail holds the link sealed and the reset table only a
    // hash: the token itself is nowhere in the database.
    let payloads = stored_texts(
        &app,
        "SELECT payload FROM mail_queue WHERE kind = 'password_reset'",
    )
    .await;
    assert_eq!(payloads.len(), 1, "the reset mail is in the queue");
    let hashes = stored_texts(&app, "SELECT token_hash FROM password_resets").await;
    assert_eq!(hashes.len(), 1);
    for stored in payloads.iter().chain(&hashes) {
        assert!(!stored.contains(&token), "{stored}");
    }

    // The page shows the form for a valid link.
    let page = other.get(&format!("/password/reset/{token}")).await;
    assert_eq!(page.status, 200);
    assert!(page
        .body
        .as_str()
        .unwrap()
        .contains("autocomplete=\"new-password\""));

    // A weak password leaves the link usable.
    let weak = other
        .post(
            "/api/v1/password/reset",
            json!({ "token": token, "password": "short" }),
        )
        .await;
    assert_eq!(
        (weak.status, weak.body["error"].as_str()),
        (400, Some("password_too_short"))
    );

    let ok = other
        .post(
            "/api/v1/password/reset",
            json!({ "token": token, "password": NEW }),
        )
        .await;
    assert_eq!(
        (ok.status, &ok.body),
        (200, &json!({"state": "password_changed"}))
    );
    let again = other
        .post(
            "/api/v1/password/reset",
            json!({ "token": token, "password": NEW }),
        )
        .await;
    assert_eq!(
        (again.status, again.body["error"].as_str()),
        (400, Some("invalid_token"))
    );

    // Old sessions are dead; the old password is refused; the new one still needs the code,
    // also in the browser remembered before.
    assert_eq!(old_session.get("/api/v1/me").await.status, 401);
    assert_eq!(
        remembered.login("an@example.be", NEW).await.body["state"],
        "second_factor"
    );
    let fresh = app.client();
    assert_eq!(fresh.login("an@example.be", PASSWORD).await.status, 401);
    let r = fresh.login("an@example.be", NEW).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("second_factor"))
    );
    app.next_step();
    let code = fresh
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(code.status, 200, "{:?}", code.body);

    let changed = nth_mail(&app, "password-changed", 1).await;
    assert!(changed.contains("gewijzigd"), "{changed}");
    let ev = events(&app, None).await;
    for e in [
        "password_reset_requested",
        "password_reset_completed",
        "password_reset_link_invalid",
    ] {
        assert!(ev.iter().any(|x| x == e), "{e} in {ev:?}");
    }
}

async fn links_expire_after_an_hour_and_a_new_one_ends_the_old(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let ask = || {
        c.post(
            "/api/v1/password/forgot",
            json!({ "email": "an@example.be" }),
        )
    };
    assert_eq!(ask().await.status, 202);
    let first = token_in(&nth_mail(&app, "password-reset", 1).await, &app.url);
    assert_eq!(ask().await.status, 202);
    let second = token_in(&nth_mail(&app, "password-reset", 2).await, &app.url);
    assert_ne!(first, second);
    let r = c
        .post(
            "/api/v1/password/reset",
            json!({ "token": first, "password": NEW }),
        )
        .await;
    assert_eq!(
        r.body["error"], "invalid_token",
        "the newer link ended the older"
    );
    let page = c.get(&format!("/password/reset/{first}")).await;
    assert_eq!(page.status, 400);
    assert!(page
        .body
        .as_str()
        .unwrap()
        .contains("href=\"/password/forgot\""));

    app.clock.advance(Duration::hours(1) + Duration::seconds(1));
    let r = c
        .post(
            "/api/v1/password/reset",
            json!({ "token": second, "password": NEW }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_token"))
    );
    assert_eq!(
        app.client().login("an@example.be", PASSWORD).await.status,
        200
    );
}

async fn at_most_three_reset_mails_an_hour(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    for _ in 0..5 {
        let r = c
            .post(
                "/api/v1/password/forgot",
                json!({ "email": "an@example.be" }),
            )
            .await;
        assert_eq!(
            (r.status, &r.body),
            (202, &json!({"state": "sent_if_exists"}))
        );
    }
    // The requests run after their answers, one at a time: the fifth one's audit
    // is the last thing any of them writes, so wait for it before counting mails.
    eventually(
        10,
        "all five requests audited (refused ones too)",
        || async {
            let ev = events(&app, Some("an@example.be")).await;
            let requested = ev.iter().filter(|e| *e == "password_reset_requested");
            requested.count() == 5
        },
    )
    .await;
    eventually(10, "all mail sent", || async {
        !app.mail_counts().await.contains_key("queued")
    })
    .await;
    assert_eq!(outbox(&app, "password-reset").len(), 3);

    app.clock.advance(Duration::hours(1) + Duration::seconds(1));
    assert_eq!(
        c.post(
            "/api/v1/password/forgot",
            json!({ "email": "an@example.be" })
        )
        .await
        .status,
        202
    );
    nth_mail(&app, "password-reset", 4).await;
}

async fn form(c: &crate::kit::Client, path: &str, fields: &[(&str, &str)]) -> (u16, String) {
    let r = c
        .http
        .post(format!("{}{path}", c.base))
        .form(fields)
        .send()
        .await
        .expect("request");
    (r.status().as_u16(), r.text().await.expect("body"))
}

async fn pages_reset_the_password_with_csrf(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client_in(Some("en"));
    let login = c.get("/login").await;
    assert!(login
        .body
        .as_str()
        .unwrap()
        .contains("href=\"/password/forgot\""));
    assert!(login
        .body
        .as_str()
        .unwrap()
        .contains("Forgot your password?"));
    let page = c.get("/password/forgot").await;
    let csrf = csrf_of(page.body.as_str().unwrap());
    let (status, _) = form(
        &c,
        "/password/forgot",
        &[("csrf", "0"), ("email", "an@example.be")],
    )
    .await;
    assert_eq!(status, 403);
    let known = form(
        &c,
        "/password/forgot",
        &[("csrf", &csrf), ("email", "an@example.be")],
    )
    .await;
    let unknown = form(
        &c,
        "/password/forgot",
        &[("csrf", &csrf), ("email", "x@example.be")],
    )
    .await;
    assert_eq!(known, unknown);
    assert!(known.1.contains("If an account exists for this address"));

    let text = nth_mail(&app, "password-reset", 1).await;
    assert!(text.contains("Hello Test Gebruiker,"), "{text}");
    let token = token_in(&text, &app.url);
    let path = format!("/password/reset/{token}");
    let page = c.get(&path).await;
    let csrf = csrf_of(page.body.as_str().unwrap());
    let (s, body) = form(
        &c,
        &path,
        &[("csrf", &csrf), ("password", NEW), ("password2", "other")],
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.contains("not the same"));
    let (s, body) = form(
        &c,
        &path,
        &[
            ("csrf", &csrf),
            ("password", "password"),
            ("password2", "password"),
        ],
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.contains("used too often"), "{body}");
    let (s, body) = form(
        &c,
        &path,
        &[("csrf", &csrf), ("password", NEW), ("password2", NEW)],
    )
    .await;
    assert_eq!(s, 200);
    assert!(body.contains("Your password has been changed"));
    let (s, body) = form(
        &c,
        &path,
        &[("csrf", &csrf), ("password", NEW), ("password2", NEW)],
    )
    .await;
    assert_eq!(s, 400);
    assert!(body.contains("expired or was already used"));
    assert_eq!(c.login("an@example.be", NEW).await.status, 200);
}

crate::on_both_backends!(
    forgot_answers_alike_and_mails_a_single_use_link,
    links_expire_after_an_hour_and_a_new_one_ends_the_old,
    at_most_three_reset_mails_an_hour,
    pages_reset_the_password_with_csrf,
);
