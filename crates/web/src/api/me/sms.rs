//! Setting up a mobile number for SMS codes: `POST /me/factors/sms`, resend, confirm.

use super::{confirmed, parse_id, set_up_code};
use crate::api::bodies::{CodeBody, ConfirmedFactor, SmsSent};
use crate::api::json::{ApiJson, CallerJson, Empty};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{session_token, Ctx};
use crate::gate::Enrolling;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::Error;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct BeginSmsBody {
    /// As typed; read in `[sms] default_region` when it has no country code.
    phone: String,
    /// Required, except in a session that may only set up two-step verification.
    #[schema(value_type = Option<String>)]
    password: Option<zeroize::Zeroizing<String>>,
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

impl SmsSetup {
    pub(crate) fn new(s: &tweestap_domain::service::SmsSetup) -> Self {
        Self {
            id: s.factor_id.to_string(),
            sent: SmsSent::CodeSent {
                to: s.to_masked.clone(),
            },
            shared_mailbox: s.shared_mailbox,
        }
    }
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
        (status = 429, description = "`too_many_attempts`: too many wrong passwords; wait `retry_after` seconds. `sms_rate_limited`, or `sms_unavailable` (the installation's hourly budget is spent).", body = ErrorBody),
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
        .begin_sms(
            &token,
            &b.phone,
            b.password.as_deref().map(String::as_str),
            &ctx.req,
        )
        .await?;
    Ok(Json(SmsSetup::new(&s)))
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
