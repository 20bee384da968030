//! `POST /login`, `/login/second-factor`, `/login/sms`, `/logout`.

use super::bodies::{second_factor_methods, SecondFactorMethod, SmsSent};
use super::json::{ApiJson, Empty};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{
    clear_session, device_token, discard_current_session, session_token, set_device, set_session,
    Ctx,
};
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::service::LoginOutcome;
use tweestap_domain::Error;
use utoipa::ToSchema;

/// E-mail address and password.
#[derive(Deserialize, ToSchema)]
pub struct LoginBody {
    /// The account's e-mail address.
    #[schema(examples("an@example.com"))]
    email: String,
    /// The account password.
    #[schema(examples("correct horse battery staple"))]
    #[schema(value_type = String)]
    password: zeroize::Zeroizing<String>,
}

/// The outcome of the password step.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LoginState {
    /// No second factor set up: signed in.
    Authenticated,
    /// Password accepted; a code is still needed via `POST /login/second-factor`.
    SecondFactor {
        /// Every method `POST /login/second-factor` accepts for this account:
        /// its kinds of factor, and `recovery_code` while it has unused codes.
        methods: Vec<SecondFactorMethod>,
    },
    /// Two-step verification is required and none is set up: the session may only
    /// set it up (`GET /me`, `POST /me/factors/totp`, `POST /me/factors/sms` and their
    /// confirms, `POST /logout`); everything else answers 403 `enrollment_required`.
    EnrollmentRequired,
}

/// Sign in with e-mail address and password
///
/// The password step. On success a session cookie is set. If the account has an
/// active second factor the session is half-finished (`state` is `second_factor`)
/// and `POST /login/second-factor` must follow; otherwise the caller is signed in.
/// An unknown e-mail address (or one that is not a valid address) and a wrong
/// password get the identical 401 `invalid_credentials` answer, after the same
/// password-hashing work.
#[utoipa::path(
    post, path = "/login", tag = "sign-in", operation_id = "login",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Password accepted; a session cookie is set.", body = LoginState,
         headers(("Set-Cookie" = String, description = "The session cookie `tweestap_session`."))),
        (status = 401, description = "`invalid_credentials`: wrong e-mail address or password (identical for an unknown address).", body = ErrorBody),
    ),
)]
pub async fn login(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<LoginBody>,
) -> Result<(CookieJar, Json<LoginState>), ApiError> {
    discard_current_session(&state, &jar).await?;
    let secure = state.settings.secure_cookies;
    let outcome = state
        .app
        .login_from(
            &b.email,
            &b.password,
            device_token(&jar).as_deref(),
            &ctx.req,
        )
        .await?;
    Ok(match outcome {
        LoginOutcome::Authenticated(t) => (
            set_session(jar, &t, secure),
            Json(LoginState::Authenticated),
        ),
        LoginOutcome::EnrollmentRequired(t) => (
            set_session(jar, &t, secure),
            Json(LoginState::EnrollmentRequired),
        ),
        LoginOutcome::SecondFactor {
            token,
            methods,
            recovery_codes_left,
        } => {
            let methods = second_factor_methods(&methods, recovery_codes_left);
            (
                set_session(jar, &token, secure),
                Json(LoginState::SecondFactor { methods }),
            )
        }
    })
}

/// The code of the second step.
#[derive(Deserialize, ToSchema)]
pub struct SecondFactorBody {
    /// `totp`: the app's code; `sms`: the code sent by `POST /login/sms`;
    /// `recovery_code`: one of the ten recovery codes (used once; a notice is mailed).
    #[schema(value_type = SecondFactorMethod)]
    method: String,
    /// The code; spaces and dashes are ignored.
    #[schema(examples("123456", "123 456"))]
    #[schema(value_type = String)]
    code: zeroize::Zeroizing<String>,
    /// Skip the code step on this browser for a while (the `tweestap_device` cookie).
    #[serde(default)]
    remember_device: bool,
}

/// Signed in.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Authenticated {
    Authenticated,
}

/// Finish signing in with a code
///
/// The code step, on the half-finished session set by `POST /login`. Spaces and
/// dashes in the code are ignored. A code is accepted once only. On success the
/// half-finished session is deleted and a new, authenticated session cookie is set.
///
/// Checks, in order: the body; `method` must be one of `totp`, `sms`,
/// `recovery_code` (400 `unsupported_method`); the cookie must name a live session
/// still awaiting its second factor (401 `unauthenticated` otherwise); the account
/// must not be locked out after too many wrong codes (429 `too_many_attempts`); then
/// the code (401 `invalid_code` if wrong, malformed or already used; with `totp` and
/// `sms` its body says in `tries_left` how many codes may still be tried before the
/// code step locks). While it is locked an SMS code and a recovery code still work.
#[utoipa::path(
    post, path = "/login/second-factor", tag = "sign-in", operation_id = "verifySecondFactor",
    request_body = SecondFactorBody,
    responses(
        (status = 200, description = "Code accepted; the session cookie is replaced by an authenticated one.", body = Authenticated),
        (status = 400, description = "`unsupported_method`: `method` is not one of `totp`, `sms`, `recovery_code`.", body = ErrorBody),
        (status = 401, description = "`invalid_code`: wrong, malformed or used code (with `tries_left` for `totp` and `sms`); `unauthenticated`: no half-finished sign-in.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong codes; the code step is locked for a while, see `retry_after`.", body = ErrorBody),
    ),
)]
pub async fn second_factor(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<SecondFactorBody>,
) -> Result<(CookieJar, Json<Authenticated>), ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let new = match b.method.as_str() {
        // The SMS code is checked like the app's: against the live code of this sign-in.
        "totp" | "sms" => match state.app.take_code_step(&token, &b.code, &ctx.req).await {
            Ok(Ok(new)) => new,
            // The standing after this very attempt, without reading it again.
            Ok(Err(standing)) => {
                let mut e = ApiError::from(Error::InvalidCode);
                e.tries_left = Some(standing.tries_left);
                return Err(e);
            }
            Err(Error::InvalidCode) => {
                let standing = state.app.code_step_standing(&token).await?;
                let mut e = ApiError::from(Error::InvalidCode);
                e.tries_left = Some(standing.tries_left);
                return Err(e);
            }
            Err(e) => return Err(e.into()),
        },
        "recovery_code" => {
            state
                .app
                .verify_recovery_code(&token, &b.code, &ctx.req)
                .await?
        }
        _ => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnsupportedMethod,
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
    Ok((jar, Json(Authenticated::Authenticated)))
}

/// Signed out.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SignedOut {
    SignedOut,
}

/// Sign out
///
/// Deletes the session named by the cookie, if any, and clears the cookie. The body
/// is `{}` as JSON, like every other call's: a form on another site cannot send
/// that, so no other site can sign a person out. Answers 200 also without a (valid)
/// session.
#[utoipa::path(
    post, path = "/logout", tag = "sign-in", operation_id = "logout",
    request_body = Empty,
    responses(
        (status = 200, description = "Signed out; the session cookie is cleared.", body = SignedOut),
    ),
)]
pub async fn logout(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(_): ApiJson<Empty>,
) -> Result<(CookieJar, Json<SignedOut>), ApiError> {
    if let Some(t) = session_token(&jar) {
        state.app.logout(&t, &ctx.req).await?;
    }
    Ok((clear_session(jar), Json(SignedOut::SignedOut)))
}

/// Send the sign-in code by SMS
///
/// At the code step of an account with a phone: a 6-digit code (5 minutes, 5
/// tries, HMAC stored) to its number; at most 3 per sign-in (a new one replaces the
/// old). Pumping protection: the country allow-list and hourly limits per account,
/// number, client address and installation (429 `sms_rate_limited`); a failing
/// gateway answers 502 `sms_unavailable` and the other methods stay open.
#[utoipa::path(
    post, path = "/login/sms", tag = "sign-in", operation_id = "sendSignInSms",
    request_body = Empty,
    responses(
        (status = 200, description = "Sent.", body = SmsSent),
        (status = 400, description = "`sms_country_not_allowed`: SMS to the account's country is not allowed.", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no half-finished sign-in.", body = ErrorBody),
        (status = 404, description = "`not_found`: the account has no phone.", body = ErrorBody),
        (status = 429, description = "`too_many_requests` (3 per sign-in), `sms_rate_limited`, or `sms_unavailable` (the installation's hourly budget is spent).", body = ErrorBody),
        (status = 502, description = "`sms_unavailable`: the SMS gateway failed; use another method.", body = ErrorBody),
    ),
)]
pub async fn send_sms(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(_): ApiJson<Empty>,
) -> Result<Json<SmsSent>, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let to = state.app.send_sign_in_sms(&token, &ctx.req).await?;
    Ok(Json(SmsSent::CodeSent { to }))
}
