//! "Remember this device": a browser that passed the code step may skip it for a
//! while (7 days by default). The browser keeps a random token in a cookie; the
//! database only its SHA-256, bound to one account.

use crate::account::AccountId;
use crate::token::TokenHash;
use chrono::{DateTime, Utc};
use uuid::Uuid;

#[derive(Debug, Clone)]
pub struct RememberedDevice {
    pub id: Uuid,
    pub token_hash: TokenHash,
    pub account_id: AccountId,
    /// Browser and system as read from the User-Agent, e.g. "Firefox · Windows".
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Browser and system named in a User-Agent, for people to recognise their devices.
/// Only the common families: anything else is "Browser"/"unknown system".
pub fn label_from_user_agent(ua: Option<&str>) -> String {
    let ua = ua.unwrap_or_default();
    // Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
    let browser = [
        ("Edg/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("Chrome/", "Chrome"),
        ("Chromium/", "Chromium"),
        ("Safari/", "Safari"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map_or("Browser", |(_, name)| name);
    let system = [
        ("Android", "Android"),
        ("iPhone", "iPhone"),
        ("iPad", "iPad"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("CrOS", "ChromeOS"),
        ("Linux", "Linux"),
    ]
    .iter()
    .find(|(needle, _)| ua.contains(needle))
    .map_or("unknown system", |(_, name)| name);
    format!("{browser} · {system}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_user_agents_are_named() {
        let cases = [
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0", "Firefox · Windows"),
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36 Edg/130.0.0.0", "Edge · Windows"),
            ("Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36", "Chrome · Android"),
            ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1", "Safari · iPhone"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15", "Safari · macOS"),
        ];
        for (ua, want) in cases {
            assert_eq!(label_from_user_agent(Some(ua)), want, "{ua}");
        }
        assert_eq!(label_from_user_agent(None), "Browser · unknown system");
        assert_eq!(
            label_from_user_agent(Some("curl/8.5")),
            "Browser · unknown system"
        );
    }
}
