//! The `{to}`, `{text}` and `{id}` placeholders of a gateway's URL and body.

use tweestap_domain::sms::SmsMessage;

/// The three values a template can hold.
pub(super) struct Values<'a> {
    pub(super) to: &'a str,
    pub(super) text: &'a str,
    pub(super) id: String,
}

impl<'a> Values<'a> {
    pub(super) fn of(msg: &'a SmsMessage) -> Self {
        Self {
            to: msg.to.e164(),
            text: &msg.text,
            id: msg.id.to_string(),
        }
    }

    pub(super) fn sample() -> Values<'static> {
        Values {
            to: "+32470123456",
            text: "Je code is 123456 \"quoted\" & more",
            id: uuid::Uuid::nil().to_string(),
        }
    }
}

/// Replaces `{to}`, `{text}` and `{id}` in one pass (a value holding `{to}` stays
/// as it is), each passed through `escape`; any other brace is left alone.
pub(super) fn fill(template: &str, values: &Values<'_>, escape: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(template.len() + values.text.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let found = [
            ("{to}", values.to),
            ("{text}", values.text),
            ("{id}", values.id.as_str()),
        ]
        .into_iter()
        .find(|(p, _)| after.starts_with(p));
        match found {
            Some((p, v)) => {
                out.push_str(&escape(v));
                rest = &after[p.len()..];
            }
            None => {
                out.push('{');
                rest = &after[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

pub(super) fn json_escape(v: &str) -> String {
    let quoted = serde_json::Value::String(v.to_owned()).to_string();
    quoted[1..quoted.len() - 1].to_owned()
}

pub(super) fn url_escape(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}
