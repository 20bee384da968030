//! "Enable" on My Profile with a mailed single-use link, and both journeys on the
//! pages.

use super::*;
use crate::kit::sms::{nth_sms_in, sms_code_in};
use tweestap_domain::service::Actor;

crate::on_both_backends!(
    enable_from_my_profile_with_a_mailed_link,
    links_expire_are_superseded_and_never_bypass_a_factor,
    pages_walk_both_journeys,
    a_reset_link_sets_up_sms_over_json,
);

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
    // The method is chosen with the code: the app by default.
    assert!(
        code_page.contains("name=\"method\"") && !code_page.contains("id=\"password\""),
        "{code_page}"
    );
    let r = submit(
        &c,
        &code_page,
        "/secure/code",
        &[("code", &code), ("method", "totp")],
    )
    .await;
    assert_eq!(r.0, 303);
    let setup = r.2.expect("to the QR page");
    assert!(
        setup.starts_with("/account/2fa/setup/") && setup.ends_with("?via=secure"),
        "{setup}"
    );
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

/// After a support reset, the link over JSON offers what the page offers: the app or
/// SMS. A number SMS does not reach is refused before the link is used; a mobile
/// number gets a code, and its confirmation turns two-step verification on.
async fn a_reset_link_sets_up_sms_over_json(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("gust@example.be").await;
    app.client().enroll(&app, "gust@example.be").await;
    let account = app
        .engine()
        .account_by_email("gust@example.be")
        .await
        .expect("account");
    app.engine()
        .reset_two_factor(
            Actor::Console,
            account.id,
            "new phone",
            &app.url,
            &Default::default(),
        )
        .await
        .expect("reset");
    let token = link_token(&nth_mail(&app, "two-factor-reset", 1).await, &app.url);
    let path = format!("/api/v1/enrollment-links/{token}");
    let c = app.client();
    let r = c.get(&path).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["methods"], json!(["app", "sms"]), "{:?}", r.body);

    for (phone, error) in [
        (json!(null), "phone_not_a_number"),
        (json!("02 511 11 11"), "phone_not_mobile"),
        (json!("+44 7911 123456"), "sms_country_not_allowed"),
    ] {
        let r = c
            .post(
                &path,
                json!({ "password": PASSWORD, "method": "sms", "phone": phone }),
            )
            .await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (400, Some(error)),
            "{phone}: {:?}",
            r.body
        );
        assert_eq!(
            c.get(&path).await.status,
            200,
            "{phone}: the link still works"
        );
    }
    let r = c
        .post(&path, json!({ "password": PASSWORD, "method": "fax" }))
        .await;
    assert_eq!(r.status, 400, "an unknown method: {:?}", r.body);

    let r = c
        .post(
            &path,
            json!({ "password": PASSWORD, "method": "sms", "phone": "0470 12 34 56" }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (
            r.body["method"].as_str(),
            r.body["state"].as_str(),
            r.body["to"].as_str()
        ),
        (Some("sms"), Some("code_sent"), Some("+32 4•• •• •• 56")),
        "{:?}",
        r.body
    );
    let id = r.body["id"].as_str().expect("id").to_owned();
    assert_eq!(c.get(&path).await.body["error"], "link_used");
    let code = sms_code_in(&nth_sms_in(app.dir.path(), 1).await);
    let r = c
        .post(
            &format!("/api/v1/me/factors/sms/{id}/confirm"),
            json!({ "code": code }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let me = c.get("/api/v1/me").await;
    assert_eq!(me.status, 200);
    let kinds: Vec<&str> = me.body["factors"]
        .as_array()
        .expect("factors")
        .iter()
        .filter_map(|f| f["kind"].as_str())
        .collect();
    assert_eq!(kinds, ["sms"], "only the new phone: {:?}", me.body);
    // The link opened once: one audit row, with the method.
    let opened: Vec<Option<String>> = events(&app, "gust@example.be")
        .await
        .into_iter()
        .filter(|e| e.0 == "enrollment_link_opened")
        .map(|e| e.1)
        .collect();
    assert_eq!(opened, [Some("method=sms".to_owned())]);
}
