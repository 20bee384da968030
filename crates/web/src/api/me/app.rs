//! Setting up an authenticator app: `POST /me/factors/totp` and its confirmation.

use super::{confirmed, parse_id, set_up_code};
use crate::api::bodies::{CodeBody, ConfirmedFactor, TotpSetup};
use crate::api::json::CallerJson;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::Ctx;
use crate::gate::Enrolling;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Deserialize;
use tweestap_domain::session::SessionStage;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct BeginTotpBody {
    /// The account password; required except in a session that may only set up
    /// two-step verification (its password was just proven).
    #[schema(value_type = Option<String>)]
    password: Option<zeroize::Zeroizing<String>>,
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
        (status = 429, description = "`too_many_attempts`: too many wrong passwords (the sign-in's password lock-out); wait `retry_after` seconds.", body = ErrorBody),
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

/// Confirm an authenticator app with a code from it
///
/// Activates the factor started with `POST /me/factors/totp`. Spaces and dashes in
/// the code are ignored; the confirming code cannot be used again to sign in. A
/// wrong code is a 400 here (it is not a failed sign-in); five wrong codes lock this
/// set-up as the code step locks (a minute, doubling), with a count of its own. With
/// the account's first factor the answer carries `recovery_codes` (shown this once).
#[utoipa::path(
    post, path = "/me/factors/totp/{id}/confirm", tag = "account", operation_id = "confirmTotp",
    params(("id" = String, Path, description = "The factor's id (a UUID); one that is not gives 404 `not_found`.")),
    request_body = CodeBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The factor, now active.", body = ConfirmedFactor),
        (status = 400, description = "`invalid_code`: the code is wrong.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such unconfirmed factor of this account.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: five wrong codes for this set-up; wait `retry_after` seconds.", body = ErrorBody),
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
