//! `POST /login`, `/login/second-factor`, `/logout`.

use super::ApiJson;
use crate::error::ApiError;
use crate::extract::{
    clear_session, device_token, discard_current_session, session_token, set_device, set_session,
    Ctx,
};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;
use tweestap_domain::service::LoginOutcome;
use tweestap_domain::Error;

#[derive(Deserialize)]
pub struct LoginBody {
    email: String,
    password: String,
}

pub async fn login(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<Response, ApiError> {
    discard_current_session(&state, &jar).await?;
    let secure = state.settings.secure_cookies;
    Ok(
        match state
            .app
            .login_from(
                &b.email,
                &b.password,
                device_token(&jar).as_deref(),
                &ctx.req,
            )
            .await?
        {
            LoginOutcome::Authenticated(t) => (
                set_session(jar, &t, secure),
                Json(json!({ "state": "authenticated" })),
            )
                .into_response(),
            LoginOutcome::EnrollmentRequired(t) => (
                set_session(jar, &t, secure),
                Json(json!({ "state": "enrollment_required" })),
            )
                .into_response(),
            LoginOutcome::SecondFactor { token, methods } => {
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
pub struct SecondFactorBody {
    method: String,
    code: String,
    /// Skip the code step on this browser for a while (a device cookie).
    #[serde(default)]
    remember_device: bool,
}

pub async fn second_factor(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<SecondFactorBody>,
) -> Result<Response, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let new = match b.method.as_str() {
        // The SMS code is checked like the app's: against the live code of this sign-in.
        "totp" | "sms" => {
            state
                .app
                .verify_second_factor(&token, &b.code, &ctx.req)
                .await?
        }
        "recovery_code" => {
            state
                .app
                .verify_recovery_code(&token, &b.code, &ctx.req)
                .await?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "unsupported_method",
                "method must be \"totp\", \"sms\" or \"recovery_code\"",
            ))
        }
    };
    let secure = state.settings.secure_cookies;
    let mut jar = set_session(jar, &new, secure);
    if b.remember_device {
        let device = state.app.remember_device(&new, &ctx.req).await?;
        let days = state.app.settings().remember_device.num_days().max(1);
        jar = set_device(jar, &device, secure, days);
    }
    Ok((jar, Json(json!({ "state": "authenticated" }))).into_response())
}

pub async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
) -> Result<Response, ApiError> {
    if let Some(t) = session_token(&jar) {
        state.app.logout(&t, &ctx.req).await?;
    }
    Ok((clear_session(jar), Json(json!({ "state": "signed_out" }))).into_response())
}

/// `POST /login/sms`: "send me a code by SMS" at the code step.
pub async fn send_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(_): ApiJson<super::enroll::Empty>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let to = state.app.send_sign_in_sms(&token, &ctx.req).await?;
    Ok(Json(json!({ "state": "code_sent", "to": to })))
}
