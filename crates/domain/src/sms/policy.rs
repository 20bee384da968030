//! The pumping protection: an allow-list of country calling codes and hourly
//! limits per account, number, client IP and overall.
//!
//! Nothing here counts anything: the caller counts the sends of the last hour (in
//! the database, so the limits hold across nodes) and asks [`SmsPolicy::check`]
//! whether one more is allowed.

use super::phone::{PhoneError, PhoneNumber};

/// The pumping protection: where SMS may go and how many may go per hour.
///
/// A limit of 0 allows no SMS at all; an empty allow-list allows no country.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsPolicy {
    /// Country calling codes numbers may have (32 Belgium, 31 the Netherlands).
    pub allowed_calling_codes: Vec<u16>,
    pub per_account_per_hour: u32,
    pub per_number_per_hour: u32,
    pub per_ip_per_hour: u32,
    /// All SMS of this installation together.
    pub global_per_hour: u32,
    /// The region numbers typed without a country code are read in ("BE").
    pub default_region: String,
}

impl Default for SmsPolicy {
    fn default() -> Self {
        Self {
            allowed_calling_codes: vec![32, 31],
            per_account_per_hour: 5,
            per_number_per_hour: 5,
            per_ip_per_hour: 10,
            global_per_hour: 200,
            default_region: "BE".into(),
        }
    }
}

/// SMS sent in the last hour (every send attempt that may have cost money counts,
/// failed ones included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SentLastHour {
    pub account: u32,
    pub number: u32,
    pub ip: u32,
    pub global: u32,
}

/// Why an SMS is not sent. Shown to the person as a clear message, never dropped
/// silently; the audit log records [`SmsRefusal::reason`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SmsRefusal {
    #[error("SMS to +{0} numbers is not allowed")]
    CountryNotAllowed(u16),
    #[error("too many SMS for this account in the last hour")]
    AccountLimit,
    #[error("too many SMS to this number in the last hour")]
    NumberLimit,
    #[error("too many SMS from this address in the last hour")]
    IpLimit,
    #[error("the hourly SMS budget of this installation is used up")]
    GlobalLimit,
}

impl SmsRefusal {
    /// The stable code for the API and pages: `sms_country_not_allowed`,
    /// `sms_rate_limited` (account, number or address: "try again later or use
    /// another method") or `sms_unavailable` (the global budget: nothing the person
    /// can do but use another method).
    pub fn code(&self) -> &'static str {
        match self {
            Self::CountryNotAllowed(_) => "sms_country_not_allowed",
            Self::AccountLimit | Self::NumberLimit | Self::IpLimit => "sms_rate_limited",
            Self::GlobalLimit => "sms_unavailable",
        }
    }

    /// Which rule refused, for the audit log: `country`, `account_limit`,
    /// `number_limit`, `ip_limit`, `global_limit`.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::CountryNotAllowed(_) => "country",
            Self::AccountLimit => "account_limit",
            Self::NumberLimit => "number_limit",
            Self::IpLimit => "ip_limit",
            Self::GlobalLimit => "global_limit",
        }
    }
}

impl SmsPolicy {
    /// Parses a typed number in [`SmsPolicy::default_region`].
    pub fn parse_number(&self, input: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(input, &self.default_region)
    }

    pub fn allows_country(&self, to: &PhoneNumber) -> bool {
        self.allowed_calling_codes.contains(&to.calling_code())
    }

    /// Whether one more SMS to `to` may go out, given what went out in the last
    /// hour. The country comes first, then the limits from the narrowest (this
    /// account) to the widest (everyone).
    pub fn check(&self, to: &PhoneNumber, sent: &SentLastHour) -> Result<(), SmsRefusal> {
        if !self.allows_country(to) {
            return Err(SmsRefusal::CountryNotAllowed(to.calling_code()));
        }
        let limits = [
            (
                sent.account,
                self.per_account_per_hour,
                SmsRefusal::AccountLimit,
            ),
            (
                sent.number,
                self.per_number_per_hour,
                SmsRefusal::NumberLimit,
            ),
            (sent.ip, self.per_ip_per_hour, SmsRefusal::IpLimit),
            (sent.global, self.global_per_hour, SmsRefusal::GlobalLimit),
        ];
        for (count, limit, refusal) in limits {
            if count >= limit {
                return Err(refusal);
            }
        }
        Ok(())
    }
}

/// One SMS send, for the pumping limits.
#[derive(Debug, Clone)]
pub struct SmsSend {
    pub at: chrono::DateTime<chrono::Utc>,
    pub account_id: Option<crate::account::AccountId>,
    /// HMAC of the E.164 number: counts per number without keeping it.
    pub number_mac: String,
    pub ip: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn be(input: &str) -> Result<PhoneNumber, PhoneError> {
        PhoneNumber::parse(input, "BE")
    }

    fn policy() -> SmsPolicy {
        SmsPolicy::default()
    }

    #[test]
    fn policy_defaults_are_the_documented_ones() {
        let p = policy();
        assert_eq!(p.allowed_calling_codes, vec![32, 31]);
        assert_eq!(
            (
                p.per_account_per_hour,
                p.per_number_per_hour,
                p.per_ip_per_hour,
                p.global_per_hour
            ),
            (5, 5, 10, 200)
        );
        assert_eq!(
            p.parse_number("0470 12 34 56").unwrap().e164(),
            "+32470123456"
        );
    }

    #[test]
    fn only_allowed_countries_get_sms() {
        let p = policy();
        let none = SentLastHour::default();
        assert_eq!(p.check(&be("0470 12 34 56").unwrap(), &none), Ok(()));
        assert_eq!(p.check(&be("+31 6 12345678").unwrap(), &none), Ok(()));
        let us = be("+1 201 555 0123").unwrap();
        let refused = p.check(&us, &none).unwrap_err();
        assert_eq!(refused, SmsRefusal::CountryNotAllowed(1));
        assert_eq!(refused.code(), "sms_country_not_allowed");
        assert_eq!(refused.reason(), "country");
        // The country is refused even when nothing else would be.
        let empty = SmsPolicy {
            allowed_calling_codes: vec![],
            ..policy()
        };
        assert!(empty.check(&be("0470 12 34 56").unwrap(), &none).is_err());
    }

    #[test]
    fn each_limit_refuses_at_its_count() {
        let p = policy();
        let to = be("0470 12 34 56").unwrap();
        let under = SentLastHour {
            account: 4,
            number: 4,
            ip: 9,
            global: 199,
        };
        assert_eq!(p.check(&to, &under), Ok(()));
        let cases = [
            (
                SentLastHour {
                    account: 5,
                    ..under
                },
                SmsRefusal::AccountLimit,
                "sms_rate_limited",
            ),
            (
                SentLastHour { number: 5, ..under },
                SmsRefusal::NumberLimit,
                "sms_rate_limited",
            ),
            (
                SentLastHour { ip: 10, ..under },
                SmsRefusal::IpLimit,
                "sms_rate_limited",
            ),
            (
                SentLastHour {
                    global: 200,
                    ..under
                },
                SmsRefusal::GlobalLimit,
                "sms_unavailable",
            ),
        ];
        for (sent, refusal, code) in cases {
            assert_eq!(p.check(&to, &sent), Err(refusal), "{sent:?}");
            assert_eq!(refusal.code(), code);
        }
    }

    #[test]
    fn the_narrowest_limit_is_named_first_and_zero_allows_none() {
        let p = policy();
        let to = be("0470 12 34 56").unwrap();
        let all_over = SentLastHour {
            account: 50,
            number: 50,
            ip: 50,
            global: 500,
        };
        assert_eq!(p.check(&to, &all_over), Err(SmsRefusal::AccountLimit));
        let off = SmsPolicy {
            global_per_hour: 0,
            ..policy()
        };
        assert_eq!(
            off.check(&to, &SentLastHour::default()),
            Err(SmsRefusal::GlobalLimit)
        );
        let reasons: Vec<_> = [
            SmsRefusal::AccountLimit,
            SmsRefusal::NumberLimit,
            SmsRefusal::IpLimit,
            SmsRefusal::GlobalLimit,
        ]
        .iter()
        .map(SmsRefusal::reason)
        .collect();
        assert_eq!(
            reasons,
            ["account_limit", "number_limit", "ip_limit", "global_limit"]
        );
    }
}
