//! The set-up journeys of the manuals: a 6-digit code mailed to prove the address
//! ("secure your account now" on the sign-in page), and a mailed link to a
//! personal QR page (from My Profile, or sent again after a support reset).

use crate::account::AccountId;
use crate::token::TokenHash;
use chrono::{DateTime, Duration, Utc};

/// How long a mailed code works.
pub fn email_code_validity() -> Duration {
    Duration::minutes(10)
}

/// Wrong guesses a mailed code survives; the next one needs a new code.
pub const EMAIL_CODE_TRIES: u32 = 5;

/// Codes mailed for one half-finished sign-in (the first one included).
pub const EMAIL_CODE_SENDS: u32 = 3;

/// Codes mailed per account in any hour, over all attempts (someone who knows the
/// password can start a new attempt at will); further ones are audited only, as
/// with the hourly cap on password-reset mails.
pub const EMAIL_CODE_MAILS_PER_HOUR: u32 = 5;

/// Why a QR link was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkPurpose {
    /// The user asked for it on My Profile.
    Profile,
    /// Support reset the user's two-step verification.
    SupportReset,
}

impl LinkPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkPurpose::Profile => "profile",
            LinkPurpose::SupportReset => "support_reset",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "profile" => Some(LinkPurpose::Profile),
            "support_reset" => Some(LinkPurpose::SupportReset),
            _ => None,
        }
    }
}

/// A link to a personal QR page as stored: only the hash of its token.
#[derive(Debug, Clone)]
pub struct EnrollmentLink {
    pub token_hash: TokenHash,
    pub account_id: AccountId,
    pub purpose: LinkPurpose,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What a link can still do, as told to whoever opens it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    Open,
    Expired,
    Used,
}

impl EnrollmentLink {
    pub fn state(&self, now: DateTime<Utc>) -> LinkState {
        if self.used_at.is_some() {
            LinkState::Used
        } else if self.expires_at <= now {
            LinkState::Expired
        } else {
            LinkState::Open
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_used_link_stays_used_after_it_would_have_expired() {
        let t0 = chrono::Utc::now();
        let mut l = EnrollmentLink {
            token_hash: TokenHash("x".into()),
            account_id: AccountId(uuid::Uuid::nil()),
            purpose: LinkPurpose::Profile,
            created_at: t0,
            expires_at: t0 + Duration::days(5),
            used_at: None,
        };
        assert_eq!(l.state(t0), LinkState::Open);
        assert_eq!(l.state(t0 + Duration::days(5)), LinkState::Expired);
        l.used_at = Some(t0);
        assert_eq!(l.state(t0 + Duration::days(6)), LinkState::Used);
    }
}
