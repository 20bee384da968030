//! SMS delivery: the gateways `[sms]` names (see `config::sms`).
//!
//! - `outbox` (the embedded default): every SMS is written to
//!   `<data_dir>/sms-outbox/<stamp>-<id>.txt`, as mail goes to the mail outbox.
//! - `http`: a generic HTTP gateway (URL, POST or GET, an optional auth header, a
//!   JSON or form body with `{to}`, `{text}` and `{id}` placeholders): enough for
//!   most European SMS providers.
//! - `twilio`: Twilio's Messages API, or anything that speaks it (`base_url`).
//!
//! Retries: only when the SMS cannot have gone out — the connection failed before
//! the request was sent, or the gateway answered 5xx or 429 — with exponential
//! back-off. A timeout or broken connection after the request went out is
//! *ambiguous*: the provider may have sent the SMS, so it is not retried, and the
//! log says so. The text (it holds a code) is never logged; the number only masked.

mod http;

#[cfg(test)]
mod tests;

use crate::config::sms::{GatewayKind, SmsConfig, SmsConfigError};
use std::path::{Path, PathBuf};
use tweestap_domain::sms::{SmsMessage, SmsOutcome};

pub use http::{HttpGateway, TwilioGateway};

/// `<data_dir>/sms-outbox`.
pub fn sms_outbox_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sms-outbox")
}

/// Where SMS go.
#[derive(Debug)]
pub enum SmsGateway {
    /// Files in this folder (the embedded default).
    Outbox(PathBuf),
    Http(HttpGateway),
    Twilio(TwilioGateway),
}

impl SmsGateway {
    /// The gateway `config` names, checked. `data_dir` is where the outbox goes.
    pub fn from_config(config: &SmsConfig, data_dir: &Path) -> Result<Self, SmsConfigError> {
        config.validate()?;
        Ok(match config.gateway {
            GatewayKind::Outbox => Self::Outbox(sms_outbox_dir(data_dir)),
            GatewayKind::Http => Self::Http(HttpGateway::new(config)?),
            GatewayKind::Twilio => Self::Twilio(TwilioGateway::new(config)?),
        })
    }

    /// One SMS, with the retries that cannot send it twice.
    pub async fn send(&self, msg: &SmsMessage) -> SmsOutcome {
        match self {
            Self::Outbox(dir) => send_to_outbox(dir, msg).await,
            Self::Http(g) => g.send(msg).await,
            Self::Twilio(g) => g.send(msg).await,
        }
    }

    /// `outbox`, `http` or `twilio`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Outbox(_) => "outbox",
            Self::Http(_) => "http",
            Self::Twilio(_) => "twilio",
        }
    }

    /// The outbox folder when SMS go there (for the development page).
    pub fn outbox(&self) -> Option<&Path> {
        match self {
            Self::Outbox(dir) => Some(dir),
            _ => None,
        }
    }

    /// For the start-up log: the kind and where to, without secrets or query.
    pub fn describe(&self) -> String {
        match self {
            Self::Outbox(dir) => format!("outbox {}", dir.display()),
            Self::Http(g) => format!("http {}", g.describe()),
            Self::Twilio(g) => format!("twilio {}", g.describe()),
        }
    }
}

/// The file's text: headers, a blank line, the SMS text.
pub fn outbox_file_text(msg: &SmsMessage, written: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "To: {}\nId: {}\nDate: {}\n\n{}\n",
        msg.to.e164(),
        msg.id,
        written.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        msg.text
    )
}

/// Writes whole files only (a temporary name, then a rename), named so that name
/// order is the order written.
async fn send_to_outbox(dir: &Path, msg: &SmsMessage) -> SmsOutcome {
    let now = chrono::Utc::now();
    let name = format!("{}-{}.txt", now.format("%Y%m%dT%H%M%S%6f"), msg.id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = async {
        crate::private_files::private_dir(dir)?;
        crate::private_files::write_private(&tmp, outbox_file_text(msg, now).as_bytes()).await?;
        tokio::fs::rename(&tmp, &path).await
    }
    .await;
    match written {
        Ok(()) => {
            tracing::info!(
                sms = %msg.id,
                to = %msg.to.masked(),
                path = %path.display(),
                "SMS written to the outbox (no SMS gateway configured)"
            );
            SmsOutcome::Sent { provider_id: None }
        }
        Err(e) => {
            tracing::warn!(sms = %msg.id, to = %msg.to.masked(), error = %e, "cannot write the SMS outbox");
            SmsOutcome::Failed {
                retryable: true,
                ambiguous: false,
                error: format!("outbox {}: {e}", dir.display()),
            }
        }
    }
}

#[async_trait::async_trait]
impl tweestap_domain::sms::SmsSender for SmsGateway {
    async fn send(&self, msg: &SmsMessage) -> SmsOutcome {
        SmsGateway::send(self, msg).await
    }
}
