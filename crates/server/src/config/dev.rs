//! `[dev]`: the developer pages `/dev/outbox` and `/dev/sms-outbox`, which show
//! every mail and SMS the server wrote to its outboxes (reset links, codes). They
//! exist for trying tweestap out on one's own machine, and nowhere else.

use super::{Config, ConfigError};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DevConfig {
    /// Serve the outbox pages (still only to requests from this machine, without
    /// proxy headers, addressed to a loopback host). Unset: on exactly when the
    /// server runs as on its embedded defaults (see [`Config::on_this_machine_only`]);
    /// `true` is refused otherwise.
    pub outbox_page: Option<bool>,
}

/// Whether `url` is plain http to this machine: `localhost`, 127.0.0.0/8 or `[::1]`.
fn loopback_http(url: &str) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    u.scheme() == "http"
        && match u.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            None => false,
        }
}

impl Config {
    /// The development situation of the embedded defaults: listening on a loopback
    /// address, and `public_url` empty or plain http to this machine.
    pub fn on_this_machine_only(&self) -> bool {
        let public = self.public_url.trim();
        self.listen.ip().is_loopback() && (public.is_empty() || loopback_http(public))
    }

    /// Whether the outbox pages are served at all (`[dev] outbox_page`).
    pub fn dev_outbox_page(&self) -> Result<bool, ConfigError> {
        match self.dev.outbox_page {
            None => Ok(self.on_this_machine_only()),
            Some(false) => Ok(false),
            Some(true) if self.on_this_machine_only() => Ok(true),
            Some(true) => Err(ConfigError::Invalid {
                key: "[dev] outbox_page",
                rule: "false unless listen is a loopback address and public_url is empty or \
                       an http:// address of this machine (localhost, 127.0.0.1, [::1])"
                    .to_owned(),
                got: "true".to_owned(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    fn with(listen: &str, public_url: &str, outbox_page: Option<bool>) -> Config {
        let mut c = Config {
            listen: listen.parse().unwrap(),
            public_url: public_url.into(),
            ..Config::default()
        };
        c.dev.outbox_page = outbox_page;
        c
    }

    #[test]
    fn the_outbox_page_is_on_only_as_on_the_embedded_defaults() {
        assert!(Config::default().dev_outbox_page().unwrap());
        for (listen, public) in [
            ("127.0.0.1:8080", ""),
            ("127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("127.0.0.1:8080", "http://localhost:8080/"),
            ("[::1]:8080", "http://[::1]:8080"),
        ] {
            assert!(
                with(listen, public, None).dev_outbox_page().unwrap(),
                "{listen} {public}"
            );
            assert!(with(listen, public, Some(true)).dev_outbox_page().unwrap());
            assert!(!with(listen, public, Some(false)).dev_outbox_page().unwrap());
        }
        for (listen, public) in [
            ("0.0.0.0:8080", ""),
            ("0.0.0.0:8080", "http://127.0.0.1:8080"),
            ("127.0.0.1:8080", "https://localhost:8080"),
            ("127.0.0.1:8080", "https://login.example.org"),
            ("127.0.0.1:8080", "http://login.example.org"),
            ("127.0.0.1:8080", "http://localhost.example.org"),
            ("192.0.2.10:8080", "http://192.0.2.10:8080"),
        ] {
            assert!(
                !with(listen, public, None).dev_outbox_page().unwrap(),
                "{listen} {public}"
            );
            assert!(!with(listen, public, Some(false)).dev_outbox_page().unwrap());
            let err = with(listen, public, Some(true))
                .dev_outbox_page()
                .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("[dev] outbox_page must be false unless"),
                "{err}"
            );
        }
        let c: Config = toml::from_str("[dev]\noutbox_page = false\n").unwrap();
        assert!(!c.dev_outbox_page().unwrap());
        assert!(toml::from_str::<Config>("[dev]\noutbox = true\n").is_err());
    }
}
