//! The step bar of the set-up journeys: every real step of the journey, on every
//! page of it, with the one the person is at marked (`aria-current="step"`).
//!
//! The journey travels from page to page in the `via` query parameter (and a
//! hidden field of the forms), so the pages need no state of their own.

use crate::i18n::Lang;
use minijinja::Value;
use serde::Deserialize;
use tweestap_domain::enrollment::LinkPurpose;

/// A set-up journey of the manuals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journey {
    /// "Secure your account now" from the sign-in page (the first manual).
    Secure,
    /// The mailed link after a support reset.
    Link,
    /// My Profile's "enable", with the link by mail or the QR code at once (the
    /// second manual).
    Profile,
    /// Signing in when the policy requires two-step verification.
    SignIn,
}

/// Where in a journey a page is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum At {
    /// The first page (`/secure`, My Profile's password, the link's page).
    Start,
    /// The mailed code (first manual) or the mail with the link (second).
    Mail,
    /// Choosing app or SMS.
    Choose,
    /// The QR code or the SMS code.
    Connect,
    /// The recovery codes: two-step verification is on.
    Codes,
}

impl Journey {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Secure => "secure",
            Self::Link => "link",
            Self::Profile => "profile",
            Self::SignIn => "sign-in",
        }
    }

    pub fn parse(s: Option<&str>) -> Option<Self> {
        match s? {
            "secure" => Some(Self::Secure),
            "link" => Some(Self::Link),
            "profile" => Some(Self::Profile),
            "sign-in" => Some(Self::SignIn),
            _ => None,
        }
    }

    pub fn of_link(purpose: LinkPurpose) -> Self {
        match purpose {
            LinkPurpose::Profile => Self::Profile,
            LinkPurpose::SupportReset => Self::Link,
        }
    }

    /// The steps (their text keys) and where each page of the journey stands.
    fn steps(self) -> &'static [(&'static str, &'static [At])] {
        match self {
            Self::Secure => &[
                ("step_sign_in", &[At::Start]),
                ("step_confirm_email_choose", &[At::Mail, At::Choose]),
                ("step_connect", &[At::Connect]),
                ("step_codes", &[At::Codes]),
            ],
            Self::Link => &[
                ("step_link_choose", &[At::Start, At::Choose]),
                ("step_connect", &[At::Connect]),
                ("step_codes", &[At::Codes]),
            ],
            Self::Profile => &[
                ("step_password", &[At::Start]),
                ("step_mail_link", &[At::Mail, At::Choose]),
                ("step_connect", &[At::Connect]),
                ("step_codes", &[At::Codes]),
            ],
            Self::SignIn => &[
                ("step_sign_in", &[At::Start]),
                ("step_choose", &[At::Mail, At::Choose]),
                ("step_connect", &[At::Connect]),
                ("step_codes", &[At::Codes]),
            ],
        }
    }

    /// The bar for a page at `at`: a list of `{ n, label, current, done }`.
    pub fn bar(self, lang: Lang, at: At) -> Value {
        let steps = self.steps();
        let here = steps.iter().position(|(_, ats)| ats.contains(&at));
        let list: Vec<Value> = steps
            .iter()
            .enumerate()
            .map(|(i, (key, _))| {
                minijinja::context! {
                    n => i + 1,
                    label => lang.t(key),
                    current => Some(i) == here,
                    done => here.is_some_and(|h| i < h),
                }
            })
            .collect();
        Value::from(list)
    }
}

/// The `via` query parameter of the pages of a journey.
#[derive(Debug, Default, Deserialize)]
pub struct Via {
    pub via: Option<String>,
}

impl Via {
    pub fn journey(&self) -> Option<Journey> {
        Journey::parse(self.via.as_deref())
    }

    /// `?via=...` to append to a path of the journey ("" outside one).
    pub fn query(&self) -> String {
        query(self.journey())
    }
}

/// `?via=...` for `journey` ("" for none).
pub fn query(journey: Option<Journey>) -> String {
    journey.map_or(String::new(), |j| format!("?via={}", j.as_str()))
}

/// The bar of `journey` at `at`, or nothing outside a journey.
pub fn bar(journey: Option<Journey>, lang: Lang, at: At) -> Value {
    journey.map_or(Value::from(()), |j| j.bar(lang, at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_of_a_journey_has_its_step_marked() {
        for j in [
            Journey::Secure,
            Journey::Link,
            Journey::Profile,
            Journey::SignIn,
        ] {
            assert_eq!(Journey::parse(Some(j.as_str())), Some(j));
            for at in [At::Start, At::Choose, At::Connect, At::Codes] {
                for lang in [Lang::Nl, Lang::En] {
                    let bar = j.bar(lang, at);
                    let current = bar
                        .try_iter()
                        .expect("a list")
                        .filter(|s| s.get_attr("current").is_ok_and(|c| c.is_true()))
                        .count();
                    assert_eq!(current, 1, "{j:?} {at:?}");
                    for s in bar.try_iter().expect("a list") {
                        let label = s.get_attr("label").expect("label").to_string();
                        assert!(!label.is_empty() && label != "??", "{j:?}: {label}");
                    }
                }
            }
        }
    }
}
