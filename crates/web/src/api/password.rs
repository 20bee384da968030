//! `POST /password/forgot`, `/password/reset`.

use super::json::ApiJson;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{clear_session, Ctx};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct ForgotBody {
    /// The e-mail address of the account.
    email: String,
}

/// Sent, if the address has an account.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SentIfExists {
    SentIfExists,
}

/// Ask for a link to choose a new password
///
/// When the address names an account, a mail with a single-use link
/// `<public_url>/password/reset/<token>` is queued (valid one hour; a new request
/// ends older links). At most 3 such mails per account per hour; further requests
/// are audited but send nothing. The answer is always the same 202, whether or not
/// the address has an account, is valid, or was rate-limited, and comes as fast:
/// the request is handled after the answer (202 Accepted: a server that crashes in
/// the moment after answering may lose it; then no mail comes and the person asks
/// again).
#[utoipa::path(
    post, path = "/password/forgot", tag = "password", operation_id = "forgotPassword",
    request_body = ForgotBody,
    responses(
        (status = 202, description = "Accepted; a mail was sent if the address has an account.", body = SentIfExists),
    ),
)]
pub async fn forgot(
    State(state): State<AppState>,
    ctx: Ctx,
    ApiJson(b): ApiJson<ForgotBody>,
) -> Result<(StatusCode, Json<SentIfExists>), ApiError> {
    // Answered at once, whether or not the address has an account: the request
    // runs after the answer, so its time tells nothing either.
    state
        .app
        .request_password_reset_later(&b.email, &state.base_url(), &ctx.req);
    Ok((StatusCode::ACCEPTED, Json(SentIfExists::SentIfExists)))
}

#[derive(Deserialize, ToSchema)]
pub struct ResetBody {
    /// The last path segment of the link in the reset mail (43 characters, base64url).
    #[schema(value_type = String)]
    token: zeroize::Zeroizing<String>,
    /// The new password: 8 to 256 characters, not common, not containing the e-mail
    /// address or the product name.
    #[schema(value_type = String)]
    password: zeroize::Zeroizing<String>,
}

/// The password was changed.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum PasswordChanged {
    PasswordChanged,
}

/// Choose a new password with the token from a reset mail
///
/// Sets the new password and uses the link (once). Every session of the account
/// ends (also the caller's cookie is cleared), other open links end, and a notice is
/// mailed. A password that breaks the rules leaves the link usable.
#[utoipa::path(
    post, path = "/password/reset", tag = "password", operation_id = "resetPassword",
    request_body = ResetBody,
    responses(
        (status = 200, description = "The password was changed.", body = PasswordChanged),
        (status = 400, description = "`invalid_token`: unknown, expired or used link; `password_too_short`, `password_too_long`, `password_too_common`, `password_context_specific`: the password breaks a rule.", body = ErrorBody),
    ),
)]
pub async fn reset(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<ResetBody>,
) -> Result<(CookieJar, Json<PasswordChanged>), ApiError> {
    state
        .app
        .complete_password_reset(&b.token, &b.password, &ctx.req)
        .await?;
    Ok((clear_session(jar), Json(PasswordChanged::PasswordChanged)))
}
