//! How pages and mails read (`[ui]`): the time zone dates are shown in, and which
//! Dutch a browser gets that asks for plain `nl`.

use super::ConfigError;
use serde::Deserialize;
use tweestap_web::dates::{parse_zone, Zone};
use tweestap_web::i18n::Dutch;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UiConfig {
    /// IANA time zone of the dates on pages and in mails, e.g. `Europe/Amsterdam`.
    pub time_zone: String,
    /// `nl-BE` (gsm, aanmelden) or `nl-NL` (mobiel, inloggen): the words a browser
    /// gets that asks for Dutch without saying which.
    pub dutch: String,
}

impl Default for UiConfig {
    fn default() -> Self {
        Self {
            time_zone: "Europe/Brussels".into(),
            dutch: "nl-BE".into(),
        }
    }
}

impl UiConfig {
    pub fn zone(&self) -> Result<Zone, ConfigError> {
        parse_zone(&self.time_zone)
            .map(Zone)
            .ok_or_else(|| ConfigError::Invalid {
                key: "[ui] time_zone",
                rule: "an IANA time zone such as \"Europe/Brussels\"".to_owned(),
                got: format!("{:?}", self.time_zone),
            })
    }

    pub fn dutch(&self) -> Result<Dutch, ConfigError> {
        Dutch::from_tag(&self.dutch).ok_or_else(|| ConfigError::Invalid {
            key: "[ui] dutch",
            rule: "\"nl-BE\" or \"nl-NL\"".to_owned(),
            got: format!("{:?}", self.dutch),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[test]
    fn the_defaults_are_brussels_and_flemish_and_bad_values_name_the_key() {
        let c = Config::default();
        assert_eq!(c.ui.zone().unwrap(), Zone::default());
        assert_eq!(c.ui.dutch().unwrap(), Dutch::Be);
        let c: Config =
            toml::from_str("[ui]\ntime_zone = \"Europe/Amsterdam\"\ndutch = \"nl-NL\"\n").unwrap();
        assert_eq!(
            c.ui.zone().unwrap(),
            Zone(parse_zone("Europe/Amsterdam").unwrap())
        );
        assert_eq!(c.ui.dutch().unwrap(), Dutch::Nl);
        let mut c = Config::default();
        c.ui.time_zone = "Europe/Tweestad".into();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "[ui] time_zone must be an IANA time zone such as \"Europe/Brussels\", got \"Europe/Tweestad\""
        );
        let mut c = Config::default();
        c.ui.dutch = "nl-SR".into();
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "[ui] dutch must be \"nl-BE\" or \"nl-NL\", got \"nl-SR\""
        );
    }
}
