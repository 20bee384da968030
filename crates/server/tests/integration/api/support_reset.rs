//! Support: finding accounts (shared mailboxes flagged), resetting two-step
//! verification for someone who lost their phone, and admins giving a shared
//! mailbox a personal address — over the API, the pages and the command line.

use crate::support::{csrf_of, eventually, Backend, Client, TestApp, PASSWORD};
use serde_json::{json, Value};
use std::path::PathBuf;
use tweestap_domain::account::Role;

const REASON: &str = "New phone; identity checked by calling back";

async fn add(app: &TestApp, email: &str, name: &str, role: Role) {
    app.engine()
        .add_account(email, name, role, PASSWORD)
        .await
        .expect("account");
}

/// A client signed in with a password (the account has no factor).
async fn signed_in(app: &TestApp, email: &str) -> Client {
    let c = app.client();
    let r = c.login(email, PASSWORD).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (200, Some("authenticated")),
        "{email}: {:?}",
        r.body
    );
    c
}

async fn account_id(c: &Client, email: &str) -> String {
    let r = c.get(&format!("/api/v1/support/accounts?q={email}")).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["email"] == email)
        .unwrap_or_else(|| panic!("{email} not in {:?}", r.body))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn emails(body: &Value) -> Vec<&str> {
    body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| a["email"].as_str().expect("email"))
        .collect()
}

/// GET a page: status, `Location` and body.
async fn page(c: &Client, path: &str) -> (u16, String, String) {
    let r = c
        .http
        .get(format!("{}{path}", c.base))
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, r.text().await.expect("body"))
}

/// POSTs a form with the CSRF token of the page at `from`: status, `Location`, body.
async fn submit(
    c: &Client,
    from: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (u16, String, String) {
    let (_, _, html) = page(c, from).await;
    let csrf = csrf_of(&html);
    let mut form: Vec<(&str, &str)> = vec![("csrf", &csrf)];
    form.extend_from_slice(fields);
    let r = c
        .http
        .post(format!("{}{action}", c.base))
        .form(&form)
        .send()
        .await
        .expect("request");
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, location, r.text().await.expect("body"))
}

fn outbox(app: &TestApp, kind: &str) -> Vec<PathBuf> {
    let dir = app.dir.path().join("outbox");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "eml") && p.to_string_lossy().contains(kind));
    v.sort();
    v
}

/// The recipient and text part of the `n`-th (1-based) mail of `kind`, once it is there.
async fn nth_mail(app: &TestApp, kind: &str, n: usize) -> (String, String) {
    use mailparse::MailHeaderMap;
    eventually(20, &format!("{n} {kind} mail(s)"), || async {
        outbox(app, kind).len() >= n
    })
    .await;
    let raw = std::fs::read(&outbox(app, kind)[n - 1]).expect("eml");
    let m = mailparse::parse_mail(&raw).expect("RFC 5322");
    let to = m.headers.get_first_value("To").unwrap_or_default();
    let text = m
        .subparts
        .iter()
        .find(|p| p.ctype.mimetype == "text/plain")
        .expect("text part")
        .get_body()
        .expect("body");
    (to, text)
}

/// `(event, e-mail, detail)` of the audit log, oldest first.
async fn audit(app: &TestApp) -> Vec<(String, String, String)> {
    app.engine()
        .audit_log(500, None)
        .await
        .expect("audit")
        .into_iter()
        .rev()
        .map(|r| {
            (
                r.event,
                r.email.unwrap_or_default(),
                r.detail.unwrap_or_default(),
            )
        })
        .collect()
}

async fn support_resets_a_lost_phone(backend: Backend) {
    let app = TestApp::start(backend).await;
    add(&app, "an.peeters@example.be", "An Peeters", Role::User).await;
    add(&app, "info@example.be", "Onthaal", Role::User).await;
    add(&app, "sam@example.be", "Sam Helpdesk", Role::Support).await;
    // An's app is set up and signed in (session A).
    let session_a = app.client();
    let (_, secret) = session_a.enroll(&app, "an.peeters@example.be").await;
    assert_eq!(session_a.get("/api/v1/me").await.status, 200);

    let sam = signed_in(&app, "sam@example.be").await;
    // By part of the name, and by part of the address in another case.
    for q in ["peet", "AN.PEETERS@EXAM"] {
        let r = sam.get(&format!("/api/v1/support/accounts?q={q}")).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        assert_eq!(emails(&r.body), ["an.peeters@example.be"], "{q}");
        let a = &r.body["accounts"][0];
        assert_eq!(a["name"], "An Peeters");
        assert_eq!(a["role"], "user");
        assert_eq!(a["two_factor"], true);
        assert_eq!(a["shared_mailbox"], false);
        assert_eq!(a["manageable"], true);
    }
    let shared = sam.get("/api/v1/support/accounts?q=onthaal").await;
    assert_eq!(emails(&shared.body), ["info@example.be"]);
    assert_eq!(shared.body["accounts"][0]["shared_mailbox"], true);
    assert_eq!(shared.body["accounts"][0]["two_factor"], false);
    let all = sam.get("/api/v1/support/accounts").await;
    assert_eq!(emails(&all.body).len(), 3, "no query lists everyone");

    // The same on the pages, without JavaScript.
    let (s, _, html) = page(&sam, "/support?q=Peeters").await;
    assert_eq!(s, 200);
    assert!(html.contains("<label for=\"q\">Zoek op e-mailadres of naam</label>"));
    assert!(html.contains("an.peeters@example.be") && !html.contains("info@example.be"));
    assert!(
        html.contains("href=\"/support\""),
        "the header links to support"
    );
    let id = account_id(&sam, "an.peeters@example.be").await;
    assert!(html.contains(&format!("href=\"/support/accounts/{id}\"")));
    let (_, _, html) = page(&sam, "/support?q=info").await;
    assert!(html.contains("gedeeld adres"), "shared mailbox flagged");
    let en = app.client_in(Some("en"));
    assert_eq!(en.login("sam@example.be", PASSWORD).await.status, 200);
    let (_, _, html) = page(&en, "/support?q=info").await;
    assert!(html.contains("shared address") && html.contains("lang=\"en\""));

    let account_path = format!("/support/accounts/{id}");
    let (s, _, html) = page(&sam, &account_path).await;
    assert_eq!(s, 200);
    assert!(html.contains("Tweestapsverificatie opnieuw instellen"));
    assert!(html.contains(&format!("action=\"/support/accounts/{id}/reset-2fa\"")));
    assert!(
        !html.contains("/email\""),
        "support cannot change addresses"
    );

    // The reset, with a reason.
    let (s, location, _) = submit(
        &sam,
        &account_path,
        &format!("{account_path}/reset-2fa"),
        &[("reason", REASON)],
    )
    .await;
    assert_eq!(
        (s, location.as_str()),
        (303, format!("{account_path}?done=reset").as_str())
    );
    let (_, _, html) = page(&sam, &format!("{account_path}?done=reset")).await;
    assert!(html.contains("role=\"status\""), "{html}");
    assert!(html.contains("Tweestapsverificatie is opnieuw ingesteld"));
    let after = sam.get(&format!("/api/v1/support/accounts/{id}")).await;
    assert_eq!(after.body["two_factor"], false);

    // Session A is over, and the old app no longer gets anyone in.
    assert_eq!(session_a.get("/api/v1/me").await.status, 401);
    let fresh = app.client();
    let r = fresh.login("an.peeters@example.be", PASSWORD).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_ne!(r.body["state"], "second_factor", "no code step any more");
    let code = fresh
        .post(
            "/api/v1/login/second-factor",
            json!({ "method": "totp", "code": app.code(&secret) }),
        )
        .await;
    assert_ne!(code.status, 200, "the old code is void: {:?}", code.body);

    // An got a mail with a new link, in An's own language.
    let (to, text) = nth_mail(&app, "two-factor-reset", 1).await;
    assert!(to.contains("an.peeters@example.be"), "{to}");
    assert!(text.contains(&format!("{}/enroll/", app.url)), "{text}");
    assert!(text.contains("opnieuw ingesteld"), "{text}");

    // The audit log says who and why.
    let log = audit(&app).await;
    let (_, email, detail) = log
        .iter()
        .find(|(e, _, _)| e == "two_factor_reset")
        .expect("two_factor_reset in the audit log");
    assert_eq!(email, "an.peeters@example.be");
    assert!(
        detail.contains("sam@example.be") && detail.contains(REASON),
        "{detail}"
    );
}

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
async fn tweestap(app: &TestApp, args: &[&str]) -> std::process::Output {
    let mut c = tokio::process::Command::new(env!("CARGO_BIN_EXE_tweestap"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TWEESTAP_") {
            c.env_remove(k);
        }
    }
    c.arg("--data-dir")
        .arg(app.dir.path())
        .args(args)
        .env("TWEESTAP_PUBLIC_URL", &app.url)
        .env("TWEESTAP_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    if let Backend::Postgres(url) = &app.backend {
        c.env("TWEESTAP_DATABASE_URL", url);
    }
    tokio::time::timeout(std::time::Duration::from_secs(60), c.output())
        .await
        .expect("tweestap finishes within a minute")
        .expect("tweestap runs")
}

fn describe(o: &std::process::Output) -> String {
    format!(
        "exit: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
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
    assert!(o.status.success(), "{}", describe(&o));
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("an@example.be has been reset")
            && out.contains("works until")
            && out.contains("queued"),
        "{}",
        describe(&o)
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
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("no account with the e-mail address nobody@example.be"),
        "{}",
        describe(&o)
    );
    let o = tweestap(
        &app,
        &["user", "reset-2fa", "an@example.be", "--reason", "  "],
    )
    .await;
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("give a reason"),
        "{}",
        describe(&o)
    );
    let o = tweestap(&app, &["user", "reset-2fa", "an@example.be"]).await;
    assert_eq!(
        o.status.code(),
        Some(2),
        "--reason is required: {}",
        describe(&o)
    );

    let o = tweestap(
        &app,
        &["user", "set-email", "info@example.be", "els@example.be"],
    )
    .await;
    assert!(o.status.success(), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("info@example.be is now els@example.be"),
        "{}",
        describe(&o)
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
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("already exists"),
        "{}",
        describe(&o)
    );
    let o = tweestap(
        &app,
        &["user", "set-email", "info@example.be", "x@example.be"],
    )
    .await;
    assert!(!o.status.success(), "{}", describe(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr)
            .contains("no account with the e-mail address info@example.be"),
        "{}",
        describe(&o)
    );
}

crate::on_both_backends!(
    support_resets_a_lost_phone,
    roles_decide_who_may_reset_and_change_addresses,
    command_line_resets_and_changes_addresses,
);
