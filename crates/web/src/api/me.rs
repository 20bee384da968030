//! `GET /me` and the factor endpoints.

use super::{signed_in, ApiJson};
use crate::error::ApiError;
use crate::extract::Ctx;
use crate::qr;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::{json, Value};
use tweestap_domain::factor::{Factor, FactorId};
use tweestap_domain::Error;
use uuid::Uuid;

fn factor_json(f: &Factor) -> Value {
    json!({
        "id": f.id.to_string(),
        "kind": f.kind.as_str(),
        "label": f.label,
        "created_at": f.created_at.to_rfc3339(),
        "last_used_at": f.last_used_at.map(|t| t.to_rfc3339()),
    })
}

fn parse_id(raw: &str) -> Result<FactorId, ApiError> {
    Uuid::parse_str(raw)
        .map(FactorId)
        .map_err(|_| Error::NotFound.into())
}

pub async fn me(State(state): State<AppState>, jar: CookieJar) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let factors = state.app.active_factors(info.account.id).await?;
    let a = &info.account;
    Ok(Json(json!({
        "email": a.email.as_str(),
        "name": a.name,
        "role": a.role.as_str(),
        "factors": factors.iter().map(factor_json).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    password: String,
}

pub async fn begin_totp(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let e = state
        .app
        .begin_totp(&info.account, &b.password, &ctx.req)
        .await?;
    let svg = qr::svg(&e.otpauth_uri).map_err(|err| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            err.to_string(),
        )
    })?;
    Ok(Json(json!({
        "id": e.factor_id.to_string(),
        "secret": e.secret_base32,
        "otpauth_uri": e.otpauth_uri,
        "qr_svg": svg,
    })))
}

#[derive(Deserialize)]
pub struct CodeBody {
    code: String,
}

pub async fn confirm_totp(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let id = parse_id(&id)?;
    match state
        .app
        .confirm_totp(&info.account, id, &b.code, &ctx.req)
        .await
    {
        Ok(()) => {}
        // A wrong code while setting up is a bad request, not a failed sign-in.
        Err(Error::InvalidCode) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_code",
                "the code is wrong",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    let factors = state.app.active_factors(info.account.id).await?;
    let f = factors.iter().find(|f| f.id == id).ok_or(Error::NotFound)?;
    Ok(Json(factor_json(f)))
}

pub async fn remove_factor(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    let info = signed_in(&state, &jar).await?;
    state
        .app
        .remove_factor(&info.account, parse_id(&id)?, &b.password, &ctx.req)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
