//! Who may reset and change addresses, and the same from the command line.

use super::*;

crate::on_both_backends!(
    roles_decide_who_may_reset_and_change_addresses,
    command_line_resets_and_changes_addresses,
);

async fn roles_decide_who_may_reset_and_change_addresses(backend: Backend) {
    let app = TestApp::start(backend).await;
    add(&app, "an@example.be", "An", Role::User).await;
    add(&app, "bert@example.be", "Bert", Role::User).await;
    add(&app, "info@example.be", "Onthaal", Role::User).await;
    add(&app, "sam@example.be", "Sam", Role::Support).await;
    add(&app, "ada@example.be", "Ada", Role::Admin).await;
    add(&app, "alex@example.be", "Alex", Role::Admin).await;

    // Nobody signed in: 401, and the page sends to sign in.
    let stranger = app.client();
    let r = stranger.get("/api/v1/support/accounts").await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (s, location, _) = page(&stranger, "/support").await;
    assert_eq!((s, location.as_str()), (303, "/login"));

    let sam = signed_in(&app, "sam@example.be").await;
    let ada = signed_in(&app, "ada@example.be").await;
    let an_id = account_id(&sam, "an@example.be").await;
    let alex_id = account_id(&sam, "alex@example.be").await;
    let info_id = account_id(&sam, "info@example.be").await;

    // A plain user: 403 on the API and the pages, and no link in the header.
    let an = signed_in(&app, "an@example.be").await;
    for path in [
        "/api/v1/support/accounts?q=a".to_owned(),
        format!("/api/v1/support/accounts/{an_id}"),
    ] {
        let r = an.get(&path).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
    }
    let r = an
        .post(
            &format!("/api/v1/support/accounts/{an_id}/reset-2fa"),
            json!({ "reason": REASON }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("forbidden"))
    );
    for path in ["/support".to_owned(), format!("/support/accounts/{an_id}")] {
        let (s, _, html) = page(&an, &path).await;
        assert_eq!(s, 403, "{path}");
        assert!(
            html.contains("Je hebt geen toegang tot deze pagina."),
            "{html}"
        );
    }
    let (_, _, home) = page(&an, "/").await;
    assert!(!home.contains("href=\"/support\""));
    let (_, _, home) = page(&sam, "/").await;
    assert!(home.contains("href=\"/support\""));

    // Support cannot touch an admin; the page offers no form.
    let alex = sam
        .get(&format!("/api/v1/support/accounts/{alex_id}"))
        .await;
    assert_eq!(alex.body["manageable"], false);
    let r = sam
        .post(
            &format!("/api/v1/support/accounts/{alex_id}/reset-2fa"),
            json!({ "reason": REASON }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("forbidden"))
    );
    let alex_path = format!("/support/accounts/{alex_id}");
    let (s, _, html) = page(&sam, &alex_path).await;
    assert_eq!(s, 200);
    assert!(!html.contains("/reset-2fa\"") && html.contains("Alleen een beheerder"));
    let (s, _, html) = submit(
        &sam,
        &alex_path,
        &format!("{alex_path}/reset-2fa"),
        &[("reason", REASON)],
    )
    .await;
    assert_eq!(s, 403);
    assert!(html.contains("Je hebt geen toegang tot deze pagina."));

    // A reason is required.
    let reset_an = format!("/api/v1/support/accounts/{an_id}/reset-2fa");
    for body in [
        json!({ "reason": "" }),
        json!({ "reason": " \n " }),
        json!({}),
    ] {
        let r = sam.post(&reset_an, body.clone()).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (400, Some("reason_required")),
            "{body}"
        );
    }
    let an_path = format!("/support/accounts/{an_id}");
    let (s, _, html) = submit(
        &sam,
        &an_path,
        &format!("{an_path}/reset-2fa"),
        &[("reason", "  ")],
    )
    .await;
    assert_eq!(s, 400);
    assert!(
        html.contains("role=\"alert\"") && html.contains("Vul een reden in"),
        "{html}"
    );
    assert!(
        !audit(&app)
            .await
            .iter()
            .any(|(e, _, _)| e == "two_factor_reset"),
        "nothing was reset without a reason"
    );

    // An admin may reset an admin.
    let r = ada
        .post(
            &format!("/api/v1/support/accounts/{alex_id}/reset-2fa"),
            json!({ "reason": REASON }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("reset")),
        "{:?}",
        r.body
    );
    let expires =
        chrono::DateTime::parse_from_rfc3339(r.body["link_expires_at"].as_str().expect("time"))
            .expect("RFC 3339");
    assert!(expires.timestamp() > app.clock_now());
    let (to, text) = nth_mail(&app, "two-factor-reset", 1).await;
    assert!(
        to.contains("alex@example.be") && text.contains("/enroll/"),
        "{to} {text}"
    );

    // Only admins change addresses: info@ becomes a personal account.
    let email_of = |id: &str| format!("/api/v1/support/accounts/{id}/email");
    let r = sam
        .post(
            &email_of(&info_id),
            json!({ "email": "els.jansen@example.be" }),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (403, Some("forbidden"))
    );
    let r = ada
        .post(&email_of(&info_id), json!({ "email": "bert@example.be" }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (409, Some("email_taken"))
    );
    let r = ada
        .post(&email_of(&info_id), json!({ "email": "not an address" }))
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (400, Some("invalid_email"))
    );
    let r = ada
        .post(
            &email_of(&info_id),
            json!({ "email": "Els.Jansen@example.be" }),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["email"], "els.jansen@example.be");
    assert_eq!(r.body["shared_mailbox"], false);
    let log = audit(&app).await;
    let (_, _, detail) = log
        .iter()
        .find(|(e, _, _)| e == "email_changed")
        .expect("email_changed in the audit log");
    assert!(
        detail.contains("old=info@example.be")
            && detail.contains("new=els.jansen@example.be")
            && detail.contains("ada@example.be"),
        "{detail}"
    );
    assert!(
        log.iter().any(|(e, email, d)| e == "support_denied"
            && email == "sam@example.be"
            && d.contains("address change")),
        "refusals are audited: {log:?}"
    );

    // The same on the page: a taken address re-renders with an error, then it works.
    let info_path = format!("/support/accounts/{info_id}");
    let (s, _, html) = page(&ada, &info_path).await;
    assert_eq!(s, 200);
    assert!(html.contains("name=\"email\""));
    let (s, _, html) = submit(
        &ada,
        &info_path,
        &format!("{info_path}/email"),
        &[("email", "an@example.be")],
    )
    .await;
    assert_eq!(s, 409);
    assert!(
        html.contains("role=\"alert\"") && html.contains("Er bestaat al een account"),
        "{html}"
    );
    assert!(
        html.contains("value=\"an@example.be\""),
        "what was typed stays"
    );
    let (s, location, _) = submit(
        &ada,
        &info_path,
        &format!("{info_path}/email"),
        &[("email", "els@example.be")],
    )
    .await;
    assert_eq!(
        (s, location.as_str()),
        (303, format!("{info_path}?done=email").as_str())
    );
    let (s, _, html) = submit(
        &sam,
        &info_path,
        &format!("{info_path}/email"),
        &[("email", "x@example.be")],
    )
    .await;
    assert_eq!(s, 403, "{html}");

    // Unknown ids.
    for id in ["not-a-uuid", "00000000-0000-4000-8000-000000000000"] {
        let r = sam.get(&format!("/api/v1/support/accounts/{id}")).await;
        assert_eq!(
            (r.status, r.body["error"].as_str()),
            (404, Some("not_found")),
            "{id}"
        );
        let (s, _, _) = page(&sam, &format!("/support/accounts/{id}")).await;
        assert_eq!(s, 404, "{id}");
    }
    // Without the CSRF token the form is refused.
    let r = sam
        .http
        .post(format!("{}{an_path}/reset-2fa", app.url))
        .form(&[("reason", REASON)])
        .send()
        .await
        .expect("request");
    assert_eq!(r.status(), 403);
    // The JSON endpoints take JSON only (their CSRF defence).
    let r = sam
        .raw(
            &reset_an,
            "application/x-www-form-urlencoded",
            b"reason=x".to_vec(),
        )
        .await;
    assert_eq!(
        (r.status, r.body["error"].as_str()),
        (415, Some("unsupported_media_type"))
    );
}

/// Runs the `tweestap` binary on the app's data directory and database.
async fn tweestap(app: &TestApp, args: &[&str]) -> Output {
    let mut c = tweestap_on(app);
    c.args(args);
    output(c).await
}

async fn command_line_resets_and_changes_addresses(backend: Backend) {
    let app = TestApp::start(backend).await;
    // The command runs on the real clock; the server's follows it here.
    app.clock.set(chrono::Utc::now());
    add(&app, "an@example.be", "An", Role::User).await;
    add(&app, "info@example.be", "Onthaal", Role::User).await;
    let session_a = app.client();
    session_a.enroll(&app, "an@example.be").await;

    let o = tweestap(
        &app,
        &["user", "reset-2fa", "an@example.be", "--reason", REASON],
    )
    .await;
    assert!(o.status.success(), "{}", o.describe());
    let out = &o.stdout;
    assert!(
        out.contains("an@example.be has been reset")
            && out.contains("works until")
            && out.contains("queued"),
        "{}",
        o.describe()
    );
    assert_eq!(session_a.get("/api/v1/me").await.status, 401);
    // The running server's mail worker sends what the command queued.
    app.clock
        .set(chrono::Utc::now() + chrono::Duration::seconds(1));
    app.wake_mail();
    let (to, text) = nth_mail(&app, "two-factor-reset", 1).await;
    assert!(to.contains("an@example.be"), "{to}");
    assert!(text.contains(&format!("{}/enroll/", app.url)), "{text}");
    let log = audit(&app).await;
    assert!(
        log.iter().any(|(e, email, d)| e == "two_factor_reset"
            && email == "an@example.be"
            && d.contains("by=command line")
            && d.contains(REASON)),
        "{log:?}"
    );

    let o = tweestap(
        &app,
        &["user", "reset-2fa", "nobody@example.be", "--reason", REASON],
    )
    .await;
    assert!(!o.status.success(), "{}", o.describe());
    assert!(
        o.stderr
            .contains("no account with the e-mail address nobody@example.be"),
        "{}",
        o.describe()
    );
    let o = tweestap(
        &app,
        &["user", "reset-2fa", "an@example.be", "--reason", "  "],
    )
    .await;
    assert!(!o.status.success(), "{}", o.describe());
    assert!(o.stderr.contains("give a reason"), "{}", o.describe());
    let o = tweestap(&app, &["user", "reset-2fa", "an@example.be"]).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "--reason is required: {}",
        o.describe()
    );

    let o = tweestap(
        &app,
        &["user", "set-email", "info@example.be", "els@example.be"],
    )
    .await;
    assert!(o.status.success(), "{}", o.describe());
    assert!(
        o.stdout.contains("info@example.be is now els@example.be"),
        "{}",
        o.describe()
    );
    let log = audit(&app).await;
    assert!(
        log.iter().any(|(e, _, d)| e == "email_changed"
            && d.contains("old=info@example.be")
            && d.contains("new=els@example.be")),
        "{log:?}"
    );
    assert_eq!(
        signed_in(&app, "els@example.be")
            .await
            .get("/api/v1/me")
            .await
            .body["email"],
        "els@example.be"
    );

    let o = tweestap(
        &app,
        &["user", "set-email", "els@example.be", "an@example.be"],
    )
    .await;
    assert!(!o.status.success(), "{}", o.describe());
    assert!(o.stderr.contains("already exists"), "{}", o.describe());
    let o = tweestap(
        &app,
        &["user", "set-email", "info@example.be", "x@example.be"],
    )
    .await;
    assert!(!o.status.success(), "{}", o.describe());
    assert!(
        o.stderr
            .contains("no account with the e-mail address info@example.be"),
        "{}",
        o.describe()
    );
}
