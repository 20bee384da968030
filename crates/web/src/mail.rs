//! Mail texts: every [`Notice`] rendered as a subject, a plain-text and an HTML part
//! in the recipient's language, from `templates/mail/<kind>.{txt,html}` and the
//! `mail_*` keys of the translation files. Sending is not done here (see the
//! delivery worker of the binary).

use crate::i18n::{Dutch, Lang};
use crate::render::templates;
use tweestap_domain::mail::{Language, Notice};

/// One message's texts.
#[derive(Debug, Clone)]
pub struct RenderedMail {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What every mail shows besides the notice itself.
#[derive(Debug, Clone)]
pub struct MailBranding<'a> {
    /// The organisation the mail comes from, e.g. "Gemeente Tweestad".
    pub organisation: &'a str,
    /// Where to sign in; empty leaves the link out.
    pub public_url: &'a str,
    /// The Dutch of a Dutch reader (`[ui] dutch`): gsm or mobiel, aanmelden or inloggen.
    pub dutch: Dutch,
}

fn factor_name(lang: Lang, kind: &str) -> String {
    match kind {
        "totp" => lang.t("mail_factor_totp").to_owned(),
        other => other.to_owned(),
    }
}

/// Renders `notice` for `to_name` in `language`. `link` is the opened secret (a link,
/// or the code of `email_code`) of a notice that carries one sealed (see
/// [`tweestap_domain::mail::open_link`]).
pub fn render_notice(
    notice: &Notice,
    language: Language,
    to_name: &str,
    brand: &MailBranding<'_>,
    link: Option<&str>,
) -> Result<RenderedMail, minijinja::Error> {
    let lang = match Lang::from(language) {
        Lang::Nl | Lang::NlNl => brand.dutch.lang(),
        Lang::En => Lang::En,
    };
    let kind = notice.kind();
    let factor = match notice {
        Notice::FactorAdded { factor_kind } | Notice::FactorRemoved { factor_kind } => {
            factor_name(lang, factor_kind)
        }
        _ => String::new(),
    };
    let days = match notice {
        Notice::EnrollmentLink { valid_days, .. }
        | Notice::TwoFactorReset { valid_days, .. }
        | Notice::Invite { valid_days, .. } => valid_days.to_string(),
        Notice::TwoFactorReminder { days_left, .. } => days_left.to_string(),
        _ => String::new(),
    };
    // The deadline as people write a date ("1 januari 2027").
    let deadline = match notice {
        Notice::TwoFactorReminder { deadline, .. } => deadline
            .parse::<chrono::NaiveDate>()
            .ok()
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .map(|t| crate::dates::day(lang, chrono_tz::UTC, t.and_utc()))
            .unwrap_or_else(|| deadline.clone()),
        _ => String::new(),
    };
    let subject = lang
        .t(&format!("mail_{kind}_subject"))
        .replace("{organisation}", brand.organisation)
        .replace("{deadline}", &deadline);
    let name = if to_name.trim().is_empty() {
        match lang {
            Lang::Nl | Lang::NlNl => "gebruiker",
            Lang::En => "user",
        }
    } else {
        to_name.trim()
    };
    let ctx = minijinja::context! {
        subject => subject.clone(),
        name => name,
        organisation => brand.organisation,
        public_url => brand.public_url,
        factor => factor,
        link => link.unwrap_or_default(),
        code => link.unwrap_or_default(),
        days => days,
        deadline => deadline,
        remaining => match notice {
            Notice::RecoveryCodeUsed { remaining } => remaining.to_string(),
            _ => String::new(),
        },
        minutes => tweestap_domain::service::reset_link_validity().num_minutes().to_string(),
    };
    let t = templates();
    Ok(RenderedMail {
        text: t.render(&format!("mail/{kind}.txt"), lang, ctx.clone())?,
        html: t.render(&format!("mail/{kind}.html"), lang, ctx)?,
        subject,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_notice_renders_in_both_languages_and_escapes_html() {
        let brand = MailBranding {
            organisation: "Stad <Tweestap>",
            public_url: "https://login.example.org",
            dutch: Dutch::Be,
        };
        for notice in [
            Notice::FactorAdded {
                factor_kind: "totp".into(),
            },
            Notice::FactorRemoved {
                factor_kind: "totp".into(),
            },
            Notice::PasswordReset {
                link_sealed: "sealed".into(),
            },
            Notice::PasswordChanged,
            Notice::EmailCode {
                code_sealed: "sealed".into(),
            },
            Notice::EnrollmentLink {
                link_sealed: "sealed".into(),
                valid_days: 5,
            },
            Notice::TwoFactorReset {
                link_sealed: "sealed".into(),
                valid_days: 5,
            },
            Notice::RecoveryCodeUsed { remaining: 7 },
            Notice::Invite {
                link_sealed: "sealed".into(),
                valid_days: 5,
            },
            Notice::TwoFactorReminder {
                deadline: "2027-01-01".into(),
                days_left: 14,
            },
        ] {
            for language in [Language::Nl, Language::En] {
                let link = "https://login.example.org/password/reset/abc";
                let m = render_notice(&notice, language, "An <b>", &brand, Some(link)).unwrap();
                if notice.sealed().is_some() {
                    assert!(m.text.contains(link), "{}", m.text);
                    assert!(!m.text.contains("sealed"));
                }
                if matches!(
                    notice,
                    Notice::EnrollmentLink { .. } | Notice::TwoFactorReset { .. }
                ) {
                    assert!(m.text.contains(" 5 "), "{}", m.text);
                }
                if matches!(notice, Notice::PasswordReset { .. }) {
                    assert!(m.html.contains("reset&#x2f;abc\""), "{}", m.html);
                    assert!(!m.text.contains("sealed"));
                }
                assert!(m.subject.contains("Stad <Tweestap>"), "{}", m.subject);
                assert!(m.text.contains("An <b>") && m.text.contains("Stad <Tweestap>"));
                assert!(m.html.contains("An &lt;b&gt;"), "{}", m.html);
                assert!(!m.html.contains("<b>") && !m.html.contains("<Tweestap>"));
                assert!(m.html.contains(&format!("lang=\"{}\"", language.code())));
                assert!(!m.text.contains("??") && !m.html.contains("??"));
                assert!(m.text.contains("https://login.example.org"));
            }
        }
        let nl = render_notice(
            &Notice::FactorAdded {
                factor_kind: "totp".into(),
            },
            Language::Nl,
            "An",
            &brand,
            None,
        )
        .unwrap();
        assert!(nl.text.contains("Hallo An,") && nl.text.contains("authenticator-app"));
    }

    /// On a 390 px phone: no fixed width wider than the screen, long links wrap, and
    /// "Werkt de knop niet?" only under a link that looks like a button.
    #[test]
    fn html_mails_fit_a_phone_and_their_button_is_a_button() {
        let brand = MailBranding {
            organisation: "Gemeente Tweestad",
            public_url: "https://login.example.org",
            dutch: Dutch::Be,
        };
        let link = format!("https://login.example.org/enroll/{}", "x".repeat(120));
        for notice in [
            Notice::PasswordReset {
                link_sealed: "sealed".into(),
            },
            Notice::EnrollmentLink {
                link_sealed: "sealed".into(),
                valid_days: 5,
            },
            Notice::TwoFactorReset {
                link_sealed: "sealed".into(),
                valid_days: 5,
            },
            Notice::PasswordChanged,
        ] {
            for language in [Language::Nl, Language::En] {
                let m = render_notice(&notice, language, "An", &brand, Some(&link)).unwrap();
                let html = &m.html;
                assert!(
                    !html.contains(" width:")
                        && !html.contains(";width:")
                        && !html.contains("\"width:"),
                    "no fixed width: {html}"
                );
                assert!(html.contains("max-width:560px"), "{html}");
                assert!(html.contains("overflow-wrap:anywhere"), "{html}");
                let lang = Lang::from(language);
                let copy = lang.t("mail_password_reset_copy");
                if html.contains(copy) {
                    assert!(
                        html.contains("class=\"mail-button\"")
                            && html.contains("background:#0b5394"),
                        "the sentence about the button sits under a button: {html}"
                    );
                    let url = html
                        .split("class=\"mail-url\"")
                        .nth(1)
                        .expect("the address, in a box of its own");
                    assert!(url.contains("overflow-wrap:anywhere"), "{url}");
                }
            }
        }
    }

    /// An organisation in the Netherlands mails in its own words.
    #[test]
    fn netherlands_dutch_mails_say_inloggen_and_mobiel() {
        let link = "https://login.example.org/enroll/abc";
        let reset = Notice::TwoFactorReset {
            link_sealed: "sealed".into(),
            valid_days: 5,
        };
        for (dutch, words, not) in [
            (Dutch::Nl, ["mobiele nummer", "uitgelogd"], "gsm"),
            (Dutch::Be, ["gsm-nummer", "afgemeld"], "mobiel"),
        ] {
            let brand = MailBranding {
                organisation: "Gemeente Tweestad",
                public_url: "https://login.example.org",
                dutch,
            };
            let m = render_notice(&reset, Language::Nl, "An", &brand, Some(link)).unwrap();
            for w in words {
                assert!(m.text.contains(w), "{dutch:?} {w}: {}", m.text);
            }
            assert!(!m.text.contains(not), "{dutch:?}: {}", m.text);
            let en = render_notice(&reset, Language::En, "An", &brand, Some(link)).unwrap();
            assert!(en.text.contains("signed out"), "{}", en.text);
        }
    }
}
