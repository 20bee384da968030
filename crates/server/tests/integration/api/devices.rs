//! "Remember this device for 7 days", recovery codes, and the rules for removing
//! the last factor.

use crate::kit::{nth_mail, page, stored_texts, Backend, Client, TestApp, PASSWORD};
use chrono::Duration;
use serde_json::json;
use tweestap_domain::policy::TwoFactorMode;
use tweestap_domain::service::Actor;

/// Password then the app's code, optionally remembering the browser.
async fn sign_in_with_code(app: &TestApp, c: &Client, email: &str, secret: &str, remember: bool) {
    let r = c.login(email, PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor", "{:?}", r.body);
    app.next_step();
    let r = c
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(secret), "remember_device": remember }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

async fn remembered_browsers_skip_the_code_for_seven_days(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    app.add_user("bo@example.be").await;
    let (_, secret) = app.client().enroll(&app, "an@example.be").await;
    app.client().enroll(&app, "bo@example.be").await;

    let c = app.client();
    sign_in_with_code(&app, &c, "an@example.be", &secret, true).await;
    let me = c.get("/api/v1/me").await;
    let devices = me.body["remembered_devices"]
        .as_array()
        .expect("devices")
        .clone();
    assert_eq!(devices.len(), 1, "{:?}", me.body);
    assert_eq!(devices[0]["label"], "Browser · unknown system");
    assert_eq!(c.post("/api/v1/logout", json!({})).await.status, 200);

    // The same browser: no code step.
    let r = c.login("an@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "authenticated", "{:?}", r.body);
    // The cookie is bound to the account: someone else on this browser is asked.
    let r = c.login("bo@example.be", PASSWORD).await;
    assert_eq!(r.body["state"], "second_factor");
    // Another browser is asked; the password is still needed everywhere.
    let other = app.client();
    assert_eq!(
        other.login("an@example.be", PASSWORD).await.body["state"],
        "second_factor"
    );
    assert_eq!(c.login("an@example.be", "wrong").await.status, 401);

    // Six days and 23 hours later still remembered; at seven days asked again.
    app.clock.advance(Duration::days(7) - Duration::hours(1));
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "authenticated"
    );
    app.clock.advance(Duration::hours(1));
    assert_eq!(
        c.login("an@example.be", PASSWORD).await.body["state"],
        "second_factor"
    );
}

async fn devices_are_forgotten_on_request_and_after_security_changes(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let (first_id, secret) = app.client().enroll(&app, "an@example.be").await;
    let a = app.client();
    let b = app.client();
    sign_in_with_code(&app, &a, "an@example.be", &secret, true).await;
    sign_in_with_code(&app, &b, "an@example.be", &secret, true).await;
    let list = a.get("/api/v1/me/devices").await;
    let devices = list.body["devices"].as_array().expect("devices").clone();
    assert_eq!(devices.len(), 2, "{:?}", list.body);

    // Forget one: that browser is asked again, the other is not.
    let id = devices[0]["id"].as_str().expect("id");
    let forget = a
        .http
        .delete(format!("{}/api/v1/me/devices/{id}", a.base))
        .send()
        .await
        .expect("delete");
    assert_eq!(forget.status().as_u16(), 204);
    let ra = a.login("an@example.be", PASSWORD).await.body["state"].clone();
    let rb = b.login("an@example.be", PASSWORD).await.body["state"].clone();
    let mut got = vec![
        ra.as_str().unwrap_or_default().to_owned(),
        rb.as_str().unwrap_or_default().to_owned(),
    ];
    got.sort();
    assert_eq!(got, vec!["authenticated", "second_factor"]);

    // Removing a factor forgets every device.
    for c in [&a, &b] {
        if c.login("an@example.be", PASSWORD).await.body["state"] == "second_factor" {
            app.next_step();
            let r = c
                .post(
                    "/api/v1/login/second-factor",
                    json!({ "method": "totp", "code": app.code(&secret), "remember_device": true }),
                )
                .await;
            assert_eq!(r.status, 200, "{:?}", r.body);
        }
    }
    assert_eq!(
        a.get("/api/v1/me/devices").await.body["devices"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
    let (_, second_secret) = {
        let r = a
            .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
            .await;
        let s = r.body["secret"].as_str().expect("secret").to_owned();
        let id = r.body["id"].as_str().expect("id").to_owned();
        app.next_step();
        let c = a
            .post(
                &format!("/api/v1/me/factors/totp/{id}/confirm"),
                json!({ "code": app.code(&s) }),
            )
            .await;
        assert_eq!(c.status, 200, "{:?}", c.body);
        assert!(
            c.body.get("recovery_codes").is_none(),
            "only with the first factor"
        );
        (id, s)
    };
    assert_eq!(
        a.delete(
            &format!("/api/v1/me/factors/{first_id}"),
            json!({ "password": PASSWORD })
        )
        .await
        .status,
        204
    );
    assert_eq!(a.get("/api/v1/me/devices").await.body["devices"], json!([]));
    assert_eq!(
        b.login("an@example.be", PASSWORD).await.body["state"],
        "second_factor"
    );

    // A support reset forgets them too.
    sign_in_with_code(&app, &b, "an@example.be", &second_secret, true).await;
    let account = app
        .engine()
        .account_by_email("an@example.be")
        .await
        .expect("account");
    app.engine()
        .reset_two_factor(
            Actor::Console,
            account.id,
            "phone lost",
            &app.url,
            &Default::default(),
        )
        .await
        .expect("reset");
    let devices = app.engine().devices(account.id).await.expect("devices");
    assert!(devices.is_empty());
    assert_eq!(
        app.engine()
            .recovery_codes_left(account.id)
            .await
            .expect("left"),
        0
    );
}

async fn recovery_codes_work_once_each_and_can_be_renewed(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(c.login("an@example.be", PASSWORD).await.status, 200);
    let r = c
        .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
        .await;
    let secret = r.body["secret"].as_str().expect("secret").to_owned();
    let id = r.body["id"].as_str().expect("id").to_owned();
    let r = c
        .post(
            &format!("/api/v1/me/factors/totp/{id}/confirm"),
            json!({ "code": app.code(&secret) }),
        )
        .await;
    let codes: Vec<String> =
        serde_json::from_value(r.body["recovery_codes"].clone()).expect("ten codes");
    assert_eq!(codes.len(), 10);
    assert_eq!(c.get("/api/v1/me").await.body["recovery_codes_left"], 10);
    let macs = stored_texts(&app, "SELECT code_mac FROM recovery_codes").await;
    assert_eq!(macs.len(), 10);
    for code in &codes {
        let bare = code.replace('-', "");
        assert!(macs
            .iter()
            .all(|m| !m.contains(code.as_str()) && !m.contains(&bare)));
    }

    let d = app.client();
    let with = |code: &str| {
        let code = code.to_owned();
        let d = &d;
        async move {
            assert_eq!(
                d.login("an@example.be", PASSWORD).await.body["state"],
                "second_factor"
            );
            d.post(
                "/api/v1/login/second-factor",
                json!({ "method": "recovery_code", "code": code }),
            )
            .await
        }
    };
    // Typed in capitals with a space instead of the dash: still the code.
    let typed = codes[0].to_uppercase().replace('-', " ");
    let r = with(&typed).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = with(&codes[0]).await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("invalid_code"))
    );
    assert_eq!(c.get("/api/v1/me").await.body["recovery_codes_left"], 9);
    let mail = nth_mail(&app, "recovery-code-used", 1).await;
    assert!(
        mail.contains("herstelcode") && mail.contains(" 9 "),
        "{mail}"
    );

    // New codes need the password; the old ones die.
    let r = c
        .post("/api/v1/me/recovery-codes", json!({ "password": "wrong" }))
        .await;
    assert_eq!(r.status, 403);
    let r = c
        .post("/api/v1/me/recovery-codes", json!({ "password": PASSWORD }))
        .await;
    let fresh: Vec<String> =
        serde_json::from_value(r.body["recovery_codes"].clone()).expect("codes");
    assert_eq!(fresh.len(), 10);
    assert_eq!(with(&codes[1]).await.status, 401);
    assert_eq!(with(&fresh[9]).await.status, 200);
    let events: Vec<String> = app
        .engine()
        .audit_log(200, Some("an@example.be"))
        .await
        .expect("audit")
        .into_iter()
        .map(|r| r.event)
        .collect();
    assert_eq!(
        events.iter().filter(|e| *e == "recovery_code_used").count(),
        2
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| *e == "recovery_codes_issued")
            .count(),
        2
    );
}

async fn the_last_factor_stays_while_required_and_needs_a_yes_while_optional(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.policy.roles.admin.two_factor = Some(TwoFactorMode::Required);
    })
    .await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (id, _) = c.enroll(&app, "an@example.be").await;

    // Optional: the pages ask for a "yes, I understand" first.
    let form = page(&c, &format!("/account/factors/{id}/remove")).await.1;
    assert!(form.contains("name=\"confirm_last\""), "{form}");
    let at = form.find("name=\"csrf\" value=\"").expect("csrf") + 19;
    let csrf = form[at..at + 64].to_owned();
    let post = |fields: Vec<(&'static str, String)>| {
        let c = &c;
        let id = id.clone();
        async move {
            c.http
                .post(format!("{}/account/factors/{id}/remove", c.base))
                .form(&fields)
                .send()
                .await
                .expect("post")
        }
    };
    let r = post(vec![("csrf", csrf.clone()), ("password", PASSWORD.into())]).await;
    assert_eq!(r.status().as_u16(), 403);
    assert!(r
        .text()
        .await
        .expect("text")
        .contains("laatste verificatiemethode"));
    let r = post(vec![
        ("csrf", csrf),
        ("password", PASSWORD.into()),
        ("confirm_last", "1".into()),
    ])
    .await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(c.get("/api/v1/me").await.body["factors"], json!([]));

    // Required (admins here): the last factor cannot go.
    app.add_admin("ad@example.be").await;
    let admin = app.client();
    let admin_factor = {
        let r = admin.login("ad@example.be", PASSWORD).await;
        assert_eq!(r.body["state"], "enrollment_required");
        let r = admin.post("/api/v1/me/factors/totp", json!({})).await;
        let s = r.body["secret"].as_str().expect("secret").to_owned();
        let id = r.body["id"].as_str().expect("id").to_owned();
        let r = admin
            .post(
                &format!("/api/v1/me/factors/totp/{id}/confirm"),
                json!({ "code": app.code(&s) }),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        id
    };
    let r = admin
        .delete(
            &format!("/api/v1/me/factors/{admin_factor}"),
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (409, Some("last_factor_required"))
    );
}

/// The pages: the codes download as a text file (the server keeps none) and new
/// ones can be made with the password.
async fn recovery_code_pages_download_and_renew(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    c.enroll(&app, "an@example.be").await;
    let form = page(&c, "/account/recovery-codes").await.1;
    assert!(form.contains("id=\"password\""), "{form}");
    let at = form.find("name=\"csrf\" value=\"").expect("csrf") + 19;
    let csrf = form[at..at + 64].to_owned();
    let r = c
        .http
        .post(format!("{}/account/recovery-codes", c.base))
        .form(&[("csrf", csrf.as_str()), ("password", PASSWORD)])
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.expect("html");
    let codes: Vec<String> = html
        .split("<code>")
        .skip(1)
        .filter_map(|p| p.split("</code>").next())
        .map(str::to_owned)
        .collect();
    assert_eq!(codes.len(), 10, "{html}");
    assert!(
        html.contains("@media print") || html.contains("no-print"),
        "printable"
    );

    let at = html.find("name=\"csrf\" value=\"").expect("csrf") + 19;
    let csrf = html[at..at + 64].to_owned();
    let mut fields: Vec<(&str, &str)> = codes.iter().map(|c| ("code", c.as_str())).collect();
    fields.push(("code", "<script>alert(1)</script>"));
    fields.push(("csrf", &csrf));
    let r = c
        .http
        .post(format!("{}/account/recovery-codes/download", c.base))
        .form(&fields)
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 200);
    let disposition = r.headers()["content-disposition"]
        .to_str()
        .expect("ascii")
        .to_owned();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    assert!(r.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/plain"));
    let text = r.text().await.expect("text");
    for code in &codes {
        assert!(text.contains(code.as_str()), "{text}");
    }
    assert!(!text.contains("script"), "only code-shaped values: {text}");
    let profile = page(&c, "/account").await.1;
    assert!(profile.contains("Nog 10 herstelcodes over."), "{profile}");
}

crate::on_both_backends!(
    recovery_code_pages_download_and_renew,
    remembered_browsers_skip_the_code_for_seven_days,
    devices_are_forgotten_on_request_and_after_security_changes,
    recovery_codes_work_once_each_and_can_be_renewed,
    the_last_factor_stays_while_required_and_needs_a_yes_while_optional,
);
