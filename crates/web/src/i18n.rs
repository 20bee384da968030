//! Languages: Dutch first, English too. Texts live in `locales/*.toml`.
//!
//! Dutch comes in two kinds: `nl.toml` is written as Flanders speaks (gsm,
//! aanmelden, afmelden); `nl-NL.toml` holds only the words the Netherlands say
//! otherwise (mobiel, inloggen, uitloggen) and is laid over it. A browser asking for
//! `nl-BE` or `nl-NL` gets that one; plain `nl` gets the configured [`Dutch`].

use std::collections::BTreeMap;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Dutch as in Flanders (`nl.toml`).
    Nl,
    En,
    /// Dutch as in the Netherlands (`nl.toml` with `nl-NL.toml` over it).
    NlNl,
}

/// Which Dutch a browser gets that asks for plain `nl` (`[ui] dutch`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dutch {
    /// Flemish: gsm, aanmelden, afmelden.
    #[default]
    Be,
    /// Netherlands: mobiel, inloggen, uitloggen.
    Nl,
}

impl Dutch {
    /// `nl-BE` or `nl-NL` (any case, `_` or `-`).
    pub fn from_tag(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "nl-be" => Some(Dutch::Be),
            "nl-nl" => Some(Dutch::Nl),
            _ => None,
        }
    }

    pub fn lang(self) -> Lang {
        match self {
            Dutch::Be => Lang::Nl,
            Dutch::Nl => Lang::NlNl,
        }
    }
}

pub const LANG_COOKIE: &str = "tweestap_lang";

impl Lang {
    /// The tag of pages and of the language cookie: `nl`, `en`, `nl-NL`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Nl => "nl",
            Lang::En => "en",
            Lang::NlNl => "nl-NL",
        }
    }

    /// The language cookie's value: [`Lang::code`], except that Flemish Dutch says so
    /// (`nl-BE`), so that it reads back as itself also where plain `nl` means the
    /// Netherlands' Dutch (`[ui] dutch`).
    pub fn cookie_value(self) -> &'static str {
        match self {
            Lang::Nl => "nl-BE",
            other => other.code(),
        }
    }

    /// Whether this is one of the kinds of Dutch.
    pub fn is_dutch(self) -> bool {
        matches!(self, Lang::Nl | Lang::NlNl)
    }

    /// A language tag with Flemish for plain `nl`; see [`Lang::from_tag`].
    pub fn from_code(s: &str) -> Option<Self> {
        Self::from_tag(s, Dutch::Be)
    }

    /// A language tag (`nl-BE`, `nl-NL`, `nl`, `en-GB`...); plain `nl` and other
    /// Dutch (`nl-SR`) get `dutch`.
    pub fn from_tag(s: &str, dutch: Dutch) -> Option<Self> {
        let s = s.trim();
        match s.get(..2).map(str::to_ascii_lowercase).as_deref() {
            Some("nl") => Some(Dutch::from_tag(s).unwrap_or(dutch).lang()),
            Some("en") => Some(Lang::En),
            _ => None,
        }
    }

    /// The best language for an `Accept-Language` header; Flemish Dutch when nothing
    /// fits (see [`Lang::negotiate_with`]).
    pub fn negotiate(header: Option<&str>) -> Self {
        Self::negotiate_with(header, Dutch::Be)
    }

    /// The best language for an `Accept-Language` header; plain `nl` and nothing
    /// that fits get `dutch`.
    pub fn negotiate_with(header: Option<&str>, dutch: Dutch) -> Self {
        let Some(h) = header else {
            return dutch.lang();
        };
        let mut best: Option<(f32, Lang)> = None;
        for part in h.split(',') {
            let mut it = part.trim().split(';');
            let tag = it.next().unwrap_or_default().trim();
            let q = it
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.parse::<f32>().ok())
                .unwrap_or(1.0);
            if let Some(l) = Lang::from_tag(tag, dutch) {
                if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
                    best = Some((q, l));
                }
            }
        }
        best.map(|(_, l)| l).unwrap_or(dutch.lang())
    }

    pub fn texts(self) -> &'static BTreeMap<String, String> {
        static NL: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        static EN: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        static NL_NL: OnceLock<BTreeMap<String, String>> = OnceLock::new();
        match self {
            Lang::Nl => NL.get_or_init(|| parse(include_str!("../locales/nl.toml"))),
            Lang::En => EN.get_or_init(|| parse(include_str!("../locales/en.toml"))),
            Lang::NlNl => NL_NL.get_or_init(|| {
                let mut texts = Lang::Nl.texts().clone();
                texts.extend(parse(include_str!("../locales/nl-NL.toml")));
                texts
            }),
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
            Lang::Nl | Lang::NlNl => tweestap_domain::mail::Language::Nl,
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

    /// Found by fuzzing (fuzz target cookies): Flemish chosen where plain `nl` means
    /// the Netherlands' Dutch was kept as `nl` and came back as the Netherlands' Dutch.
    #[test]
    fn the_language_cookie_reads_back_as_the_language_chosen() {
        for dutch in [Dutch::Be, Dutch::Nl] {
            for lang in [Lang::Nl, Lang::En, Lang::NlNl] {
                assert_eq!(
                    Lang::from_tag(lang.cookie_value(), dutch),
                    Some(lang),
                    "{dutch:?}"
                );
            }
        }
    }

    #[test]
    fn flemish_and_netherlands_dutch_by_accept_language_and_the_configured_default() {
        for dutch in [Dutch::Be, Dutch::Nl] {
            let n = |h: &str| Lang::negotiate_with(Some(h), dutch);
            assert_eq!(n("nl-BE"), Lang::Nl);
            assert_eq!(n("nl-be,nl;q=0.9,en;q=0.5"), Lang::Nl);
            assert_eq!(n("nl-NL,nl;q=0.9"), Lang::NlNl);
            assert_eq!(n("fr-BE,nl-NL;q=0.8,en;q=0.5"), Lang::NlNl);
            assert_eq!(n("en-GB,en;q=0.9"), Lang::En);
            // Plain Dutch, other Dutch, or nothing that fits: the configured one.
            for h in ["nl", "nl-SR", "fr, de"] {
                assert_eq!(n(h), dutch.lang(), "{h}");
            }
            assert_eq!(Lang::negotiate_with(None, dutch), dutch.lang());
            // The language cookie: `nl` follows the default, the full tags do not.
            assert_eq!(Lang::from_tag("nl", dutch), Some(dutch.lang()));
            assert_eq!(Lang::from_tag("nl-NL", dutch), Some(Lang::NlNl));
            assert_eq!(Lang::from_tag("nl-BE", dutch), Some(Lang::Nl));
            assert_eq!(Lang::from_tag("fr", dutch), None);
        }
        assert_eq!(Dutch::from_tag(" NL_nl "), Some(Dutch::Nl));
        assert_eq!(Dutch::from_tag("nl"), None);
        assert_eq!(Lang::NlNl.code(), "nl-NL");
        assert_eq!(
            tweestap_domain::mail::Language::from(Lang::NlNl),
            tweestap_domain::mail::Language::Nl
        );
    }

    /// Whether `text` has a word starting with `word` (or, for several words, the
    /// phrase): "gsm-nummer" says "gsm", "herinneringsmails" does not.
    fn says(text: &str, word: &str) -> bool {
        if word.contains(' ') {
            return text.contains(word);
        }
        text.split(|c: char| !c.is_alphanumeric())
            .any(|w| w.starts_with(word))
    }

    /// The overlay holds only words that differ, and only keys Dutch has.
    #[test]
    fn the_netherlands_overlay_changes_words_not_keys() {
        let overlay = parse(include_str!("../locales/nl-NL.toml"));
        assert!(overlay.len() >= 10, "{}", overlay.len());
        let nl = Lang::Nl.texts();
        for (k, v) in &overlay {
            let base = nl
                .get(k)
                .unwrap_or_else(|| panic!("{k} is not a key of nl.toml"));
            assert_ne!(base, v, "{k}: the same as nl.toml, so not needed");
        }
        let keys = |l: Lang| l.texts().keys().cloned().collect::<Vec<_>>();
        assert_eq!(keys(Lang::NlNl), keys(Lang::Nl));
        // Every Flemish word has its Netherlands one: a new text with "gsm",
        // "aanmelden" or "afmelden" in nl.toml needs its line in nl-NL.toml too.
        for (k, v) in Lang::NlNl.texts() {
            let v = v.to_lowercase();
            for flemish in [
                "gsm",
                "aanmeld",
                "afmeld",
                "aangemeld",
                "afgemeld",
                "meld je aan",
                "meld je af",
            ] {
                assert!(
                    !says(&v, flemish),
                    "{k} says {flemish:?}: add it to nl-NL.toml"
                );
            }
        }
        // And the other way: Flanders reads no Netherlands words.
        for (k, v) in Lang::Nl.texts() {
            let v = v.to_lowercase();
            for dutch in [
                "inlog",
                "uitlog",
                "ingelogd",
                "uitgelogd",
                "log in",
                "log je in",
                "mobiel",
            ] {
                assert!(
                    !v.contains(dutch),
                    "{k} says {dutch:?} in nl.toml, which is Flemish"
                );
            }
        }
        let all = |l: Lang| l.texts().values().cloned().collect::<Vec<_>>().join("\n");
        assert!(all(Lang::NlNl).contains("mobiel"));
        assert_eq!(Lang::NlNl.t("login_button"), "Inloggen");
        assert_eq!(Lang::NlNl.t("logout"), "Uitloggen");
        assert_eq!(Lang::Nl.t("login_button"), "Aanmelden");
    }
}
