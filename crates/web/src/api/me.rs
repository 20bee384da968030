//! `GET /me` and the factor endpoints.

use super::{signed_in, signed_in_or_enrolling, ApiJson};
use crate::error::ApiError;
use crate::extract::{session_token, set_session, Ctx};
use crate::qr;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use serde_json::{json, Value};
use tweestap_domain::device::RememberedDevice;
use tweestap_domain::factor::{Factor, FactorId};
use tweestap_domain::policy::Requirement;
use tweestap_domain::service::TotpEnrollment;
use tweestap_domain::session::SessionStage;
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

fn device_json(d: &RememberedDevice) -> Value {
    json!({
        "id": d.id.to_string(),
        "label": d.label,
        "created_at": d.created_at.to_rfc3339(),
        "last_used_at": d.last_used_at.to_rfc3339(),
        "expires_at": d.expires_at.to_rfc3339(),
    })
}

fn parse_id(raw: &str) -> Result<FactorId, ApiError> {
    Uuid::parse_str(raw)
        .map(FactorId)
        .map_err(|_| Error::NotFound.into())
}

pub async fn me(State(state): State<AppState>, jar: CookieJar) -> Result<Json<Value>, ApiError> {
    let info = signed_in_or_enrolling(&state, &jar).await?;
    let factors = state.app.active_factors(info.account.id).await?;
    let a = &info.account;
    let requirement = state.app.requirement(a);
    let required_from = match requirement {
        Requirement::Optional { required_from, .. } => required_from,
        _ => None,
    };
    Ok(Json(json!({
        "email": a.email.as_str(),
        "name": a.name,
        "role": a.role.as_str(),
        "factors": factors.iter().map(factor_json).collect::<Vec<_>>(),
        "recovery_codes_left": state.app.recovery_codes_left(a.id).await?,
        "remembered_devices": state.app.devices(a.id).await?.iter().map(device_json).collect::<Vec<_>>(),
        "two_factor": {
            "required": requirement.is_required(),
            "required_from": required_from.map(|d| d.format("%Y-%m-%d").to_string()),
        },
    })))
}

#[derive(Deserialize)]
pub struct PasswordBody {
    password: String,
}

#[derive(Deserialize)]
pub struct BeginTotpBody {
    /// Required, except in a session that may only set up two-step verification
    /// (its password was just proven).
    password: Option<String>,
}

/// The set-up of an authenticator app, as JSON: what the QR page shows.
pub(crate) fn enrollment_json(e: &TotpEnrollment) -> Result<Json<Value>, ApiError> {
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
        "shared_mailbox": e.shared_mailbox,
    })))
}

pub async fn begin_totp(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<BeginTotpBody>,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in_or_enrolling(&state, &jar).await?;
    let e = if info.session.stage == SessionStage::Enrollment {
        state.app.begin_totp_in_enrollment(&info).await?
    } else {
        let password = b.password.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "missing field `password`",
            )
        })?;
        state
            .app
            .begin_totp(&info.account, &password, &ctx.req)
            .await?
    };
    enrollment_json(&e)
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
) -> Result<Response, ApiError> {
    let info = signed_in_or_enrolling(&state, &jar).await?;
    let id = parse_id(&id)?;
    let codes = match state
        .app
        .confirm_totp(&info.account, id, &b.code, &ctx.req)
        .await
    {
        Ok(codes) => codes,
        // A wrong code while setting up is a bad request, not a failed sign-in.
        Err(Error::InvalidCode) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_code",
                "the code is wrong",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let factors = state.app.active_factors(info.account.id).await?;
    let f = factors.iter().find(|f| f.id == id).ok_or(Error::NotFound)?;
    let mut body = factor_json(f);
    // With the first factor: the recovery codes, in this answer only.
    if let Some(codes) = codes {
        body["recovery_codes"] = json!(codes);
    }
    let body = Json(body);
    // An enrolment-only session becomes a full one, under a new id.
    if let Some(token) = session_token(&jar) {
        if let Some(new) = state.app.finish_enrollment(&token, &ctx.req).await? {
            let jar = set_session(jar, &new, state.settings.secure_cookies);
            return Ok((jar, body).into_response());
        }
    }
    Ok(body.into_response())
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

/// `POST /me/recovery-codes`: new codes after the password; the old ones die.
pub async fn new_recovery_codes(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<PasswordBody>,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let codes = state
        .app
        .new_recovery_codes(&info.account, &b.password, &ctx.req)
        .await?;
    Ok(Json(json!({ "recovery_codes": codes })))
}

pub async fn devices(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Json<Value>, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let devices = state.app.devices(info.account.id).await?;
    Ok(Json(
        json!({ "devices": devices.iter().map(device_json).collect::<Vec<_>>() }),
    ))
}

pub async fn forget_device(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let info = signed_in(&state, &jar).await?;
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::from(Error::NotFound))?;
    state.app.forget_device(&info.account, id, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn forget_devices(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
) -> Result<StatusCode, ApiError> {
    let info = signed_in(&state, &jar).await?;
    state.app.forget_devices(&info.account, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct BeginSmsBody {
    phone: String,
    /// Required, except in a session that may only set up two-step verification.
    password: Option<String>,
}

/// `POST /me/factors/sms`: a phone number; a code is sent to it.
pub async fn begin_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<BeginSmsBody>,
) -> Result<Json<Value>, ApiError> {
    signed_in_or_enrolling(&state, &jar).await?;
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let s = state
        .app
        .begin_sms(&token, &b.phone, b.password.as_deref(), &ctx.req)
        .await?;
    Ok(Json(json!({
        "id": s.factor_id.to_string(),
        "state": "code_sent",
        "to": s.to_masked,
        "shared_mailbox": s.shared_mailbox,
    })))
}

/// `POST /me/factors/sms/{id}/resend`.
pub async fn resend_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    ApiJson(_): ApiJson<super::enroll::Empty>,
) -> Result<Json<Value>, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let to = state
        .app
        .resend_setup_sms(&token, parse_id(&id)?, &ctx.req)
        .await?;
    Ok(Json(json!({ "state": "code_sent", "to": to })))
}

/// `POST /me/factors/sms/{id}/confirm`: the code sent to the phone.
pub async fn confirm_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<Response, ApiError> {
    let info = signed_in_or_enrolling(&state, &jar).await?;
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let id = parse_id(&id)?;
    let codes = match state.app.confirm_sms(&token, id, &b.code, &ctx.req).await {
        Ok(codes) => codes,
        Err(Error::InvalidCode) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_code",
                "the code is wrong",
            ));
        }
        Err(e) => return Err(e.into()),
    };
    let factors = state.app.active_factors(info.account.id).await?;
    let f = factors.iter().find(|f| f.id == id).ok_or(Error::NotFound)?;
    let mut body = factor_json(f);
    if let Some(codes) = codes {
        body["recovery_codes"] = json!(codes);
    }
    let body = Json(body);
    if let Some(new) = state.app.finish_enrollment(&token, &ctx.req).await? {
        let jar = set_session(jar, &new, state.settings.secure_cookies);
        return Ok((jar, body).into_response());
    }
    Ok(body.into_response())
}
