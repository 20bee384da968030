//! The roll-out over JSON: the policy stored for every node (a change with only
//! what changes, a refused value naming its field), the dashboard's counts and
//! series, the reminder campaign (each stage once per account, also with two nodes
//! and an injected clock), and the audit log with its filters and CSV.

use super::admin_console::{admin, ADMIN};
use crate::kit::{Backend, TestApp};
use chrono::TimeZone;
use reqwest::Method;
use serde_json::json;

crate::on_both_backends!(
    the_policy_is_stored_for_every_node_and_refuses_bad_values,
    the_dashboard_counts_and_reminders_go_once_per_stage,
    the_audit_log_filters_pages_and_exports,
    reminders_run_from_the_command_line,
    old_audit_records_are_pruned_after_the_retention,
);

async fn the_policy_is_stored_for_every_node_and_refuses_bad_values(backend: Backend) {
    let app = TestApp::start(backend).await;
    let other = TestApp::second_node(&app, String::new()).await;
    let (c, _) = admin(&app).await;
    let r = c.get("/api/v1/admin/policy").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["roles"]["user"]["two_factor"], "optional");
    assert_eq!(r.body["remember_device_days"], 7);
    assert_eq!(r.body["reminder_days"], json!([30, 14, 7, 1]));

    // Only what changes.
    let r = c
        .send(
            Method::PUT,
            "/api/v1/admin/policy",
            Some(json!({"roles": {"user": {"two_factor": "required", "required_from": "2027-01-01"}}, "remember_device_days": 3})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["roles"]["user"]["required_from"], "2027-01-01");
    assert_eq!(r.body["roles"]["support"]["two_factor"], "optional");
    assert_eq!(r.body["remember_device_days"], 3);

    // The other node applies it within seconds.
    let mut applied = false;
    for _ in 0..100 {
        if other.engine().policy().remember_device_days == 3 {
            applied = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(applied, "the second node reads the stored policy");

    for (patch, field) in [
        (
            json!({"roles": {"user": {"required_from": "1 januari"}}}),
            "roles.user.required_from",
        ),
        (
            json!({"roles": {"admin": {"methods": []}}}),
            "roles.admin.methods",
        ),
        (
            json!({"sms": {"per_ip_per_hour": 5000}}),
            "sms.per_ip_per_hour",
        ),
        (
            json!({"remember_device_days": "zeven"}),
            "remember_device_days",
        ),
    ] {
        let r = c
            .send(Method::PUT, "/api/v1/admin/policy", Some(patch.clone()))
            .await;
        assert_eq!(
            (r.status, r.body["error"].as_str(), r.body["field"].as_str()),
            (400, Some("invalid_policy"), Some(field)),
            "{patch}: {:?}",
            r.body
        );
    }
    assert_eq!(
        c.get("/api/v1/admin/policy").await.body["remember_device_days"],
        3,
        "unchanged"
    );

    // SMS left out for users: an SMS set-up is refused for them.
    let r = c
        .send(
            Method::PUT,
            "/api/v1/admin/policy",
            Some(json!({"roles": {"user": {"methods": ["app"]}}})),
        )
        .await;
    assert_eq!(r.status, 200);
    app.add_user("an@example.be").await;
    let an = app.client();
    assert_eq!(
        an.login("an@example.be", crate::kit::PASSWORD).await.status,
        200
    );
    let r = an
        .post(
            "/api/v1/me/factors/sms",
            json!({"phone": "0470 12 34 56", "password": crate::kit::PASSWORD}),
        )
        .await;
    assert_eq!(r.body["error"], "sms_unavailable", "{:?}", r.body);

    let log = app
        .engine()
        .audit_log(500, Some(ADMIN))
        .await
        .expect("audit");
    let changed = log
        .iter()
        .find(|e| e.event == "policy_changed")
        .expect("audited");
    let d = changed.detail.as_deref().unwrap_or_default();
    assert!(d.contains("before=") && d.contains("after="), "{d}");
}

async fn the_dashboard_counts_and_reminders_go_once_per_stage(backend: Backend) {
    let mut app = TestApp::start(backend).await;
    let (c, _) = admin(&app).await;
    for i in 0..4 {
        app.add_user(&format!("user{i}@example.be")).await;
    }
    app.client().enroll(&app, "user0@example.be").await;
    // The deadline 20 days ahead: the 30-day stage has passed before anyone was due.
    let today = chrono::DateTime::from_timestamp(app.clock_now(), 0)
        .expect("now")
        .date_naive();
    let deadline = today + chrono::Duration::days(20);
    let r = c
        .send(
            Method::PUT,
            "/api/v1/admin/policy",
            Some(json!({"roles": {"user": {"required_from": deadline.to_string()}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    let r = c.get("/api/v1/admin/rollout").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let user = &r.body["roles"]["user"];
    assert_eq!(
        (
            user["none"].as_u64(),
            user["app"].as_u64(),
            user["total"].as_u64()
        ),
        (Some(3), Some(1), Some(4)),
        "{user}"
    );
    assert_eq!(user["days_left"], 20);
    assert_eq!(user["next_reminder"]["stage"], 14);
    assert_eq!(r.body["roles"]["admin"]["app"], 1);
    let series = r.body["series"].as_array().expect("series");
    assert!(
        series
            .iter()
            .any(|d| d["role"] == "user" && d["with_two_factor"] == 1),
        "{series:?}"
    );
    let (s, ct, csv) = c
        .get_csv("/api/v1/admin/rollout/without-two-factor?role=user")
        .await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"), "{ct}");
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(
        csv.starts_with("email,name\r\n") && !csv.contains("user0@"),
        "{csv}"
    );

    // 20 days left: the latest stage whose day has come is the 30-day one; a
    // person gets it once, not the stages before it as well.
    let r = c.post("/api/v1/admin/reminders/run", json!({})).await;
    let sent = r.body["sent"].as_array().expect("sent");
    assert_eq!(sent.len(), 3, "{:?}", r.body);
    assert!(sent
        .iter()
        .all(|s| s["stage"] == 30 && s["deadline"] == deadline.to_string()));
    assert_eq!(
        c.post("/api/v1/admin/reminders/run", json!({})).await.body["sent"],
        json!([])
    );
    let r = c.get("/api/v1/admin/reminders").await;
    assert_eq!(
        r.body["sent"].as_array().expect("sent").len(),
        3,
        "{:?}",
        r.body
    );
    assert_eq!(r.body["due"][0]["stage"], 30);

    // Six days on: the 14-day stage, once per account even with two nodes at once.
    app.clock.advance(chrono::Duration::days(6));
    let other = TestApp::second_node(&app, String::new()).await;
    other.clock.set(
        chrono::Utc
            .timestamp_opt(app.clock_now(), 0)
            .single()
            .expect("time"),
    );
    // The new node's hourly task runs at its start too: all together, one each.
    let (a, b) = tokio::join!(
        app.engine().send_reminders(),
        other.engine().send_reminders()
    );
    assert!(a.is_ok() && b.is_ok());
    let fourteen = app
        .engine()
        .sent_reminders(100)
        .await
        .expect("sent")
        .into_iter()
        .filter(|s| s.stage == 14)
        .count();
    assert_eq!(fourteen, 3, "three accounts without 2FA, one mail each");
    assert_eq!(
        app.engine().send_reminders().await.expect("again").len(),
        0,
        "each stage once"
    );
    let r = c.get("/api/v1/admin/reminders").await;
    assert_eq!(r.status, 401, "six idle days end the session: {:?}", r.body);

    // After a restart too; the 7-day stage a week later goes out again.
    app.restart().await;
    assert_eq!(
        app.engine()
            .send_reminders()
            .await
            .expect("restarted")
            .len(),
        0
    );
    app.clock.advance(chrono::Duration::days(7));
    // (The restarted node's own hourly run may take some of them: count the claims.)
    app.engine().send_reminders().await.expect("7 days");
    let seven = app
        .engine()
        .sent_reminders(100)
        .await
        .expect("sent")
        .into_iter()
        .filter(|s| s.stage == 7)
        .count();
    assert_eq!(seven, 3);
    app.clock.advance(chrono::Duration::days(30));
    assert_eq!(
        app.engine().send_reminders().await.expect("past").len(),
        0,
        "nothing after the deadline"
    );

    let mail = crate::kit::nth_mail(&app, "two-factor-reminder", 1).await;
    assert!(
        mail.contains("/secure") && mail.contains("tweestapsverificatie"),
        "{mail}"
    );
    // Every claim is audited (a node's own hourly run may still be writing its last).
    let engine = app.engine().clone();
    crate::kit::eventually(10, "nine reminder_sent events", || {
        let engine = engine.clone();
        async move {
            let log = engine.audit_log(1000, None).await.expect("audit");
            log.iter().filter(|e| e.event == "reminder_sent").count() == 9
        }
    })
    .await;
}

async fn the_audit_log_filters_pages_and_exports(backend: Backend) {
    let app = TestApp::start(backend).await;
    let (c, _) = admin(&app).await;
    app.add_user("an@example.be").await;
    for _ in 0..3 {
        app.client().login("an@example.be", "fout wachtwoord").await;
    }
    let r = c.get("/api/v1/admin/audit?event=login_failed").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let events = r.body["events"].as_array().expect("events");
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e["email"] == "an@example.be"));
    let r = c
        .get("/api/v1/admin/audit?event=login_failed&limit=2")
        .await;
    assert_eq!(r.body["events"].as_array().expect("events").len(), 2);
    let before = r.body["next_before"].as_i64().expect("a next page");
    let r = c
        .get(&format!(
            "/api/v1/admin/audit?event=login_failed&limit=2&before={before}"
        ))
        .await;
    assert_eq!(r.body["events"].as_array().expect("events").len(), 1);
    let r = c
        .get("/api/v1/admin/audit?from=2000-01-01T00:00:00Z&until=2000-01-02T00:00:00Z")
        .await;
    assert_eq!(r.body["events"], json!([]));
    assert_eq!(
        c.get("/api/v1/admin/audit?from=gisteren").await.body["error"],
        "invalid_request"
    );

    let (s, ct, csv) = c.get_csv("/api/v1/admin/audit?event=login_failed").await;
    assert_eq!(s, 200);
    assert!(ct.starts_with("text/csv"));
    assert!(
        csv.starts_with("id,at,event,account_id,email,ip,user_agent,detail\r\n"),
        "{csv}"
    );
    assert_eq!(csv.lines().count(), 4, "{csv}");
}

/// `tweestap reminders run` (on the wall clock): prints what it sent; a second run
/// sends nothing. `status` says what is due.
async fn reminders_run_from_the_command_line(backend: Backend) {
    use crate::kit::commands::{output, tweestap_on};
    let app = TestApp::start(backend).await;
    let (c, _) = admin(&app).await;
    for i in 0..2 {
        app.add_user(&format!("loket{i}@example.be")).await;
    }
    let deadline = chrono::Utc::now().date_naive() + chrono::Duration::days(10);
    let r = c
        .send(
            Method::PUT,
            "/api/v1/admin/policy",
            Some(json!({"roles": {"user": {"required_from": deadline.to_string()}}})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let run = |args: &'static [&'static str]| {
        let mut cmd = tweestap_on(&app);
        cmd.arg("reminders").args(args);
        output(cmd)
    };
    let status = run(&["status"]).await;
    assert!(status.status.success(), "{}", status.describe());
    assert!(
        status
            .stdout
            .contains(&format!("due today: 14 days before {deadline}")),
        "{}",
        status.describe()
    );
    let first = run(&["run"]).await;
    assert!(first.status.success(), "{}", first.describe());
    assert!(
        first.stdout.contains("loket0@example.be")
            && first.stdout.contains("2 reminder mail(s) queued"),
        "{}",
        first.describe()
    );
    let again = run(&["run"]).await;
    assert!(
        again.stdout.contains("0 reminder mail(s) queued"),
        "{}",
        again.describe()
    );
}

/// `[console] audit_retention_days`: older records go (with an `audit_pruned`
/// record saying how many); newer ones stay; without it nothing goes.
async fn old_audit_records_are_pruned_after_the_retention(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| c.console.audit_retention_days = 30).await;
    app.add_user("an@example.be").await;
    for _ in 0..3 {
        app.client().login("an@example.be", "fout wachtwoord").await;
    }
    assert_eq!(
        app.engine().prune_audit().await.expect("prune"),
        0,
        "nothing old yet"
    );
    app.clock.advance(chrono::Duration::days(31));
    app.client().login("an@example.be", "nog eens fout").await;
    let removed = app.engine().prune_audit().await.expect("prune");
    assert!(
        removed >= 4,
        "the account's creation and three failures: {removed}"
    );
    let log = app.engine().audit_log(100, None).await.expect("audit");
    let events: Vec<&str> = log.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(
        events.iter().filter(|e| **e == "login_failed").count(),
        1,
        "{events:?}"
    );
    assert!(events.contains(&"audit_pruned"), "{events:?}");

    let keep = TestApp::start(Backend::Sqlite).await;
    keep.add_user("bo@example.be").await;
    keep.clock.advance(chrono::Duration::days(3650));
    assert_eq!(
        keep.engine().prune_audit().await.expect("prune"),
        0,
        "kept forever by default"
    );
}
