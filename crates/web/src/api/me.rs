//! `GET /me` and the factor and device endpoints.

use super::bodies::{
    CodeBody, ConfirmedFactor, FactorView, PasswordBody, Role, SmsSent, TotpSetup,
};
use super::enroll::wrong_code;
use super::json::{ApiJson, CallerJson, Empty};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{session_token, set_session, Ctx};
use crate::gate::{Enrolling, SignedIn};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::device::RememberedDevice;
use tweestap_domain::factor::FactorId;
use tweestap_domain::policy::Requirement;
use tweestap_domain::service::SessionInfo;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;
use utoipa::ToSchema;
use uuid::Uuid;

/// A browser that skips the code step.
#[derive(Serialize, ToSchema)]
pub struct DeviceView {
    #[schema(format = Uuid)]
    id: String,
    /// Browser and system, from the User-Agent.
    label: String,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    last_used_at: String,
    #[schema(format = DateTime)]
    expires_at: String,
}

impl From<&RememberedDevice> for DeviceView {
    fn from(d: &RememberedDevice) -> Self {
        Self {
            id: d.id.to_string(),
            label: d.label.clone(),
            created_at: d.created_at.to_rfc3339(),
            last_used_at: d.last_used_at.to_rfc3339(),
            expires_at: d.expires_at.to_rfc3339(),
        }
    }
}

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
    Enrolling(info, _): Enrolling,
) -> Result<Json<Me>, ApiError> {
    let a = &info.account;
    let factors = state.app.active_factors(a.id).await?;
    let requirement = state.app.requirement(a);
    let required_from = match requirement {
        Requirement::Optional { required_from, .. } => required_from,
        _ => None,
    };
    Ok(Json(Me {
        email: a.email.as_str().to_owned(),
        name: a.name.clone(),
        role: a.role.into(),
        factors: factors.iter().map(FactorView::from).collect(),
        recovery_codes_left: state.app.recovery_codes_left(a.id).await?,
        remembered_devices: state
            .app
            .devices(a.id)
            .await?
            .iter()
            .map(DeviceView::from)
            .collect(),
        two_factor: TwoFactorPolicy {
            required: requirement.is_required(),
            required_from: required_from.map(|d| d.format("%Y-%m-%d").to_string()),
        },
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct BeginTotpBody {
    /// The account password; required except in a session that may only set up
    /// two-step verification (its password was just proven).
    password: Option<String>,
}

/// Start setting up an authenticator app
///
/// After confirming the account password, creates a new TOTP secret (SHA1, 6
/// digits, 30 s) as a factor that becomes active only once a code from it is
/// confirmed with `POST /me/factors/totp/{id}/confirm`. Any earlier unconfirmed
/// factor of the account is discarded. In a session that may only set up two-step
/// verification the password is not asked again.
#[utoipa::path(
    post, path = "/me/factors/totp", tag = "account", operation_id = "beginTotp",
    request_body = BeginTotpBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The new, still unconfirmed factor.", body = TotpSetup),
        (status = 400, description = "`invalid_request`: `password` is missing.", body = ErrorBody),
        (status = 403, description = "`invalid_password`: the password confirmation was wrong.", body = ErrorBody),
        (status = 409, description = "`shared_mailbox`: the policy refuses set-up on shared addresses.", body = ErrorBody),
    ),
)]
pub async fn begin_totp(
    State(state): State<AppState>,
    ctx: Ctx,
    CallerJson(Enrolling(info, _), b): CallerJson<Enrolling, BeginTotpBody>,
) -> Result<Json<TotpSetup>, ApiError> {
    let e = if info.session.stage == SessionStage::Enrollment {
        state.app.begin_totp_in_enrollment(&info).await?
    } else {
        let password = b.password.ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::InvalidRequest,
                "missing field `password`",
            )
        })?;
        state
            .app
            .begin_totp(&info.account, &password, &ctx.req)
            .await?
    };
    Ok(Json(TotpSetup::new(&e)?))
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

/// Confirm an authenticator app with a code from it
///
/// Activates the factor started with `POST /me/factors/totp`. Spaces and dashes in
/// the code are ignored; the confirming code cannot be used again to sign in. A
/// wrong code is a 400 here (it is not a failed sign-in). With the account's first
/// factor the answer carries `recovery_codes` (shown this once).
#[utoipa::path(
    post, path = "/me/factors/totp/{id}/confirm", tag = "account", operation_id = "confirmTotp",
    params(("id" = String, Path, description = "The factor's id (a UUID); one that is not gives 404 `not_found`.")),
    request_body = CodeBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The factor, now active.", body = ConfirmedFactor),
        (status = 400, description = "`invalid_code`: the code is wrong.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such unconfirmed factor of this account.", body = ErrorBody),
    ),
)]
pub async fn confirm_totp(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    CallerJson(Enrolling(info, _), b): CallerJson<Enrolling, CodeBody>,
) -> Result<(CookieJar, Json<ConfirmedFactor>), ApiError> {
    let id = parse_id(&id)?;
    let confirming = state.app.confirm_totp(&info.account, id, &b.code, &ctx.req);
    let codes = set_up_code(confirming.await)?;
    confirmed(&state, &ctx, jar, &info, id, codes).await
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

/// The remembered devices.
#[derive(Serialize, ToSchema)]
pub struct DeviceList {
    devices: Vec<DeviceView>,
}

/// Remembered devices
#[utoipa::path(
    get, path = "/me/devices", tag = "account", operation_id = "devices",
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "Browsers that skip the code step.", body = DeviceList),
        (status = 403, description = "`enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
    ),
)]
pub async fn devices(
    State(state): State<AppState>,
    SignedIn(info, _): SignedIn,
) -> Result<Json<DeviceList>, ApiError> {
    let devices = state.app.devices(info.account.id).await?;
    Ok(Json(DeviceList {
        devices: devices.iter().map(DeviceView::from).collect(),
    }))
}

/// Forget one remembered device
#[utoipa::path(
    delete, path = "/me/devices/{id}", tag = "account", operation_id = "forgetDevice",
    params(("id" = String, Path, description = "The device's id (a UUID).")),
    security(("sessionCookie" = [])),
    responses(
        (status = 204, description = "Forgotten."),
        (status = 403, description = "`enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such device of this account.", body = ErrorBody),
    ),
)]
pub async fn forget_device(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::from(Error::NotFound))?;
    state.app.forget_device(&info.account, id, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Forget every remembered device
#[utoipa::path(
    delete, path = "/me/devices", tag = "account", operation_id = "forgetDevices",
    security(("sessionCookie" = [])),
    responses(
        (status = 204, description = "Forgotten."),
        (status = 403, description = "`enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
    ),
)]
pub async fn forget_devices(
    State(state): State<AppState>,
    ctx: Ctx,
    SignedIn(info, _): SignedIn,
) -> Result<StatusCode, ApiError> {
    state.app.forget_devices(&info.account, &ctx.req).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
pub struct BeginSmsBody {
    /// As typed; read in `[sms] default_region` when it has no country code.
    phone: String,
    /// Required, except in a session that may only set up two-step verification.
    password: Option<String>,
}

/// A phone being set up; a code was sent to it.
#[derive(Serialize, ToSchema)]
pub struct SmsSetup {
    #[schema(format = Uuid)]
    id: String,
    #[serde(flatten)]
    sent: SmsSent,
    shared_mailbox: bool,
}

/// Start setting up a phone for SMS codes
///
/// Validates the number (mobile only, E.164, allowed country) and sends a code to
/// it; the factor becomes active with `POST /me/factors/sms/{id}/confirm`.
#[utoipa::path(
    post, path = "/me/factors/sms", tag = "account", operation_id = "beginSms",
    request_body = BeginSmsBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The code was sent.", body = SmsSetup),
        (status = 400, description = "`phone_not_a_number`, `phone_too_short`, `phone_too_long`, `phone_unknown_country`, `phone_invalid`, `phone_not_mobile`, `phone_extension`, `phone_unknown_region`: the number cannot receive SMS; `sms_country_not_allowed`.", body = ErrorBody),
        (status = 403, description = "`invalid_password`: the password confirmation was wrong.", body = ErrorBody),
        (status = 409, description = "`shared_mailbox`: the policy refuses set-up on shared addresses.", body = ErrorBody),
        (status = 429, description = "`sms_rate_limited`, or `sms_unavailable` (the installation's hourly budget is spent).", body = ErrorBody),
        (status = 502, description = "`sms_unavailable`: the SMS gateway failed.", body = ErrorBody),
    ),
)]
pub async fn begin_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    CallerJson(Enrolling(_, _), b): CallerJson<Enrolling, BeginSmsBody>,
) -> Result<Json<SmsSetup>, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let s = state
        .app
        .begin_sms(&token, &b.phone, b.password.as_deref(), &ctx.req)
        .await?;
    Ok(Json(SmsSetup {
        id: s.factor_id.to_string(),
        sent: SmsSent::CodeSent { to: s.to_masked },
        shared_mailbox: s.shared_mailbox,
    }))
}

/// Send the set-up code again
#[utoipa::path(
    post, path = "/me/factors/sms/{id}/resend", tag = "account", operation_id = "resendSetupSms",
    params(("id" = String, Path, description = "The factor's id (a UUID).")),
    request_body = Empty,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "Sent.", body = SmsSent),
        (status = 401, description = "`unauthenticated`: no session that may set up a factor.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such phone being set up.", body = ErrorBody),
        (status = 429, description = "`too_many_requests`, `sms_rate_limited` or `sms_unavailable`.", body = ErrorBody),
        (status = 502, description = "`sms_unavailable`: the SMS gateway failed.", body = ErrorBody),
    ),
)]
pub async fn resend_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    ApiJson(_): ApiJson<Empty>,
) -> Result<Json<SmsSent>, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let to = state
        .app
        .resend_setup_sms(&token, parse_id(&id)?, &ctx.req)
        .await?;
    Ok(Json(SmsSent::CodeSent { to }))
}

/// Confirm a phone with the code sent to it
///
/// With the account's first factor the answer carries `recovery_codes` (shown this
/// once).
#[utoipa::path(
    post, path = "/me/factors/sms/{id}/confirm", tag = "account", operation_id = "confirmSms",
    params(("id" = String, Path, description = "The factor's id (a UUID).")),
    request_body = CodeBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The active factor.", body = ConfirmedFactor),
        (status = 400, description = "`invalid_code`: the code is wrong.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such phone being set up.", body = ErrorBody),
    ),
)]
pub async fn confirm_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    CallerJson(Enrolling(info, _), b): CallerJson<Enrolling, CodeBody>,
) -> Result<(CookieJar, Json<ConfirmedFactor>), ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let id = parse_id(&id)?;
    let codes = set_up_code(state.app.confirm_sms(&token, id, &b.code, &ctx.req).await)?;
    confirmed(&state, &ctx, jar, &info, id, codes).await
}
