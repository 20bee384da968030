//! E-mail as the domain sees it: which notice goes to whom, in which language, and
//! when a failed delivery is tried again. No SMTP and no SQL here.
//!
//! A notice is queued in the database (`mail_queue`) in the same request that
//! caused it; a delivery worker on every node claims due messages, renders them
//! (templates live with the other templates, in the web crate) and sends them.
//! Adding a kind of mail is one [`Notice`] variant plus its texts and templates.

use crate::account::AccountId;
use crate::secret_box::{CryptoError, SecretBox};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Mail is written in a [`Language`]; it lives in [`crate::language`], which accounts
/// and pages use too, and is named here for the crates that took it from here.
pub use crate::language::Language;

/// What a mail says. Stored as JSON in the queue and rendered when it is sent, so
/// the row holds what is needed to render it and no secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Notice {
    /// A second factor was set up and confirmed.
    FactorAdded { factor_kind: String },
    /// A second factor was removed.
    FactorRemoved { factor_kind: String },
    /// A forgotten-password link. The link holds a bearer token, so the queue row
    /// keeps it sealed (see [`seal_link`]); the worker opens it only to render.
    PasswordReset { link_sealed: String },
    /// The password was changed (through a reset link).
    PasswordChanged,
    /// The 6-digit code of "secure your account now", sealed like a link.
    EmailCode { code_sealed: String },
    /// A link to the personal QR page, asked for on My Profile (sealed).
    EnrollmentLink {
        link_sealed: String,
        valid_days: i64,
    },
    /// Support reset two-step verification; a new QR link (sealed).
    TwoFactorReset {
        link_sealed: String,
        valid_days: i64,
    },
    /// A recovery code was used to sign in.
    RecoveryCodeUsed { remaining: u32 },
    /// An administrator made an account: a link to choose a password (sealed).
    Invite {
        link_sealed: String,
        valid_days: i64,
    },
    /// Two-step verification becomes required on `deadline` (YYYY-MM-DD) and this
    /// account has none yet; the mail links to the set-up from the sign-in page.
    TwoFactorReminder { deadline: String, days_left: i64 },
}

impl Notice {
    /// The kind of [`Notice::EmailCode`], for counting those mails.
    pub const EMAIL_CODE: &'static str = "email_code";
    /// The kind of [`Notice::PasswordReset`], for counting those mails.
    pub const PASSWORD_RESET: &'static str = "password_reset";

    /// The kind, as stored and audited; also the template name.
    pub fn kind(&self) -> &'static str {
        match self {
            Notice::FactorAdded { .. } => "factor_added",
            Notice::FactorRemoved { .. } => "factor_removed",
            Notice::PasswordReset { .. } => Self::PASSWORD_RESET,
            Notice::PasswordChanged => "password_changed",
            Notice::EmailCode { .. } => Self::EMAIL_CODE,
            Notice::EnrollmentLink { .. } => "enrollment_link",
            Notice::TwoFactorReset { .. } => "two_factor_reset",
            Notice::RecoveryCodeUsed { .. } => "recovery_code_used",
            Notice::Invite { .. } => "invite",
            Notice::TwoFactorReminder { .. } => "two_factor_reminder",
        }
    }

    /// The sealed secret (a link or a code) the mail carries, if any.
    pub fn sealed(&self) -> Option<&str> {
        match self {
            Notice::PasswordReset { link_sealed }
            | Notice::EnrollmentLink { link_sealed, .. }
            | Notice::TwoFactorReset { link_sealed, .. }
            | Notice::Invite { link_sealed, .. } => Some(link_sealed),
            Notice::EmailCode { code_sealed } => Some(code_sealed),
            Notice::FactorAdded { .. }
            | Notice::FactorRemoved { .. }
            | Notice::PasswordChanged
            | Notice::RecoveryCodeUsed { .. }
            | Notice::TwoFactorReminder { .. } => None,
        }
    }

    /// The sealed secret, to seal it again under another key.
    pub fn sealed_mut(&mut self) -> Option<&mut String> {
        match self {
            Notice::PasswordReset { link_sealed }
            | Notice::EnrollmentLink { link_sealed, .. }
            | Notice::TwoFactorReset { link_sealed, .. }
            | Notice::Invite { link_sealed, .. } => Some(link_sealed),
            Notice::EmailCode { code_sealed } => Some(code_sealed),
            Notice::FactorAdded { .. }
            | Notice::FactorRemoved { .. }
            | Notice::PasswordChanged
            | Notice::RecoveryCodeUsed { .. }
            | Notice::TwoFactorReminder { .. } => None,
        }
    }

    pub fn to_json(&self) -> String {
        // A plain enum of strings always serialises.
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn from_json(s: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(s)
    }
}

fn link_aad(mail_id: Uuid) -> Vec<u8> {
    format!("tweestap mail link v1 {mail_id}").into_bytes()
}

/// Seals a secret link for the queue row of mail `mail_id`: XChaCha20-Poly1305 under
/// the engine's secret box, base64url, with the mail id as associated data, so the
/// sealed link opens only as part of that one message.
pub fn seal_link(secrets: &SecretBox, mail_id: Uuid, link: &str) -> String {
    URL_SAFE_NO_PAD.encode(secrets.seal(link.as_bytes(), &link_aad(mail_id)))
}

/// Opens what [`seal_link`] sealed for the same mail id.
pub fn open_link(secrets: &SecretBox, mail_id: Uuid, sealed: &str) -> Result<String, CryptoError> {
    let raw = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| CryptoError::Decrypt)?;
    let plain = secrets.open(&raw, &link_aad(mail_id))?;
    String::from_utf8(plain.to_vec()).map_err(|_| CryptoError::Decrypt)
}

/// What [`seal_link`] sealed, sealed again under the sealing key; `None` when it
/// is sealed under it already.
pub fn reseal_link(
    secrets: &SecretBox,
    mail_id: Uuid,
    sealed: &str,
) -> Result<Option<String>, CryptoError> {
    let raw = URL_SAFE_NO_PAD
        .decode(sealed)
        .map_err(|_| CryptoError::Decrypt)?;
    Ok(secrets
        .reseal(&raw, &link_aad(mail_id))?
        .map(|new| URL_SAFE_NO_PAD.encode(new)))
}

/// The bytes of a sealed link or code as [`seal_link`] wrote them (to see which
/// key sealed it).
pub fn sealed_bytes(sealed: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(sealed).ok()
}

/// A new message's id: a UUIDv7, ordered by when it was made (and within one
/// millisecond by a counter), so that the queue, sending the oldest first with the
/// id as tie-break, delivers mails queued in the same instant in the order they were
/// queued: a resent code arrives after the one it replaces.
pub fn new_mail_id() -> Uuid {
    Uuid::now_v7()
}

/// A message to be queued.
#[derive(Debug, Clone)]
pub struct NewMail {
    pub id: Uuid,
    pub account_id: Option<AccountId>,
    pub to: String,
    pub to_name: String,
    pub language: Language,
    pub notice: Notice,
    pub created_at: DateTime<Utc>,
}

/// A message claimed from the queue by one worker.
#[derive(Debug, Clone)]
pub struct QueuedMail {
    /// Also the Message-ID's local part, so a retry carries the same Message-ID.
    pub id: Uuid,
    pub account_id: Option<AccountId>,
    pub to: String,
    pub to_name: String,
    pub language: Language,
    /// The stored JSON of the [`Notice`]; parsed by the sender, so an unreadable row
    /// fails that one message rather than the whole claim.
    pub payload: String,
    pub kind: String,
    /// Tries so far, this one included.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    /// The token of this claim; marks only apply while the claim is ours.
    pub claim: Uuid,
}

/// When to try again, when to give up, and how long a claim is held.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// The wait after the first failure; doubles after each further one.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// A message still undelivered this long after it was queued is given up.
    pub give_up_after: Duration,
    /// How long a claim keeps other workers away: longer than any delivery attempt,
    /// so a message is only re-claimed when the node that held it died.
    pub lease: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::seconds(30),
            max_delay: Duration::hours(1),
            give_up_after: Duration::days(2),
            lease: Duration::minutes(5),
        }
    }
}

impl RetryPolicy {
    /// The next try after `attempts` failed tries, or `None` to give up.
    pub fn next_attempt(
        &self,
        attempts: u32,
        created_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<DateTime<Utc>> {
        if now - created_at >= self.give_up_after {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(20);
        let delay = (self.first_delay * 2i32.pow(doublings)).min(self.max_delay);
        Some(now + delay)
    }
}

/// What happened to a delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    /// Worth another try later (server down, 4xx, timeout).
    Transient(String),
    /// Will not get better (5xx for the recipient, unreadable row).
    Permanent(String),
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn back_off_doubles_up_to_an_hour_then_gives_up_after_two_days() {
        let p = RetryPolicy::default();
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let wait = |n, now| p.next_attempt(n, t0, now).map(|at| at - now);
        assert_eq!(wait(1, t0), Some(Duration::seconds(30)));
        assert_eq!(wait(2, t0), Some(Duration::seconds(60)));
        assert_eq!(wait(3, t0), Some(Duration::seconds(120)));
        assert_eq!(wait(8, t0), Some(Duration::hours(1)));
        assert_eq!(wait(500, t0), Some(Duration::hours(1)));
        let late = t0 + Duration::days(2);
        assert_eq!(
            wait(60, late - Duration::seconds(1)),
            Some(Duration::hours(1))
        );
        assert_eq!(wait(60, late), None);
    }

    #[test]
    fn links_open_only_for_their_mail() {
        use crate::secret_box::MasterKey;
        let b = SecretBox::new(&MasterKey::generate());
        let (a, other) = (Uuid::new_v4(), Uuid::new_v4());
        let sealed = seal_link(&b, a, "https://x.example/password/reset/t0k3n");
        assert!(!sealed.contains("t0k3n"));
        assert_eq!(
            open_link(&b, a, &sealed).unwrap(),
            "https://x.example/password/reset/t0k3n"
        );
        assert_eq!(open_link(&b, other, &sealed), Err(CryptoError::Decrypt));
        assert_eq!(open_link(&b, a, "!!"), Err(CryptoError::Decrypt));
    }

    #[test]
    fn notices_round_trip() {
        let n = Notice::FactorAdded {
            factor_kind: "totp".into(),
        };
        assert_eq!(Notice::from_json(&n.to_json()).unwrap(), n);
        assert!(n.to_json().contains("\"kind\":\"factor_added\""));
        assert_eq!(n.kind(), "factor_added");
    }
}
