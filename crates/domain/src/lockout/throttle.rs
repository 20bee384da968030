//! The throttles kept apart from the account (NIST SP 800-63B §5.2.2): wrong
//! passwords are counted per account *and* client address, so a stranger who knows
//! only someone's e-mail address throttles nobody but their own address; a browser
//! that proves it is the person's (a remembered device, a session of the account)
//! has a count of its own; one address has a budget over every account; and the
//! account's own counter is a backstop against many addresses at once.
//!
//! Each throttle is a row named by its [`ThrottleKey`] (see
//! `store::ThrottleStore`), taken before the answer is known, so requests in
//! parallel check no more than it allows.

use super::LockoutPolicy;
use crate::account::AccountId;
use chrono::Duration;
use std::net::{IpAddr, SocketAddr};

/// How wrong passwords are throttled beyond one account and address (whose policy
/// is `Settings::password_lockout`, also used for a remembered device or a session).
#[derive(Debug, Clone, Copy)]
pub struct PasswordThrottle {
    /// The backstop: wrong passwords for one account from addresses that are not
    /// exempt, each address counting only until its own throttle starts (so one
    /// address alone never reaches it, whatever it keeps trying).
    pub account: LockoutPolicy,
    /// Wrong passwords one client address may give per `address_window`, over every
    /// account (known or not); a right one gives its attempt back. A leaky
    /// bucket, not a fixed window (which would let the whole budget be spent
    /// again just after its end): `address_budget` at once, then one every
    /// `address_window / address_budget` (36 s for 100 an hour).
    pub address_budget: u32,
    pub address_window: Duration,
}

impl PasswordThrottle {
    /// How often the address budget gets one attempt back.
    pub fn address_interval(&self) -> Duration {
        let budget = i32::try_from(self.address_budget.max(1)).unwrap_or(i32::MAX);
        self.address_window / budget
    }
}

impl Default for PasswordThrottle {
    fn default() -> Self {
        Self {
            account: LockoutPolicy {
                max_failures: 100,
                base: Duration::seconds(30),
                max: Duration::minutes(15),
            },
            address_budget: 100,
            address_window: Duration::hours(1),
        }
    }
}

/// The name of one throttle's row. Password throttles start with `password:` (a
/// new password clears those of its account), code throttles with `code:`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey(String);

impl ThrottleKey {
    /// One account from one client address.
    pub fn account_address(account: AccountId, address: &ClientAddress) -> Self {
        Self(format!("password:account:{account}:{}", address.0))
    }

    /// An address typed at sign-in that has no account, from one client address:
    /// `typed_mac` is a keyed MAC of the address as typed (normalised), so the
    /// throttle behaves as for an account and the table keeps no typed text.
    pub fn typed_address(typed_mac: &str, address: &ClientAddress) -> Self {
        Self(format!("password:typed:{typed_mac}:{}", address.0))
    }

    /// An address typed at sign-in that has no account, from every client address:
    /// a backstop as an account has, so that guessing it is throttled alike and
    /// costs the same database work (nothing tells the two apart).
    pub fn typed_backstop(typed_mac: &str) -> Self {
        Self(format!("password:typed-backstop:{typed_mac}"))
    }

    /// One account from the addresses that still count towards it: its backstop.
    pub fn backstop(account: AccountId) -> Self {
        Self(format!("password:backstop:{account}"))
    }

    /// One client address over every account: its budget.
    pub fn address(address: &ClientAddress) -> Self {
        Self(format!("password:address:{}", address.0))
    }

    /// A remembered device of the account.
    pub fn device(device: uuid::Uuid) -> Self {
        Self(format!("password:device:{device}"))
    }

    /// A session of the account (its `sid`, kept across a step-up).
    pub fn session(sid: &str) -> Self {
        Self(format!("password:session:{sid}"))
    }

    /// The recovery codes of an account at the code step.
    pub fn recovery(account: AccountId) -> Self {
        Self(format!("code:recovery:{account}"))
    }

    /// The confirming code of an authenticator app being set up.
    pub fn set_up(factor: uuid::Uuid) -> Self {
        Self(format!("code:setup:{factor}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A client address as the throttles count it: an IPv4 address, or the /64 an
/// IPv6 address belongs to (one subscriber's share, which it can fill with
/// addresses at will); anything unreadable counts as one and the same.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientAddress(String);

impl ClientAddress {
    pub fn of(ip: Option<&str>) -> Self {
        let Some(raw) = ip.map(str::trim) else {
            return Self("unknown".into());
        };
        let parsed = raw
            .parse::<IpAddr>()
            .ok()
            .or_else(|| raw.parse::<SocketAddr>().ok().map(|s| s.ip()));
        Self(match parsed {
            Some(IpAddr::V4(v4)) => v4.to_string(),
            Some(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => v4.to_string(),
                None => {
                    let s = v6.segments();
                    format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
                }
            },
            None => "invalid".into(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_count_per_ipv4_and_per_ipv6_64() {
        let a = |s: &str| ClientAddress::of(Some(s)).0;
        assert_eq!(a("192.0.2.7"), "192.0.2.7");
        assert_eq!(a(" 192.0.2.7 "), "192.0.2.7");
        assert_eq!(a("192.0.2.7:5000"), "192.0.2.7");
        assert_eq!(a("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(a("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
        assert_eq!(a("2001:db8:1:2:bbbb::9"), a("2001:db8:1:2:aaaa::1"));
        assert_ne!(a("2001:db8:1:3::1"), a("2001:db8:1:2::1"));
        assert_eq!(a("[2001:db8::1]:443"), "2001:db8:0:0::/64");
        assert_eq!(a("not an address"), "invalid");
        assert_eq!(a("also not"), a("not an address"));
        assert_eq!(ClientAddress::of(None).0, "unknown");
    }

    #[test]
    fn keys_name_their_kind() {
        let addr = ClientAddress::of(Some("192.0.2.7"));
        let id = AccountId(uuid::Uuid::nil());
        assert_eq!(
            ThrottleKey::account_address(id, &addr).as_str(),
            "password:account:00000000-0000-0000-0000-000000000000:192.0.2.7"
        );
        assert!(ThrottleKey::address(&addr)
            .as_str()
            .starts_with("password:"));
        assert!(ThrottleKey::session("ab").as_str().starts_with("password:"));
        assert!(ThrottleKey::recovery(id).as_str().starts_with("code:"));
    }
}
