//! The HTTP gateways: the generic one and Twilio's, over one retrying transport.

use crate::config::sms::{invalid, BodyFormat, HttpMethod, RetryPolicy, SmsConfig, SmsConfigError};
use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use std::fmt;
use std::time::Duration;
use tweestap_domain::sms::{SmsMessage, SmsOutcome};

mod template;

use template::{fill, json_escape, url_escape, Values};

/// The connect timeout, or the whole timeout when that is shorter.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// At most this much of an answer is read (for the provider id or an error).
const MAX_ANSWER_BYTES: usize = 16 * 1024;
/// At most this much of an error answer goes into the outcome and the log.
const MAX_DETAIL_CHARS: usize = 200;

/// The HTTP client and the retry rule both gateways share.
struct Transport {
    client: reqwest::Client,
    retry: RetryPolicy,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transport")
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl Transport {
    fn new(config: &SmsConfig) -> Result<Self, SmsConfigError> {
        let timeout = config.timeout();
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tweestap/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SmsConfigError::Client(e.to_string()))?;
        Ok(Self {
            client,
            retry: config.retry_policy(),
        })
    }

    /// Sends what `request` builds, again (after a pause that doubles) as long as the
    /// SMS cannot have gone out and attempts are left.
    async fn send(
        &self,
        gateway: &'static str,
        msg: &SmsMessage,
        request: impl Fn() -> reqwest::RequestBuilder,
        answer: &dyn Answer,
    ) -> SmsOutcome {
        let attempts = self.retry.attempts.max(1);
        let mut pause = self.retry.first_backoff;
        let mut last = String::new();
        for attempt in 1..=attempts {
            if attempt > 1 {
                tokio::time::sleep(pause).await;
                pause = pause.saturating_mul(2);
            }
            let response = match request().send().await {
                Ok(r) => r,
                // Connecting failed: nothing reached the gateway.
                Err(e) if e.is_connect() => {
                    last = format!("cannot connect to the gateway: {}", error_text(e));
                    tracing::warn!(
                        gateway, sms = %msg.id, to = %msg.to.masked(), attempt, attempts,
                        error = %last, "SMS gateway unreachable"
                    );
                    continue;
                }
                Err(e) if e.is_builder() => {
                    let error = format!("cannot build the request: {}", error_text(e));
                    tracing::warn!(gateway, sms = %msg.id, to = %msg.to.masked(), error = %error, "SMS not sent");
                    return failed(false, false, error);
                }
                // A timeout or a broken connection after the request went out.
                Err(e) => {
                    let error = format!(
                        "no answer from the gateway ({}): the SMS may or may not have been sent",
                        error_text(e)
                    );
                    tracing::warn!(
                        gateway, sms = %msg.id, to = %msg.to.masked(), attempt,
                        error = %error,
                        "no answer from the SMS gateway: the SMS may or may not have been sent; not retried, so it is not sent twice"
                    );
                    return failed(false, true, error);
                }
            };
            let status = response.status();
            let body = read_capped(response).await;
            if status.is_success() {
                let provider_id = answer.provider_id(&body);
                tracing::info!(
                    gateway, sms = %msg.id, to = %msg.to.masked(), status = status.as_u16(), attempt,
                    provider_id = provider_id.as_deref().unwrap_or(""),
                    "SMS handed to the gateway"
                );
                return SmsOutcome::Sent { provider_id };
            }
            let detail = answer.error_detail(&body, msg);
            let error = if detail.is_empty() {
                format!("HTTP {status}")
            } else {
                format!("HTTP {status}: {detail}")
            };
            if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
                tracing::warn!(
                    gateway, sms = %msg.id, to = %msg.to.masked(), status = status.as_u16(),
                    attempt, attempts, error = %error, "SMS gateway busy or failing"
                );
                last = error;
                continue;
            }
            tracing::warn!(
                gateway, sms = %msg.id, to = %msg.to.masked(), status = status.as_u16(),
                error = %error, "SMS refused by the gateway; not retried"
            );
            return failed(false, false, error);
        }
        tracing::warn!(gateway, sms = %msg.id, to = %msg.to.masked(), attempts, error = %last, "SMS not sent; giving up");
        failed(true, false, format!("{last} (after {attempts} attempts)"))
    }
}

fn failed(retryable: bool, ambiguous: bool, error: String) -> SmsOutcome {
    SmsOutcome::Failed {
        retryable,
        ambiguous,
        error,
    }
}

/// The error and its causes, without the URL (a GET gateway's URL holds the text).
fn error_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

async fn read_capped(mut response: reqwest::Response) -> Vec<u8> {
    let mut body = Vec::new();
    while body.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            _ => break,
        }
    }
    body.truncate(MAX_ANSWER_BYTES);
    body
}

/// A short, single-line excerpt of an answer that cannot leak the code: the text is
/// cut out and every run of three or more digits masked.
fn scrub(raw: &str, msg: &SmsMessage) -> String {
    let raw = if msg.text.is_empty() {
        raw.to_owned()
    } else {
        raw.replace(&msg.text, "[text]")
    };
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if digits.len() >= 3 {
            out.push_str("•••");
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in raw.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        flush(&mut digits, &mut out);
        if c.is_whitespace() || c.is_control() {
            if !out.ends_with(' ') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    let out = out.trim();
    match out.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((i, _)) => format!("{}…", &out[..i]),
        None => out.to_owned(),
    }
}

/// How a gateway's answers are read.
trait Answer: Send + Sync {
    fn provider_id(&self, body: &[u8]) -> Option<String>;
    fn error_detail(&self, body: &[u8], msg: &SmsMessage) -> String;
}

fn json_id(v: &serde_json::Value, keys: &[&str]) -> Option<String> {
    let obj = v.as_object()?;
    keys.iter().find_map(|k| match obj.get(*k)? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

/// The generic gateway's answers: an id under a usual key, if any.
struct GenericAnswer;

impl Answer for GenericAnswer {
    fn provider_id(&self, body: &[u8]) -> Option<String> {
        const KEYS: &[&str] = &["id", "message_id", "messageId", "message-id", "sid"];
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        json_id(&v, KEYS).or_else(|| {
            let first = v.get("messages")?.as_array()?.first()?;
            json_id(first, KEYS)
        })
    }

    fn error_detail(&self, body: &[u8], msg: &SmsMessage) -> String {
        scrub(&String::from_utf8_lossy(body), msg)
    }
}

/// Twilio's answers: `sid`, or `code` and `message`.
struct TwilioAnswer;

impl Answer for TwilioAnswer {
    fn provider_id(&self, body: &[u8]) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        json_id(&v, &["sid"])
    }

    fn error_detail(&self, body: &[u8], msg: &SmsMessage) -> String {
        let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
            return scrub(&String::from_utf8_lossy(body), msg);
        };
        let code = v.get("code").and_then(serde_json::Value::as_i64);
        let message = v
            .get("message")
            .and_then(serde_json::Value::as_str)
            .map(|m| scrub(m, msg))
            .unwrap_or_default();
        match code {
            Some(c) => format!("Twilio error {c}: {message}"),
            None => message,
        }
    }
}

fn parse_http_url(key: &'static str, raw: &str) -> Result<reqwest::Url, SmsConfigError> {
    let url = reqwest::Url::parse(raw).map_err(|e| invalid(key, format!("{raw:?}: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid(key, format!("{raw:?} is not an http(s) URL")));
    }
    Ok(url)
}

/// Scheme, host, port and path: no credentials, no query.
fn describe_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{}://{}{}{}",
            u.scheme(),
            u.host_str().unwrap_or(""),
            u.port().map(|p| format!(":{p}")).unwrap_or_default(),
            u.path()
        ),
        Err(_) => "(invalid URL)".into(),
    }
}

enum Body {
    /// A JSON document with placeholders in its strings.
    Json(String),
    /// `key=value` pairs; values may hold placeholders.
    Form(Vec<(String, String)>),
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Json(_) => f.write_str("Json"),
            Body::Form(pairs) => f.debug_tuple("Form").field(&pairs.len()).finish(),
        }
    }
}

fn parse_form(template: &str) -> Result<Vec<(String, String)>, SmsConfigError> {
    let mut pairs = Vec::new();
    for part in template.split(['&', '\n']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let (k, v) = part.split_once('=').ok_or_else(|| {
            invalid(
                "http.body_template",
                format!("{part:?} is not key=value (form pairs are key=value, separated by & or new lines)"),
            )
        })?;
        if k.trim().is_empty() {
            return Err(invalid(
                "http.body_template",
                format!("{part:?} has no key"),
            ));
        }
        pairs.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(pairs)
}

/// A generic HTTP SMS gateway.
#[derive(Debug)]
pub struct HttpGateway {
    transport: Transport,
    url: String,
    method: HttpMethod,
    auth: Option<(HeaderName, HeaderValue)>,
    body: Body,
}

impl HttpGateway {
    pub(super) fn new(config: &SmsConfig) -> Result<Self, SmsConfigError> {
        let h = &config.http;
        let url = h.url.trim();
        if url.is_empty() {
            return Err(SmsConfigError::Missing {
                gateway: "http",
                key: "[sms.http] url",
            });
        }
        parse_http_url("http.url", &fill(url, &Values::sample(), url_escape))?;
        let auth = match (h.header_name.trim().is_empty(), h.header_value.is_empty()) {
            (true, true) => None,
            (false, true) => return Err(invalid(
                "http.header_value",
                "header_name is set, so set header_value too (or TWEESTAP_SMS_HTTP_HEADER_VALUE)",
            )),
            (true, false) => {
                return Err(invalid(
                    "http.header_name",
                    "header_value is set, so name the header too (e.g. Authorization or X-API-Key)",
                ))
            }
            (false, false) => {
                let name =
                    HeaderName::from_bytes(h.header_name.trim().as_bytes()).map_err(|e| {
                        invalid("http.header_name", format!("{:?}: {e}", h.header_name))
                    })?;
                let mut value = HeaderValue::from_str(h.header_value.expose().trim())
                    .map_err(|_| invalid("http.header_value", "not a valid header value"))?;
                value.set_sensitive(true);
                Some((name, value))
            }
        };
        let template = h.body_template.trim();
        let body = match h.body_format {
            BodyFormat::Json => {
                if h.method == HttpMethod::Get {
                    return Err(invalid(
                        "http.body_format",
                        "GET sends no body: use body_format = \"form\" (the pairs go into the query string)",
                    ));
                }
                let template = if template.is_empty() {
                    r#"{"to":"{to}","text":"{text}","reference":"{id}"}"#
                } else {
                    template
                };
                serde_json::from_str::<serde_json::Value>(&fill(template, &Values::sample(), json_escape))
                    .map_err(|e| invalid("http.body_template", format!(
                        "not JSON once filled in ({e}); placeholders go inside quotes: \"to\": \"{{to}}\""
                    )))?;
                Body::Json(template.to_owned())
            }
            BodyFormat::Form => Body::Form(parse_form(if template.is_empty() {
                "to={to}&text={text}&reference={id}"
            } else {
                template
            })?),
        };
        let everything = match &body {
            Body::Json(t) => format!("{url} {t}"),
            Body::Form(pairs) => pairs
                .iter()
                .fold(url.to_owned(), |acc, (_, v)| acc + " " + v),
        };
        for p in ["{to}", "{text}"] {
            if !everything.contains(p) {
                return Err(invalid(
                    "http.body_template",
                    format!("{p} appears neither in the body nor in the URL"),
                ));
            }
        }
        Ok(Self {
            transport: Transport::new(config)?,
            url: url.to_owned(),
            method: h.method,
            auth,
            body,
        })
    }

    pub(super) fn describe(&self) -> String {
        let m = match self.method {
            HttpMethod::Post => "POST",
            HttpMethod::Get => "GET",
        };
        format!("{m} {}", describe_url(&self.url))
    }

    fn request(&self, msg: &SmsMessage) -> reqwest::RequestBuilder {
        let values = Values::of(msg);
        let url = fill(&self.url, &values, url_escape);
        let client = &self.transport.client;
        let mut req = match self.method {
            HttpMethod::Post => client.post(url),
            HttpMethod::Get => client.get(url),
        };
        if let Some((name, value)) = &self.auth {
            req = req.header(name.clone(), value.clone());
        }
        match &self.body {
            Body::Json(t) => {
                req.header(CONTENT_TYPE, "application/json")
                    .body(fill(t, &values, json_escape))
            }
            Body::Form(pairs) => {
                let filled: Vec<(&str, String)> = pairs
                    .iter()
                    .map(|(k, v)| (k.as_str(), fill(v, &values, str::to_owned)))
                    .collect();
                match self.method {
                    HttpMethod::Post => req.form(&filled),
                    HttpMethod::Get => req.query(&filled),
                }
            }
        }
    }

    pub async fn send(&self, msg: &SmsMessage) -> SmsOutcome {
        self.transport
            .send("http", msg, || self.request(msg), &GenericAnswer)
            .await
    }
}

enum TwilioSender {
    From(String),
    MessagingService(String),
}

/// Twilio's Messages API (or a stand-in at `base_url`).
pub struct TwilioGateway {
    transport: Transport,
    endpoint: String,
    account_sid: String,
    auth_token: String,
    sender: TwilioSender,
}

impl fmt::Debug for TwilioGateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioGateway")
            .field("endpoint", &self.endpoint)
            .field("transport", &self.transport)
            .finish_non_exhaustive()
    }
}

impl TwilioGateway {
    pub(super) fn new(config: &SmsConfig) -> Result<Self, SmsConfigError> {
        let t = &config.twilio;
        let missing = |key| SmsConfigError::Missing {
            gateway: "twilio",
            key,
        };
        let sid = t.account_sid.trim();
        if sid.is_empty() {
            return Err(missing("[sms.twilio] account_sid"));
        }
        if !sid.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "twilio.account_sid",
                "letters and digits only (AC…)",
            ));
        }
        if t.auth_token.is_empty() {
            return Err(missing(
                "[sms.twilio] auth_token (or TWEESTAP_SMS_TWILIO_AUTH_TOKEN)",
            ));
        }
        let sender = match (t.from.trim(), t.messaging_service_sid.trim()) {
            ("", "") => return Err(missing("[sms.twilio] from or messaging_service_sid")),
            (from, "") => TwilioSender::From(from.to_owned()),
            ("", service) => TwilioSender::MessagingService(service.to_owned()),
            _ => {
                return Err(invalid(
                    "twilio.from",
                    "set from or messaging_service_sid, not both",
                ))
            }
        };
        let base = t.base_url.trim().trim_end_matches('/');
        parse_http_url("twilio.base_url", base)?;
        Ok(Self {
            transport: Transport::new(config)?,
            endpoint: format!("{base}/2010-04-01/Accounts/{sid}/Messages.json"),
            account_sid: sid.to_owned(),
            auth_token: t.auth_token.expose().trim().to_owned(),
            sender,
        })
    }

    pub(super) fn describe(&self) -> String {
        describe_url(&self.endpoint)
    }

    fn request(&self, msg: &SmsMessage) -> reqwest::RequestBuilder {
        let sender = match &self.sender {
            TwilioSender::From(f) => ("From", f.as_str()),
            TwilioSender::MessagingService(s) => ("MessagingServiceSid", s.as_str()),
        };
        let form = [("To", msg.to.e164()), sender, ("Body", msg.text.as_str())];
        self.transport
            .client
            .post(&self.endpoint)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(&form)
    }

    pub async fn send(&self, msg: &SmsMessage) -> SmsOutcome {
        self.transport
            .send("twilio", msg, || self.request(msg), &TwilioAnswer)
            .await
    }
}

#[cfg(test)]
mod tests;
