//! The roll-out console over JSON: who may enter (401, 403 `forbidden`, 403
//! `step_up_required`, the step-up), and the accounts: the list with its filters
//! and keyset paging, creating with an invitation, the role, disabling, enabling
//! and deleting, each audited with the acting administrator.

use crate::kit::{nth_mail, Backend, Client, TestApp, PASSWORD};
use reqwest::Method;
use serde_json::{json, Value};

crate::on_both_backends!(
    only_administrators_with_a_recent_code_enter,
    accounts_are_listed_created_changed_and_removed,
    the_step_up_page_can_also_sign_in_again,
);

pub const ADMIN: &str = "beheer@example.be";

/// An administrator with an app, stepped up: the client and the app's secret.
pub async fn admin(app: &TestApp) -> (Client, String) {
    app.add_admin(ADMIN).await;
    let c = app.client();
    let (_, secret) = c.enroll(app, ADMIN).await;
    app.next_step();
    let r = c
        .post(
            "/api/v1/admin/step-up",
            json!({ "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("stepped_up")),
        "{:?}",
        r.body
    );
    (c, secret)
}

fn error(r: &crate::kit::Reply) -> (u16, Option<&str>) {
    (r.status, r.body["error"].as_str())
}

async fn only_administrators_with_a_recent_code_enter(backend: Backend) {
    let app = TestApp::start(backend).await;
    let stranger = app.client();
    assert_eq!(
        error(&stranger.get("/api/v1/admin/accounts").await),
        (401, Some("unauthenticated"))
    );

    // A user, even fully signed in with a code: forbidden, and audited.
    app.add_user("an@example.be").await;
    let user = app.client();
    let (_, key) = user.enroll(&app, "an@example.be").await;
    app.next_step();
    assert_eq!(
        error(&user.get("/api/v1/admin/accounts").await),
        (403, Some("forbidden"))
    );
    let r = user
        .post("/api/v1/admin/step-up", json!({ "code": app.code(&key) }))
        .await;
    assert_eq!(error(&r), (403, Some("forbidden")));

    // Half signed in (the code step waits): 401.
    let half = app.client();
    assert_eq!(
        half.login("an@example.be", PASSWORD).await.body["state"],
        "second_factor"
    );
    assert_eq!(error(&half.get("/api/v1/admin/accounts").await).0, 401);

    // An administrator whose session never proved a code: step up first.
    app.add_admin(ADMIN).await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, ADMIN).await;
    for path in [
        "/api/v1/admin/accounts",
        "/api/v1/admin/policy",
        "/api/v1/admin/rollout",
        "/api/v1/admin/audit",
    ] {
        assert_eq!(
            error(&c.get(path).await),
            (403, Some("step_up_required")),
            "{path}"
        );
    }
    let r = c
        .post("/api/v1/admin/step-up", json!({ "code": "000000" }))
        .await;
    assert_eq!(error(&r), (400, Some("invalid_code")));
    app.next_step();
    let code = app.code(&secret);
    let r = c
        .post("/api/v1/admin/step-up", json!({ "code": code }))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(r.body["valid_until"].as_str().is_some());
    // The same code twice is refused (replay).
    let r = c
        .post("/api/v1/admin/step-up", json!({ "code": code }))
        .await;
    assert_eq!(error(&r), (400, Some("invalid_code")));
    assert_eq!(c.get("/api/v1/admin/accounts").await.status, 200);

    // Fifteen minutes later the console asks again.
    app.clock.advance(chrono::Duration::minutes(16));
    assert_eq!(
        error(&c.get("/api/v1/admin/accounts").await),
        (403, Some("step_up_required"))
    );

    // A sign-in with the code counts as a fresh one.
    let fresh = app.client();
    assert_eq!(
        fresh.login(ADMIN, PASSWORD).await.body["state"],
        "second_factor"
    );
    app.next_step();
    let r = fresh
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(fresh.get("/api/v1/admin/accounts").await.status, 200);

    let events: Vec<String> = app
        .engine()
        .audit_log(500, None)
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.event)
        .collect();
    for e in ["admin_refused", "step_up_failed", "step_up_succeeded"] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
}

fn emails(page: &Value) -> Vec<String> {
    page["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["email"].as_str().expect("email").to_owned())
        .collect()
}

async fn accounts_are_listed_created_changed_and_removed(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (c, _) = admin(&app).await;
    for i in 0..7 {
        app.add_user(&format!("user{i}@example.be")).await;
    }
    app.add_user("info@example.be").await;
    let with_app = app.client();
    with_app.enroll(&app, "user3@example.be").await;

    // Keyset paging: pages of 3 cover everyone once, in address order.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let r = c
            .get(&format!("/api/v1/admin/accounts?limit=3&cursor={cursor}"))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let page = emails(&r.body);
        assert!(page.len() <= 3);
        seen.extend(page);
        match r.body["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted);
    assert_eq!(seen.len(), 9, "{seen:?}");

    // Filters.
    let r = c.get("/api/v1/admin/accounts?two_factor=app").await;
    assert_eq!(emails(&r.body), [ADMIN, "user3@example.be"]);
    let r = c
        .get("/api/v1/admin/accounts?two_factor=none&role=user&q=USER")
        .await;
    assert_eq!(emails(&r.body).len(), 6);
    let r = c.get("/api/v1/admin/accounts?shared_mailbox=true").await;
    assert_eq!(emails(&r.body), ["info@example.be"]);
    assert_eq!(r.body["accounts"][0]["shared_mailbox"], true);
    for bad in [
        "two_factor=maybe",
        "role=root",
        "cursor=%25%25",
        "limit=0",
        "limit=501",
        "inactive_since=gisteren",
    ] {
        let r = c.get(&format!("/api/v1/admin/accounts?{bad}")).await;
        assert_eq!(error(&r), (400, Some("invalid_request")), "{bad}");
    }

    // Create with an invitation: a mail with a link to choose a password.
    let r = c
        .post(
            "/api/v1/admin/accounts",
            json!({ "email": "nieuw@example.be", "name": "Nina Nieuw", "role": "support", "invite": true }),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        (r.body["role"].as_str(), r.body["two_factor"].as_str()),
        (Some("support"), Some("none"))
    );
    let id = r.body["id"].as_str().expect("id").to_owned();
    let mail = nth_mail(&app, "invite", 1).await;
    assert!(
        mail.contains("Kies je wachtwoord") || mail.contains("wachtwoord"),
        "{mail}"
    );
    let at = mail.find("/password/reset/").expect("the link") + "/password/reset/".len();
    let token: String = mail[at..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let r = app
        .client()
        .post(
            "/api/v1/password/reset",
            json!({ "token": token, "password": "Zonnebloem-tuin-2027" }),
        )
        .await;
    assert!(
        r.status < 300,
        "the invitation sets a password: {:?}",
        r.body
    );
    let nina = app.client();
    assert_eq!(
        nina.login("nieuw@example.be", "Zonnebloem-tuin-2027")
            .await
            .status,
        200
    );
    let r = c
        .post(
            "/api/v1/admin/accounts",
            json!({ "email": "nieuw@example.be" }),
        )
        .await;
    assert_eq!(error(&r), (409, Some("email_taken")));
    let r = c
        .post("/api/v1/admin/accounts", json!({ "email": "geen adres" }))
        .await;
    assert_eq!(error(&r), (400, Some("invalid_email")));

    // One account; a new invitation ends the first link.
    let path = format!("/api/v1/admin/accounts/{id}");
    let r = c.get(&path).await;
    assert_eq!(
        (r.status, r.body["email"].as_str()),
        (200, Some("nieuw@example.be"))
    );
    assert_eq!(
        r.body["last_sign_in_at"].as_str().map(|s| s.len() > 10),
        Some(true)
    );
    let r = c.post(&format!("{path}/invite"), json!({})).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let second = nth_mail(&app, "invite", 2).await;
    assert!(second.contains("/password/reset/"), "{second}");
    let r = c
        .get("/api/v1/admin/rollout/without-two-factor?role=support")
        .await;
    assert_eq!(r.status, 200);
    let support: Vec<&str> = r.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter_map(|a| a["email"].as_str())
        .collect();
    assert_eq!(support, ["nieuw@example.be"], "support staff without 2FA");

    // The role, before and after in the audit log.
    let r = c
        .send(Method::PATCH, &path, Some(json!({ "role": "user" })))
        .await;
    assert_eq!(
        (r.status, r.body["role"].as_str()),
        (200, Some("user")),
        "{:?}",
        r.body
    );
    let log = app
        .engine()
        .audit_log(500, Some("nieuw@example.be"))
        .await
        .expect("audit");
    let changed = log
        .iter()
        .find(|e| e.event == "account_role_changed")
        .expect("audited");
    let detail = changed.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains(ADMIN)
            && detail.contains("before=support")
            && detail.contains("after=user"),
        "{detail}"
    );

    // Disable: signed out at once, cannot sign in; enable: can again.
    let r = c.post(&format!("{path}/disable"), json!({})).await;
    assert_eq!((r.status, r.body["disabled"].as_bool()), (200, Some(true)));
    assert_eq!(
        nina.get("/api/v1/me").await.status,
        401,
        "its session ended"
    );
    assert_eq!(
        app.client()
            .login("nieuw@example.be", "Zonnebloem-tuin-2027")
            .await
            .status,
        401
    );
    let r = c.get("/api/v1/admin/accounts?disabled=true").await;
    assert_eq!(emails(&r.body), ["nieuw@example.be"]);
    let r = c.post(&format!("{path}/enable"), json!({})).await;
    assert_eq!(r.body["disabled"], false);
    assert_eq!(
        app.client()
            .login("nieuw@example.be", "Zonnebloem-tuin-2027")
            .await
            .status,
        200
    );

    // Delete: a reason is needed; the audit log keeps its records.
    let r = c.send(Method::DELETE, &path, None).await;
    assert_eq!(error(&r), (400, Some("reason_required")));
    let r = c
        .send(
            Method::DELETE,
            &format!("{path}?reason=Dubbel%20account"),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    assert_eq!(error(&c.get(&path).await), (404, Some("not_found")));
    let log = app
        .engine()
        .audit_log(500, Some("nieuw@example.be"))
        .await
        .expect("audit");
    let deleted = log
        .iter()
        .find(|e| e.event == "account_deleted")
        .expect("audited");
    assert!(deleted
        .detail
        .as_deref()
        .unwrap_or_default()
        .contains("Dubbel account"));
    assert!(
        log.iter().any(|e| e.event == "account_created"),
        "older records kept"
    );

    // An administrator cannot lock themselves out.
    let me = c.get(&format!("/api/v1/admin/accounts?q={ADMIN}")).await;
    let my_id = me.body["accounts"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mine = format!("/api/v1/admin/accounts/{my_id}");
    assert_eq!(
        error(
            &c.send(Method::PATCH, &mine, Some(json!({ "role": "user" })))
                .await
        )
        .0,
        403
    );
    assert_eq!(
        error(&c.post(&format!("{mine}/disable"), json!({})).await).0,
        403
    );
}

/// The step-up page's other way (for administrators whose code comes by SMS): a full
/// sign-in again, which comes back to the console page asked for, now open.
async fn the_step_up_page_can_also_sign_in_again(backend: Backend) {
    use crate::kit::{page, submit};
    let app = TestApp::start(backend).await;
    app.add_admin(ADMIN).await;
    let c = app.client();
    let (_, secret) = c.enroll(&app, ADMIN).await;
    let (status, _) = page(&c, "/admin/accounts").await;
    assert_eq!(status, 303, "to the step-up");
    let (status, html) = page(&c, "/admin/step-up?next=%2Fadmin%2Faccounts").await;
    assert_eq!(status, 200);
    let html = html.replace("&#x2f;", "/").replace("&#x3d;", "=");
    let at = html
        .find("/login?prompt=login")
        .expect("the way to sign in again");
    let again = html[at..html[at..].find('"').expect("end") + at].replace("&amp;", "&");
    let (status, login) = page(&c, &again).await;
    assert_eq!(status, 200, "the sign-in form, although signed in");
    let r = submit(
        &c,
        &login,
        "/login",
        &[("email", ADMIN), ("password", PASSWORD)],
    )
    .await;
    assert_eq!(
        r.2.as_deref(),
        Some("/login/code"),
        "the code is asked: {}",
        r.1
    );
    app.next_step();
    let (_, code_page) = page(&c, "/login/code").await;
    let r = submit(
        &c,
        &code_page,
        "/login/code",
        &[("code", &app.code(&secret))],
    )
    .await;
    let mut to = r.2.expect("onward");
    for _ in 0..3 {
        if to.ends_with("/admin/accounts") {
            break;
        }
        let r = crate::kit::get(&c, &to).await;
        to = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
    }
    assert!(
        to.ends_with("/admin/accounts"),
        "back to the console page: {to}"
    );
    assert_eq!(page(&c, "/admin/accounts").await.0, 200, "and it is open");
}
