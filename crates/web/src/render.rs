//! Page templates (minijinja, embedded at build time).

mod baked;

use crate::i18n::Lang;
use minijinja::{Environment, Value};
use std::sync::OnceLock;

/// The templates, compiled per language as it is first used, with its texts
/// written in (`baked`).
pub struct Templates {
    langs: [OnceLock<ForLang>; 3],
}

/// One language's compiled templates, and its texts for the uses left as
/// lookups (`tr`).
struct ForLang {
    env: Environment<'static>,
    /// Made once: converting the whole bundle on every render was a good part of
    /// a page's cost. Clones share it.
    tr: Value,
}

macro_rules! sources {
    ($($name:literal),*) => {
        &[ $( ($name, include_str!(concat!("../templates/", $name))) ),* ]
    };
}

/// Every template by name, as written.
const SOURCES: &[(&str, &str)] = sources!(
    "base.html",
    "login.html",
    "code.html",
    "home.html",
    "account.html",
    "deadline_banner.html",
    "passkey_msgs.html",
    "passkey_fields.html",
    "passkey_setup.html",
    "confirm_password.html",
    "setup.html",
    "error.html",
    "support.html",
    "support_account.html",
    "support_reset_confirm.html",
    "admin_nav.html",
    "admin_step_up.html",
    "admin_dashboard.html",
    "admin_accounts.html",
    "admin_account.html",
    "admin_import.html",
    "admin_policy.html",
    "admin_audit.html",
    "dev_outbox.html",
    "dev_outbox_message.html",
    "dev_sms_outbox.html",
    "mail/layout.html",
    "mail/layout.txt",
    "mail/factor_added.html",
    "mail/factor_added.txt",
    "mail/factor_removed.html",
    "mail/factor_removed.txt",
    "password_forgot.html",
    "password_reset.html",
    "mail/password_reset.html",
    "mail/password_reset.txt",
    "mail/password_changed.html",
    "mail/password_changed.txt",
    "mail/email_code.html",
    "mail/email_code.txt",
    "mail/enrollment_link.html",
    "mail/enrollment_link.txt",
    "mail/two_factor_reset.html",
    "mail/two_factor_reset.txt",
    "mail/recovery_code_used.html",
    "mail/recovery_code_used.txt",
    "mail/invite.html",
    "mail/invite.txt",
    "mail/two_factor_reminder.html",
    "mail/two_factor_reminder.txt",
    "recovery_codes.html",
    "recovery.html",
    "sms_add.html",
    "sms_setup.html",
    "logout_confirm.html",
    "secure.html",
    "secure_code.html",
    "choose_method.html",
    "steps.html",
    "method_choice.html",
    "link_sent.html",
    "enroll.html",
    "link_problem.html",
    "oidc_consent.html",
    "oidc_select_account.html"
);

impl Templates {
    pub fn new() -> Self {
        Self {
            langs: Default::default(),
        }
    }

    /// `lang`'s templates and texts, made on first use.
    fn lang(&self, lang: Lang) -> &ForLang {
        let slot = match lang {
            Lang::Nl => 0,
            Lang::En => 1,
            Lang::NlNl => 2,
        };
        self.langs[slot].get_or_init(|| ForLang {
            env: compile(lang),
            tr: Value::from_object(Texts::of(lang)),
        })
    }

    /// Renders `name` with the common values (`lang`, `tr`) beside `ctx`'s own.
    pub fn render(&self, name: &str, lang: Lang, ctx: Value) -> Result<String, minijinja::Error> {
        self.render_with(name, lang, Page::default(), ctx)
    }

    /// Renders a page: `page`'s values and the common ones beside `ctx`'s own.
    pub(crate) fn render_with(
        &self,
        name: &str,
        lang: Lang,
        page: Page,
        ctx: Value,
    ) -> Result<String, minijinja::Error> {
        let for_lang = self.lang(lang);
        let values = RenderValues {
            lang: Value::from(lang.code()),
            tr: for_lang.tr.clone(),
            page,
            own: ctx,
        };
        for_lang
            .env
            .get_template(name)?
            .render(Value::from_object(values))
    }
}

/// `lang`'s templates with its texts written in. Our templates are compiled
/// beside the code (and rendered in every language by the tests), so one that
/// does not compile is a bug; should writing texts in ever break one, its source
/// as written still serves.
fn compile(lang: Lang) -> Environment<'static> {
    let mut env = Environment::new();
    for &(name, source) in SOURCES {
        let (baked, _) = baked::bake(name, source, lang);
        if let Err(e) = env.add_template_owned(name, baked) {
            tracing::error!(template = name, error = %e, "a template with its texts written in does not compile");
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a template does not compile");
            }
        }
    }
    env
}

/// The values every page has (`view::page`); none for a mail or an error page.
#[derive(Debug, Default)]
pub(crate) struct Page {
    pub csrf: Option<Value>,
    pub path: Option<Value>,
    pub signed_in: Option<Value>,
}

/// One render's values. A template looks a name up in them at every use (`tr`
/// where a text takes a filter or a condition): the common ones and the page's
/// are found by one `match`, the rest in the caller's own. Maps merged with
/// `context!` looked each name up through every layer, comparing it with each key
/// in turn: about a fifth of the profile page's rendering.
#[derive(Debug)]
struct RenderValues {
    lang: Value,
    tr: Value,
    page: Page,
    own: Value,
}

impl RenderValues {
    /// The common and page values by name; the render's, not the caller's own of
    /// the same name (none uses one).
    fn common(&self, key: &str) -> Option<&Value> {
        match key {
            "tr" => Some(&self.tr),
            "lang" => Some(&self.lang),
            "csrf" => self.page.csrf.as_ref(),
            "path" => self.page.path.as_ref(),
            "signed_in" => self.page.signed_in.as_ref(),
            _ => None,
        }
    }
}

impl minijinja::value::Object for RenderValues {
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    fn get_value_by_str(self: &std::sync::Arc<Self>, key: &str) -> Option<Value> {
        if let Some(v) = self.common(key) {
            return Some(v.clone());
        }
        self.own.get_attr(key).ok().filter(|v| !v.is_undefined())
    }
}

/// The texts by key in a hash map: a page looks up dozens, and a map made by
/// `Value::from_serialize` is ordered, each lookup about nine comparisons of
/// template values among some 500 keys.
#[derive(Debug)]
struct Texts(std::collections::HashMap<&'static str, Value>);

impl Texts {
    fn of(lang: Lang) -> Self {
        let texts = lang.texts();
        Self(
            texts
                .iter()
                .map(|(k, v)| (k.as_str(), Value::from(v.as_str())))
                .collect(),
        )
    }
}

impl minijinja::value::Object for Texts {
    fn get_value(self: &std::sync::Arc<Self>, key: &Value) -> Option<Value> {
        self.get_value_by_str(key.as_str()?)
    }

    /// `tr.key`: looked up by the name as it is (the default makes a `Value` of
    /// it first, which allocates for a long name).
    fn get_value_by_str(self: &std::sync::Arc<Self>, key: &str) -> Option<Value> {
        self.0.get(key).cloned()
    }

    fn enumerator_len(self: &std::sync::Arc<Self>) -> Option<usize> {
        Some(self.0.len())
    }

    fn enumerate(self: &std::sync::Arc<Self>) -> minijinja::value::Enumerator {
        let mut keys: Vec<&'static str> = self.0.keys().copied().collect();
        keys.sort_unstable();
        minijinja::value::Enumerator::Values(keys.into_iter().map(Value::from).collect())
    }
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

/// The one set of templates; they are embedded, so there is nothing to reload.
pub fn templates() -> &'static Templates {
    static T: std::sync::OnceLock<Templates> = std::sync::OnceLock::new();
    T.get_or_init(Templates::new)
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::value::Object as _;

    /// The render's values win over the caller's of the same name; the caller's
    /// own are seen where the render has none (an error page's `path`).
    #[test]
    fn a_render_finds_its_own_values_first_then_the_callers() {
        let own = minijinja::context! { path => "/own", name => "An" };
        let tr = Value::from_object(Texts::of(Lang::Nl));
        let values = |page: Page| {
            std::sync::Arc::new(RenderValues {
                lang: Value::from("nl"),
                tr: tr.clone(),
                page,
                own: own.clone(),
            })
        };
        let page = values(Page {
            path: Some(Value::from("/page")),
            ..Page::default()
        });
        assert_eq!(page.get_value_by_str("path"), Some(Value::from("/page")));
        assert_eq!(page.get_value_by_str("name"), Some(Value::from("An")));
        assert_eq!(page.get_value_by_str("lang"), Some(Value::from("nl")));
        assert_eq!(page.get_value_by_str("csrf"), None);
        assert_eq!(page.get_value_by_str("nothing"), None);
        let mail = values(Page::default());
        assert_eq!(mail.get_value_by_str("path"), Some(Value::from("/own")));
    }

    /// Values for every template, with every branch that holds texts of its own.
    fn full_context() -> Value {
        let one = minijinja::context! { id => "1", name => "x" };
        minijinja::context! {
            csrf => "x<y", path => "/a?b=c&d", signed_in => true, name => "An & Bo",
            email => "an@example.be", client => "Loket", scopes => vec!["e-mail"],
            factors => Vec::<i32>::new(), days => "5", to => "+32 4•• •• •• 56",
            organisation => "Stad", invite => true, need_password => true, code => "123456",
            error => "fout", notice => "klaar", link => "https://x.test/l?t=1",
            // Branches and loops that hold texts of their own.
            staff => true, admin => true, saved => true, hint => "h", report => one.clone(),
            banner => minijinja::context! { date_nl => "1 mei", date_en => "1 May", days => "3" },
            a => minijinja::context! { email => "an@example.be", name => "An", role => "user" },
            chart => minijinja::context! { empty => true }, v => one.clone(),
            devices => vec![one.clone()], consents => vec![one.clone()],
            codes => vec!["a-b"], steps => vec![one.clone()], methods => vec![one.clone()],
            roles => vec![one.clone()], sent => vec![one.clone()], rows => vec![one.clone()],
        }
    }

    /// Every template renders byte for byte as it did when each text was looked
    /// up at render time, in every language, with and without values; and most
    /// texts were written in.
    #[test]
    fn templates_with_texts_written_in_render_as_they_did_with_lookups() {
        let looked_up = {
            let mut env = Environment::new();
            for &(name, source) in SOURCES {
                env.add_template(name, source).unwrap();
            }
            env
        };
        let t = Templates::new();
        let full = full_context();
        for lang in [Lang::Nl, Lang::En, Lang::NlNl] {
            let baked: usize = SOURCES
                .iter()
                .map(|&(name, source)| baked::bake(name, source, lang).1)
                .sum();
            assert!(baked > 400, "{lang:?}: only {baked} texts written in");
            for &(name, source) in SOURCES {
                let mut env = Environment::new();
                let compiled = env.add_template_owned(name, baked::bake(name, source, lang).0);
                assert!(
                    compiled.is_ok(),
                    "{name} in {lang:?} does not compile baked"
                );
            }
            for &(name, _) in SOURCES {
                for own in [full.clone(), minijinja::context! {}] {
                    let values = || {
                        Value::from_object(RenderValues {
                            lang: Value::from(lang.code()),
                            tr: t.lang(lang).tr.clone(),
                            page: Page::default(),
                            own: own.clone(),
                        })
                    };
                    let before = looked_up
                        .get_template(name)
                        .and_then(|tpl| tpl.render(values()))
                        .map_err(|e| e.to_string());
                    let after = t
                        .lang(lang)
                        .env
                        .get_template(name)
                        .and_then(|tpl| tpl.render(values()))
                        .map_err(|e| e.to_string());
                    if !own.get_attr("csrf").unwrap().is_undefined() {
                        assert!(before.is_ok(), "{name} in {lang:?}: {before:?}");
                    }
                    assert_eq!(before, after, "{name} in {lang:?}");
                }
            }
        }
    }

    /// Texts are escaped by their own template's name (`baked`), while an
    /// extended template's blocks are escaped as the one that extends it: so
    /// each extends only one of its own kind.
    #[test]
    fn a_template_extends_only_one_of_its_own_kind() {
        let kind = |name: &str| name.rsplit('.').next().unwrap_or_default().to_owned();
        let mut seen = 0;
        for &(name, source) in SOURCES {
            for part in source.split("{% extends \"").skip(1) {
                let parent = part.split('"').next().unwrap();
                assert_eq!(kind(parent), kind(name), "{name} extends {parent}");
                seen += 1;
            }
        }
        assert!(seen > 40, "only {seen} templates extend another");
    }

    /// An account added without a name shows a dash for it, as the console's page
    /// of one account does, not an empty line or cell: My Profile, support's view
    /// of an account, and the lists of accounts of support and the console.
    #[test]
    fn an_account_without_a_name_shows_a_dash() {
        let t = Templates::new();
        for (given, shown) in [("", "—"), ("An Peeters", "An Peeters")] {
            for name in ["account.html", "support_account.html"] {
                let ctx = minijinja::context! { name => given, ..full_context() };
                let html = t.render(name, Lang::Nl, ctx).unwrap();
                let row = format!("<dt>Naam</dt><dd>{shown}</dd>");
                assert!(html.contains(&row), "{name} with name {given:?}");
            }
            for name in ["admin_accounts.html", "support.html"] {
                let row = minijinja::context! { id => "1", name => given, role => "r" };
                let ctx = minijinja::context! { rows => vec![row], ..full_context() };
                let html = t.render(name, Lang::Nl, ctx).unwrap();
                let cell = format!("<td>{shown}</td>");
                assert!(html.contains(&cell), "{name} with name {given:?}");
            }
        }
    }

    #[test]
    fn every_page_renders_in_every_language() {
        let t = Templates::new();
        let pages: Vec<&str> = SOURCES
            .iter()
            .filter(|(_, source)| source.contains("{% extends \"base.html\" %}"))
            .map(|&(name, _)| name)
            .collect();
        assert!(pages.len() >= 30, "{} pages", pages.len());
        for lang in [Lang::Nl, Lang::En, Lang::NlNl] {
            for &name in &pages {
                let html = t.render(name, lang, full_context()).unwrap();
                assert!(
                    html.contains(&format!("lang=\"{}\"", lang.code())),
                    "{name}"
                );
                assert!(!html.contains("??"), "{name} uses a missing text key");
            }
        }
    }
}
