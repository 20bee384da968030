//! Server-side sessions: half-finished sign-ins and signed-in browsers alike.

use crate::account::AccountId;
use crate::token::TokenHash;
use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionStage {
    /// The password was right; the second factor is still to come.
    SecondFactor,
    /// The password was right, but two-step verification is required and not set up
    /// yet: the session may only set it up.
    Enrollment,
    /// "Secure your account now": the password was right; the code mailed to the
    /// address is still to come. Leads to `Enrollment`, never to a signed-in session.
    EmailCode,
    Authenticated,
}

impl SessionStage {
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStage::SecondFactor => "second_factor",
            SessionStage::Enrollment => "enrollment",
            SessionStage::EmailCode => "email_code",
            SessionStage::Authenticated => "authenticated",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "second_factor" => Some(SessionStage::SecondFactor),
            "enrollment" => Some(SessionStage::Enrollment),
            "email_code" => Some(SessionStage::EmailCode),
            "authenticated" => Some(SessionStage::Authenticated),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Session {
    pub id_hash: TokenHash,
    pub account_id: AccountId,
    pub stage: SessionStage,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    /// When the user last proved who they are (password, then code).
    pub auth_time: DateTime<Utc>,
    /// Which methods proved it, e.g. `pwd` or `pwd otp` (RFC 8176 names).
    pub amr: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The public id of this browser sign-in (the `sid` portals see): kept when the
    /// same person signs in again in the same browser.
    pub sid: String,
}

/// A new random `sid`: 128 bits, hex.
pub fn new_sid() -> String {
    use rand::RngCore;
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    crate::token::hex(&b)
}

#[derive(Debug, Clone, Copy)]
pub struct SessionPolicy {
    pub idle: Duration,
    pub absolute: Duration,
    /// How long a user may take between the password and the code.
    pub second_factor: Duration,
}

impl Default for SessionPolicy {
    fn default() -> Self {
        Self {
            idle: Duration::minutes(30),
            absolute: Duration::hours(12),
            second_factor: Duration::minutes(10),
        }
    }
}

impl SessionPolicy {
    pub fn is_expired(&self, s: &Session, now: DateTime<Utc>) -> bool {
        match s.stage {
            SessionStage::SecondFactor => now - s.created_at > self.second_factor,
            // Each mailed code gives its own time (a resend touches the session).
            SessionStage::EmailCode => {
                now - s.last_seen_at > self.second_factor || now - s.created_at > self.absolute
            }
            SessionStage::Enrollment | SessionStage::Authenticated => {
                now - s.last_seen_at > self.idle || now - s.created_at > self.absolute
            }
        }
    }

    /// How stale a signed-in session's `last_seen_at` may get before a request
    /// writes it anew: a minute, so a busy session is not a write per request, and
    /// never more than a tenth of the idle timeout, so a session in use is never
    /// taken for idle (it may end at most that much early).
    pub fn touch_after(&self) -> Duration {
        (self.idle / 10).min(Duration::seconds(60))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn touches_are_rare_but_keep_a_session_in_use_alive() {
        let default = SessionPolicy::default();
        assert_eq!(default.touch_after(), Duration::seconds(60));
        let short = SessionPolicy {
            idle: Duration::minutes(1),
            ..default
        };
        assert_eq!(short.touch_after(), Duration::seconds(6));
        // Requests just under the touch interval apart never touch, and must
        // still find the session alive: the stale part stays within the idle time.
        for policy in [default, short] {
            assert!(policy.touch_after() < policy.idle);
        }
    }
}
