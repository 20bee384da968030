//! Mail delivery: the worker each node runs, and the two ways out — SMTP through
//! lettre (plain, STARTTLS or implicit TLS, rustls), or, without `smtp_url`, `.eml`
//! files in `<data_dir>/outbox/`.
//!
//! Producers never wait for this: the domain queues a row in `mail_queue` and wakes
//! the worker. The worker claims one due message at a time (an atomic claim with a
//! lease, see the stores), renders it, sends it, and marks it sent, or schedules a
//! retry with back-off, or gives it up. Claim, send, mark: a message accepted by
//! the SMTP server is marked right after; only if the process dies (or the database
//! goes away) between the server's acceptance and the mark is it sent again after
//! the lease runs out — at least once, with the same Message-ID, never lost.

use crate::config::Config;
use crate::StartError;
use lettre::message::{header, Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tweestap_domain::mail::{open_link, Delivery, Notice, QueuedMail};
use tweestap_domain::secret_box::SecretBox;
use tweestap_domain::Tweestap;
use tweestap_web::mail::{render_notice, MailBranding};

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
    /// Opens the links notices carry sealed (the engine's secret box).
    secrets: SecretBox,
}

impl Mailer {
    pub fn from_config(config: &Config, secrets: SecretBox) -> Result<Self, StartError> {
        let m = &config.mail;
        let from: Mailbox = m
            .from
            .parse()
            .map_err(|e| StartError::Mail(format!("[mail] from {:?}: {e}", m.from)))?;
        let route = if m.smtp_url.trim().is_empty() {
            Route::Outbox(outbox_dir(config))
        } else {
            let t = AsyncSmtpTransport::<Tokio1Executor>::from_url(m.smtp_url.trim())
                .map_err(|e| {
                    StartError::Mail(format!(
                        "smtp_url {}: {e}",
                        crate::redact(m.smtp_url.trim())
                    ))
                })?
                .timeout(Some(SMTP_TIMEOUT))
                .build();
            Route::Smtp(t)
        };
        Ok(Self {
            route,
            from,
            organisation: m.organisation.clone(),
            public_url: config.public_url.clone(),
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
    tokio::fs::create_dir_all(dir).await?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%6f");
    let name = format!("{stamp}-{}-{}.eml", m.kind.replace('_', "-"), m.id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    tokio::fs::write(&tmp, raw).await?;
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
