//! `[http]`: how long a client may take to send a request, and how many connections
//! are served at once, so that clients holding connections open (half a header,
//! a body a byte at a time, thousands of idle sockets) cannot exhaust the server.

use super::ConfigError;
use serde::Deserialize;
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// Seconds a client has to send a request's headers, counted from the moment
    /// the connection opens or the previous answer went out (so an idle kept-alive
    /// connection is closed after this long too).
    pub header_read_timeout_seconds: u64,
    /// Seconds a client has to send a request's body once its headers are in; a
    /// late body is answered 408 and the connection closed.
    pub body_read_timeout_seconds: u64,
    /// Connections served at once; further ones wait (in the system's accept
    /// queue) until one closes.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            header_read_timeout_seconds: 30,
            body_read_timeout_seconds: 30,
            max_connections: 512,
        }
    }
}

/// Longest timeout accepted: beyond an hour a timeout no longer protects anything.
const MAX_TIMEOUT_SECONDS: u64 = 3600;

impl HttpConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, value) in [
            (
                "[http] header_read_timeout_seconds",
                self.header_read_timeout_seconds,
            ),
            (
                "[http] body_read_timeout_seconds",
                self.body_read_timeout_seconds,
            ),
        ] {
            if !(1..=MAX_TIMEOUT_SECONDS).contains(&value) {
                return Err(ConfigError::Invalid {
                    key,
                    rule: format!("between 1 and {MAX_TIMEOUT_SECONDS}"),
                    got: value.to_string(),
                });
            }
        }
        if self.max_connections < 1 {
            return Err(ConfigError::Invalid {
                key: "[http] max_connections",
                rule: "at least 1".to_owned(),
                got: self.max_connections.to_string(),
            });
        }
        Ok(())
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_secs(self.header_read_timeout_seconds)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_secs(self.body_read_timeout_seconds)
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn the_defaults_are_at_most_thirty_seconds_and_bad_values_name_the_key() {
        let c = Config::default();
        assert!(c.http.header_read_timeout_seconds <= 30);
        assert!(c.http.body_read_timeout_seconds <= 30);
        assert!(c.validate().is_ok());
        let c: Config = toml::from_str(
            "[http]\nheader_read_timeout_seconds = 2\nbody_read_timeout_seconds = 3\nmax_connections = 4\n",
        )
        .unwrap();
        assert_eq!(c.http.header_read_timeout().as_secs(), 2);
        assert_eq!(c.http.body_read_timeout().as_secs(), 3);
        assert_eq!(c.http.max_connections, 4);
        for (toml, want) in [
            (
                "[http]\nheader_read_timeout_seconds = 0\n",
                "[http] header_read_timeout_seconds must be between 1 and 3600, got 0",
            ),
            (
                "[http]\nbody_read_timeout_seconds = 3601\n",
                "[http] body_read_timeout_seconds must be between 1 and 3600, got 3601",
            ),
            (
                "[http]\nmax_connections = 0\n",
                "[http] max_connections must be at least 1, got 0",
            ),
        ] {
            let c: Config = toml::from_str(toml).unwrap();
            assert_eq!(c.validate().unwrap_err().to_string(), want);
        }
    }
}
