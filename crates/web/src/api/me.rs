//! `GET /me`, removing a factor and new recovery codes; setting up an app or a
//! phone and the remembered browsers have their own modules.

pub(super) mod app;
pub(super) mod devices;
pub(super) mod passkey;
pub(super) mod sms;

use super::bodies::{ConfirmedFactor, FactorView, PasswordBody, Role};
use super::enroll::wrong_code;
use super::json::CallerJson;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{session_token, set_session, Ctx};
use crate::gate::{EnrollingWithSteps, SignedIn};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Serialize;
use tweestap_domain::factor::FactorId;
use tweestap_domain::policy::Requirement;
use tweestap_domain::service::SessionInfo;
use tweestap_domain::Error;
use utoipa::ToSchema;
use uuid::Uuid;

use devices::DeviceView;

fn parse_id(raw: &str) -> Result<FactorId, ApiError> {
    Uuid::parse_str(raw)
        .map(FactorId)
        .map_err(|_| Error::NotFound.into())
}

/// Whether the policy requires two-step verification for this account, and from when.
#[derive(Serialize, ToSchema)]
pub struct TwoFactorPolicy {
    required: bool,
    /// `YYYY-MM-DD`.
    #[schema(format = Date)]
    required_from: Option<String>,
}

/// The signed-in account.
#[derive(Serialize, ToSchema)]
pub struct Me {
    #[schema(format = Email, examples("an@example.com"))]
    email: String,
    #[schema(examples("An Peeters"))]
    name: String,
    role: Role,
    /// The active (confirmed) second factors.
    factors: Vec<FactorView>,
    recovery_codes_left: u32,
    remembered_devices: Vec<DeviceView>,
    two_factor: TwoFactorPolicy,
}

/// The signed-in account and its active second factors
///
/// Factors still being set up (not yet confirmed) are not listed. Also answers in
/// a session that may only set up two-step verification.
#[utoipa::path(
    get, path = "/me", tag = "account", operation_id = "getMe",
    security(("sessionCookie" = [])),
    responses((status = 200, description = "The account.", body = Me)),
)]
pub async fn me(
    State(state): State<AppState>,
    EnrollingWithSteps(info, steps, _): EnrollingWithSteps,
) -> Result<Json<Me>, ApiError> {
    let a = &info.account;
    let requirement = state.app.requirement(a);
    let required_from = match requirement {
        Requirement::Optional { required_from, .. } => required_from,
        _ => None,
    };
    Ok(Json(Me {
        email: a.email.as_str().to_owned(),
        name: a.name.clone(),
        role: a.role.into(),
        factors: steps.factors.iter().map(FactorView::from).collect(),
        recovery_codes_left: steps.recovery_codes_left,
        remembered_devices: steps.devices.iter().map(DeviceView::from).collect(),
        two_factor: TwoFactorPolicy {
            required: requirement.is_required(),
            required_from: required_from.map(|d| d.format("%Y-%m-%d").to_string()),
        },
    }))
}

/// A wrong code while setting up a factor is a 400 (not a failed sign-in).
fn set_up_code<T>(confirmed: Result<T, Error>) -> Result<T, ApiError> {
    confirmed.map_err(|e| match e {
        Error::InvalidCode => wrong_code(),
        e => e.into(),
    })
}

/// The answer to a confirmed factor; an enrolment-only session becomes a full one,
/// under a new id.
async fn confirmed(
    state: &AppState,
    ctx: &Ctx,
    jar: CookieJar,
    info: &SessionInfo,
    id: FactorId,
    recovery_codes: Option<Vec<String>>,
) -> Result<(CookieJar, Json<ConfirmedFactor>), ApiError> {
    let factors = state.app.active_factors(info.account.id).await?;
    let f = factors.iter().find(|f| f.id == id).ok_or(Error::NotFound)?;
    let body = Json(ConfirmedFactor {
        factor: f.into(),
        recovery_codes,
    });
    if let Some(token) = session_token(&jar) {
        if let Some(new) = state.app.finish_enrollment(&token, &ctx.req).await? {
            return Ok((set_session(jar, &new, state.settings.secure_cookies), body));
        }
    }
    Ok((jar, body))
}

/// Remove a second factor
///
/// Removes a factor (active or still being set up) of the signed-in account, after
/// confirming the account password. The password goes in a JSON request body, so
/// the request must have `Content-Type: application/json`. Checks, in order: the
/// body; the session (401); `id` must be a UUID (404); the password (403
/// `invalid_password`); the factor must belong to the account (404); it must not be
/// the last one while two-step verification is required (409).
#[utoipa::path(
    delete, path = "/me/factors/{id}", tag = "account", operation_id = "removeFactor",
    params(("id" = String, Path, description = "The factor's id (a UUID); one that is not gives 404 `not_found`.")),
    request_body = PasswordBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 204, description = "The factor was removed. No body."),
        (status = 403, description = "`invalid_password`: the password confirmation was wrong; `enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong passwords (the sign-in's password lock-out); wait `retry_after` seconds.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such factor of this account.", body = ErrorBody),
        (status = 409, description = "`last_factor_required`: the last factor cannot be removed while two-step verification is required.", body = ErrorBody),
    ),
)]
pub async fn remove_factor(
    State(state): State<AppState>,
    ctx: Ctx,
    Path(id): Path<String>,
    CallerJson(SignedIn(info, _), b): CallerJson<SignedIn, PasswordBody>,
) -> Result<StatusCode, ApiError> {
    state
        .app
        .remove_factor(&info.account, parse_id(&id)?, &b.password, &ctx.req)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ten new single-use recovery codes.
#[derive(Serialize, ToSchema)]
pub struct RecoveryCodes {
    #[schema(min_items = 10, max_items = 10)]
    recovery_codes: Vec<String>,
}

/// Make new recovery codes
///
/// After the password: ten new single-use codes; the old ones stop working. Only
/// their HMACs are stored.
#[utoipa::path(
    post, path = "/me/recovery-codes", tag = "account", operation_id = "newRecoveryCodes",
    request_body = PasswordBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The new codes, shown this once.", body = RecoveryCodes),
        (status = 403, description = "`invalid_password`: the password confirmation was wrong; `enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong passwords (the sign-in's password lock-out); wait `retry_after` seconds.", body = ErrorBody),
        (status = 404, description = "`not_found`: the account has no second factor.", body = ErrorBody),
    ),
)]
pub async fn new_recovery_codes(
    State(state): State<AppState>,
    ctx: Ctx,
    CallerJson(SignedIn(info, _), b): CallerJson<SignedIn, PasswordBody>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let recovery_codes = state
        .app
        .new_recovery_codes(&info.account, &b.password, &ctx.req)
        .await?;
    Ok(Json(RecoveryCodes { recovery_codes }))
}
