//! Mail delivery: the worker each node runs, and the two ways out — SMTP through
//! lettre (plain, STARTTLS or implicit TLS, rustls; `smtp_ca_file` adds private
//! roots), or, without `smtp_url`, `.eml` files in `<data_dir>/outbox/`.
//!
//! Producers never wait for this: the domain queues a row in `mail_queue` and wakes
//! the worker. The worker claims one due message at a time (an atomic claim with a
//! lease, see the stores), renders it, sends it, and marks it sent, or schedules a
//! retry with back-off, or gives it up. Claim, send, mark: a message accepted by
//! the SMTP server is marked right after; only if the process dies (or the database
//! goes away) between the server's acceptance and the mark is it sent again after
//! the lease runs out — at least once, with the same Message-ID, never lost.

use crate::config::{redact, Config};
use lettre::message::{header, Mailbox, MultiPart};
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tweestap_domain::mail::{open_link, Delivery, Notice, QueuedMail};
use tweestap_domain::secret_box::SecretBox;
use tweestap_domain::Tweestap;
use tweestap_web::mail::{render_notice, MailBranding};

/// Mail cannot go out as configured; the message names the key.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct MailSetupError(String);

/// How long one SMTP conversation may take; well inside the claim lease (5 min).
const SMTP_TIMEOUT: Duration = Duration::from_secs(60);

enum Route {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Outbox(PathBuf),
}

/// Renders and sends queued messages.
pub struct Mailer {
    route: Route,
    from: Mailbox,
    organisation: String,
    public_url: String,
    /// The Dutch of Dutch readers (`[ui] dutch`).
    dutch: tweestap_web::i18n::Dutch,
    /// Opens the links notices carry sealed (the engine's secret box).
    secrets: SecretBox,
}

impl Mailer {
    pub fn from_config(config: &Config, secrets: SecretBox) -> Result<Self, MailSetupError> {
        let m = &config.mail;
        let from: Mailbox = m
            .from
            .parse()
            .map_err(|e| MailSetupError(format!("[mail] from {:?}: {e}", m.from)))?;
        // Checked whenever set, so a broken path fails every start, not the first TLS one.
        let extra_roots = match m.smtp_ca_file.as_deref() {
            Some(path) if !path.as_os_str().is_empty() => Some(read_ca_file(path)?),
            _ => None,
        };
        let route = if m.smtp_url.trim().is_empty() {
            Route::Outbox(outbox_dir(config))
        } else {
            Route::Smtp(smtp_transport(m.smtp_url.trim(), extra_roots)?)
        };
        Ok(Self {
            route,
            from,
            organisation: m.organisation.clone(),
            public_url: config.public_url.clone(),
            dutch: config
                .ui
                .dutch()
                .map_err(|e| MailSetupError(e.to_string()))?,
            secrets,
        })
    }

    /// The outbox folder when mail goes there rather than to SMTP.
    pub fn outbox(&self) -> Option<PathBuf> {
        match &self.route {
            Route::Outbox(dir) => Some(dir.clone()),
            Route::Smtp(_) => None,
        }
    }

    /// The full message: text and HTML alternatives, a Message-ID derived from the
    /// queue row (the same on every retry) and the time it was queued as its Date.
    pub fn compose(&self, m: &QueuedMail) -> Result<Message, String> {
        let notice =
            Notice::from_json(&m.payload).map_err(|e| format!("unreadable notice: {e}"))?;
        let brand = MailBranding {
            organisation: &self.organisation,
            public_url: &self.public_url,
            dutch: self.dutch,
        };
        // A secret link is opened only here, in memory, to render this one message.
        let link = match notice.sealed() {
            Some(sealed) => Some(
                open_link(&self.secrets, m.id, sealed).map_err(|e| format!("sealed link: {e}"))?,
            ),
            None => None,
        };
        let r = render_notice(&notice, m.language, &m.to_name, &brand, link.as_deref())
            .map_err(|e| format!("render: {e}"))?;
        let to_addr =
            m.to.parse()
                .map_err(|e| format!("recipient {:?}: {e}", m.to))?;
        let to = Mailbox::new(
            Some(m.to_name.clone()).filter(|n| !n.trim().is_empty()),
            to_addr,
        );
        let domain = self.from.email.domain().to_owned();
        Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(r.subject)
            .message_id(Some(format!("<{}@{domain}>", m.id)))
            .date(std::time::SystemTime::from(m.created_at))
            .header(ContentLanguage(m.language.code()))
            .header(AutoSubmitted)
            .multipart(MultiPart::alternative_plain_html(r.text, r.html))
            .map_err(|e| format!("message: {e}"))
    }

    /// One delivery attempt.
    pub async fn deliver(&self, m: &QueuedMail) -> Delivery {
        let message = match self.compose(m) {
            Ok(msg) => msg,
            Err(e) => return Delivery::Permanent(e),
        };
        match &self.route {
            Route::Smtp(t) => match t.send(message).await {
                Ok(_) => Delivery::Sent,
                Err(e) if e.is_permanent() => Delivery::Permanent(e.to_string()),
                Err(e) => Delivery::Transient(e.to_string()),
            },
            Route::Outbox(dir) => match write_outbox(dir, m, &message.formatted()).await {
                Ok(path) => {
                    tracing::info!(
                        mail = %m.id,
                        kind = %m.kind,
                        to = %m.to,
                        path = %path.display(),
                        "mail written to the outbox (no smtp_url configured)"
                    );
                    Delivery::Sent
                }
                Err(e) => Delivery::Transient(format!("outbox: {e}")),
            },
        }
    }
}

/// The transport `smtp_url` describes, as lettre reads it: `smtp://` plain,
/// `smtp://…?tls=required` / `?tls=opportunistic` STARTTLS, `smtps://` implicit TLS.
/// With `extra_roots` (from `smtp_ca_file`) the TLS of the same mode also trusts
/// those certificates, next to the Mozilla roots.
fn smtp_transport(
    url: &str,
    extra_roots: Option<CaFile>,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, MailSetupError> {
    let bad = |e: &dyn std::fmt::Display| MailSetupError(format!("smtp_url {}: {e}", redact(url)));
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url).map_err(|e| bad(&e))?;
    if let Some(ca) = extra_roots {
        // from_url accepted the URL, so it parses and names a host.
        let parsed = url::Url::parse(url).map_err(|e| bad(&e))?;
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let tls = parsed
            .query_pairs()
            .find(|(k, _)| k == "tls")
            .map(|(_, v)| v.into_owned());
        let params = || {
            TlsParameters::builder(host.clone())
                .add_root_certificate(ca.certificate.clone())
                .build_rustls()
                .map_err(|e| {
                    MailSetupError(format!(
                        "[mail] smtp_ca_file {}: not a usable CA certificate: {e}",
                        ca.path.display()
                    ))
                })
        };
        builder = match (parsed.scheme(), tls.as_deref()) {
            ("smtps", _) => builder.tls(Tls::Wrapper(params()?)),
            ("smtp", Some("required")) => builder.tls(Tls::Required(params()?)),
            ("smtp", Some("opportunistic")) => builder.tls(Tls::Opportunistic(params()?)),
            _ => {
                tracing::warn!(
                    smtp_ca_file = %ca.path.display(),
                    smtp = %redact(url),
                    "smtp_ca_file is set but smtp_url asks for no TLS: mail goes out unencrypted"
                );
                builder
            }
        };
    }
    Ok(builder.timeout(Some(SMTP_TIMEOUT)).build())
}

/// The certificates of `[mail] smtp_ca_file`, read once at start.
struct CaFile {
    path: PathBuf,
    certificate: Certificate,
}

/// Reads `smtp_ca_file`: one or more PEM certificates. A missing, unreadable or
/// malformed file is a start-up error naming the key and the path.
fn read_ca_file(path: &Path) -> Result<CaFile, MailSetupError> {
    let fail =
        |why: String| MailSetupError(format!("[mail] smtp_ca_file {}: {why}", path.display()));
    let pem = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    // lettre skips anything that is not a certificate, so a key, a DER file or an
    // empty file would otherwise pass as "no extra roots".
    if !pem
        .windows(PEM_CERTIFICATE.len())
        .any(|w| w == PEM_CERTIFICATE)
    {
        return Err(fail(
            "no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_owned(),
        ));
    }
    let certificate =
        Certificate::from_pem(&pem).map_err(|e| fail(format!("not valid PEM: {e}")))?;
    // Building parameters once checks every certificate (rustls parses each one as
    // a trust anchor), so a corrupt one fails here rather than at the first send.
    TlsParameters::builder("localhost".to_owned())
        .add_root_certificate(certificate.clone())
        .build_rustls()
        .map_err(|e| fail(format!("not a usable CA certificate: {e}")))?;
    Ok(CaFile {
        path: path.to_owned(),
        certificate,
    })
}

const PEM_CERTIFICATE: &[u8] = b"-----BEGIN CERTIFICATE-----";

/// `<data_dir>/outbox`.
pub fn outbox_dir(config: &Config) -> PathBuf {
    config.data_dir.join("outbox")
}

/// Writes whole files only (a temporary name, then a rename), named so that name
/// order is the order written.
async fn write_outbox(
    dir: &std::path::Path,
    m: &QueuedMail,
    raw: &[u8],
) -> std::io::Result<PathBuf> {
    crate::private_files::private_dir(dir)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%6f");
    let name = format!("{stamp}-{}-{}.eml", m.kind.replace('_', "-"), m.id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    // Reset links and codes: readable by this user only.
    crate::private_files::write_private(&tmp, raw).await?;
    tokio::fs::rename(&tmp, &path).await?;
    Ok(path)
}

/// `Auto-Submitted: auto-generated` (RFC 3834): no out-of-office replies, please.
#[derive(Clone)]
struct AutoSubmitted;

impl header::Header for AutoSubmitted {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self)
    }
    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), "auto-generated".to_owned())
    }
}

/// `Content-Language`: the language the message is written in.
#[derive(Clone)]
struct ContentLanguage(&'static str);

impl header::Header for ContentLanguage {
    fn name() -> header::HeaderName {
        header::HeaderName::new_from_ascii_str("Content-Language")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(if s.trim() == "en" { "en" } else { "nl" }))
    }
    fn display(&self) -> header::HeaderValue {
        header::HeaderValue::new(Self::name(), self.0.to_owned())
    }
}

/// Delivers due mail until aborted: at once when this node queues a message,
/// otherwise every `poll` (for mail queued on other nodes and for retries, whose
/// due time follows the engine's clock).
pub async fn run_worker(app: Arc<Tweestap>, mailer: Arc<Mailer>, poll: Duration) {
    let wake = app.mail_wakeup().clone();
    loop {
        let claimed = match app.claim_mail(1).await {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the mail queue");
                Vec::new()
            }
        };
        let busy = !claimed.is_empty();
        for m in claimed {
            let outcome = mailer.deliver(&m).await;
            if let Err(e) = app.record_delivery(&m, &outcome).await {
                // The claim stays until its lease ends; then the message is tried
                // again (sent twice if this attempt had in fact been accepted).
                tracing::error!(mail = %m.id, error = %e, "cannot record a mail delivery");
            }
        }
        if busy {
            continue;
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(poll) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca_pem() -> String {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.self_signed(&key).expect("CA").pem()
    }

    // Building the transport starts lettre's pool, which needs a runtime.
    #[tokio::test]
    async fn smtp_ca_file_takes_a_bundle_and_every_url_form() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bundle.pem");
        // Two roots, with a comment line between them as bundles often have.
        std::fs::write(&path, format!("{}# second\n{}", ca_pem(), ca_pem())).expect("write");
        for url in [
            "smtp://user:pw@mail.example.org:587?tls=required",
            "smtp://mail.example.org:587?tls=opportunistic",
            "smtps://mail.example.org:465",
            "smtp://127.0.0.1:2525",
        ] {
            let ca = read_ca_file(&path).expect("a good bundle");
            assert!(smtp_transport(url, Some(ca)).is_ok(), "{url}");
            assert!(smtp_transport(url, None).is_ok(), "{url}");
        }
    }

    #[test]
    fn bad_smtp_ca_files_name_the_key_the_path_and_why() {
        let dir = tempfile::tempdir().expect("tempdir");
        let write = |name: &str, text: &str| {
            let p = dir.path().join(name);
            std::fs::write(&p, text).expect("write");
            p
        };
        let cases = [
            (dir.path().join("missing.pem"), "cannot read it"),
            (write("empty.pem", ""), "no PEM certificate"),
            (
                write(
                    "key.pem",
                    &rcgen::KeyPair::generate().expect("key").serialize_pem(),
                ),
                "no PEM certificate",
            ),
            (
                write(
                    "corrupt.pem",
                    "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                ),
                "not a usable CA certificate",
            ),
        ];
        for (path, why) in cases {
            let err = match read_ca_file(&path) {
                Ok(_) => panic!("accepted {}", path.display()),
                Err(e) => e.to_string(),
            };
            assert!(
                err.contains("[mail] smtp_ca_file") && err.contains(&path.display().to_string()),
                "{err}"
            );
            assert!(err.contains(why), "{why}: {err}");
        }
    }
}
