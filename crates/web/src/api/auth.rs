//! `POST /login`, `/login/second-factor`, `/logout`.

use super::ApiJson;
use crate::error::ApiError;
use crate::extract::{clear_session, session_token, set_session, Ctx};
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
    // A new sign-in replaces whatever session this browser had.
    if let Some(old) = session_token(&jar) {
        state.app.discard_session(&old).await?;
    }
    let secure = state.settings.secure_cookies;
    Ok(
        match state.app.login(&b.email, &b.password, &ctx.req).await? {
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
}

pub async fn second_factor(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<SecondFactorBody>,
) -> Result<Response, ApiError> {
    if b.method != "totp" {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "unsupported_method",
            "method must be \"totp\"",
        ));
    }
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let new = state
        .app
        .verify_second_factor(&token, &b.code, &ctx.req)
        .await?;
    Ok((
        set_session(jar, &new, state.settings.secure_cookies),
        Json(json!({ "state": "authenticated" })),
    )
        .into_response())
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
