//! The set-up journeys over JSON: "secure your account now" (`/secure`, a mailed
//! code) and the mailed link to the personal QR page (`/me/enrollment-link`,
//! `/enrollment-links/{token}`).

use super::me::enrollment_json;
use super::{signed_in, ApiJson};
use crate::error::ApiError;
use crate::extract::{current_session, discard_current_session, session_token, set_session, Ctx};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::{json, Value};
use tweestap_domain::service::SecureStart;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;

#[derive(Deserialize)]
pub struct SecureBody {
    email: String,
    password: String,
}

/// `POST /secure`: e-mail and password; a code is mailed (or, with two-step
/// verification already on, the code from the app is next).
pub async fn secure(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<SecureBody>,
) -> Result<Response, ApiError> {
    discard_current_session(&state, &jar).await?;
    let secure = state.settings.secure_cookies;
    Ok(
        match state
            .app
            .secure_account_start(&b.email, &b.password, &ctx.req)
            .await?
        {
            SecureStart::CodeSent(t) => (
                set_session(jar, &t, secure),
                Json(json!({ "state": "email_code_sent" })),
            )
                .into_response(),
            SecureStart::SecondFactor { token, methods } => {
                let methods: Vec<&str> = methods.iter().map(|m| m.as_str()).collect();
                (
                    set_session(jar, &token, secure),
                    Json(json!({ "state": "second_factor", "methods": methods })),
                )
                    .into_response()
            }
        },
    )
}

#[derive(Deserialize)]
pub struct CodeBody {
    code: String,
}

/// `POST /secure/code`: the mailed code; the session may then set up a factor.
pub async fn secure_code(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<Response, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let new = match state.app.verify_email_code(&token, &b.code, &ctx.req).await {
        Ok(t) => t,
        Err(Error::InvalidCode) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_code",
                "the code is wrong",
            ))
        }
        Err(e) => return Err(e.into()),
    };
    Ok((
        set_session(jar, &new, state.settings.secure_cookies),
        Json(json!({ "state": "enrollment_required" })),
    )
        .into_response())
}

/// An empty JSON object: the body of actions without input (JSON keeps CSRF out).
#[derive(Deserialize)]
pub struct Empty {}

/// `POST /secure/code/resend`.
pub async fn secure_resend(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(_): ApiJson<Empty>,
) -> Result<Json<Value>, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    state.app.resend_email_code(&token, &ctx.req).await?;
    Ok(Json(json!({ "state": "email_code_sent" })))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    password: String,
}

/// `POST /me/enrollment-link`: mails the link to the personal QR page.
pub async fn request_link(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<Response, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let base = crate::pages::base_url(&state);
    let expires = state
        .app
        .request_enrollment_link(&info.account, &b.password, &base, &ctx.req)
        .await?;
    let body = json!({ "state": "link_sent", "expires_at": expires.to_rfc3339() });
    Ok((StatusCode::ACCEPTED, Json(body)).into_response())
}

/// `GET /enrollment-links/{token}`: whether the link can be used, and whether the
/// password is needed (it is, without a session of the link's account).
pub async fn link_state(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = state.app.enrollment_link_account(&token, &ctx.req).await?;
    let same = current_session(&state, &jar).await?.is_some_and(|s| {
        s.account.id == account.id
            && matches!(
                s.session.stage,
                SessionStage::Authenticated | SessionStage::Enrollment
            )
    });
    Ok(Json(json!({
        "state": "open",
        "email": account.email.as_str(),
        "password_required": !same,
    })))
}

#[derive(Deserialize)]
pub struct OpenBody {
    password: Option<String>,
}

/// `POST /enrollment-links/{token}`: uses the link and starts the set-up of an
/// authenticator app (answer as `POST /me/factors/totp`); confirm with
/// `POST /me/factors/totp/{id}/confirm`.
pub async fn open_link(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(token): Path<String>,
    ApiJson(b): ApiJson<OpenBody>,
) -> Result<Response, ApiError> {
    let current = current_session(&state, &jar).await?;
    let opened = state
        .app
        .open_enrollment_link(&token, b.password.as_deref(), current.as_ref(), &ctx.req)
        .await?;
    let body = enrollment_json(&opened.enrollment)?;
    Ok(match &opened.session {
        Some(t) => (set_session(jar, t, state.settings.secure_cookies), body).into_response(),
        None => body.into_response(),
    })
}
