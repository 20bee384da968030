//! `[sms]`: the gateway SMS codes go out through, and the pumping protection. What
//! is read and checked here; the gateways themselves are in `adapters::sms`.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;
use tweestap_domain::sms::SmsPolicy;

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

pub fn invalid(key: &'static str, reason: impl Into<String>) -> SmsConfigError {
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
}
