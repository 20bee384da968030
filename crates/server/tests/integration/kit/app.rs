//! Test harness: a real tweestap on a loopback port, with its own data directory,
//! fresh database and a clock the test moves.

use chrono::{TimeZone, Utc};
use reqwest::header::CONTENT_TYPE;
use serde_json::{json, Value};
use std::sync::Arc;
use tweestap::config::Config;
use tweestap_domain::account::Role;
use tweestap_domain::clock::ManualClock;
use tweestap_domain::totp::TotpParams;

pub const PASSWORD: &str = "correct horse battery";

/// The database a test runs on; every test runs once on each.
#[derive(Debug, Clone)]
pub enum Backend {
    /// A fresh SQLite file in the test's data directory.
    Sqlite,
    /// A fresh PostgreSQL database made for this test.
    Postgres(String),
}

/// Writes `#[tokio::test]`s named `<test>::sqlite` and `<test>::postgres` for each
/// `async fn <test>(backend: Backend)`. The PostgreSQL one gets its own new database,
/// dropped afterwards; without PostgreSQL it skips loudly (fails under
/// TWEESTAP_REQUIRE_ALL=1).
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[tokio::test]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                let Some(url) = tweestap_store::testing::fresh_postgres_database().await else {
                    return;
                };
                super::$name($crate::support::Backend::Postgres(url.clone())).await;
                tweestap_store::testing::drop_database(&url).await;
            }
        }
    )+};
}

pub struct TestApp {
    pub dir: tempfile::TempDir,
    pub backend: Backend,
    pub clock: ManualClock,
    pub server: Option<tweestap::Server>,
    pub url: String,
    /// `[mail] smtp_url`; empty: the outbox.
    pub smtp_url: String,
    /// Another node's database instead of this app's own (two nodes, one database).
    pub shared_database: Option<String>,
    /// Adjusts the configuration before every boot.
    #[allow(clippy::type_complexity)]
    pub tweak: Option<Arc<dyn Fn(&mut Config) + Send + Sync>>,
}

impl TestApp {
    pub async fn start(backend: Backend) -> Self {
        Self::start_with(backend, String::new(), None).await
    }

    /// A node sending mail to `smtp_url` (empty: the outbox).
    pub async fn start_smtp(backend: Backend, smtp_url: String) -> Self {
        Self::start_with(backend, smtp_url, None).await
    }

    /// A second node on `other`'s database, with its own data directory and clock.
    pub async fn second_node(other: &TestApp, smtp_url: String) -> Self {
        let shared = match &other.backend {
            Backend::Sqlite => format!(
                "sqlite://{}",
                other.dir.path().join("tweestap.db").display()
            ),
            Backend::Postgres(url) => url.clone(),
        };
        Self::start_with(other.backend.clone(), smtp_url, Some(shared)).await
    }

    /// A node whose configuration `tweak` adjusts (e.g. the `[policy]`).
    pub async fn start_configured(
        backend: Backend,
        tweak: impl Fn(&mut Config) + Send + Sync + 'static,
    ) -> Self {
        let mut app = Self::unbooted(backend, String::new(), None);
        app.tweak = Some(Arc::new(tweak));
        app.boot().await;
        app
    }

    pub async fn start_with(
        backend: Backend,
        smtp_url: String,
        shared_database: Option<String>,
    ) -> Self {
        let mut app = Self::unbooted(backend, smtp_url, shared_database);
        app.boot().await;
        app
    }

    fn unbooted(backend: Backend, smtp_url: String, shared_database: Option<String>) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        // Mid-step, so a test's "current code" is not about to roll over.
        let clock = ManualClock::new(
            Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 10)
                .single()
                .expect("time"),
        );
        Self {
            dir,
            backend,
            clock,
            server: None,
            url: String::new(),
            smtp_url,
            shared_database,
            tweak: None,
        }
    }

    pub fn config(&self) -> Config {
        let mut c = self.base_config();
        if let Some(t) = &self.tweak {
            t(&mut c);
        }
        c
    }

    fn base_config(&self) -> Config {
        Config {
            listen: "127.0.0.1:0".parse().expect("addr"),
            data_dir: self.dir.path().to_owned(),
            database_url: match (&self.shared_database, &self.backend) {
                (Some(shared), _) => shared.clone(),
                (None, Backend::Sqlite) => String::new(),
                (None, Backend::Postgres(url)) => url.clone(),
            },
            mail: tweestap::config::MailConfig {
                smtp_url: self.smtp_url.clone(),
                from: "Gemeente Tweestad <noreply@tweestad.example>".into(),
                organisation: "Gemeente Tweestad".into(),
                poll_interval_seconds: 1,
                ..Default::default()
            },
            ..Config::default()
        }
    }

    /// (Re)starts the server on the same data directory.
    pub async fn boot(&mut self) {
        let server = tweestap::spawn(&self.config(), Arc::new(self.clock.clone()))
            .await
            .expect("server starts");
        self.url = server.url();
        self.server = Some(server);
    }

    pub fn stop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.boot().await;
    }

    pub async fn add_user(&self, email: &str) {
        let app = &self.server.as_ref().expect("running").app;
        app.add_account(email, "Test Gebruiker", Role::User, PASSWORD)
            .await
            .expect("account");
    }

    pub async fn add_admin(&self, email: &str) {
        self.engine()
            .add_account(email, "Test Beheerder", Role::Admin, PASSWORD)
            .await
            .expect("account");
    }

    pub fn engine(&self) -> &std::sync::Arc<tweestap_domain::Tweestap> {
        &self.server.as_ref().expect("running").app
    }

    /// Wakes the mail worker now instead of at its next poll (after moving the clock).
    pub fn wake_mail(&self) {
        self.engine().mail_wakeup().notify_one();
    }

    /// Messages per queue status.
    pub async fn mail_counts(&self) -> std::collections::BTreeMap<String, u64> {
        self.engine()
            .store()
            .mail_counts()
            .await
            .expect("counts")
            .into_iter()
            .collect()
    }

    pub fn client(&self) -> Client {
        self.client_in(None)
    }

    /// A client whose requests say `Accept-Language: <lang>`.
    pub fn client_in(&self, lang: Option<&str>) -> Client {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(l) = lang {
            headers.insert(reqwest::header::ACCEPT_LANGUAGE, l.parse().expect("header"));
        }
        Client {
            base: self.url.clone(),
            http: reqwest::Client::builder()
                .default_headers(headers)
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .user_agent("tweestap-tests/1.0")
                .build()
                .expect("client"),
        }
    }

    pub fn code(&self, secret_b32: &str) -> String {
        let key = data_encoding::BASE32_NOPAD
            .decode(secret_b32.as_bytes())
            .expect("base32");
        TotpParams::default().code_at(&key, self.clock_now())
    }

    pub fn clock_now(&self) -> i64 {
        use tweestap_domain::clock::Clock;
        self.clock.now().timestamp()
    }

    pub fn next_step(&self) {
        self.clock.advance(chrono::Duration::seconds(30));
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Client {
    pub base: String,
    pub http: reqwest::Client,
}

pub struct Reply {
    pub status: u16,
    pub body: Value,
}

impl Client {
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .expect("request");
        reply(r).await
    }

    pub async fn get(&self, path: &str) -> Reply {
        reply(
            self.http
                .get(format!("{}{path}", self.base))
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn delete(&self, path: &str, body: Value) -> Reply {
        reply(
            self.http
                .delete(format!("{}{path}", self.base))
                .json(&body)
                .send()
                .await
                .expect("request"),
        )
        .await
    }

    pub async fn raw(&self, path: &str, content_type: &str, body: Vec<u8>) -> Reply {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .expect("request");
        reply(r).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Reply {
        self.post(
            "/api/v1/login",
            json!({ "email": email, "password": password }),
        )
        .await
    }

    /// Signs in (no factor yet) and sets up an authenticator app; returns its secret.
    pub async fn enroll(&self, app: &TestApp, email: &str) -> (String, String) {
        assert_eq!(
            self.login(email, PASSWORD).await.body["state"],
            "authenticated"
        );
        let r = self
            .post("/api/v1/me/factors/totp", json!({ "password": PASSWORD }))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        let secret = r.body["secret"].as_str().expect("secret").to_owned();
        let id = r.body["id"].as_str().expect("id").to_owned();
        let c = self
            .post(
                &format!("/api/v1/me/factors/totp/{id}/confirm"),
                json!({ "code": app.code(&secret) }),
            )
            .await;
        assert_eq!(c.status, 200, "{:?}", c.body);
        (id, secret)
    }
}

async fn reply(r: reqwest::Response) -> Reply {
    let status = r.status().as_u16();
    let text = r.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Reply { status, body }
}

/// Polls `check` every 50 ms until it holds or `secs` seconds (real time) passed.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// One message as an SMTP server received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    pub data: Vec<u8>,
    /// The dialogue was encrypted when the message came in (after STARTTLS, or
    /// implicit TLS).
    pub tls: bool,
}

impl Received {
    pub fn parsed(&self) -> mailparse::ParsedMail<'_> {
        mailparse::parse_mail(&self.data).expect("a parseable message")
    }

    pub fn header(&self, name: &str) -> String {
        use mailparse::MailHeaderMap;
        self.parsed()
            .headers
            .get_first_value(name)
            .unwrap_or_default()
    }
}

/// How an [`SmtpSink`] speaks TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SinkTls {
    /// No TLS at all.
    Plain,
    /// Plain at first; EHLO offers STARTTLS and the dialogue goes on encrypted after
    /// it. Like a relay that offers but does not demand it, mail sent before
    /// STARTTLS is accepted too (recorded with `tls: false`), so a client that
    /// skipped the upgrade would be seen.
    StartTls,
    /// TLS from the first byte (`smtps://`, port 465).
    Implicit,
}

/// The sink's TLS: a private CA made for this sink, and a server certificate it
/// signed for `localhost` and `127.0.0.1`.
struct SinkPki {
    mode: SinkTls,
    ca_pem: String,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl SinkPki {
    fn new(mode: SinkTls) -> Self {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
            KeyUsagePurpose,
        };
        use tokio_rustls::rustls::{self, pki_types::PrivateKeyDer};
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "tweestap test CA");
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca.self_signed(&ca_key).expect("CA certificate");
        let key = KeyPair::generate().expect("server key");
        let mut leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("server params");
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf = leaf
            .signed_by(&key, &ca, &ca_key)
            .expect("server certificate");
        // ring, the provider the rest of the tree (lettre, sqlx, reqwest) uses.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf.der().clone()],
                PrivateKeyDer::Pkcs8(key.serialize_der().into()),
            )
            .expect("server TLS config");
        Self {
            mode,
            ca_pem: ca.pem(),
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        }
    }
}

/// What the sink keeps across restarts.
#[derive(Clone, Default)]
struct SinkLog {
    received: Arc<std::sync::Mutex<Vec<Received>>>,
    /// Why TLS handshakes failed (the client's alert, for one).
    handshake_errors: Arc<std::sync::Mutex<Vec<String>>>,
}

/// A real SMTP server on loopback (no auth) that keeps what it receives: plain,
/// or with STARTTLS or implicit TLS under a private CA ([`SmtpSink::start_tls`]).
/// Stopping it closes the port and every open connection; starting it again on
/// the same port keeps the messages received so far (and the certificates).
pub struct SmtpSink {
    pub addr: std::net::SocketAddr,
    pub received: Arc<std::sync::Mutex<Vec<Received>>>,
    log: SinkLog,
    pki: Option<Arc<SinkPki>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// The file name of the sink's CA certificate in a test's data directory.
pub const SINK_CA_FILE: &str = "smtp-test-ca.pem";

impl SmtpSink {
    pub async fn start() -> Self {
        Self::start_tls(SinkTls::Plain).await
    }

    /// A sink speaking `mode`, with a fresh CA (for TLS modes).
    pub async fn start_tls(mode: SinkTls) -> Self {
        let pki = (mode != SinkTls::Plain).then(|| Arc::new(SinkPki::new(mode)));
        Self::listen(
            "127.0.0.1:0".parse().expect("addr"),
            SinkLog::default(),
            pki,
        )
        .await
    }

    async fn listen(addr: std::net::SocketAddr, log: SinkLog, pki: Option<Arc<SinkPki>>) -> Self {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("smtp port");
        let addr = listener.local_addr().expect("addr");
        let (conn_log, conn_pki) = (log.clone(), pki.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                conns.spawn(smtp_session(socket, conn_pki.clone(), conn_log.clone()));
            }
        });
        Self {
            addr,
            received: log.received.clone(),
            log,
            pki,
            task: Some(task),
        }
    }

    /// The `smtp_url` for this sink: `smtp://127.0.0.1:port` (plain),
    /// `smtp://127.0.0.1:port?tls=required` (STARTTLS: the certificate is checked
    /// against its IP address) or `smtps://localhost:port` (implicit TLS: checked
    /// against the DNS name).
    pub fn url(&self) -> String {
        match self.pki.as_ref().map(|p| p.mode) {
            None | Some(SinkTls::Plain) => format!("smtp://{}", self.addr),
            Some(SinkTls::StartTls) => format!("smtp://{}?tls=required", self.addr),
            Some(SinkTls::Implicit) => format!("smtps://localhost:{}", self.addr.port()),
        }
    }

    /// The PEM of the CA that signed the sink's certificate (TLS modes only).
    pub fn ca_pem(&self) -> &str {
        &self.pki.as_ref().expect("a TLS sink").ca_pem
    }

    /// A configuration tweak: mail to this sink, trusting its CA, whose PEM is
    /// written to `<data_dir>/smtp-test-ca.pem` (on every boot) and named as
    /// `[mail] smtp_ca_file`.
    pub fn trusted(&self) -> impl Fn(&mut Config) + Send + Sync + 'static {
        let (url, pem) = (self.url(), self.ca_pem().to_owned());
        move |c: &mut Config| {
            let path = c.data_dir.join(SINK_CA_FILE);
            std::fs::write(&path, &pem).expect("write the test CA");
            c.mail.smtp_url = url.clone();
            c.mail.smtp_ca_file = Some(path);
        }
    }

    /// A configuration tweak: mail to this sink with no `smtp_ca_file`.
    pub fn untrusted(&self) -> impl Fn(&mut Config) + Send + Sync + 'static {
        let url = self.url();
        move |c: &mut Config| {
            c.mail.smtp_url = url.clone();
            c.mail.smtp_ca_file = None;
        }
    }

    /// Closes the port and all connections.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop().await;
        let again = Self::listen(self.addr, self.log.clone(), self.pki.clone()).await;
        *self = again;
    }

    pub fn messages(&self) -> Vec<Received> {
        self.received.lock().expect("lock").clone()
    }

    /// Why TLS handshakes with this sink failed, oldest first.
    pub fn handshake_errors(&self) -> Vec<String> {
        self.log.handshake_errors.lock().expect("lock").clone()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        eventually(20, &format!("{n} message(s) over SMTP"), || async {
            self.messages().len() >= n
        })
        .await;
        self.messages()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Where one SMTP dialogue stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Unencrypted; STARTTLS not offered.
    Plain,
    /// Unencrypted; EHLO offers STARTTLS.
    BeforeStartTls,
    /// Encrypted.
    Tls,
}

/// How a dialogue ended.
#[derive(PartialEq, Eq)]
enum Ended {
    Closed,
    /// The client said STARTTLS and was told to go ahead.
    StartTls,
}

async fn smtp_session(socket: tokio::net::TcpStream, pki: Option<Arc<SinkPki>>, log: SinkLog) {
    use tokio::io::BufReader;
    let failed = |e: std::io::Error| {
        log.handshake_errors
            .lock()
            .expect("lock")
            .push(e.to_string())
    };
    let Some(pki) = pki.filter(|p| p.mode != SinkTls::Plain) else {
        smtp_dialogue(&mut BufReader::new(socket), true, Phase::Plain, &log).await;
        return;
    };
    if pki.mode == SinkTls::Implicit {
        match pki.acceptor.accept(socket).await {
            Ok(tls) => {
                smtp_dialogue(&mut BufReader::new(tls), true, Phase::Tls, &log).await;
            }
            Err(e) => failed(e),
        }
        return;
    }
    let mut plain = BufReader::new(socket);
    if smtp_dialogue(&mut plain, true, Phase::BeforeStartTls, &log).await != Ended::StartTls {
        return;
    }
    // Nothing may follow STARTTLS before the handshake (RFC 3207: no pipelining
    // into TLS); anything buffered would be a client injecting plaintext.
    if !plain.buffer().is_empty() {
        return;
    }
    match pki.acceptor.accept(plain.into_inner()).await {
        // No new greeting after STARTTLS: the client starts again with EHLO.
        Ok(tls) => {
            smtp_dialogue(&mut BufReader::new(tls), false, Phase::Tls, &log).await;
        }
        Err(e) => failed(e),
    }
}

async fn smtp_dialogue<S>(
    conn: &mut tokio::io::BufReader<S>,
    greet: bool,
    phase: Phase,
    log: &SinkLog,
) -> Ended
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    async fn send<W: tokio::io::AsyncWrite + Unpin>(w: &mut W, reply: &[u8]) -> bool {
        w.write_all(reply).await.is_ok() && w.flush().await.is_ok()
    }
    if greet && !send(conn, b"220 sink ESMTP ready\r\n").await {
        return Ended::Closed;
    }
    let mut mail_from = String::new();
    let mut rcpt_to = Vec::new();
    loop {
        let mut line = String::new();
        match conn.read_line(&mut line).await {
            Ok(0) | Err(_) => return Ended::Closed,
            Ok(_) => {}
        }
        let upper = line.trim_end().to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") {
            if phase == Phase::BeforeStartTls {
                b"250-sink\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n250 STARTTLS\r\n"
            } else {
                b"250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
            }
        } else if upper.starts_with("HELO") {
            b"250 sink\r\n"
        } else if upper == "STARTTLS" {
            if phase != Phase::BeforeStartTls {
                b"503 TLS not available now\r\n"
            } else if send(conn, b"220 ready to start TLS\r\n").await {
                return Ended::StartTls;
            } else {
                return Ended::Closed;
            }
        } else if upper.starts_with("MAIL FROM:") {
            mail_from = line.trim_end()[10..].trim().to_owned();
            rcpt_to.clear();
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            rcpt_to.push(line.trim_end()[8..].trim().to_owned());
            b"250 OK\r\n"
        } else if upper == "DATA" {
            if !send(conn, b"354 go ahead\r\n").await {
                return Ended::Closed;
            }
            let mut data = Vec::new();
            loop {
                let mut l = Vec::new();
                match conn.read_until(b'\n', &mut l).await {
                    Ok(0) | Err(_) => return Ended::Closed,
                    Ok(_) => {}
                }
                if l == b".\r\n" || l == b".\n" {
                    break;
                }
                // Undo dot-stuffing.
                if l.starts_with(b"..") {
                    l.remove(0);
                }
                data.extend_from_slice(&l);
            }
            log.received.lock().expect("lock").push(Received {
                mail_from: mail_from.clone(),
                rcpt_to: rcpt_to.clone(),
                data,
                tls: phase == Phase::Tls,
            });
            b"250 queued\r\n"
        } else if upper == "QUIT" {
            let _ = send(conn, b"221 bye\r\n").await;
            return Ended::Closed;
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        if !send(conn, reply).await {
            return Ended::Closed;
        }
    }
}

/// The `.eml` files of mails of `kind` in the outbox (default mail mode), oldest first.
pub fn outbox(app: &TestApp, kind: &str) -> Vec<std::path::PathBuf> {
    let dir = app.dir.path().join("outbox");
    let mut v: Vec<std::path::PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|e| e == "eml") && p.to_string_lossy().contains(kind));
    v.sort();
    v
}

/// The text part of the `n`-th (1-based) mail of `kind` in the outbox, once it is there.
pub async fn nth_mail(app: &TestApp, kind: &str, n: usize) -> String {
    eventually(20, &format!("{n} {kind} mail(s)"), || async {
        outbox(app, kind).len() >= n
    })
    .await;
    let raw = std::fs::read(&outbox(app, kind)[n - 1]).expect("eml");
    text_part(&mailparse::parse_mail(&raw).expect("RFC 5322"))
}

/// The plain-text alternative of a message.
pub fn text_part(m: &mailparse::ParsedMail<'_>) -> String {
    m.subparts
        .iter()
        .find(|p| p.ctype.mimetype == "text/plain")
        .expect("text part")
        .get_body()
        .expect("body")
}

// ---- pages over plain HTTP ----------------------------------------------------------

/// The CSRF token in a page's form.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("csrf field") + 19;
    html[at..at + 64].to_owned()
}

/// The `Location` of an answer ("" without one).
pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// One query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// GET an absolute URL or a path of the server.
pub async fn get(c: &Client, url: &str) -> reqwest::Response {
    let url = if url.starts_with("http") {
        url.to_owned()
    } else {
        format!("{}{url}", c.base)
    };
    c.http.get(url).send().await.expect("get")
}

/// POST a form as it stands.
pub async fn post_form(c: &Client, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
    c.http
        .post(format!("{}{path}", c.base))
        .form(form)
        .send()
        .await
        .expect("post")
}

/// Signs in through the pages as a person would: the password form of the page at
/// `login` (which may carry a return address), then the app's code; the browser
/// ends signed in, sent to `/`.
pub async fn sign_in_through_pages(
    c: &Client,
    app: &TestApp,
    login: &str,
    (email, password): (&str, &str),
    totp_secret: &str,
) {
    let page = get(c, login).await.text().await.expect("the sign-in page");
    let r = post_form(
        c,
        "/login",
        &[
            ("csrf", &csrf_of(&page)),
            ("email", email),
            ("password", password),
        ],
    )
    .await;
    assert_eq!(location(&r), "/login/code");
    let page = get(c, "/login/code")
        .await
        .text()
        .await
        .expect("the code page");
    let r = post_form(
        c,
        "/login/code",
        &[("csrf", &csrf_of(&page)), ("code", &app.code(totp_secret))],
    )
    .await;
    assert_eq!(location(&r), "/");
}

/// GET a page: status and body.
pub async fn page(c: &Client, path: &str) -> (u16, String) {
    let r = get(c, path).await;
    (r.status().as_u16(), r.text().await.expect("text"))
}

/// Posts a form with the CSRF token of `from` (a page's HTML): status, body, location.
pub async fn submit(
    c: &Client,
    from: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> (u16, String, Option<String>) {
    let csrf = csrf_of(from);
    let mut form: Vec<(&str, &str)> = fields.to_vec();
    form.push(("csrf", &csrf));
    let r = post_form(c, action, &form).await;
    let location = Some(location(&r)).filter(|l| !l.is_empty());
    (r.status().as_u16(), r.text().await.expect("text"), location)
}

/// One text column of a query, read straight from the app's database (SQLite file
/// or PostgreSQL), to check what is stored at rest.
pub async fn stored_texts(app: &TestApp, sql: &str) -> Vec<String> {
    match &app.backend {
        Backend::Sqlite => {
            let url = format!("sqlite://{}", app.dir.path().join("tweestap.db").display());
            let pool = sqlx::SqlitePool::connect(&url).await.expect("sqlite");
            let v = sqlx::query_scalar(sql)
                .fetch_all(&pool)
                .await
                .expect("query");
            pool.close().await;
            v
        }
        Backend::Postgres(url) => {
            let pool = sqlx::PgPool::connect(url).await.expect("postgres");
            let v = sqlx::query_scalar(sql)
                .fetch_all(&pool)
                .await
                .expect("query");
            pool.close().await;
            v
        }
    }
}
