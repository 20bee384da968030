//! The JSON API under `/api/v1`: the same journeys as the pages, for scripts and apps.
//! It shares the session cookie with the pages; requiring `application/json` bodies is
//! its CSRF defence (a cross-site form cannot send that content type).

mod auth;
mod enroll;
mod me;
mod password;
mod support;

use crate::error::ApiError;
use crate::extract::current_session;
use crate::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use axum_extra::extract::cookie::CookieJar;
use serde::de::DeserializeOwned;
use tweestap_domain::service::SessionInfo;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/openapi.json", get(openapi))
        .route("/login", post(auth::login))
        .route("/login/second-factor", post(auth::second_factor))
        .route("/login/sms", post(auth::send_sms))
        .route("/logout", post(auth::logout))
        .route("/password/forgot", post(password::forgot))
        .route("/password/reset", post(password::reset))
        .route("/secure", post(enroll::secure))
        .route("/secure/code", post(enroll::secure_code))
        .route("/secure/code/resend", post(enroll::secure_resend))
        .route("/me/enrollment-link", post(enroll::request_link))
        .route(
            "/enrollment-links/{token}",
            get(enroll::link_state).post(enroll::open_link),
        )
        .route("/me", get(me::me))
        .route("/me/factors/totp", post(me::begin_totp))
        .route("/me/factors/totp/{id}/confirm", post(me::confirm_totp))
        .route("/me/factors/sms", post(me::begin_sms))
        .route("/me/factors/sms/{id}/resend", post(me::resend_sms))
        .route("/me/factors/sms/{id}/confirm", post(me::confirm_sms))
        .route("/me/factors/{id}", delete(me::remove_factor))
        .route("/me/recovery-codes", post(me::new_recovery_codes))
        .route("/me/devices", get(me::devices).delete(me::forget_devices))
        .route("/me/devices/{id}", delete(me::forget_device))
        .route("/support/accounts", get(support::search))
        .route("/support/accounts/{id}", get(support::account))
        .route(
            "/support/accounts/{id}/reset-2fa",
            post(support::reset_two_factor),
        )
        .route("/support/accounts/{id}/email", post(support::change_email))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method",
            )
        })
}

async fn openapi() -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        include_str!("openapi.json"),
    )
        .into_response()
}

/// `axum::Json` with every rejection turned into our JSON error body.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rej) => Err(match rej {
                JsonRejection::MissingJsonContentType(_) => ApiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported_media_type",
                    "the body must be JSON with Content-Type: application/json",
                ),
                JsonRejection::JsonSyntaxError(e) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "malformed_json", e.body_text())
                }
                JsonRejection::JsonDataError(e) => {
                    ApiError::new(StatusCode::BAD_REQUEST, "invalid_request", e.body_text())
                }
                other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the body may be at most {} bytes", crate::BODY_LIMIT),
                ),
                other => ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    other.body_text(),
                ),
            }),
        }
    }
}

/// The fully signed-in caller; 403 `enrollment_required` for a session that may only
/// set up two-step verification; otherwise 401.
pub(crate) async fn signed_in(state: &AppState, jar: &CookieJar) -> Result<SessionInfo, ApiError> {
    match current_session(state, jar).await? {
        Some(s) if s.session.stage == SessionStage::Authenticated => Ok(s),
        Some(s) if s.session.stage == SessionStage::Enrollment => Err(enrollment_required()),
        _ => Err(Error::Unauthenticated.into()),
    }
}

/// Like [`signed_in`], but also lets an enrolment-only session through: for `GET /me`
/// and setting up an authenticator app.
pub(crate) async fn signed_in_or_enrolling(
    state: &AppState,
    jar: &CookieJar,
) -> Result<SessionInfo, ApiError> {
    match current_session(state, jar).await? {
        Some(s)
            if matches!(
                s.session.stage,
                SessionStage::Authenticated | SessionStage::Enrollment
            ) =>
        {
            Ok(s)
        }
        _ => Err(Error::Unauthenticated.into()),
    }
}

fn enrollment_required() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "enrollment_required",
        "two-step verification must be set up first",
    )
}
