//! The set-up journeys over JSON: "secure your account now" (`/secure`, a mailed
//! code) and the mailed link to the personal QR page (`/me/enrollment-link`,
//! `/enrollment-links/{token}`).

use super::bodies::{second_factor_methods, CodeBody, PasswordBody, SecondFactorMethod, TotpSetup};
use super::json::{ApiJson, CallerJson, Empty};
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{current_session, discard_current_session, session_token, set_session, Ctx};
use crate::gate::SignedIn;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::service::SecureStart;
use tweestap_domain::session::SessionStage;
use tweestap_domain::Error;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct SecureBody {
    email: String,
    password: String,
}

/// Where "secure your account now" goes on.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SecureState {
    /// A code was mailed; continue with `POST /secure/code`.
    EmailCodeSent,
    /// The account has a second factor already: an ordinary sign-in, continue with
    /// `POST /login/second-factor`.
    SecondFactor { methods: Vec<SecondFactorMethod> },
}

/// "Secure your account now": e-mail and password, then a mailed code
///
/// The first step of the set-up wizard of the sign-in page. E-mail and password are
/// checked exactly as by `POST /login`. For an account without a second factor a
/// 6-digit code is mailed (valid 10 minutes, 5 tries, at most 3 mails per attempt)
/// and a session cookie names the half-finished attempt: `email_code_sent`. An
/// account that has a second factor already gets an ordinary sign-in:
/// `second_factor`, continue with `POST /login/second-factor`.
#[utoipa::path(
    post, path = "/secure", tag = "enrollment", operation_id = "secureAccount",
    request_body = SecureBody,
    responses(
        (status = 200, description = "Code mailed, or the code from the app is next.", body = SecureState),
        (status = 401, description = "`invalid_credentials`: wrong e-mail address or password.", body = ErrorBody),
    ),
)]
pub async fn secure(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<SecureBody>,
) -> Result<(CookieJar, Json<SecureState>), ApiError> {
    discard_current_session(&state, &jar).await?;
    let secure = state.settings.secure_cookies;
    let start = state
        .app
        .secure_account_start(&b.email, &b.password, &ctx.req)
        .await?;
    Ok(match start {
        SecureStart::CodeSent(t) => (
            set_session(jar, &t, secure),
            Json(SecureState::EmailCodeSent),
        ),
        SecureStart::SecondFactor { token, methods } => {
            let methods = second_factor_methods(&state, &token, &methods).await?;
            (
                set_session(jar, &token, secure),
                Json(SecureState::SecondFactor { methods }),
            )
        }
    })
}

/// The session may now only set up two-step verification.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EnrollmentRequired {
    EnrollmentRequired,
}

/// Confirm the address with the mailed code
///
/// Right: the session becomes one that may only set up two-step verification (a new
/// session id); continue with `POST /me/factors/totp` (no password needed) and its
/// confirm. Wrong: 400 `invalid_code`; after the 5th wrong try or 10 minutes: 400
/// `code_expired`. Without a waiting attempt: 401 `unauthenticated`.
#[utoipa::path(
    post, path = "/secure/code", tag = "enrollment", operation_id = "secureAccountCode",
    request_body = CodeBody,
    responses(
        (status = 200, description = "The address is proven.", body = EnrollmentRequired),
        (status = 400, description = "`invalid_code`: the code is wrong; `code_expired`: ask for a new one.", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: no waiting attempt.", body = ErrorBody),
    ),
)]
pub async fn secure_code(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<CodeBody>,
) -> Result<(CookieJar, Json<EnrollmentRequired>), ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    let new = match state.app.verify_email_code(&token, &b.code, &ctx.req).await {
        Ok(t) => t,
        Err(Error::InvalidCode) => return Err(wrong_code()),
        Err(e) => return Err(e.into()),
    };
    Ok((
        set_session(jar, &new, state.settings.secure_cookies),
        Json(EnrollmentRequired::EnrollmentRequired),
    ))
}

/// A wrong code while setting up is a bad request, not a failed sign-in.
pub(super) fn wrong_code() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::InvalidCode,
        "the code is wrong",
    )
}

/// A code was mailed.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum EmailCodeSent {
    EmailCodeSent,
}

/// Mail a new code
///
/// Replaces the code (the old one stops working; the new one has its own 10 minutes
/// and 5 tries). At most 3 codes per attempt in all: then 429 `too_many_requests`,
/// start again with `POST /secure`.
#[utoipa::path(
    post, path = "/secure/code/resend", tag = "enrollment", operation_id = "secureAccountResend",
    request_body = Empty,
    responses(
        (status = 200, description = "A new code was mailed.", body = EmailCodeSent),
        (status = 401, description = "`unauthenticated`: no waiting attempt.", body = ErrorBody),
        (status = 429, description = "`too_many_requests`: three codes were mailed for this attempt.", body = ErrorBody),
    ),
)]
pub async fn secure_resend(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(_): ApiJson<Empty>,
) -> Result<Json<EmailCodeSent>, ApiError> {
    let token = session_token(&jar).ok_or(Error::Unauthenticated)?;
    state.app.resend_email_code(&token, &ctx.req).await?;
    Ok(Json(EmailCodeSent::EmailCodeSent))
}

/// The link was mailed.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkSent {
    LinkSent {
        /// RFC 3339.
        #[schema(format = DateTime)]
        expires_at: String,
    },
}

/// Mail a link to the personal QR page
///
/// "Enable 2FA" on My Profile: after the password, a single-use link
/// `<public_url>/enroll/<token>` is mailed (valid `[policy] enrollment_link_days`;
/// a newer link ends older ones).
#[utoipa::path(
    post, path = "/me/enrollment-link", tag = "enrollment", operation_id = "requestEnrollmentLink",
    request_body = PasswordBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 202, description = "The link was mailed.", body = LinkSent),
        (status = 403, description = "`invalid_password`: the password confirmation was wrong; `enrollment_required`: the session may only set up two-step verification.", body = ErrorBody),
        (status = 409, description = "`shared_mailbox`: the policy refuses set-up on shared addresses.", body = ErrorBody),
    ),
)]
pub async fn request_link(
    State(state): State<AppState>,
    ctx: Ctx,
    CallerJson(SignedIn(info, _), b): CallerJson<SignedIn, PasswordBody>,
) -> Result<(StatusCode, Json<LinkSent>), ApiError> {
    let expires = state
        .app
        .request_enrollment_link(&info.account, &b.password, &state.base_url(), &ctx.req)
        .await?;
    let body = LinkSent::LinkSent {
        expires_at: expires.to_rfc3339(),
    };
    Ok((StatusCode::ACCEPTED, Json(body)))
}

/// Whether a QR link can be used.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkState {
    Open {
        #[schema(format = Email)]
        email: String,
        /// True unless this browser has a session of the link's account.
        password_required: bool,
    },
}

/// Whether a QR link can be used
#[utoipa::path(
    get, path = "/enrollment-links/{token}", tag = "enrollment", operation_id = "enrollmentLinkState",
    params(("token" = String, Path, description = "The last path segment of the mailed link.")),
    responses(
        (status = 200, description = "The link is open.", body = LinkState),
        (status = 404, description = "`invalid_link`: no such link.", body = ErrorBody),
        (status = 410, description = "`link_expired` or `link_used`.", body = ErrorBody),
    ),
)]
pub async fn link_state(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(token): Path<String>,
) -> Result<Json<LinkState>, ApiError> {
    let account = state.app.enrollment_link_account(&token, &ctx.req).await?;
    let same = current_session(&state, &jar).await?.is_some_and(|s| {
        s.account.id == account.id
            && matches!(
                s.session.stage,
                SessionStage::Authenticated | SessionStage::Enrollment
            )
    });
    Ok(Json(LinkState::Open {
        email: account.email.as_str().to_owned(),
        password_required: !same,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct OpenBody {
    /// The account password; required without a session of the link's account.
    password: Option<String>,
}

/// Use a QR link: start setting up an authenticator app
///
/// The link alone is never enough: without a session of the link's account the
/// password is required (403 `invalid_password` when wrong), and an account that
/// already has a second factor must first sign in with it (401 `unauthenticated`).
/// Then the link is used (once) and the answer is that of `POST /me/factors/totp`;
/// without a session of the account, a session that may only set up two-step
/// verification is started (cookie). Confirm with `POST /me/factors/totp/{id}/confirm`.
#[utoipa::path(
    post, path = "/enrollment-links/{token}", tag = "enrollment", operation_id = "openEnrollmentLink",
    params(("token" = String, Path, description = "The last path segment of the mailed link.")),
    request_body = OpenBody,
    responses(
        (status = 200, description = "The new, still unconfirmed factor.", body = TotpSetup),
        (status = 401, description = "`unauthenticated`: the account has a second factor; sign in with it first.", body = ErrorBody),
        (status = 403, description = "`invalid_password`: the password is missing or wrong.", body = ErrorBody),
        (status = 404, description = "`invalid_link`: no such link.", body = ErrorBody),
        (status = 409, description = "`shared_mailbox`: the policy refuses set-up on shared addresses.", body = ErrorBody),
        (status = 410, description = "`link_expired` or `link_used`.", body = ErrorBody),
    ),
)]
pub async fn open_link(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(token): Path<String>,
    ApiJson(b): ApiJson<OpenBody>,
) -> Result<(CookieJar, Json<TotpSetup>), ApiError> {
    let current = current_session(&state, &jar).await?;
    let opened = state
        .app
        .open_enrollment_link(&token, b.password.as_deref(), current.as_ref(), &ctx.req)
        .await?;
    let body = Json(TotpSetup::new(&opened.enrollment)?);
    Ok(match &opened.session {
        Some(t) => (set_session(jar, t, state.settings.secure_cookies), body),
        None => (jar, body),
    })
}
