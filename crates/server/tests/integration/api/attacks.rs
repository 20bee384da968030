//! Attacks found by trying tweestap as a stranger would (issue 18), one test each,
//! named after the attack; the start of the security suite.

use crate::kit::{Backend, TestApp};
use serde_json::json;

crate::on_both_backends!(
    open_redirect_through_the_language_switch,
    filling_the_disk_through_the_audit_log_without_an_account,
    signing_someone_out_from_another_site,
    reading_reset_links_and_the_database_as_another_user,
    a_stolen_session_as_a_password_oracle,
    fifty_wrong_codes_in_parallel_on_one_sign_in,
    returning_to_another_port_or_scheme_of_an_allowed_portal,
    choosing_ones_own_address_behind_the_proxy,
);

/// `/lang/en?next=...` only ever sends the browser to a page of tweestap: tabs,
/// newlines, backslashes, `@`, encoded slashes and other schemes go home instead,
/// and nothing makes a 500.
async fn open_redirect_through_the_language_switch(backend: Backend) {
    let app = TestApp::start(backend).await;
    let base = url::Url::parse(&format!("{}/", app.url)).expect("base");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    for next in [
        "%2F%09%2Fevil.example",
        "%2F%0A%2Fevil.example",
        "%2F%0Aevil",
        "%00",
        "%2F%00",
        "%2F%2Fevil.example",
        "%2F%5Cevil.example",
        "%5C%5Cevil.example",
        "%09%2F%2Fevil.example",
        "https%3A%2F%2Fevil.example",
        "https:evil.example",
        "%2F%2F%40evil.example",
        "%2F%5C%2Fevil.example",
        "%2F%2F%E2%80%8Bevil.example",
        "%2F%2Fxn--80ak6aa92e.com",
        "javascript%3Aalert(1)",
        "%20%2F%2Fevil.example",
    ] {
        let r = http
            .get(format!("{}/lang/en?next={next}", app.url))
            .send()
            .await
            .expect("request");
        assert!(r.status().is_redirection(), "{next}: {}", r.status());
        let to = r.headers()["location"]
            .to_str()
            .expect("location")
            .to_owned();
        assert!(!to.chars().any(|c| c.is_control()), "{next}: {to:?}");
        let landed = base.join(&to).expect("a URL");
        assert_eq!(
            landed.origin(),
            base.origin(),
            "{next}: {to:?} leaves tweestap"
        );
    }
    let r = http
        .get(format!("{}/lang/en?next=%2Faccount%3Fx%3D1", app.url))
        .send()
        .await
        .expect("request");
    assert_eq!(
        r.headers()["location"],
        "/account?x=1",
        "a local page is kept"
    );
}

/// A stranger typing huge or non-address values into the e-mail field (or a password
/// by mistake) neither fills the database nor leaves the text in the audit log.
async fn filling_the_disk_through_the_audit_log_without_an_account(backend: Backend) {
    let app = TestApp::start(backend).await;
    let huge = "x".repeat(20_000);
    let c = app.client();
    for email in [huge.as_str(), "geheim-wachtwoord-123", "nobody@example.be"] {
        let r = c.login(email, "whatever it is").await;
        assert!(r.status == 401 || r.status == 400, "{}", r.status);
    }
    let http = reqwest::Client::new();
    http.post(format!("{}/api/v1/login", app.url))
        .header("user-agent", "u".repeat(6_000))
        .json(&json!({"email": "ua@example.be", "password": "x"}))
        .send()
        .await
        .expect("request");
    let log = app.engine().audit_log(100, None).await.expect("audit");
    for r in &log {
        let stored = format!("{:?}{:?}{:?}", r.email, r.user_agent, r.detail);
        assert!(
            stored.len() < 3_000,
            "{} stores {} bytes",
            r.event,
            stored.len()
        );
        assert!(!stored.contains("geheim-wachtwoord"), "{stored}");
    }
    assert!(
        log.iter()
            .any(|r| r.email.as_deref() == Some("nobody@example.be")),
        "addresses are kept"
    );
    assert!(log
        .iter()
        .any(|r| r.email.as_deref() == Some("(not an address, 20000 characters)")));
}

/// `POST /api/v1/logout` takes only JSON, like every other call: a form on another
/// site (text/plain, form-encoded) cannot sign a person out.
async fn signing_someone_out_from_another_site(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", crate::kit::PASSWORD).await.status,
        200
    );
    for ct in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    ] {
        let r = c.raw("/api/v1/logout", ct, b"x=1".to_vec()).await;
        assert_eq!(r.status, 415, "{ct}: {:?}", r.body);
    }
    assert_eq!(c.get("/api/v1/me").await.status, 200, "still signed in");
    assert_eq!(c.post("/api/v1/logout", json!({})).await.status, 200);
    assert_eq!(c.get("/api/v1/me").await.status, 401);
}

/// The data directory is 0700 and the database, its WAL and the outboxes (reset
/// links, codes) 0600, whatever the umask.
async fn reading_reset_links_and_the_database_as_another_user(backend: Backend) {
    use std::os::unix::fs::PermissionsExt;
    let mut app = TestApp::start(backend.clone()).await;
    app.add_user("an@example.be").await;
    let r = app
        .client()
        .post("/api/v1/password/forgot", json!({"email": "an@example.be"}))
        .await;
    assert!(r.status < 300, "{:?}", r.body);
    crate::kit::nth_mail(&app, "password-reset", 1).await;
    let mode = |p: &std::path::Path| {
        std::fs::metadata(p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .permissions()
            .mode()
            & 0o777
    };
    // The test's temporary directory starts private anyway: open it up, and a
    // restart makes it private again.
    std::fs::set_permissions(app.dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    app.restart().await;
    let data = app.dir.path();
    assert_eq!(mode(data), 0o700, "the data directory");
    assert_eq!(mode(&data.join("outbox")), 0o700, "the outbox");
    for f in crate::kit::outbox(&app, "password-reset") {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
    if matches!(backend, Backend::Sqlite) {
        for f in ["tweestap.db", "tweestap.db-wal", "tweestap.db-shm"] {
            let p = data.join(f);
            if p.exists() {
                assert_eq!(mode(&p), 0o600, "{f}");
            }
        }
    }
}

/// Someone holding a stolen session cookie cannot guess the password through the
/// calls that confirm it: wrong guesses lock the password step as at sign-in, and
/// then even the right password waits.
async fn a_stolen_session_as_a_password_oracle(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    c.enroll(&app, "an@example.be").await;
    let mut locked = false;
    for i in 0..40 {
        let r = c
            .post(
                "/api/v1/me/recovery-codes",
                json!({"password": format!("gok {i}")}),
            )
            .await;
        match (r.status, r.body["error"].as_str()) {
            (403, Some("invalid_password")) => {}
            (429, Some("too_many_attempts")) => {
                locked = true;
                break;
            }
            other => panic!("guess {i}: {other:?} {:?}", r.body),
        }
    }
    assert!(locked, "the guesses were throttled");
    let r = c
        .post(
            "/api/v1/me/recovery-codes",
            json!({"password": crate::kit::PASSWORD}),
        )
        .await;
    assert_eq!(r.status, 429, "the right password waits too: {:?}", r.body);
    assert!(r.body["retry_after"].as_i64().is_some_and(|s| s > 0));
}

/// Fifty wrong codes sent at once on one sign-in: no more are checked than the
/// lock-out allows (five), and the lock is the first one (a minute), not one that
/// jumped ahead because the failures were counted late.
async fn fifty_wrong_codes_in_parallel_on_one_sign_in(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    app.client().enroll(&app, "an@example.be").await;
    let c = app.client();
    assert_eq!(
        c.login("an@example.be", crate::kit::PASSWORD).await.body["state"],
        "second_factor"
    );
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50u32 {
        let http = c.http.clone();
        let url = format!("{}/api/v1/login/second-factor", c.base);
        tasks.spawn(async move {
            let r = http
                .post(url)
                .json(&json!({"method": "totp", "code": format!("{:06}", 100_000 + i * 7)}))
                .send()
                .await
                .expect("request");
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap_or_default();
            (status, body)
        });
    }
    let (mut checked, mut refused) = (0, 0);
    while let Some(done) = tasks.join_next().await {
        let (status, body) = done.expect("task");
        match (status, body["error"].as_str()) {
            (401, Some("invalid_code")) => checked += 1,
            (429, Some("too_many_attempts")) => {
                refused += 1;
                let wait = body["retry_after"].as_i64().expect("retry_after");
                assert!(
                    (1..=60).contains(&wait),
                    "the first lock, not a longer one: {wait}"
                );
            }
            other => panic!("{other:?} {body}"),
        }
    }
    assert_eq!(checked + refused, 50);
    assert!(
        checked <= 5,
        "{checked} codes were checked; the lock-out allows 5"
    );
    let locked = app
        .engine()
        .audit_log(200, Some("an@example.be"))
        .await
        .expect("audit")
        .iter()
        .filter(|e| e.event == "code_locked_out")
        .count();
    assert_eq!(locked, 1, "one lock");
}

/// `rd` after signing in goes only to an allowed origin: the allowed portal's host on
/// another port, or with credentials in the URL, is ignored (home instead); the
/// portal itself is kept.
async fn returning_to_another_port_or_scheme_of_an_allowed_portal(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.forward_auth.return_hosts = vec![
            "app.example.org".into(),
            "http://intern.example.org:8080".into(),
        ];
    })
    .await;
    app.add_user("an@example.be").await;
    for (rd, kept) in [
        ("https://app.example.org/reports", true),
        ("https://app.example.org:8443/reports", false),
        ("https://app.example.org:444/", false),
        ("https://user@app.example.org/", false),
        ("http://intern.example.org:8080/x", true),
        ("http://intern.example.org/x", false),
        ("https://intern.example.org:8080/x", false),
        ("https://app.example.org.evil.example/", false),
    ] {
        let c = app.client();
        let enc: String = url::form_urlencoded::byte_serialize(rd.as_bytes()).collect();
        c.http
            .get(format!("{}/login?rd={enc}", app.url))
            .send()
            .await
            .expect("login page");
        assert_eq!(
            c.login("an@example.be", crate::kit::PASSWORD).await.status,
            200
        );
        let r = c
            .http
            .get(format!("{}/", app.url))
            .send()
            .await
            .expect("home");
        let to = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if kept {
            assert_eq!(to, rd, "{rd} is allowed");
        } else {
            assert!(
                !to.contains("example.org") || to.starts_with('/'),
                "{rd} went to {to:?}"
            );
        }
    }
}

/// Behind a trusted proxy, the client address is the one the proxy added (the last
/// `X-Forwarded-For` entry): a client that sends its own header cannot pick the
/// address the audit log and the per-address throttles see.
async fn choosing_ones_own_address_behind_the_proxy(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| c.trust_forwarded_for = true).await;
    let http = reqwest::Client::new();
    for (header, seen) in [
        ("198.51.100.1, 203.0.113.7", "203.0.113.7"),
        ("203.0.113.8", "203.0.113.8"),
        ("198.51.100.1, not-an-address", "127.0.0.1"),
    ] {
        let r = http
            .post(format!("{}/api/v1/login", app.url))
            .header("x-forwarded-for", header)
            .json(&json!({"email": "niemand@tweestad.example", "password": "fout"}))
            .send()
            .await
            .expect("request");
        assert_eq!(r.status(), 401);
        let ips = crate::kit::stored_texts(
            &app,
            "SELECT ip FROM audit_log WHERE ip IS NOT NULL ORDER BY at DESC, id DESC LIMIT 1",
        )
        .await;
        assert_eq!(ips, [seen], "{header}");
    }
}
