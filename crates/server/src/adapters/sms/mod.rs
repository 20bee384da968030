//! SMS delivery: the `[sms]` configuration and the gateways it names.
//!
//! - `outbox` (the embedded default): every SMS is written to
//!   `<data_dir>/sms-outbox/<stamp>-<id>.txt`, as mail goes to the mail outbox.
//! - `http`: a generic HTTP gateway (URL, POST or GET, an optional auth header, a
//!   JSON or form body with `{to}`, `{text}` and `{id}` placeholders): enough for
//!   most European SMS providers.
//! - `twilio`: Twilio's Messages API, or anything that speaks it (`base_url`).
//!
//! Retries: only when the SMS cannot have gone out — the connection failed before
//! the request was sent, or the gateway answered 5xx or 429 — with exponential
//! back-off. A timeout or broken connection after the request went out is
//! *ambiguous*: the provider may have sent the SMS, so it is not retried, and the
//! log says so. The text (it holds a code) is never logged; the number only masked.

mod http;

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tweestap_domain::sms::{SmsMessage, SmsOutcome, SmsPolicy};

pub use http::{HttpGateway, TwilioGateway};

/// The connect timeout, or the whole timeout when that is shorter.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `[sms]`. Every key has a default; unknown keys are refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SmsConfig {
    /// `outbox` (default), `http` or `twilio`.
    pub gateway: GatewayKind,
    /// The longest one request to the gateway may take, in seconds (fractions allowed).
    pub timeout_seconds: f64,
    /// Further attempts after the first when the SMS cannot have gone out.
    pub retries: u32,
    /// The pause before the first retry; it doubles before each next one.
    pub retry_backoff_ms: u64,
    /// Country calling codes SMS may go to (32 Belgium, 31 the Netherlands).
    pub allowed_calling_codes: Vec<u16>,
    pub per_account_per_hour: u32,
    pub per_number_per_hour: u32,
    pub per_ip_per_hour: u32,
    /// All SMS of the installation together, per hour.
    pub global_per_hour: u32,
    /// The region of numbers typed without a country code, e.g. `BE`.
    pub default_region: String,
    pub http: HttpConfig,
    pub twilio: TwilioConfig,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GatewayKind {
    #[default]
    Outbox,
    Http,
    Twilio,
}

/// `[sms.http]`: a generic HTTP gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// May hold placeholders too (filled in URL-encoded).
    pub url: String,
    pub method: HttpMethod,
    /// An auth header, e.g. `Authorization` (value `Bearer …`) or `X-API-Key`.
    pub header_name: String,
    pub header_value: Secret,
    pub body_format: BodyFormat,
    /// JSON: a JSON document whose strings may hold `{to}`, `{text}` and `{id}`
    /// (filled in JSON-escaped, so write them inside quotes: `"to": "{to}"`).
    /// Form: `key=value` pairs separated by `&` or new lines (values are
    /// form-encoded when sent; with GET they go into the query string).
    /// Empty: `{"to":"{to}","text":"{text}","reference":"{id}"}` or
    /// `to={to}&text={text}&reference={id}`.
    pub body_template: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum HttpMethod {
    #[default]
    #[serde(rename = "POST", alias = "post")]
    Post,
    #[serde(rename = "GET", alias = "get")]
    Get,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyFormat {
    #[default]
    Json,
    Form,
}

/// `[sms.twilio]`: Twilio's Messages API.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioConfig {
    pub base_url: String,
    pub account_sid: String,
    pub auth_token: Secret,
    /// The sending number or alphanumeric sender; or else `messaging_service_sid`.
    pub from: String,
    pub messaging_service_sid: String,
}

/// A configured secret: its `Debug` does not show it.
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "\"***\"" })
    }
}

impl Default for SmsConfig {
    fn default() -> Self {
        let p = SmsPolicy::default();
        Self {
            gateway: GatewayKind::Outbox,
            timeout_seconds: 10.0,
            retries: 2,
            retry_backoff_ms: 200,
            allowed_calling_codes: p.allowed_calling_codes,
            per_account_per_hour: p.per_account_per_hour,
            per_number_per_hour: p.per_number_per_hour,
            per_ip_per_hour: p.per_ip_per_hour,
            global_per_hour: p.global_per_hour,
            default_region: p.default_region,
            http: HttpConfig::default(),
            twilio: TwilioConfig::default(),
        }
    }
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            method: HttpMethod::Post,
            header_name: String::new(),
            header_value: Secret::default(),
            body_format: BodyFormat::Json,
            body_template: String::new(),
        }
    }
}

impl Default for TwilioConfig {
    fn default() -> Self {
        Self {
            base_url: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: Secret::default(),
            from: String::new(),
            messaging_service_sid: String::new(),
        }
    }
}

/// A `[sms]` setting that cannot work, named by its key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmsConfigError {
    #[error("[sms] gateway = \"{gateway}\" needs {key}")]
    Missing {
        gateway: &'static str,
        key: &'static str,
    },
    #[error("[sms] {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    #[error("[sms] cannot set up the HTTP client: {0}")]
    Client(String),
}

pub(crate) fn invalid(key: &'static str, reason: impl Into<String>) -> SmsConfigError {
    SmsConfigError::Invalid {
        key,
        reason: reason.into(),
    }
}

/// How a gateway retries: `attempts` in all, pausing `first_backoff`, then twice
/// that, and so on, between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    pub attempts: u32,
    pub first_backoff: Duration,
}

impl SmsConfig {
    /// The pumping protection these settings describe.
    pub fn policy(&self) -> SmsPolicy {
        SmsPolicy {
            allowed_calling_codes: self.allowed_calling_codes.clone(),
            per_account_per_hour: self.per_account_per_hour,
            per_number_per_hour: self.per_number_per_hour,
            per_ip_per_hour: self.per_ip_per_hour,
            global_per_hour: self.global_per_hour,
            default_region: self.default_region.trim().to_ascii_uppercase(),
        }
    }

    /// `TWEESTAP_SMS_HTTP_HEADER_VALUE` and `TWEESTAP_SMS_TWILIO_AUTH_TOKEN`
    /// override the secrets of the file.
    pub fn apply_env(&mut self) {
        self.apply_env_from(|n| std::env::var(n).ok());
    }

    pub fn apply_env_from(&mut self, var: impl Fn(&str) -> Option<String>) {
        let var = |n: &str| var(n).filter(|v| !v.is_empty());
        if let Some(v) = var("TWEESTAP_SMS_HTTP_HEADER_VALUE") {
            self.http.header_value = Secret(v);
        }
        if let Some(v) = var("TWEESTAP_SMS_TWILIO_AUTH_TOKEN") {
            self.twilio.auth_token = Secret(v);
        }
    }

    /// The whole time one request may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout_seconds)
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy {
            attempts: self.retries.saturating_add(1),
            first_backoff: Duration::from_millis(self.retry_backoff_ms),
        }
    }

    /// Checks the keys every gateway uses: the policy, timeout and retries.
    pub fn validate(&self) -> Result<(), SmsConfigError> {
        if !tweestap_domain::sms::is_known_region(&self.default_region) {
            return Err(invalid(
                "default_region",
                format!(
                    "{:?} is not a region code such as BE or NL",
                    self.default_region
                ),
            ));
        }
        if let Some(c) = self
            .allowed_calling_codes
            .iter()
            .find(|c| !(1..=999).contains(*c))
        {
            return Err(invalid(
                "allowed_calling_codes",
                format!("{c} is not a country calling code (32 for +32)"),
            ));
        }
        let t = self.timeout_seconds;
        if !(t.is_finite() && t > 0.0 && t <= 300.0) {
            return Err(invalid(
                "timeout_seconds",
                format!("{t} is not between 0 and 300"),
            ));
        }
        if self.retries > 10 {
            return Err(invalid("retries", "at most 10"));
        }
        if self.retry_backoff_ms > 60_000 {
            return Err(invalid("retry_backoff_ms", "at most 60000"));
        }
        Ok(())
    }

    /// The gateway these settings name, checked. `data_dir` is where the outbox goes.
    pub fn gateway(&self, data_dir: &Path) -> Result<SmsGateway, SmsConfigError> {
        self.validate()?;
        Ok(match self.gateway {
            GatewayKind::Outbox => SmsGateway::Outbox(sms_outbox_dir(data_dir)),
            GatewayKind::Http => SmsGateway::Http(HttpGateway::new(self)?),
            GatewayKind::Twilio => SmsGateway::Twilio(TwilioGateway::new(self)?),
        })
    }
}

/// `<data_dir>/sms-outbox`.
pub fn sms_outbox_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("sms-outbox")
}

/// Where SMS go.
#[derive(Debug)]
pub enum SmsGateway {
    /// Files in this folder (the embedded default).
    Outbox(PathBuf),
    Http(HttpGateway),
    Twilio(TwilioGateway),
}

impl SmsGateway {
    /// One SMS, with the retries that cannot send it twice.
    pub async fn send(&self, msg: &SmsMessage) -> SmsOutcome {
        match self {
            Self::Outbox(dir) => send_to_outbox(dir, msg).await,
            Self::Http(g) => g.send(msg).await,
            Self::Twilio(g) => g.send(msg).await,
        }
    }

    /// `outbox`, `http` or `twilio`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Outbox(_) => "outbox",
            Self::Http(_) => "http",
            Self::Twilio(_) => "twilio",
        }
    }

    /// The outbox folder when SMS go there (for the development page).
    pub fn outbox(&self) -> Option<&Path> {
        match self {
            Self::Outbox(dir) => Some(dir),
            _ => None,
        }
    }

    /// For the start-up log: the kind and where to, without secrets or query.
    pub fn describe(&self) -> String {
        match self {
            Self::Outbox(dir) => format!("outbox {}", dir.display()),
            Self::Http(g) => format!("http {}", g.describe()),
            Self::Twilio(g) => format!("twilio {}", g.describe()),
        }
    }
}

/// The file's text: headers, a blank line, the SMS text.
pub fn outbox_file_text(msg: &SmsMessage, written: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        "To: {}\nId: {}\nDate: {}\n\n{}\n",
        msg.to.e164(),
        msg.id,
        written.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        msg.text
    )
}

/// Writes whole files only (a temporary name, then a rename), named so that name
/// order is the order written.
async fn send_to_outbox(dir: &Path, msg: &SmsMessage) -> SmsOutcome {
    let now = chrono::Utc::now();
    let name = format!("{}-{}.txt", now.format("%Y%m%dT%H%M%S%6f"), msg.id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    let written = async {
        tokio::fs::create_dir_all(dir).await?;
        tokio::fs::write(&tmp, outbox_file_text(msg, now)).await?;
        tokio::fs::rename(&tmp, &path).await
    }
    .await;
    match written {
        Ok(()) => {
            tracing::info!(
                sms = %msg.id,
                to = %msg.to.masked(),
                path = %path.display(),
                "SMS written to the outbox (no SMS gateway configured)"
            );
            SmsOutcome::Sent { provider_id: None }
        }
        Err(e) => {
            tracing::warn!(sms = %msg.id, to = %msg.to.masked(), error = %e, "cannot write the SMS outbox");
            SmsOutcome::Failed {
                retryable: true,
                ambiguous: false,
                error: format!("outbox {}: {e}", dir.display()),
            }
        }
    }
}

#[async_trait::async_trait]
impl tweestap_domain::sms::SmsSender for SmsGateway {
    async fn send(&self, msg: &SmsMessage) -> SmsOutcome {
        SmsGateway::send(self, msg).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml_text: &str) -> SmsConfig {
        toml::from_str(toml_text).unwrap()
    }

    fn gateway_error(toml_text: &str) -> String {
        parse(toml_text)
            .gateway(Path::new("/tmp/x"))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn defaults_are_the_outbox_and_the_domain_policy() {
        let c = parse("");
        assert_eq!(c.gateway, GatewayKind::Outbox);
        assert_eq!(c.policy(), SmsPolicy::default());
        assert_eq!(c.timeout(), Duration::from_secs(10));
        assert_eq!(
            c.retry_policy(),
            RetryPolicy {
                attempts: 3,
                first_backoff: Duration::from_millis(200)
            }
        );
        let g = c.gateway(Path::new("data")).unwrap();
        assert_eq!(g.kind(), "outbox");
        assert_eq!(g.outbox(), Some(Path::new("data/sms-outbox")));
        assert!(g.describe().starts_with("outbox "));
    }

    #[test]
    fn every_key_parses_and_unknown_ones_are_refused() {
        let c = parse(
            r#"
            gateway = "http"
            timeout_seconds = 2.5
            retries = 4
            retry_backoff_ms = 50
            allowed_calling_codes = [32]
            per_account_per_hour = 3
            per_number_per_hour = 4
            per_ip_per_hour = 6
            global_per_hour = 100
            default_region = "nl"
            [http]
            url = "https://sms.example/send"
            method = "GET"
            header_name = "X-API-Key"
            header_value = "k"
            body_format = "form"
            body_template = "to={to}&text={text}"
            [twilio]
            base_url = "http://127.0.0.1:1"
            account_sid = "AC1"
            auth_token = "t"
            from = "+3212345678"
            messaging_service_sid = ""
            "#,
        );
        assert_eq!(c.gateway, GatewayKind::Http);
        assert_eq!(c.timeout(), Duration::from_millis(2500));
        assert_eq!(c.retry_policy().attempts, 5);
        assert_eq!(c.http.method, HttpMethod::Get);
        assert_eq!(c.http.body_format, BodyFormat::Form);
        let p = c.policy();
        assert_eq!(p.allowed_calling_codes, vec![32]);
        assert_eq!(p.default_region, "NL");
        assert_eq!(
            (
                p.per_account_per_hour,
                p.per_number_per_hour,
                p.per_ip_per_hour,
                p.global_per_hour
            ),
            (3, 4, 6, 100)
        );
        c.gateway(Path::new("d")).unwrap();
        assert_eq!(
            parse("timeout_seconds = 3").timeout(),
            Duration::from_secs(3)
        );
        assert_eq!(
            parse("[http]\nmethod = \"post\"").http.method,
            HttpMethod::Post
        );
        for bad in [
            "gateway = \"carrier-pigeon\"",
            "gatway = \"http\"",
            "[http]\nuri = \"x\"",
            "[twilio]\ntoken = \"x\"",
            "[http]\nmethod = \"PUT\"",
            "[http]\nbody_format = \"xml\"",
        ] {
            assert!(toml::from_str::<SmsConfig>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_and_the_environment_overrides_them() {
        let mut c =
            parse("[http]\nheader_value = \"Bearer s3cret\"\n[twilio]\nauth_token = \"tok3n\"\n");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("s3cret") && !debug.contains("tok3n"),
            "{debug}"
        );
        c.apply_env_from(|n| match n {
            "TWEESTAP_SMS_HTTP_HEADER_VALUE" => Some("Bearer other".into()),
            "TWEESTAP_SMS_TWILIO_AUTH_TOKEN" => Some(String::new()),
            _ => None,
        });
        assert_eq!(c.http.header_value.expose(), "Bearer other");
        assert_eq!(c.twilio.auth_token.expose(), "tok3n");
    }

    #[test]
    fn http_settings_that_cannot_work_are_named() {
        let e = gateway_error("gateway = \"http\"");
        assert_eq!(e, "[sms] gateway = \"http\" needs [sms.http] url");
        let e = gateway_error("gateway = \"http\"\n[http]\nurl = \"ftp://x/\"");
        assert!(e.contains("[sms] http.url") && e.contains("http"), "{e}");
        let e = gateway_error("gateway = \"http\"\n[http]\nurl = \"not a url\"");
        assert!(e.contains("http.url"), "{e}");
        let e = gateway_error(
            "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nbody_template = \"{\\\"to\\\": {to}}\"",
        );
        assert!(
            e.contains("http.body_template") && e.contains("JSON"),
            "{e}"
        );
        let e = gateway_error(
            "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nbody_template = \"{\\\"to\\\": \\\"{to}\\\"}\"",
        );
        assert!(e.contains("{text}"), "{e}");
        let e = gateway_error(
            "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nbody_format = \"form\"\nbody_template = \"to={to}&oops\"",
        );
        assert!(e.contains("key=value"), "{e}");
        let e = gateway_error("gateway = \"http\"\n[http]\nurl = \"https://x/\"\nmethod = \"GET\"");
        assert!(e.contains("body_format"), "{e}");
        let e = gateway_error(
            "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nheader_name = \"X-Key\"",
        );
        assert!(e.contains("header_value"), "{e}");
        let e =
            gateway_error("gateway = \"http\"\n[http]\nurl = \"https://x/\"\nheader_value = \"k\"");
        assert!(e.contains("header_name"), "{e}");
        let e = gateway_error(
            "gateway = \"http\"\n[http]\nurl = \"https://x/\"\nheader_name = \"bad header\"\nheader_value = \"k\"",
        );
        assert!(e.contains("http.header_name"), "{e}");
    }

    #[test]
    fn twilio_settings_that_cannot_work_are_named() {
        let ok = "gateway = \"twilio\"\n[twilio]\naccount_sid = \"AC1\"\nauth_token = \"t\"\n";
        let e = gateway_error(ok);
        assert!(
            e.contains("from") && e.contains("messaging_service_sid"),
            "{e}"
        );
        parse(&format!("{ok}from = \"+32470123456\"\n"))
            .gateway(Path::new("d"))
            .unwrap();
        parse(&format!("{ok}messaging_service_sid = \"MG1\"\n"))
            .gateway(Path::new("d"))
            .unwrap();
        let e = gateway_error(&format!(
            "{ok}from = \"x\"\nmessaging_service_sid = \"MG1\"\n"
        ));
        assert!(e.contains("not both"), "{e}");
        let e = gateway_error("gateway = \"twilio\"\n[twilio]\nauth_token = \"t\"\nfrom = \"x\"\n");
        assert_eq!(
            e,
            "[sms] gateway = \"twilio\" needs [sms.twilio] account_sid"
        );
        let e =
            gateway_error("gateway = \"twilio\"\n[twilio]\naccount_sid = \"AC1\"\nfrom = \"x\"\n");
        assert!(e.contains("auth_token"), "{e}");
        let e = gateway_error(
            &format!("{ok}from = \"x\"\naccount_sid = \"AC/../x\"\n")
                .replace("account_sid = \"AC1\"\n", ""),
        );
        assert!(e.contains("twilio.account_sid"), "{e}");
    }

    #[test]
    fn policy_keys_are_checked() {
        assert!(gateway_error("default_region = \"XX\"").contains("default_region"));
        assert!(gateway_error("allowed_calling_codes = [0]").contains("allowed_calling_codes"));
        assert!(gateway_error("allowed_calling_codes = [1000]").contains("allowed_calling_codes"));
        assert!(gateway_error("timeout_seconds = 0").contains("timeout_seconds"));
        assert!(gateway_error("timeout_seconds = -1.5").contains("timeout_seconds"));
        assert!(gateway_error("retries = 11").contains("retries"));
        assert!(gateway_error("retry_backoff_ms = 600000").contains("retry_backoff_ms"));
        assert!(toml::from_str::<SmsConfig>("retries = -1").is_err());
    }

    #[test]
    fn the_outbox_file_holds_number_id_and_text() {
        let to = tweestap_domain::sms::PhoneNumber::parse("0470 12 34 56", "BE").unwrap();
        let msg = SmsMessage::new(to, "Je code is 123 456");
        let at = chrono::DateTime::parse_from_rfc3339("2026-05-01T10:00:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(
            outbox_file_text(&msg, at),
            format!(
                "To: +32470123456\nId: {}\nDate: 2026-05-01T10:00:00Z\n\nJe code is 123 456\n",
                msg.id
            )
        );
    }
}
