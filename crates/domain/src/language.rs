//! The languages mail and pages are written in. An account remembers its own; a
//! request may ask for another.

use serde::{Deserialize, Serialize};

/// The languages mail (and pages) are written in; Dutch by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Nl,
    En,
}

impl Language {
    pub fn code(self) -> &'static str {
        match self {
            Language::Nl => "nl",
            Language::En => "en",
        }
    }

    /// `nl`, `nl-BE`, `en-GB`, ...; `None` for anything else.
    pub fn from_code(s: &str) -> Option<Self> {
        match s.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("nl") => Some(Language::Nl),
            Some("en") => Some(Language::En),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_parse() {
        assert_eq!(Language::from_code("en-GB"), Some(Language::En));
        assert_eq!(Language::from_code("NL"), Some(Language::Nl));
        assert_eq!(Language::from_code("fr"), None);
        assert_eq!(Language::default(), Language::Nl);
    }
}
