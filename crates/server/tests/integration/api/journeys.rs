use crate::kit::{Backend, TestApp, PASSWORD};
use serde_json::json;

async fn health_and_readiness(backend: Backend) {
    let app = TestApp::start(backend).await;
    let c = app.client();
    assert_eq!(c.get("/healthz").await.status, 200);
    assert_eq!(c.get("/readyz").await.status, 200);
    let spec = c.get("/api/v1/openapi.json").await;
    assert_eq!(spec.status, 200);
    assert!(
        spec.body["paths"]["/login/second-factor"].is_object(),
        "OpenAPI describes the API"
    );
}

async fn password_only_account_signs_in_and_out(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let r = c.login("AN@Example.be", PASSWORD).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("authenticated"))
    );
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["email"], "an@example.be");
    assert_eq!(me.body["role"], "user");
    assert_eq!(me.body["factors"], json!([]));
    assert_eq!(c.post("/api/v1/logout", json!({})).await.status, 200);
    assert_eq!(c.get("/api/v1/me").await.status, 401);
}

async fn enrol_then_sign_in_with_code(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);

    let r = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(r.status, 200);
    let secret = r.body["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "160-bit secret in base32");
    let uri = r.body["otpauth_uri"].as_str().unwrap();
    assert!(
        uri.starts_with("otpauth://totp/tweestap:an%40example.be?secret="),
        "{uri}"
    );
    assert!(
        uri.contains("issuer=tweestap")
            && uri.contains("algorithm=SHA1")
            && uri.contains("digits=6")
            && uri.contains("period=30")
    );
    assert!(r.body["qr_svg"].as_str().unwrap().starts_with("<svg"));
    let id = r.body["id"].as_str().unwrap();

    // Not active before it is confirmed.
    assert_eq!(c.get("/api/v1/me").await.body["factors"], json!([]));
    let wrong = c
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": "000000" }),
        )
        .await;
    assert_eq!(
        (wrong.status, wrong.body["error"].as_str()),
        (400, Some("invalid_code"))
    );
    let ok = c
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(ok.status, 200, "{:?}", ok.body);
    assert_eq!(ok.body["kind"], "totp");
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.body["factors"].as_array().unwrap().len(), 1);

    c.post("/api/v1/logout", json!({})).await;
    let r = c.login("an@example.be", PASSWORD).await;
    assert_eq!(
        r.body,
        json!({ "state": "second_factor", "methods": ["totp", "recovery_code"] })
    );
    // Half signed in is not signed in.
    assert_eq!(c.get("/api/v1/me").await.status, 401);
    app.next_step();
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.body, json!({ "state": "authenticated" }));
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.status, 200);
    assert!(me.body["factors"][0]["last_used_at"].is_string());
}

async fn codes_with_spaces_and_neighbouring_steps_are_accepted(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, "an@example.be").await;
    c.post("/api/v1/logout", json!({})).await;
    // A code of the previous step (phone clock a little slow), typed as apps show it.
    app.next_step();
    app.next_step();
    app.clock.advance(chrono::Duration::seconds(-30));
    let code = app.code(&secret);
    app.next_step();
    c.login("an@example.be", PASSWORD).await;
    let spaced = format!("{} {}", &code[..3], &code[3..]);
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": spaced }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn remove_factor_needs_the_password(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (id, _) = c.enroll(&app, "an@example.be").await;
    let r = c
        .delete(
            &format!("/api/v1/me/factors/{id}"),
            json!({ "password": "wrong password!" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("invalid_password"))
    );
    assert_eq!(
        c.delete(
            &format!("/api/v1/me/factors/{id}"),
            json!({ "password": PASSWORD })
        )
        .await
        .status,
        204
    );
    assert_eq!(
        c.delete(
            &format!("/api/v1/me/factors/{id}"),
            json!({ "password": PASSWORD })
        )
        .await
        .status,
        404
    );
    c.post("/api/v1/logout", json!({})).await;
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "authenticated"
    );
}

async fn audit_log_records_security_events_with_origin(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    c.login("an@example.be", "wrong password!").await;
    let (id, secret) = c.enroll(&app, "an@example.be").await;
    c.post("/api/v1/logout", json!({})).await;
    c.login("an@example.be", PASSWORD).await;
    c.post(
        "/api/v1/login/second-factor",
        json!({ "method": "totp", "code": "000000" }),
    )
    .await;
    app.next_step();
    c.post(
        "/api/v1/login/second-factor",
        json!({ "method": "totp", "code": app.code(&secret) }),
    )
    .await;
    c.delete(
        &format!("/api/v1/me/factors/{id}"),
        json!({ "password": PASSWORD }),
    )
    .await;

    let log = app
        .server
        .as_ref()
        .unwrap()
        .app
        .audit_log(100, Some("an@example.be"))
        .await
        .unwrap();
    let events: Vec<&str> = log.iter().rev().map(|r| r.event.as_str()).collect();
    for e in [
        "account_created",
        "login_failed",
        "login_succeeded",
        "factor_added",
        "logout",
        "code_failed",
        "code_succeeded",
        "factor_removed",
    ] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    let ok = log.iter().find(|r| r.event == "code_succeeded").unwrap();
    assert_eq!(ok.ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(ok.user_agent.as_deref(), Some("tweestap-tests/1.0"));
    assert!(ok.account_id.is_some());
}

crate::on_both_backends!(
    health_and_readiness,
    password_only_account_signs_in_and_out,
    enrol_then_sign_in_with_code,
    codes_with_spaces_and_neighbouring_steps_are_accepted,
    remove_factor_needs_the_password,
    audit_log_records_security_events_with_origin,
);
