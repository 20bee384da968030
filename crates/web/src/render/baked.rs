//! A language's texts written into its templates' source before they compile.
//!
//! `{{ tr.key }}` is most of a page's lookups (454 of the 534 uses of `tr`): each
//! one looked the name up, cloned the text's value and escaped it again on every
//! render. Written in once per language, the text is template data, emitted as it
//! stands. Only that exact form is written in, and only where the outcome is the
//! same byte for byte: a use with a filter, a condition or whitespace control, a
//! key the language lacks, or a text with a brace in it (which the template's
//! syntax could read) stays a lookup.
//!
//! A text is escaped as its template's name says (`.html` or not). At render
//! time an included template is escaped by its own name, but an extended one's
//! blocks by the template that extends it; so a template extends only one of
//! the same kind (a test in `render` holds every template to that).

use crate::i18n::Lang;
use minijinja::{AutoEscape, HtmlEscape};

const OPEN: &str = "{{ tr.";
const CLOSE: &str = " }}";

/// `source` with every plain `{{ tr.key }}` replaced by `lang`'s text, escaped as
/// minijinja escapes output for a template of that `name`; and how many were.
pub(super) fn bake(name: &str, source: &str, lang: Lang) -> (String, usize) {
    let texts = lang.texts();
    let escape = minijinja::default_auto_escape_callback(name);
    let mut out = String::with_capacity(source.len() + source.len() / 2);
    let (mut rest, mut baked) = (source, 0);
    while let Some(at) = rest.find(OPEN) {
        let after = &rest[at + OPEN.len()..];
        let key_len = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        let (key, tail) = after.split_at(key_len);
        let text = (key_len > 0 && tail.starts_with(CLOSE))
            .then(|| texts.get(key))
            .flatten()
            .and_then(|t| written(t, &escape));
        match text {
            Some(text) => {
                out.push_str(&rest[..at]);
                out.push_str(&text);
                rest = &tail[CLOSE.len()..];
                baked += 1;
            }
            None => {
                out.push_str(&rest[..at + OPEN.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    (out, baked)
}

/// The text as the template would have written it; none where writing it into
/// the source could change what the template means: a brace in it, or a `%` or
/// `#` first, which a `{` just before the use would make a tag or a comment; an
/// empty text (the source either side would join); whitespace at either end
/// (template data, unlike output, may be trimmed by a tag beside it).
fn written(text: &str, escape: &AutoEscape) -> Option<String> {
    if text.is_empty() || text.trim() != text {
        return None;
    }
    let out = match escape {
        AutoEscape::None => text.to_owned(),
        AutoEscape::Html => HtmlEscape(text).to_string(),
        // No template of ours is JSON or anything else: leave such a use alone.
        _ => return None,
    };
    (!out.contains(['{', '}']) && !out.starts_with(['%', '#'])).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_plain_form_is_written_in_and_escaped_for_html() {
        let key = Lang::En
            .texts()
            .iter()
            .find(|(_, v)| v.contains('\'') && !v.contains(['{', '}']))
            .map(|(k, _)| k.clone())
            .unwrap();
        let text = &Lang::En.texts()[&key];
        let source = format!(
            "<p>{{{{ tr.{key} }}}}</p>{{{{ tr.{key}|upper }}}}{{{{- tr.{key} }}}}{{{{ tr.no_such_key }}}}{{{{ tr. }}}}{{{{ tr.{key}"
        );
        let (html, n) = bake("x.html", &source, Lang::En);
        assert_eq!(n, 1);
        assert_eq!(
            html,
            format!(
                "<p>{}</p>{{{{ tr.{key}|upper }}}}{{{{- tr.{key} }}}}{{{{ tr.no_such_key }}}}{{{{ tr. }}}}{{{{ tr.{key}",
                HtmlEscape(text)
            )
        );
        assert!(
            !html.starts_with(&format!("<p>{text}")),
            "the quote is escaped"
        );
        let (txt, n) = bake("x.txt", &format!("{{{{ tr.{key} }}}}"), Lang::En);
        assert_eq!((txt.as_str(), n), (text.as_str(), 1));
    }

    #[test]
    fn a_text_with_template_syntax_in_it_stays_a_lookup() {
        assert_eq!(written("in {days} days", &AutoEscape::Html), None);
        assert_eq!(written("% done", &AutoEscape::None), None);
        assert_eq!(written("# one", &AutoEscape::Html), None);
        assert_eq!(written("100%", &AutoEscape::None).as_deref(), Some("100%"));
        assert_eq!(written("", &AutoEscape::None), None);
        assert_eq!(written(" Ja", &AutoEscape::Html), None);
        assert_eq!(written("Ja\n", &AutoEscape::None), None);
        assert_eq!(
            written("a & b", &AutoEscape::Html).as_deref(),
            Some("a &amp; b")
        );
    }
}
