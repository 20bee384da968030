//! Languages: Dutch first, English too. Texts live in `locales/*.toml`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    Nl,
    En,
}

pub const LANG_COOKIE: &str = "tweestap_lang";

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
        }
    }

    pub fn from_code(s: &str) -> Option<Self> {
        match s.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("nl") => Some(Lang::Nl),
            Some("en") => Some(Lang::En),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header; Dutch when nothing fits.
    pub fn negotiate(header: Option<&str>) -> Self {
        let Some(h) = header else { return Lang::Nl };
        let mut best: Option<(f32, Lang)> = None;
        for part in h.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or_default().trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(l) = Lang::from_code(tag) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, l));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or(Lang::Nl)
    }

    pub fn texts(self) -> &'static BTreeMap<String, String> {
        static NL: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        static EN: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        match self {
            Lang::Nl => NL.get_or_init(|| parse(include_str!("../locales/nl.toml"))),
            Lang::En => EN.get_or_init(|| parse(include_str!("../locales/en.toml"))),
        }
    }

    pub fn t(self, key: &str) -> &'static str {
        self.texts().get(key).map(String::as_str).unwrap_or("??")
    }
}

impl From<tweestap_domain::mail::Language> for Lang {
    fn from(l: tweestap_domain::mail::Language) -> Self {
        match l {
            tweestap_domain::mail::Language::Nl => Lang::Nl,
            tweestap_domain::mail::Language::En => Lang::En,
        }
    }
}

impl From<Lang> for tweestap_domain::mail::Language {
    fn from(l: Lang) -> Self {
        match l {
            Lang::Nl => tweestap_domain::mail::Language::Nl,
            Lang::En => tweestap_domain::mail::Language::En,
        }
    }
}

fn parse(src: &str) -> BTreeMap<String, String> {
    // The files are ours and embedded; a broken one fails the tests below, not users.
    toml::from_str(src).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_languages_have_the_same_keys() {
        let nl: Vec<_> = Lang::Nl.texts().keys().collect();
        let en: Vec<_> = Lang::En.texts().keys().collect();
        assert!(nl.len() > 40);
        assert_eq!(nl, en);
    }

    #[test]
    fn negotiation() {
        assert_eq!(Lang::negotiate(None), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::negotiate(Some("fr-BE,nl-BE;q=0.8,en;q=0.5")),
            Lang::Nl
        );
        assert_eq!(Lang::negotiate(Some("fr, de")), Lang::Nl);
        assert_eq!(Lang::negotiate(Some("nl;q=0.2, en;q=0.7")), Lang::En);
        assert_eq!(Lang::negotiate(Some(";;q=x,,")), Lang::Nl);
    }
}
