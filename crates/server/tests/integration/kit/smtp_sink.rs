//! A real SMTP server on loopback that keeps what it receives, plain or over TLS.

use super::eventually;
use std::sync::Arc;
use tweestap::config::Config;

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
