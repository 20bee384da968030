//! `POST /login/passkey/options` and `POST /login/passkey`: a passkey as the second
//! factor, or as the whole sign-in.

use super::auth::Authenticated;
use super::json::{ApiJson, Empty};
use super::me::passkey::CredentialBody;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{session_token, set_session, Ctx};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::Serialize;
use utoipa::ToSchema;

/// Options for the browser.
#[derive(Serialize, ToSchema)]
pub struct PasskeyOptions {
    /// `PublicKeyCredentialRequestOptions` for `navigator.credentials.get()`, as
    /// `{"publicKey": {...}}` with binary fields in base64url (what WebAuthn Level 3
    /// `PublicKeyCredential.parseRequestOptionsFromJSON` reads).
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

/// Ask for a passkey
///
/// At the second step of a sign-in (the cookie names a half-finished sign-in of an
/// account with passkeys) the options name that account's keys, its security keys
/// too (then `userVerification` is `preferred`, or `discouraged` when it has only
/// security keys: a touch is enough for those, a passkey must still verify the
/// person). Otherwise they name none: a sign-in without a password, with any passkey
/// registered here that can be discovered (also for conditional mediation, the
/// browser's autofill). The options are good for five minutes and one answer.
#[utoipa::path(
    post, path = "/login/passkey/options", tag = "sign-in", operation_id = "passkeyOptions",
    request_body = Empty,
    responses(
        (status = 200, description = "The options.", body = PasskeyOptions),
        (status = 401, description = "`passkey_unknown`: the half-finished sign-in's account has no passkey.", body = ErrorBody),
        (status = 404, description = "`passkey_unavailable`: this server's address cannot be a relying party.", body = ErrorBody),
        (status = 429, description = "`too_many_requests`: too many sign-ins without a password are open; try again shortly.", body = ErrorBody),
    ),
)]
pub async fn options(
    State(state): State<AppState>,
    jar: CookieJar,
    ApiJson(_): ApiJson<Empty>,
) -> Result<Json<PasskeyOptions>, ApiError> {
    let token = session_token(&jar);
    let options = state.app.passkey_options(token.as_ref()).await?;
    Ok(Json(PasskeyOptions { options }))
}

/// Sign in with a passkey
///
/// The browser's answer to `POST /login/passkey/options`. At the second step of a
/// sign-in it finishes that sign-in, exactly like `POST /login/second-factor`: the
/// half-finished session is replaced by an authenticated one. Without one, a
/// passkey that verified the person (PIN or biometric) signs in by itself, where the
/// policy allows it for the account's role; a security key never does
/// (`passkey_unknown`). The signature counter must grow on keys
/// that have one (a key going backwards may be a copy: refused and audited).
#[utoipa::path(
    post, path = "/login/passkey", tag = "sign-in", operation_id = "passkeySignIn",
    request_body = CredentialBody,
    responses(
        (status = 200, description = "Signed in; the session cookie is replaced by an authenticated one.", body = Authenticated),
        (status = 400, description = "`passkey_expired`: the answer belongs to no open request (expired, already used, or another session's).", body = ErrorBody),
        (status = 401, description = "`passkey_unknown`: the key is not registered here, or not to this account, or may not sign in alone; `passkey_invalid`: the answer did not verify; `passkey_possible_clone`: the signature counter went backwards.", body = ErrorBody),
        (status = 404, description = "`passkey_unavailable`: this server's address cannot be a relying party.", body = ErrorBody),
    ),
)]
pub async fn sign_in(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    ApiJson(b): ApiJson<CredentialBody>,
) -> Result<(CookieJar, Json<Authenticated>), ApiError> {
    let token = session_token(&jar);
    let new = state
        .app
        .passkey_sign_in(token.as_ref(), &b.credential, &ctx.req)
        .await?;
    let jar = set_session(jar, &new, state.settings.secure_cookies);
    Ok((jar, Json(Authenticated::Authenticated)))
}
