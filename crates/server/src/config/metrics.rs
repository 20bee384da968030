//! `[metrics]`: the Prometheus endpoint `/metrics`, off by default; on the main
//! listener or, better, on an address of its own that only the scraper reaches.

use super::ConfigError;
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics` at all.
    pub enabled: bool,
    /// An address of its own for `/metrics` (e.g. `127.0.0.1:9464`); unset: the
    /// main listener serves it, to anyone who reaches that.
    pub listen: Option<SocketAddr>,
}

impl MetricsConfig {
    /// `TWEESTAP_METRICS_ENABLED` and `TWEESTAP_METRICS_LISTEN` override the file.
    pub fn apply_env_from(
        &mut self,
        var: impl Fn(&str) -> Option<String>,
    ) -> Result<(), ConfigError> {
        let var = |n: &str| var(n).filter(|v| !v.is_empty());
        if let Some(v) = var("TWEESTAP_METRICS_ENABLED") {
            self.enabled = match v.as_str() {
                "1" | "true" | "yes" => true,
                "0" | "false" | "no" => false,
                _ => {
                    return Err(ConfigError::Env {
                        name: "TWEESTAP_METRICS_ENABLED",
                        value: v,
                    })
                }
            };
        }
        if let Some(v) = var("TWEESTAP_METRICS_LISTEN") {
            self.listen = Some(v.parse().map_err(|_| ConfigError::Env {
                name: "TWEESTAP_METRICS_LISTEN",
                value: v,
            })?);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn off_by_default_and_set_by_file_or_environment() {
        let c = Config::default();
        assert!(!c.metrics.enabled);
        assert!(c.metrics.listen.is_none());
        let mut c: Config =
            toml::from_str("[metrics]\nenabled = true\nlisten = \"127.0.0.1:9464\"\n").unwrap();
        assert!(c.metrics.enabled);
        assert_eq!(c.metrics.listen.map(|a| a.port()), Some(9464));
        assert!(toml::from_str::<Config>("[metrics]\nport = 1\n").is_err());
        let env = |n: &str| match n {
            "TWEESTAP_METRICS_ENABLED" => Some("false".to_owned()),
            "TWEESTAP_METRICS_LISTEN" => Some("0.0.0.0:9100".to_owned()),
            _ => None,
        };
        c.metrics.apply_env_from(env).unwrap();
        assert!(!c.metrics.enabled);
        assert_eq!(c.metrics.listen.map(|a| a.port()), Some(9100));
        let bad = |_: &str| Some("maybe".to_owned());
        let err = c.metrics.apply_env_from(bad).unwrap_err().to_string();
        assert!(err.contains("TWEESTAP_METRICS_ENABLED"), "{err}");
    }
}
