//! OpenID Connect Back-Channel Logout 1.0: when a browser session ends, each portal
//! that signed in through it and registered a `backchannel_logout_uri` is told, by
//! a signed logout token POSTed from a durable queue (so a node restarting or a
//! portal down for a while does not lose it).

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// The `events` member that makes a JWT a logout token (section 2.4).
pub const LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// Logout tokens are accepted for two minutes after they are signed.
pub const LOGOUT_TOKEN_LIFETIME: i64 = 120;
/// The JWS `typ` of a logout token (section 2.4, as updated).
pub const LOGOUT_TOKEN_TYP: &str = "logout+jwt";

/// A logout token still to be delivered, as claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedLogout {
    pub sid: String,
    pub client_id: String,
    /// The `sub` of the session that ended.
    pub subject: String,
    pub created_at: DateTime<Utc>,
    /// Attempts so far, this one included.
    pub attempts: u32,
    /// Which worker holds it.
    pub claim: uuid::Uuid,
}

/// The `jti` of the logout of `sid` at `client_id`: the same on every attempt and
/// every node, so a receiver that got it twice can tell.
fn logout_jti(sid: &str, client_id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("backchannel-logout\0{sid}\0{client_id}").as_bytes());
    crate::token::hex(&digest[..16])
}

/// The claims of a logout token for `q`, signed now.
pub fn logout_claims(issuer: &str, q: &QueuedLogout, now: DateTime<Utc>) -> Value {
    let iat = now.timestamp();
    json!({
        "iss": issuer,
        "aud": q.client_id,
        "iat": iat,
        "exp": iat + LOGOUT_TOKEN_LIFETIME,
        "jti": logout_jti(&q.sid, &q.client_id),
        "sub": q.subject,
        "sid": q.sid,
        "events": { LOGOUT_EVENT: {} },
    })
}

/// How a delivery went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutDelivery {
    /// The portal answered 200 (or 204).
    Delivered,
    /// Not delivered; why, in words.
    Failed(String),
}

/// When to try again after `attempts` failed attempts; `None` to give up. Back-off
/// from 10 seconds doubling to 10 minutes, for up to a day: a logout that arrives
/// late still ends a portal session that would otherwise live on.
pub fn next_attempt(
    attempts: u32,
    created_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    if attempts >= 20 || now - created_at > Duration::hours(24) {
        return None;
    }
    let secs = 10i64.saturating_mul(1 << attempts.min(6)).min(600);
    Some(now + Duration::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logout_tokens_carry_what_section_2_4_asks_and_no_nonce() {
        let now = Utc::now();
        let q = QueuedLogout {
            sid: "s1".into(),
            client_id: "loket".into(),
            subject: "u1".into(),
            created_at: now,
            attempts: 1,
            claim: uuid::Uuid::new_v4(),
        };
        let c = logout_claims("https://login.example", &q, now);
        assert_eq!(c["aud"], "loket");
        assert_eq!(c["sid"], "s1");
        assert_eq!(c["sub"], "u1");
        assert!(c["events"][LOGOUT_EVENT].is_object());
        assert!(c.get("nonce").is_none());
        // The same logout keeps its jti on a retry; another portal's differs.
        assert_eq!(
            c["jti"],
            logout_claims("https://login.example", &q, now)["jti"]
        );
        let other = QueuedLogout {
            client_id: "ander".into(),
            ..q.clone()
        };
        assert_ne!(
            c["jti"],
            logout_claims("https://login.example", &other, now)["jti"]
        );
    }

    #[test]
    fn retries_back_off_and_end() {
        let t0 = Utc::now();
        let first = next_attempt(1, t0, t0).unwrap();
        assert_eq!((first - t0).num_seconds(), 20);
        assert_eq!((next_attempt(9, t0, t0).unwrap() - t0).num_seconds(), 600);
        assert_eq!(next_attempt(20, t0, t0), None);
        assert_eq!(next_attempt(2, t0, t0 + Duration::hours(25)), None);
    }
}
