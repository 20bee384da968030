use crate::kit::{Backend, TestApp, PASSWORD};
use chrono::Duration;
use serde_json::json;

async fn unknown_email_and_wrong_password_answer_alike(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let wrong = c.login("an@example.be", "not the password").await;
    let unknown = c.login("nobody@example.be", "not the password").await;
    let malformed = c.login("not-an-address", "not the password").await;
    assert_eq!(wrong.status, 401);
    assert_eq!(wrong.body["error"], "invalid_credentials");
    assert_eq!(wrong.body, unknown.body);
    assert_eq!(wrong.body, malformed.body);
    assert_eq!((unknown.status, malformed.status), (401, 401));
}

async fn wrong_and_replayed_codes_are_refused(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    c.post("/api/v1/logout", json!({})).await;

    // The code that confirmed the set-up cannot sign in.
    c.login("an@example.be", PASSWORD).await;
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("invalid_code"))
    );

    app.next_step();
    let code = app.code(&secret);
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": code }),
        )
        .await;
    assert_eq!(r.status, 200);
    c.post("/api/v1/logout", json!({})).await;

    // Same code again in the same 30 seconds, from a fresh sign-in: a replay.
    let other = app.client();
    other.login("an@example.be", PASSWORD).await;
    let r = other
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": code }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("invalid_code"))
    );
    // Four failures so far with the replay: one short of the lock.
    for bad in ["12345", "abcdef", "１２３４５６"] {
        let r = other
            .post(
                "/api/v1/login/second-factor",
                json!({ "method": "totp", "code": bad }),
            )
            .await;
        assert_eq!(r.status, 401, "{bad:?}");
    }
    let r = other
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "fax", "code": "123456" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("unsupported_method"))
    );
}

async fn five_wrong_codes_lock_the_code_step_with_growing_back_off(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    c.post("/api/v1/logout", json!({})).await;
    c.login("an@example.be", PASSWORD).await;
    for i in 0..5 {
        let r = c
            .post(
                "/api/v1/login/second-factor",
                json!({ "method": "totp", "code": "000000" }),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (401, Some("invalid_code")),
            "attempt {i}"
        );
    }
    app.next_step();
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 429, "even the right code is refused while locked");
    assert_eq!(r.body["error"], "too_many_attempts");
    let retry = r.body["retry_after"].as_i64().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");

    // The password alone does not unlock it, and neither does a restart.
    app.restart().await;
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "second_factor"
    );
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 429);

    // After the lock, one more wrong code locks for twice as long.
    app.clock.advance(Duration::seconds(61));
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": "000000" }),
        )
        .await;
    assert_eq!(r.status, 401);
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(r.body["retry_after"].as_i64().unwrap() > 60);

    app.clock.advance(Duration::seconds(121));
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn sessions_expire_when_idle_absolute_or_left_half_done(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    app.add_user("bo@example.be").await;
    let c = app.client();
    c.login("an@example.be", PASSWORD).await;
    app.clock.advance(Duration::minutes(29));
    assert_eq!(
        c.get("/api/v1/me").await.status,
        200,
        "activity keeps it alive"
    );
    app.clock.advance(Duration::minutes(29));
    assert_eq!(c.get("/api/v1/me").await.status, 200);
    app.clock.advance(Duration::minutes(31));
    let r = c.get("/api/v1/me").await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("unauthenticated"))
    );

    // Absolute limit: active every 20 minutes, still ends after 12 hours.
    c.login("an@example.be", PASSWORD).await;
    for _ in 0..36 {
        app.clock.advance(Duration::minutes(20));
        assert_eq!(c.get("/api/v1/me").await.status, 200);
    }
    app.clock.advance(Duration::minutes(20));
    assert_eq!(c.get("/api/v1/me").await.status, 401);

    // A sign-in waiting for its code expires after 10 minutes.
    let b = app.client();
    let (_, secret) = b.enroll(&app, "bo@example.be").await;
    b.post("/api/v1/logout", json!({})).await;
    b.login("bo@example.be", PASSWORD).await;
    app.clock.advance(Duration::minutes(11));
    let r = b
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("unauthenticated"))
    );
}

async fn session_id_changes_at_each_step_and_old_ids_die(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    c.post("/api/v1/logout", json!({})).await;

    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = raw
        .post(format!("{}/api/v1/login", app.url))
        .json(&json!({ "email": "an@example.be", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"),
        "{set_cookie}"
    );
    let pending = set_cookie.split(';').next().unwrap().to_owned();
    app.next_step();
    let done = raw
        .post(format!("{}/api/v1/login/second-factor", app.url))
        .header("cookie", &pending)
        .json(&json!({ "method": "totp", "code": app.code(&secret) }))
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    let full = done.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    assert_ne!(pending, full);
    let me = |cookie: String| {
        let raw = raw.clone();
        let url = format!("{}/api/v1/me", app.url);
        async move {
            raw.get(url)
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(me(full.clone()).await, 200);
    assert_eq!(me(pending).await, 401);
    assert_eq!(me("tweestap_session=forged".into()).await, 401);
}

async fn malformed_input_gets_json_errors_never_a_panic(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        (
            "application/json",
            b"{\"email\":".to_vec(),
            400,
            "malformed_json",
        ),
        (
            "application/json",
            b"{\"email\": 5, \"password\": []}".to_vec(),
            400,
            "invalid_request",
        ),
        ("application/json", b"{}".to_vec(), 400, "invalid_request"),
        ("application/json", b"[]".to_vec(), 400, "invalid_request"),
        (
            "application/json",
            vec![0xff, 0xfe, 0x00],
            400,
            "malformed_json",
        ),
        (
            "text/plain",
            b"{\"email\":\"a\",\"password\":\"b\"}".to_vec(),
            415,
            "unsupported_media_type",
        ),
        (
            "application/x-www-form-urlencoded",
            b"email=a&password=b".to_vec(),
            415,
            "unsupported_media_type",
        ),
    ];
    for (ct, body, status, code) in cases {
        let r = c.raw("/api/v1/login", ct, body.clone()).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (status, Some(code)),
            "{ct} {body:?}"
        );
        assert!(r.body["message"].is_string());
    }
    let big = format!(
        "{{\"email\":\"{}\",\"password\":\"x\"}}",
        "a".repeat(200_000)
    );
    let r = c
        .raw("/api/v1/login", "application/json", big.into_bytes())
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (413, Some("payload_too_large"))
    );
    let r = c.get("/api/v1/nothing-here").await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (404, Some("not_found"))
    );
    let r = c.get("/api/v1/login").await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (405, Some("method_not_allowed"))
    );
    c.login("an@example.be", PASSWORD).await;
    let r = c
        .post(
            "/api/v1/me/factors/totp/not-a-uuid/confirm",
            json!({ "code": "123456" }),
        )
        .await;
    assert_eq!(r.status, 404);
    let r = c
        .post(
            "/api/v1/me/factors/totp",
            json!({ "password": "wrong password!" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("invalid_password"))
    );
    // The server is still fine.
    assert_eq!(c.get("/api/v1/me").await.status, 200);
}

async fn password_guessing_is_throttled_without_revealing_anything(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    for _ in 0..10 {
        assert_eq!(
            c.login("an@example.be", "guess guess guess").await.status,
            401
        );
    }
    // Throttled: the right password gets the very same answer as a wrong one.
    let r = c.login("an@example.be", PASSWORD).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body, c.login("nobody@example.be", PASSWORD).await.body);
    app.clock.advance(Duration::seconds(31));
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
    // A right password resets the count: one more wrong guess does not throttle.
    c.post("/api/v1/logout", json!({})).await;
    assert_eq!(
        c.login("an@example.be", "guess guess guess").await.status,
        401
    );
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);

    let log = app
        .server
        .as_ref()
        .unwrap()
        .app
        .audit_log(100, Some("an@example.be"))
        .await
        .unwrap();
    assert!(log.iter().any(|r| r.event == "password_locked_out"));
    assert!(log.iter().any(|r| r.event == "login_throttled"));
}

async fn signing_in_again_ends_the_previous_session(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let raw = reqwest::Client::new();
    let login = || {
        raw.post(format!("{}/api/v1/login", app.url))
            .json(&json!({ "email": "an@example.be", "password": PASSWORD }))
    };
    let first = login().send().await.unwrap();
    let first = first.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let second = login().header("cookie", &first).send().await.unwrap();
    assert_eq!(second.status(), 200);
    let me = raw
        .get(format!("{}/api/v1/me", app.url))
        .header("cookie", &first)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401, "the old session id no longer works");
}

crate::on_both_backends!(
    unknown_email_and_wrong_password_answer_alike,
    wrong_and_replayed_codes_are_refused,
    five_wrong_codes_lock_the_code_step_with_growing_back_off,
    sessions_expire_when_idle_absolute_or_left_half_done,
    session_id_changes_at_each_step_and_old_ids_die,
    malformed_input_gets_json_errors_never_a_panic,
    password_guessing_is_throttled_without_revealing_anything,
    signing_in_again_ends_the_previous_session,
);
