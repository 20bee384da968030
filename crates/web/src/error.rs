//! Domain errors to HTTP, in one place: JSON bodies for the API, pages for browsers.

use crate::i18n::Lang;
use crate::render::templates;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;
use tweestap_domain::store::StoreError;
use tweestap_domain::Error;

/// The status and stable error code for a domain error.
fn classify(e: &Error) -> (StatusCode, &'static str) {
    match e {
        Error::InvalidCredentials => (StatusCode::UNAUTHORIZED, "invalid_credentials"),
        Error::WrongPassword => (StatusCode::FORBIDDEN, "invalid_password"),
        Error::InvalidCode => (StatusCode::UNAUTHORIZED, "invalid_code"),
        Error::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_attempts"),
        Error::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
        Error::NotFound => (StatusCode::NOT_FOUND, "not_found"),
        Error::InvalidResetLink => (StatusCode::BAD_REQUEST, "invalid_token"),
        Error::InvalidEmail => (StatusCode::BAD_REQUEST, "invalid_email"),
        Error::EmailTaken => (StatusCode::CONFLICT, "email_taken"),
        Error::SharedMailbox => (StatusCode::CONFLICT, "shared_mailbox"),
        Error::InvalidLink => (StatusCode::NOT_FOUND, "invalid_link"),
        Error::LinkExpired => (StatusCode::GONE, "link_expired"),
        Error::LinkUsed => (StatusCode::GONE, "link_used"),
        Error::CodeExpired => (StatusCode::BAD_REQUEST, "code_expired"),
        Error::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
        Error::Forbidden => (StatusCode::FORBIDDEN, "forbidden"),
        Error::ReasonRequired => (StatusCode::BAD_REQUEST, "reason_required"),
        Error::LastFactorRequired => (StatusCode::CONFLICT, "last_factor_required"),
        Error::InvalidPhone(code) => (StatusCode::BAD_REQUEST, code),
        Error::SmsRefused(r @ tweestap_domain::sms::SmsRefusal::CountryNotAllowed(_)) => {
            (StatusCode::BAD_REQUEST, r.code())
        }
        Error::SmsRefused(r) => (StatusCode::TOO_MANY_REQUESTS, r.code()),
        Error::SmsUnavailable => (StatusCode::BAD_GATEWAY, "sms_unavailable"),
        Error::WeakPassword(p) => (StatusCode::BAD_REQUEST, p.code()),
        Error::InvalidClient(_) => (StatusCode::BAD_REQUEST, "invalid_client_metadata"),
        Error::ClientInConfig(_) => (StatusCode::CONFLICT, "client_in_config"),
        Error::Store(StoreError::Unavailable(_)) => {
            (StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
        Error::Snapshot(_)
        | Error::NotEmpty
        | Error::ForeignKey(_)
        | Error::ForeignSigningKey(_) => (StatusCode::BAD_REQUEST, "invalid_request"),
        Error::Store(_) | Error::Crypto(_) | Error::Hash(_) | Error::Signing(_) => {
            (StatusCode::INTERNAL_SERVER_ERROR, "internal")
        }
    }
}

/// What a client is told to wait while the database is away: short, because pools
/// reconnect by themselves as soon as it is back.
const UNAVAILABLE_RETRY_SECONDS: i64 = 5;

fn log_if_internal(status: StatusCode, e: &dyn std::fmt::Display) {
    if status.is_server_error() {
        tracing::error!(error = %e, "request failed");
    }
}

/// `{"error": CODE, "message": TEXT}` with the right status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<i64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let (status, code) = classify(&e);
        log_if_internal(status, &e);
        let message = if status.is_server_error() {
            "the server could not complete the request".into()
        } else {
            e.to_string()
        };
        let retry_after = match e {
            Error::TooManyAttempts { retry_after } => Some(retry_after),
            Error::Store(StoreError::Unavailable(_)) => Some(UNAVAILABLE_RETRY_SECONDS),
            _ => None,
        };
        Self {
            status,
            code,
            message,
            retry_after,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({ "error": self.code, "message": self.message });
        if let Some(s) = self.retry_after {
            body["retry_after"] = json!(s);
        }
        let mut r = (self.status, axum::Json(body)).into_response();
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}

/// An error page in the visitor's language.
#[derive(Debug)]
pub struct PageError {
    pub status: StatusCode,
    pub text_key: &'static str,
    pub lang: Lang,
}

impl PageError {
    pub fn new(status: StatusCode, text_key: &'static str, lang: Lang) -> Self {
        Self {
            status,
            text_key,
            lang,
        }
    }

    pub fn from_domain(e: Error, lang: Lang) -> Self {
        let (status, _) = classify(&e);
        log_if_internal(status, &e);
        let key = match status {
            _ if matches!(e, Error::SharedMailbox) => "error_shared_mailbox",
            _ if matches!(e, Error::Forbidden) => "error_forbidden",
            _ if matches!(e, Error::LastFactorRequired) => "error_last_factor_required",
            _ if matches!(e, Error::InvalidPhone(_)) => "sms_phone_invalid",
            _ if matches!(
                e,
                Error::SmsRefused(tweestap_domain::sms::SmsRefusal::CountryNotAllowed(_))
            ) =>
            {
                "sms_country_refused"
            }
            _ if matches!(e, Error::SmsRefused(_)) => "sms_rate_limited",
            _ if matches!(e, Error::SmsUnavailable) => "sms_unavailable",
            _ if matches!(e, Error::TooManyRequests) => "error_too_many_requests",
            _ if matches!(e, Error::InvalidLink) => "link_invalid",
            _ if matches!(e, Error::LinkExpired) => "link_expired",
            _ if matches!(e, Error::LinkUsed) => "link_used",
            StatusCode::NOT_FOUND => "error_not_found",
            StatusCode::SERVICE_UNAVAILABLE => "error_unavailable",
            s if s.is_server_error() => "error_internal",
            _ => "error_bad_request",
        };
        Self::new(status, key, lang)
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let ctx = minijinja::context! { message => self.lang.t(self.text_key), path => "/" };
        match templates().render("error.html", self.lang, ctx) {
            Ok(html) => {
                let mut r = (self.status, Html(html)).into_response();
                if self.status == StatusCode::SERVICE_UNAVAILABLE {
                    r.headers_mut().insert(
                        header::RETRY_AFTER,
                        HeaderValue::from(UNAVAILABLE_RETRY_SECONDS),
                    );
                }
                r
            }
            Err(e) => {
                tracing::error!(error = %e, "error page failed to render");
                (self.status, self.lang.t(self.text_key)).into_response()
            }
        }
    }
}
