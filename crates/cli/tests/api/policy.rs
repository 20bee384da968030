//! `[policy] two_factor` / `required_from`: a mandatory date.

use crate::support::{Backend, TestApp, PASSWORD};
use serde_json::json;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::policy::TwoFactorMode;

fn date(s: &str) -> Option<chrono::NaiveDate> {
    s.parse().ok()
}

/// The clock starts at 2026-03-01 09:00 UTC.
fn from_march_11(c: &mut Config) {
    c.policy.two_factor = TwoFactorMode::Optional;
    c.policy.required_from = date("2026-03-11");
}

async fn before_the_date_optional_after_it_enrolment_is_required(backend: Backend) {
    let app = TestApp::start_configured(backend, from_march_11).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let r = c.login("an@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated");
    let me = c.get("/api/v1/me").await;
    assert_eq!(
        me.body["two_factor"],
        json!({ "required": false, "required_from": "2026-03-11" })
    );
    assert_eq!(c.post("/api/v1/logout", json!({})).await.status, 200);

    // 10 days on: the date has come (midnight UTC).
    app.clock.advance(chrono::Duration::days(10));
    let r = c.login("an@example.be", PASSWORD).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("enrollment_required"))
    );
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["two_factor"]["required"], true);
    let refused = c
        .delete(
            "/api/v1/me/factors/00000000-0000-0000-0000-000000000000",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (refused.status, refused.body["error"].as_str()),
        (403, Some("enrollment_required"))
    );
    let audit = app.engine().store().list_audit(100, None).await.unwrap();
    assert!(audit.iter().any(|a| a.event == "enrollment_required"));

    // Setting up works and ends in a full session.
    let b = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(b.status, 200, "{:?}", b.body);
    let secret = b.body["secret"].as_str().unwrap().to_owned();
    let id = b.body["id"].as_str().unwrap().to_owned();
    let done = c
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(done.status, 200, "{:?}", done.body);
    let remove = c
        .delete(
            "/api/v1/me/factors/00000000-0000-0000-0000-000000000000",
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(remove.status, 404, "a full session: {:?}", remove.body);
    assert_eq!(c.post("/api/v1/logout", json!({})).await.status, 200);

    // The next sign-in asks for the code.
    let r = c.login("an@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor");
}

async fn admins_can_be_required_earlier(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        from_march_11(c);
        c.policy.roles.admin.required_from = date("2026-02-01");
    })
    .await;
    app.add_user("an@example.be").await;
    app.engine()
        .add_account("baas@example.be", "Baas", Role::Admin, PASSWORD)
        .await
        .unwrap();
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "authenticated"
    );
    let c = app.client();
    assert_eq!(
        c.login("baas@example.be", PASSWORD).await.body["state"],
        "enrollment_required"
    );
}

async fn off_never_asks(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.policy.two_factor = TwoFactorMode::Off;
        c.policy.required_from = date("2026-01-01");
    })
    .await;
    app.add_user("an@example.be").await;
    app.clock.advance(chrono::Duration::days(400));
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "authenticated"
    );
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.body["two_factor"]["required"], false);
}

async fn required_without_date_requires_at_once(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.policy.two_factor = TwoFactorMode::Required;
    })
    .await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "enrollment_required"
    );
    let r = c.get("/api/v1/me").await;
    assert_eq!(r.status, 200);
}

crate::on_both_backends!(
    before_the_date_optional_after_it_enrolment_is_required,
    admins_can_be_required_earlier,
    off_never_asks,
    required_without_date_requires_at_once,
);
