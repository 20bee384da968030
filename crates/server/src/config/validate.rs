//! The ranges the configuration's values must lie in. A value outside its range
//! stops start-up with the key's name; nothing is clamped or replaced silently.

use super::{Config, ConfigError};

/// The longest life of a kept session lookup (`[database] session_cache_seconds`).
pub const MAX_SESSION_CACHE_SECONDS: u64 = 60;

impl Config {
    /// Checks every value that has a range; the first one outside it is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.ui.zone()?;
        self.ui.dutch()?;
        let public = self.public_url.trim();
        let absolute = url::Url::parse(public)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.has_host());
        if !public.is_empty() && !absolute {
            // Links in mail and Secure cookies follow from it.
            return Err(ConfigError::Invalid {
                key: "public_url",
                rule: "an http:// or https:// address".to_owned(),
                got: format!("{public:?}"),
            });
        }
        let d = &self.database;
        // An entry's life bounds what a node can serve stale when its listener
        // stalls unnoticed (under the listener's 1.5 s deafness limit anyway).
        if d.session_cache_seconds > MAX_SESSION_CACHE_SECONDS {
            return Err(ConfigError::Invalid {
                key: "[database] session_cache_seconds",
                rule: format!("between 0 and {MAX_SESSION_CACHE_SECONDS}"),
                got: d.session_cache_seconds.to_string(),
            });
        }
        let (l, s) = (&self.lockout, &self.session);
        let at_least_one: [(&'static str, i128); 15] = [
            ("[database] max_connections", d.max_connections.into()),
            (
                "[database] acquire_timeout_seconds",
                d.acquire_timeout_seconds.into(),
            ),
            ("[lockout] max_failures", l.max_failures.into()),
            ("[lockout] base_seconds", l.base_seconds.into()),
            ("[lockout] max_seconds", l.max_seconds.into()),
            (
                "[lockout] password_max_failures",
                l.password_max_failures.into(),
            ),
            (
                "[lockout] password_base_seconds",
                l.password_base_seconds.into(),
            ),
            (
                "[lockout] password_max_seconds",
                l.password_max_seconds.into(),
            ),
            (
                "[lockout] password_account_max_failures",
                l.password_account_max_failures.into(),
            ),
            (
                "[lockout] password_address_max_failures",
                l.password_address_max_failures.into(),
            ),
            (
                "[session] idle_timeout_minutes",
                s.idle_timeout_minutes.into(),
            ),
            (
                "[session] absolute_timeout_hours",
                s.absolute_timeout_hours.into(),
            ),
            (
                "[session] second_factor_timeout_minutes",
                s.second_factor_timeout_minutes.into(),
            ),
            (
                "[mail] poll_interval_seconds",
                self.mail.poll_interval_seconds.into(),
            ),
            (
                "[oidc] key_retention_hours",
                self.oidc.key_retention_hours.into(),
            ),
        ];
        for (key, value) in at_least_one {
            if value < 1 {
                return Err(ConfigError::Invalid {
                    key,
                    rule: "at least 1".to_owned(),
                    got: value.to_string(),
                });
            }
        }
        if d.min_connections > d.max_connections {
            return Err(ConfigError::Invalid {
                key: "[database] min_connections",
                rule: format!("at most max_connections ({})", d.max_connections),
                got: d.min_connections.to_string(),
            });
        }
        let one_to_ninety: [(&'static str, i128); 2] = [
            (
                "[session] remember_device_days",
                s.remember_device_days.into(),
            ),
            (
                "[policy] enrollment_link_days",
                self.policy.enrollment_link_days.into(),
            ),
        ];
        for (key, value) in one_to_ninety {
            if !(1..=90).contains(&value) {
                return Err(ConfigError::Invalid {
                    key,
                    rule: "between 1 and 90".to_owned(),
                    got: value.to_string(),
                });
            }
        }
        self.sms.validate()?;
        self.http.validate()?;
        self.dev_outbox_page()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each rule, with a value just outside it: the message names the key, the
    /// rule and the value.
    #[test]
    fn every_rule_refuses_a_value_outside_it_by_name() {
        type Tweak = fn(&mut Config);
        let cases: [(Tweak, &str); 19] = [
            (
                |c| c.public_url = "login.example.org".into(),
                "public_url must be an http:// or https:// address, got \"login.example.org\"",
            ),
            (
                |c| c.database.session_cache_seconds = 61,
                "[database] session_cache_seconds must be between 0 and 60, got 61",
            ),
            (
                |c| c.database.max_connections = 0,
                "[database] max_connections must be at least 1, got 0",
            ),
            (
                |c| {
                    c.database.max_connections = 2;
                    c.database.min_connections = 3;
                },
                "[database] min_connections must be at most max_connections (2), got 3",
            ),
            (
                |c| c.database.acquire_timeout_seconds = 0,
                "[database] acquire_timeout_seconds must be at least 1, got 0",
            ),
            (
                |c| c.lockout.max_failures = 0,
                "[lockout] max_failures must be at least 1, got 0",
            ),
            (
                |c| c.lockout.base_seconds = 0,
                "[lockout] base_seconds must be at least 1, got 0",
            ),
            (
                |c| c.lockout.max_seconds = -5,
                "[lockout] max_seconds must be at least 1, got -5",
            ),
            (
                |c| c.lockout.password_max_failures = 0,
                "[lockout] password_max_failures must be at least 1, got 0",
            ),
            (
                |c| c.lockout.password_base_seconds = 0,
                "[lockout] password_base_seconds must be at least 1, got 0",
            ),
            (
                |c| c.lockout.password_max_seconds = 0,
                "[lockout] password_max_seconds must be at least 1, got 0",
            ),
            (
                |c| c.session.idle_timeout_minutes = 0,
                "[session] idle_timeout_minutes must be at least 1, got 0",
            ),
            (
                |c| c.session.absolute_timeout_hours = 0,
                "[session] absolute_timeout_hours must be at least 1, got 0",
            ),
            (
                |c| c.session.second_factor_timeout_minutes = 0,
                "[session] second_factor_timeout_minutes must be at least 1, got 0",
            ),
            (
                |c| c.session.remember_device_days = 91,
                "[session] remember_device_days must be between 1 and 90, got 91",
            ),
            (
                |c| c.mail.poll_interval_seconds = 0,
                "[mail] poll_interval_seconds must be at least 1, got 0",
            ),
            (
                |c| c.policy.enrollment_link_days = 0,
                "[policy] enrollment_link_days must be between 1 and 90, got 0",
            ),
            (
                |c| c.oidc.key_retention_hours = 0,
                "[oidc] key_retention_hours must be at least 1, got 0",
            ),
            (|c| c.sms.retries = 11, "[sms] retries: at most 10"),
        ];
        assert!(
            Config::default().validate().is_ok(),
            "the defaults are valid"
        );
        for (tweak, want) in cases {
            let mut c = Config::default();
            tweak(&mut c);
            match c.validate() {
                Err(e) => assert_eq!(e.to_string(), want),
                Ok(()) => panic!("accepted; expected {want:?}"),
            }
        }
    }

    #[test]
    fn the_edges_of_each_range_are_accepted() {
        let mut c = Config::default();
        c.database.max_connections = 1;
        c.database.min_connections = 1;
        c.session.remember_device_days = 90;
        c.policy.enrollment_link_days = 1;
        c.database.session_cache_seconds = 60;
        assert!(c.validate().is_ok());
        c.database.session_cache_seconds = 0;
        assert!(c.validate().is_ok());
    }
}
