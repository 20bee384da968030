//! `[policy] two_factor` / `required_from`: a mandatory date.

use crate::kit::{page, Backend, TestApp, PASSWORD};
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

/// Before the date, pages remind the user with the days left, and "Later" hides the
/// reminder for this browser session only.
async fn the_banner_counts_down_and_can_be_postponed(backend: Backend) {
    let app = TestApp::start_configured(backend, from_march_11).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
    let (status, home) = page(&c, "/").await;
    assert_eq!(status, 200);
    assert!(
        home.contains("Tweestapsverificatie wordt verplicht vanaf 11 maart 2026")
            && home.contains("Nog 10 dagen"),
        "{home}"
    );
    let (_, profile) = page(&c, "/account").await;
    assert!(profile.contains("Nog 10 dagen"), "{profile}");

    // "Later" needs the form's CSRF token.
    let forged = c
        .http
        .post(format!("{}/account/2fa/later", c.base))
        .form(&[("csrf", "0")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status().as_u16(), 403);
    let at = home.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = home[at..at + 64].to_owned();
    let later = c
        .http
        .post(format!("{}/account/2fa/later", c.base))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .expect("post");
    assert_eq!(later.status().as_u16(), 303);
    let (_, home) = page(&c, "/").await;
    assert!(!home.contains("Nog 10 dagen"), "postponed: {home}");

    // Another browser (or the next browser session) is reminded again, a day closer.
    app.clock.advance(chrono::Duration::days(1));
    let other = app.client();
    assert_eq!(other.login("an@example.be", PASSWORD).await.status, 200);
    let (_, profile) = page(&other, "/account").await;
    assert!(profile.contains("Nog 9 dagen"), "{profile}");

    // With an app set up there is nothing to remind of.
    let fresh = app.client();
    app.add_user("bo@example.be").await;
    fresh.enroll(&app, "bo@example.be").await;
    let (_, home) = page(&fresh, "/").await;
    assert!(!home.contains("wordt verplicht"), "{home}");
}

/// From the date on, the pages take a user without a factor straight from the
/// password into the set-up, and nowhere else.
async fn pages_lead_straight_into_set_up_once_required(backend: Backend) {
    let app = TestApp::start_configured(backend, from_march_11).await;
    app.add_user("an@example.be").await;
    app.clock.advance(chrono::Duration::days(10));
    let c = app.client();
    let (_, login) = page(&c, "/login").await;
    let at = login.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    let csrf = login[at..at + 64].to_owned();
    let r = c
        .http
        .post(format!("{}/login", c.base))
        .form(&[
            ("email", "an@example.be"),
            ("password", PASSWORD),
            ("csrf", csrf.as_str()),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()["location"], "/account/2fa/enable");
    for path in ["/", "/account"] {
        let r = c
            .http
            .get(format!("{}{path}", c.base))
            .send()
            .await
            .expect("get");
        assert_eq!(
            (r.status().as_u16(), r.headers().get("location").cloned()),
            (303, Some("/account/2fa/enable".parse().expect("header"))),
            "{path} leads back to the set-up"
        );
    }
    // The password was just given: only the method is left to choose.
    let (status, enable) = page(&c, "/account/2fa/enable").await;
    assert_eq!(status, 200);
    assert!(
        enable.contains("verplicht") && enable.contains("name=\"method\""),
        "{enable}"
    );
    assert!(!enable.contains("id=\"password\""), "{enable}");
}

/// Shared mailboxes: a warning while setting up, or a refusal when policy says so.
async fn shared_mailboxes_are_warned_or_refused(backend: Backend) {
    let app = TestApp::start(backend.clone()).await;
    app.add_user("info@example.be").await;
    let c = app.client();
    assert_eq!(c.login("info@example.be", PASSWORD).await.status, 200);
    let r = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    assert_eq!((r.status, &r.body["shared_mailbox"]), (200, &json!(true)));
    let id = r.body["id"].as_str().expect("id").to_owned();
    let (_, setup) = page(&c, &format!("/account/2fa/setup/{id}")).await;
    assert!(setup.contains("dit lijkt een gedeeld adres"), "{setup}");
    // Same database on PostgreSQL: other addresses from here on.
    drop(app);

    let app = TestApp::start_configured(backend, |c| c.policy.refuse_shared_mailboxes = true).await;
    app.add_user("secretariaat@example.be").await;
    app.add_user("bo@example.be").await;
    let c = app.client();
    assert_eq!(
        c.login("secretariaat@example.be", PASSWORD).await.status,
        200
    );
    let r = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (409, Some("shared_mailbox"))
    );
    let personal = app.client();
    assert_eq!(personal.login("bo@example.be", PASSWORD).await.status, 200);
    let r = personal
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    assert_eq!((r.status, &r.body["shared_mailbox"]), (200, &json!(false)));
}

crate::on_both_backends!(
    shared_mailboxes_are_warned_or_refused,
    pages_lead_straight_into_set_up_once_required,
    the_banner_counts_down_and_can_be_postponed,
    before_the_date_optional_after_it_enrolment_is_required,
    admins_can_be_required_earlier,
    off_never_asks,
    required_without_date_requires_at_once,
);
