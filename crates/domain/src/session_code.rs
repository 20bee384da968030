//! One-time codes tied to a half-finished session: the 6-digit code mailed by
//! "secure your account now" and the code sent by SMS at sign-in or set-up. Both are
//! one mechanism (one table, one check); the purpose keeps a session's mailed code and
//! its SMS code apart.

use crate::account::AccountId;
use crate::factor::FactorId;
use crate::token::TokenHash;
use chrono::{DateTime, Duration, Utc};
use rand::Rng;

/// What a session's code is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CodePurpose {
    /// Mailed, to prove the address ("secure your account now").
    Email,
    /// Sent by SMS to the phone of a factor, at sign-in or while setting it up.
    Sms,
}

impl CodePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            CodePurpose::Email => "email",
            CodePurpose::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "email" => Some(CodePurpose::Email),
            "sms" => Some(CodePurpose::Sms),
            _ => None,
        }
    }

    /// How long a new code works.
    pub fn validity(self) -> Duration {
        match self {
            CodePurpose::Email => crate::enrollment::email_code_validity(),
            CodePurpose::Sms => crate::sms::sms_code_validity(),
        }
    }

    /// Wrong guesses a code survives; the next one needs a new code.
    pub fn max_tries(self) -> u32 {
        match self {
            CodePurpose::Email => crate::enrollment::EMAIL_CODE_TRIES,
            CodePurpose::Sms => crate::sms::SMS_CODE_TRIES,
        }
    }
}

/// A fresh 6-digit code, uniformly random (leading zeros kept).
pub fn new_code() -> String {
    format!("{:06}", rand::rngs::OsRng.gen_range(0..1_000_000u32))
}

/// A session's live code as stored: only its MAC (under a server key: a plain hash of
/// six digits would be reversed in a millisecond).
#[derive(Debug, Clone)]
pub struct SessionCode {
    pub session_hash: TokenHash,
    pub purpose: CodePurpose,
    pub account_id: AccountId,
    /// The phone's factor: set for (and only for) SMS codes.
    pub factor_id: Option<FactorId>,
    pub code_mac: String,
    pub attempts: u32,
    /// Codes sent for this session and purpose so far, this one included.
    pub sends: u32,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_six_digits_and_vary() {
        let codes: std::collections::HashSet<String> = (0..50).map(|_| new_code()).collect();
        assert!(codes.len() > 45);
        assert!(codes
            .iter()
            .all(|c| c.len() == 6 && c.bytes().all(|b| b.is_ascii_digit())));
    }

    #[test]
    fn purposes_round_trip() {
        for p in [CodePurpose::Email, CodePurpose::Sms] {
            assert_eq!(CodePurpose::parse(p.as_str()), Some(p));
        }
        assert_eq!(CodePurpose::parse("totp"), None);
    }
}
