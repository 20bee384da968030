//! Domain errors to HTTP, in one place: JSON bodies for the API, pages for browsers.

mod code;

use crate::i18n::Lang;
use crate::render::templates;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use tweestap_domain::password::HashError;
use tweestap_domain::store::StoreError;
use tweestap_domain::Error;
use utoipa::ToSchema;

pub use code::ErrorCode;

/// The status and stable error code for a domain error.
fn classify(e: &Error) -> (StatusCode, ErrorCode) {
    use ErrorCode as C;
    match e {
        Error::InvalidCredentials => (StatusCode::UNAUTHORIZED, C::InvalidCredentials),
        Error::WrongPassword => (StatusCode::FORBIDDEN, C::InvalidPassword),
        Error::InvalidCode => (StatusCode::UNAUTHORIZED, C::InvalidCode),
        Error::TooManyAttempts { .. } => (StatusCode::TOO_MANY_REQUESTS, C::TooManyAttempts),
        Error::Unauthenticated => (StatusCode::UNAUTHORIZED, C::Unauthenticated),
        Error::NotFound => (StatusCode::NOT_FOUND, C::NotFound),
        Error::InvalidResetLink => (StatusCode::BAD_REQUEST, C::InvalidToken),
        Error::InvalidEmail => (StatusCode::BAD_REQUEST, C::InvalidEmail),
        Error::EmailTaken => (StatusCode::CONFLICT, C::EmailTaken),
        Error::SharedMailbox => (StatusCode::CONFLICT, C::SharedMailbox),
        Error::InvalidLink => (StatusCode::NOT_FOUND, C::InvalidLink),
        Error::LinkExpired => (StatusCode::GONE, C::LinkExpired),
        Error::LinkUsed => (StatusCode::GONE, C::LinkUsed),
        Error::CodeExpired => (StatusCode::BAD_REQUEST, C::CodeExpired),
        Error::TooManyRequests => (StatusCode::TOO_MANY_REQUESTS, C::TooManyRequests),
        Error::Forbidden => (StatusCode::FORBIDDEN, C::Forbidden),
        Error::ReasonRequired => (StatusCode::BAD_REQUEST, C::ReasonRequired),
        Error::LastFactorRequired => (StatusCode::CONFLICT, C::LastFactorRequired),
        Error::InvalidPhone(code) => (StatusCode::BAD_REQUEST, C::of_phone(code)),
        Error::SmsRefused(r @ tweestap_domain::sms::SmsRefusal::CountryNotAllowed(_)) => {
            (StatusCode::BAD_REQUEST, C::of_sms_refusal(r))
        }
        Error::SmsRefused(r) => (StatusCode::TOO_MANY_REQUESTS, C::of_sms_refusal(r)),
        Error::SmsUnavailable => (StatusCode::BAD_GATEWAY, C::SmsUnavailable),
        Error::WeakPassword(p) => (StatusCode::BAD_REQUEST, C::of_password(*p)),
        Error::InvalidClient(_) => (StatusCode::BAD_REQUEST, C::InvalidClientMetadata),
        Error::ClientInConfig(_) => (StatusCode::CONFLICT, C::ClientInConfig),
        Error::StepUpRequired => (StatusCode::FORBIDDEN, C::StepUpRequired),
        Error::InvalidPolicy(_) => (StatusCode::BAD_REQUEST, C::InvalidPolicy),
        Error::InvalidName => (StatusCode::BAD_REQUEST, C::InvalidName),
        Error::Passkey(p) => {
            use tweestap_domain::passkey::PasskeyProblem as P;
            match p {
                P::Unavailable => (StatusCode::NOT_FOUND, C::PasskeyUnavailable),
                P::Expired => (StatusCode::BAD_REQUEST, C::PasskeyExpired),
                P::UnknownKey => (StatusCode::UNAUTHORIZED, C::PasskeyUnknown),
                P::Invalid => (StatusCode::UNAUTHORIZED, C::PasskeyInvalid),
                P::PossibleClone => (StatusCode::UNAUTHORIZED, C::PasskeyPossibleClone),
                P::AlreadyRegistered => (StatusCode::CONFLICT, C::PasskeyAlreadyRegistered),
            }
        }
        Error::Store(StoreError::Unavailable(_)) | Error::Hash(HashError::Busy) => {
            (StatusCode::SERVICE_UNAVAILABLE, C::Unavailable)
        }
        Error::Snapshot(_)
        | Error::NotEmpty
        | Error::ForeignKey(_)
        | Error::ForeignSigningKey(_) => (StatusCode::BAD_REQUEST, C::InvalidRequest),
        Error::Store(_)
        | Error::Crypto(_)
        | Error::Hash(_)
        | Error::Signing(_)
        | Error::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, C::Internal),
    }
}

/// What a client is told to wait while the database is away: short, because pools
/// reconnect by themselves as soon as it is back.
const UNAVAILABLE_RETRY_SECONDS: i64 = 5;

/// What a client is told to wait while every password hashing place is taken: a
/// hash takes a fraction of a second, so the queue empties fast.
const BUSY_RETRY_SECONDS: i64 = 1;

/// Server errors are logged, except a full hashing queue: under a flood of
/// passwords that would write a line per refused request (the hasher counts them).
fn log_if_internal(status: StatusCode, e: &Error) {
    if status.is_server_error() && !matches!(e, Error::Hash(HashError::Busy)) {
        tracing::error!(error = %e, "request failed");
    }
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
#[schema(examples(json!({"error": "invalid_credentials", "message": "e-mail or password is wrong"})))]
pub struct ErrorBody {
    pub error: ErrorCode,
    /// English text for people; may change, do not match on it.
    pub message: String,
    /// With `too_many_attempts` and `unavailable`: seconds to wait before trying
    /// again (also in the `Retry-After` header).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1)]
    pub retry_after: Option<i64>,
    /// With `invalid_code` at the code step: codes that may still be tried before
    /// the code step locks (the last one locks when it is wrong too); 0 when this
    /// wrong code locked it (the next try answers `too_many_attempts`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 0)]
    pub tries_left: Option<u32>,
    /// With `invalid_policy`: the refused field, as a path (`roles.user.required_from`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// `{"error": CODE, "message": TEXT}` with the right status.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    pub retry_after: Option<i64>,
    pub tries_left: Option<u32>,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            tries_left: None,
            field: None,
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
        let field = match &e {
            Error::InvalidPolicy(p) => Some(p.field.clone()),
            _ => None,
        };
        let retry_after = match e {
            Error::TooManyAttempts { retry_after } => Some(retry_after),
            Error::Store(StoreError::Unavailable(_)) => Some(UNAVAILABLE_RETRY_SECONDS),
            Error::Hash(HashError::Busy) => Some(BUSY_RETRY_SECONDS),
            _ => None,
        };
        Self {
            status,
            code,
            message,
            retry_after,
            tries_left: None,
            field,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            message: self.message,
            retry_after: self.retry_after,
            tries_left: self.tries_left,
            field: self.field,
        };
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
            _ if matches!(e, Error::TooManyRequests | Error::TooManyAttempts { .. }) => {
                "error_too_many_requests"
            }
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

/// A domain result on a page: its error becomes the error page in the visitor's
/// language, so page handlers can use `?`.
pub trait OnPage<T> {
    fn on_page(self, lang: Lang) -> Result<T, PageError>;
}

impl<T> OnPage<T> for Result<T, Error> {
    fn on_page(self, lang: Lang) -> Result<T, PageError> {
        self.map_err(|e| PageError::from_domain(e, lang))
    }
}
