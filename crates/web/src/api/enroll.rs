//! The set-up journeys over JSON: "secure your account now" (`/secure`, a mailed
//! code) and the mailed link to the personal QR page (`/me/enrollment-link`,
//! `/enrollment-links/{token}`).

use super::bodies::{second_factor_methods, CodeBody, PasswordBody, SecondFactorMethod, TotpSetup};
use super::json::{ApiJson, CallerJson, Empty};
use super::me::sms::SmsSetup;
use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::extract::{current_session, discard_current_session, session_token, set_session, Ctx};
use crate::gate::SignedIn;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
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
    #[schema(value_type = String)]
    password: zeroize::Zeroizing<String>,
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
        SecureStart::SecondFactor {
            token,
            methods,
            recovery_codes_left,
        } => {
            let methods = second_factor_methods(&methods, recovery_codes_left);
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
        (status = 429, description = "`too_many_attempts`: too many wrong passwords (the sign-in's password lock-out); wait `retry_after` seconds.", body = ErrorBody),
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
        /// The methods the link may set up (`method` of the `POST`): `app`, and
        /// `sms` when SMS is offered. People without a smartphone choose `sms`.
        methods: Vec<LinkMethod>,
    },
}

/// What a mailed link sets up.
#[derive(Clone, Copy, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum LinkMethod {
    /// An authenticator app (TOTP).
    #[default]
    App,
    /// SMS codes to a mobile number.
    Sms,
}

fn link_methods(state: &AppState) -> Vec<LinkMethod> {
    let mut m = vec![LinkMethod::App];
    if state.app.sms_offered() {
        m.push(LinkMethod::Sms);
    }
    m
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
        methods: link_methods(&state),
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct OpenBody {
    /// The account password; required without a session of the link's account.
    #[schema(value_type = Option<String>)]
    password: Option<zeroize::Zeroizing<String>>,
    /// `app` (the default) or `sms`, as listed by the `GET`.
    #[serde(default)]
    method: LinkMethod,
    /// With `sms`: the mobile number, as typed (read in `[sms] default_region` when
    /// it has no country code).
    phone: Option<String>,
}

/// The factor the link started setting up: `method` says which.
#[derive(Serialize, ToSchema)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum LinkOpened {
    /// Confirm with `POST /me/factors/totp/{id}/confirm`.
    App(TotpSetup),
    /// A code was sent to the phone; confirm with `POST /me/factors/sms/{id}/confirm`.
    Sms(SmsSetup),
}

/// Use a QR link: start setting up an authenticator app or SMS
///
/// The link alone is never enough: without a session of the link's account the
/// password is required (403 `invalid_password` when wrong), and an account that
/// already has a second factor must first sign in with it (401 `unauthenticated`).
/// Then the link is used (once); without a session of the account, a session that
/// may only set up two-step verification is started (cookie).
///
/// `method: "app"` (the default) answers as `POST /me/factors/totp` does, with
/// `"method": "app"`; confirm with `POST /me/factors/totp/{id}/confirm`.
/// `method: "sms"` with a `phone` sends a code to it and answers as
/// `POST /me/factors/sms`, with `"method": "sms"`; confirm with
/// `POST /me/factors/sms/{id}/confirm`. A number that cannot receive SMS is refused
/// before the link is used. Should sending fail afterwards (a limit, the gateway),
/// the link is used but the session it started stays: try again with
/// `POST /me/factors/sms`.
#[utoipa::path(
    post, path = "/enrollment-links/{token}", tag = "enrollment", operation_id = "openEnrollmentLink",
    params(("token" = String, Path, description = "The last path segment of the mailed link.")),
    request_body = OpenBody,
    responses(
        (status = 200, description = "The new, still unconfirmed factor.", body = LinkOpened),
        (status = 400, description = "With `sms`: the number cannot receive SMS (the codes of `POST /me/factors/sms`; no `phone` is `phone_not_a_number`).", body = ErrorBody),
        (status = 401, description = "`unauthenticated`: the account has a second factor; sign in with it first.", body = ErrorBody),
        (status = 403, description = "`invalid_password`: the password is missing or wrong.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong passwords (the sign-in's password lock-out); wait `retry_after` seconds.", body = ErrorBody),
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
) -> Result<Response, ApiError> {
    let current = current_session(&state, &jar).await?;
    let secure = state.settings.secure_cookies;
    if b.method == LinkMethod::Sms {
        // No number is not a number: `phone_not_a_number`, before the link is used.
        let phone = b.phone.as_deref().unwrap_or_default();
        let (session, setup) = state
            .app
            .open_enrollment_link_sms(
                &token,
                b.password.as_deref().map(String::as_str),
                current.as_ref(),
                session_token(&jar).as_ref(),
                phone,
                &ctx.req,
            )
            .await?;
        let jar = match &session {
            Some(t) => set_session(jar, t, secure),
            None => jar,
        };
        // The link is used either way; the session must reach the client even when
        // sending failed, so it can try again with `POST /me/factors/sms`.
        return match setup {
            Ok(s) => Ok((jar, Json(LinkOpened::Sms(SmsSetup::new(&s)))).into_response()),
            Err(e) => Ok((jar, ApiError::from(e)).into_response()),
        };
    }
    let opened = state
        .app
        .open_enrollment_link(
            &token,
            b.password.as_deref().map(String::as_str),
            current.as_ref(),
            &ctx.req,
        )
        .await?;
    let body = Json(LinkOpened::App(TotpSetup::new(&opened.enrollment)?));
    Ok(match &opened.session {
        Some(t) => (set_session(jar, t, secure), body).into_response(),
        None => (jar, body).into_response(),
    })
}
