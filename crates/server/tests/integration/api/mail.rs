//! Mail: security notices queued by the API, written to the outbox or sent over
//! real SMTP (plain, STARTTLS, implicit TLS under a private CA), surviving an SMTP
//! outage and a restart, never sent twice by two nodes.

use crate::kit::{
    eventually, Backend, Received, SinkTls, SmtpSink, TestApp, PASSWORD, SINK_CA_FILE,
};
use chrono::Duration;
use mailparse::{MailHeaderMap, ParsedMail};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::PathBuf;
use tweestap_domain::mail::{Language, NewMail, Notice};
use uuid::Uuid;

/// The `text/plain` and `text/html` parts of a multipart/alternative message.
fn parts(m: &ParsedMail<'_>) -> (String, String) {
    assert_eq!(m.ctype.mimetype, "multipart/alternative", "top level");
    let find = |t: &str| {
        m.subparts
            .iter()
            .find(|p| p.ctype.mimetype == t)
            .unwrap_or_else(|| panic!("no {t} part"))
            .get_body()
            .expect("body")
    };
    (find("text/plain"), find("text/html"))
}

fn outbox_files(app: &TestApp) -> Vec<PathBuf> {
    let dir = app.dir.path().join("outbox");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "eml"));
    v.sort();
    v
}

async fn wait_for_outbox(app: &TestApp, n: usize) -> Vec<PathBuf> {
    eventually(20, &format!("{n} .eml file(s) in the outbox"), || async {
        outbox_files(app).len() >= n
    })
    .await;
    outbox_files(app)
}

async fn audit_events(app: &TestApp, email: &str) -> Vec<(String, String)> {
    app.engine()
        .audit_log(200, Some(email))
        .await
        .expect("audit")
        .into_iter()
        .rev()
        .map(|r| (r.event, r.detail.unwrap_or_default()))
        .collect()
}

async fn factor_notices_in_dutch_land_in_the_outbox(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (id, _) = c.enroll(&app, "an@example.be").await;
    let files = wait_for_outbox(&app, 1).await;
    let raw = std::fs::read(&files[0]).expect("eml");
    let m = mailparse::parse_mail(&raw).expect("RFC 5322");
    let h = &m.headers;
    assert_eq!(
        h.get_first_value("From").as_deref(),
        Some("\"Gemeente Tweestad\" <noreply@tweestad.example>")
    );
    assert!(h.get_first_value("To").unwrap().contains("<an@example.be>"));
    let subject = h.get_first_value("Subject").unwrap();
    assert_eq!(
        subject,
        "Nieuwe verificatiemethode voor je account bij Gemeente Tweestad"
    );
    assert_eq!(h.get_first_value("Content-Language").as_deref(), Some("nl"));
    assert!(h
        .get_first_value("Message-ID")
        .unwrap()
        .ends_with("@tweestad.example>"));
    let (text, html) = parts(&m);
    assert!(text.contains("Hallo Test Gebruiker,"), "{text}");
    assert!(text.contains("authenticator-app") && text.contains("Gemeente Tweestad"));
    assert!(html.contains("<html lang=\"nl\">") && html.contains("Hallo Test Gebruiker,"));

    // Removing the factor sends the second notice.
    let r = c
        .delete(
            &format!("/api/v1/me/factors/{id}"),
            json!({ "password": PASSWORD }),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    let files = wait_for_outbox(&app, 2).await;
    let removed = files
        .iter()
        .find(|p| p.to_string_lossy().contains("factor-removed"))
        .expect("a removal notice");
    let raw = std::fs::read(removed).expect("eml");
    let m = mailparse::parse_mail(&raw).expect("RFC 5322");
    assert!(m
        .headers
        .get_first_value("Subject")
        .unwrap()
        .starts_with("Verificatiemethode verwijderd"));
    let (text, _) = parts(&m);
    assert!(text.contains("verwijderd van je account bij Gemeente Tweestad"));

    eventually(10, "both marked sent", || async {
        app.mail_counts().await.get("sent") == Some(&2)
    })
    .await;
    // The worker audits right after marking, so the record may trail the mark.
    eventually(10, "both sends audited", || async {
        audit_events(&app, "an@example.be")
            .await
            .iter()
            .filter(|(ev, _)| ev == "mail_sent")
            .count()
            == 2
    })
    .await;
    let events = audit_events(&app, "an@example.be").await;
    let count = |e: &str| events.iter().filter(|(ev, _)| ev == e).count();
    assert_eq!(
        (count("mail_queued"), count("mail_sent")),
        (2, 2),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|(e, d)| e == "mail_queued" && d.contains("kind=factor_removed")));
    // No body in the audit log.
    assert!(!events.iter().any(|(_, d)| d.contains("Hallo")));

    // The dev page lists them, newest first, for this (loopback) client.
    let list = c.get("/dev/outbox").await;
    assert_eq!(list.status, 200);
    let page = list.body.as_str().expect("html").to_owned();
    let first = page.find("Verificatiemethode verwijderd").expect("listed");
    let second = page.find("Nieuwe verificatiemethode").expect("listed");
    assert!(first < second, "newest first");
    let name = removed.file_name().unwrap().to_str().unwrap();
    let one = c.get(&format!("/dev/outbox/{name}")).await;
    assert_eq!(one.status, 200);
    let shown = one.body.as_str().unwrap();
    assert!(
        shown.contains("verwijderd van je account"),
        "text part shown"
    );
    assert!(shown.contains("&lt;html lang="), "HTML part shown escaped");
    assert!(!shown
        .contains("<html lang=\"nl\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\""));
    let html = c.get(&format!("/dev/outbox/{name}/html")).await;
    assert_eq!(html.status, 200);
    for bad in ["/dev/outbox/..%2Fsecret.key", "/dev/outbox/nope.eml"] {
        assert_eq!(c.get(bad).await.status, 404, "{bad}");
    }
    // Through a reverse proxy on the same host every visitor would look local:
    // forwarding headers mean "not local".
    for header in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        for path in ["/dev/outbox", "/dev/sms-outbox"] {
            let r = c
                .http
                .get(format!("{}{path}", c.base))
                .header(header, "203.0.113.9")
                .send()
                .await
                .expect("get");
            assert_eq!(r.status().as_u16(), 404, "{path} with {header}");
        }
    }
}

async fn english_users_get_english_mail(backend: Backend) {
    let app = TestApp::start(backend).await;
    app.add_user("en@example.be").await;
    let c = app.client_in(Some("en-GB,en;q=0.9"));
    c.enroll(&app, "en@example.be").await;
    let files = wait_for_outbox(&app, 1).await;
    let raw = std::fs::read(&files[0]).expect("eml");
    let m = mailparse::parse_mail(&raw).expect("RFC 5322");
    assert_eq!(
        m.headers.get_first_value("Subject").unwrap(),
        "New verification method for your account at Gemeente Tweestad"
    );
    assert_eq!(
        m.headers.get_first_value("Content-Language").as_deref(),
        Some("en")
    );
    let (text, html) = parts(&m);
    assert!(text.contains("Hello Test Gebruiker,") && text.contains("authenticator app"));
    assert!(html.contains("<html lang=\"en\">"));
    // The language is remembered on the account.
    let account = app
        .engine()
        .store()
        .account_by_email(&tweestap_domain::account::Email::parse("en@example.be").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(account.language, Language::En);
}

async fn smtp_delivery_carries_headers_and_both_parts(backend: Backend) {
    let sink = SmtpSink::start().await;
    let app = TestApp::start_smtp(backend, sink.url()).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    c.enroll(&app, "an@example.be").await;
    let got = sink.wait_for(1).await;
    let r = &got[0];
    assert_eq!(r.mail_from, "<noreply@tweestad.example>");
    assert_eq!(r.rcpt_to, vec!["<an@example.be>".to_owned()]);
    assert_eq!(
        r.header("From"),
        "\"Gemeente Tweestad\" <noreply@tweestad.example>"
    );
    assert!(r.header("To").contains("an@example.be"));
    assert!(r.header("Subject").starts_with("Nieuwe verificatiemethode"));
    assert!(!r.header("Date").is_empty() && !r.header("Message-ID").is_empty());
    let (text, html) = parts(&r.parsed());
    assert!(text.contains("Hallo Test Gebruiker,"));
    assert!(html.contains("Gemeente Tweestad"));
    eventually(10, "marked sent", || async {
        app.mail_counts().await.get("sent") == Some(&1)
    })
    .await;

    // With SMTP configured there is no outbox and no dev page.
    assert_eq!(c.get("/dev/outbox").await.status, 404);
    assert!(!app.dir.path().join("outbox").exists());
}

fn message_ids(got: &[Received]) -> BTreeSet<String> {
    got.iter().map(|r| r.header("Message-ID")).collect()
}

/// The durability check: SMTP down, mail triggered, tweestap restarted,
/// SMTP back on the same port: every message arrives, exactly once.
async fn queued_mail_survives_smtp_outage_and_restart(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    sink.stop().await; // the port is closed now
    let mut app = TestApp::start_smtp(backend, sink.url()).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (id, _) = c.enroll(&app, "an@example.be").await;
    c.delete(
        &format!("/api/v1/me/factors/{id}"),
        json!({ "password": PASSWORD }),
    )
    .await;
    c.enroll(&app, "an@example.be").await;
    // The worker tries (connection refused) and schedules retries; nothing is lost.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert_eq!(
        app.mail_counts().await,
        [("queued".to_owned(), 3)].into_iter().collect()
    );

    app.restart().await;
    sink.restart().await;
    // Past every back-off and any lease the old process held.
    app.clock.advance(Duration::minutes(10));
    app.wake_mail();
    let got = sink.wait_for(3).await;
    // Another round: nothing more goes out.
    app.clock.advance(Duration::hours(3));
    app.wake_mail();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let got_later = sink.messages();
    assert_eq!(got_later.len(), 3, "sent exactly once each");
    assert_eq!(message_ids(&got).len(), 3);
    assert_eq!(message_ids(&got_later), message_ids(&got));
    assert_eq!(
        app.mail_counts().await,
        [("sent".to_owned(), 3)].into_iter().collect()
    );
}

/// Failed deliveries wait (30 s, doubling) on the injected clock, and are given
/// up after two days with a `mail_failed` audit record.
async fn failed_delivery_backs_off_then_gives_up(backend: Backend) {
    let mut sink = SmtpSink::start().await;
    sink.stop().await;
    let app = TestApp::start_smtp(backend, sink.url()).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    let (id, _) = c.enroll(&app, "an@example.be").await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;

    // Back up, but the retry is not due yet: 29 s later still nothing.
    sink.restart().await;
    app.clock.advance(Duration::seconds(29));
    app.wake_mail();
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    assert!(sink.messages().is_empty(), "retried before its back-off");
    app.clock.advance(Duration::seconds(2));
    app.wake_mail();
    sink.wait_for(1).await;

    // Down again; a notice that never gets through is given up after two days.
    sink.stop().await;
    c.delete(
        &format!("/api/v1/me/factors/{id}"),
        json!({ "password": PASSWORD }),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(app.mail_counts().await.get("queued"), Some(&1));
    app.clock.advance(Duration::days(2));
    app.wake_mail();
    eventually(10, "the notice given up", || async {
        app.mail_counts().await.get("failed") == Some(&1)
    })
    .await;
    // The worker audits right after marking, so the record may trail the mark.
    eventually(10, "giving up audited", || async {
        audit_events(&app, "an@example.be")
            .await
            .iter()
            .any(|(e, _)| e == "mail_failed")
    })
    .await;
    let events = audit_events(&app, "an@example.be").await;
    let failed: Vec<_> = events.iter().filter(|(e, _)| e == "mail_failed").collect();
    assert_eq!(failed.len(), 1, "{events:?}");
    assert!(failed[0].1.contains("kind=factor_removed") && failed[0].1.contains("error="));
}

/// Two nodes on one database, one SMTP server: N messages, N deliveries.
async fn two_nodes_deliver_each_message_once(backend: Backend) {
    let sink = SmtpSink::start().await;
    let a = TestApp::start_smtp(backend, sink.url()).await;
    let b = TestApp::second_node(&a, sink.url()).await;
    const N: usize = 30;
    let store = a.engine().store().clone();
    for i in 0..N {
        store
            .enqueue_mail(&NewMail {
                id: Uuid::new_v4(),
                account_id: None,
                to: format!("user{i}@example.be"),
                to_name: String::new(),
                language: Language::Nl,
                notice: Notice::FactorAdded {
                    factor_kind: "totp".into(),
                },
                created_at: a.engine().now(),
            })
            .await
            .expect("queued");
    }
    a.wake_mail();
    b.wake_mail();
    let got = sink.wait_for(N).await;
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let all = sink.messages();
    assert_eq!(all.len(), N, "no message twice");
    assert_eq!(message_ids(&got).len(), N);
    let recipients: BTreeSet<_> = all.iter().flat_map(|r| r.rcpt_to.clone()).collect();
    assert_eq!(recipients.len(), N);
    assert_eq!(
        a.mail_counts().await,
        [("sent".to_owned(), N as u64)].into_iter().collect()
    );
}

/// A notice goes out over TLS to a server whose certificate a private CA signed,
/// trusted through `[mail] smtp_ca_file`.
async fn delivered_over_tls_with_private_ca(backend: Backend, mode: SinkTls) {
    let sink = SmtpSink::start_tls(mode).await;
    let app = TestApp::start_configured(backend, sink.trusted()).await;
    assert!(app.dir.path().join(SINK_CA_FILE).exists());
    app.add_user("an@example.be").await;
    let c = app.client();
    c.enroll(&app, "an@example.be").await;
    let got = sink.wait_for(1).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let r = &got[0];
    assert!(r.tls, "the message came in unencrypted ({mode:?})");
    assert_eq!(r.mail_from, "<noreply@tweestad.example>");
    assert_eq!(r.rcpt_to, vec!["<an@example.be>".to_owned()]);
    assert!(r.header("Subject").starts_with("Nieuwe verificatiemethode"));
    let (text, _) = parts(&r.parsed());
    assert!(text.contains("Hallo Test Gebruiker,"));
    assert!(
        sink.handshake_errors().is_empty(),
        "{:?}",
        sink.handshake_errors()
    );
    eventually(10, "marked sent", || async {
        app.mail_counts().await.get("sent") == Some(&1)
    })
    .await;
    eventually(10, "the send audited", || async {
        audit_events(&app, "an@example.be")
            .await
            .iter()
            .any(|(e, d)| e == "mail_sent" && d.contains("kind=factor_added"))
    })
    .await;
}

async fn starttls_delivery_trusts_smtp_ca_file(backend: Backend) {
    delivered_over_tls_with_private_ca(backend, SinkTls::StartTls).await;
}

async fn implicit_tls_delivery_trusts_smtp_ca_file(backend: Backend) {
    delivered_over_tls_with_private_ca(backend, SinkTls::Implicit).await;
}

/// Without `smtp_ca_file` the private CA is not trusted: the handshake fails, the
/// client neither falls back to plain text nor gives up, and the notice waits in
/// the queue.
async fn untrusted_server_gets_nothing_and_mail_stays_queued(backend: Backend, mode: SinkTls) {
    let sink = SmtpSink::start_tls(mode).await;
    let app = TestApp::start_configured(backend, sink.untrusted()).await;
    app.add_user("an@example.be").await;
    let c = app.client();
    c.enroll(&app, "an@example.be").await;
    eventually(10, "a refused TLS handshake", || async {
        !sink.handshake_errors().is_empty()
    })
    .await;
    let errors = sink.handshake_errors();
    // rustls names the client's alert: it did not know the issuer.
    assert!(
        errors.iter().all(|e| e.contains("UnknownCA")),
        "{mode:?}: {errors:?}"
    );
    // Give a wrong outcome time to be recorded.
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert!(
        sink.messages().is_empty(),
        "{mode:?}: {:?}",
        sink.messages()
    );
    assert_eq!(
        app.mail_counts().await,
        [("queued".to_owned(), 1)].into_iter().collect(),
        "{mode:?}"
    );
    let events = audit_events(&app, "an@example.be").await;
    assert!(
        events
            .iter()
            .any(|(e, d)| e == "mail_queued" && d.contains("kind=factor_added")),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|(e, _)| e == "mail_sent" || e == "mail_failed"),
        "{events:?}"
    );
    // A retry after the back-off is refused the same way: still queued, not sent.
    let before = sink.handshake_errors().len();
    app.clock.advance(Duration::minutes(1));
    app.wake_mail();
    eventually(10, "the retry refused too", || async {
        sink.handshake_errors().len() > before
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert!(sink.messages().is_empty());
    assert_eq!(
        app.mail_counts().await,
        [("queued".to_owned(), 1)].into_iter().collect()
    );
}

async fn starttls_without_smtp_ca_file_is_not_trusted(backend: Backend) {
    untrusted_server_gets_nothing_and_mail_stays_queued(backend, SinkTls::StartTls).await;
}

async fn implicit_tls_without_smtp_ca_file_is_not_trusted(backend: Backend) {
    untrusted_server_gets_nothing_and_mail_stays_queued(backend, SinkTls::Implicit).await;
}

/// A missing, unreadable or malformed `smtp_ca_file` stops the server at start with
/// an error naming the key and the file; a good one starts it.
async fn bad_smtp_ca_file_stops_start_up(backend: Backend) {
    let sink = SmtpSink::start_tls(SinkTls::Implicit).await;
    let mut app = TestApp::start_configured(backend, sink.trusted()).await;
    app.stop();
    let dir = app.dir.path().to_owned();
    let key_only = dir.join("key.pem");
    std::fs::write(
        &key_only,
        rcgen::KeyPair::generate().expect("key").serialize_pem(),
    )
    .expect("write");
    let corrupt = dir.join("corrupt.pem");
    std::fs::write(
        &corrupt,
        "-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAAAAAA\n-----END CERTIFICATE-----\n",
    )
    .expect("write");
    let not_pem = dir.join("garbage.pem");
    std::fs::write(
        &not_pem,
        "-----BEGIN CERTIFICATE-----\n!!! not base64 !!!\n",
    )
    .expect("write");
    let cases = [
        (dir.join("missing.pem"), "cannot read it"),
        (dir.clone(), "cannot read it"),
        (key_only, "no PEM certificate"),
        (corrupt, "not a usable CA certificate"),
        (not_pem, "not valid PEM"),
    ];
    for (path, why) in cases {
        let mut config = app.config();
        config.mail.smtp_ca_file = Some(path.clone());
        let err = match tweestap::spawn(&config, std::sync::Arc::new(app.clock.clone())).await {
            Ok(server) => {
                server.stop();
                panic!("started with smtp_ca_file {}", path.display());
            }
            Err(e) => e.to_string(),
        };
        assert!(
            err.contains("smtp_ca_file") && err.contains(&path.display().to_string()),
            "{err}"
        );
        assert!(err.contains(why), "{why}: {err}");
    }
    // The good file from the sink still works after all that.
    app.boot().await;
    app.add_user("an@example.be").await;
    app.client().enroll(&app, "an@example.be").await;
    assert!(sink.wait_for(1).await[0].tls);
}

crate::on_both_backends!(
    factor_notices_in_dutch_land_in_the_outbox,
    english_users_get_english_mail,
    smtp_delivery_carries_headers_and_both_parts,
    queued_mail_survives_smtp_outage_and_restart,
    failed_delivery_backs_off_then_gives_up,
    two_nodes_deliver_each_message_once,
    starttls_delivery_trusts_smtp_ca_file,
    implicit_tls_delivery_trusts_smtp_ca_file,
    starttls_without_smtp_ca_file_is_not_trusted,
    implicit_tls_without_smtp_ca_file_is_not_trusted,
    bad_smtp_ca_file_stops_start_up,
);
