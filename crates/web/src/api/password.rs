//! `POST /password/forgot`, `/password/reset`.

use super::ApiJson;
use crate::error::ApiError;
use crate::extract::{clear_session, Ctx};
use crate::pages::base_url;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize)]
pub struct ForgotBody {
    email: String,
}

/// Always 202 with the same body: whether the address has an account is not told.
pub async fn forgot(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(b): ApiJson<ForgotBody>,
) -> Result<Response, ApiError> {
    let base = base_url(&state);
    state
        .app
        .request_password_reset(&b.email, &base, &ctx.req)
        .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "state": "sent_if_exists" })),
    )
        .into_response())
}

#[derive(Deserialize)]
pub struct ResetBody {
    token: String,
    password: String,
}

pub async fn reset(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<ResetBody>,
) -> Result<Response, ApiError> {
    state
        .app
        .complete_password_reset(&b.token, &b.password, &ctx.req)
        .await?;
    Ok((
        clear_session(jar),
        Json(json!({ "state": "password_changed" })),
    )
        .into_response())
}
