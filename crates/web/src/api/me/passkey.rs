//! Registering a passkey: `POST /me/factors/passkey` and its confirmation.

use super::{confirmed, parse_id};
use crate::api::bodies::ConfirmedFactor;
use crate::api::json::CallerJson;
use crate::error::{ApiError, ErrorBody};
use crate::extract::Ctx;
use crate::gate::Enrolling;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};
use tweestap_domain::passkey::KeyKind;
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema)]
pub struct BeginPasskeyBody {
    /// The account password; required except in a session that may only set up
    /// two-step verification (its password was just proven).
    #[schema(value_type = Option<String>)]
    password: Option<zeroize::Zeroizing<String>>,
    /// A name the person chooses, to tell the keys apart ("laptop", "YubiKey");
    /// 1 to 60 characters.
    #[schema(examples("laptop"))]
    name: String,
    /// `passkey` (the default): verifies the person (PIN or biometric), a second
    /// factor or, where the policy allows, a sign-in by itself. `security_key`: a USB
    /// key that may only be touched (no PIN; U2F or FIDO2), used only after the
    /// password. Both are listed, removed and reset as the factor kind `passkey`.
    #[serde(default)]
    kind: KeyKindBody,
}

/// What kind of key to register.
#[derive(Deserialize, ToSchema, Default, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum KeyKindBody {
    #[default]
    Passkey,
    SecurityKey,
}

impl From<KeyKindBody> for KeyKind {
    fn from(k: KeyKindBody) -> Self {
        match k {
            KeyKindBody::Passkey => KeyKind::Passkey,
            KeyKindBody::SecurityKey => KeyKind::SecurityKey,
        }
    }
}

/// A passkey registration begun.
#[derive(Serialize, ToSchema)]
pub struct PasskeySetup {
    /// The new factor's id, for the confirm call.
    #[schema(format = Uuid)]
    id: String,
    /// `PublicKeyCredentialCreationOptions` for `navigator.credentials.create()`, as
    /// `{"publicKey": {...}}` with binary fields in base64url (what WebAuthn Level 3
    /// `PublicKeyCredential.parseCreationOptionsFromJSON` reads).
    #[schema(value_type = Object)]
    options: serde_json::Value,
}

/// Start registering a passkey
///
/// After confirming the account password (not asked in a session that may only set
/// up two-step verification), answers the options for the browser's
/// `navigator.credentials.create()`. The relying party is the host of the
/// configured public URL; the account's passkeys are excluded. The options are good
/// for five minutes. Any earlier unconfirmed factor of the account is discarded.
/// With `"kind": "security_key"` the options ask only for a touch (user
/// verification `discouraged`, no discoverable credential, attestation `none`):
/// such a key is a second factor after the password and never signs in alone.
#[utoipa::path(
    post, path = "/me/factors/passkey", tag = "account", operation_id = "beginPasskey",
    request_body = BeginPasskeyBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The new, still unconfirmed factor and the browser's options.", body = PasskeySetup),
        (status = 400, description = "`invalid_name`: the name is empty or too long; `invalid_request`: `kind` is neither `passkey` nor `security_key`.", body = ErrorBody),
        (status = 403, description = "`invalid_password`: the password confirmation was wrong or missing; `forbidden`: the policy does not allow passkeys for this role.", body = ErrorBody),
        (status = 404, description = "`passkey_unavailable`: this server's address cannot be a relying party (an IP address).", body = ErrorBody),
        (status = 409, description = "`shared_mailbox`: the policy refuses set-up on shared addresses.", body = ErrorBody),
        (status = 429, description = "`too_many_attempts`: too many wrong passwords (the sign-in's password lock-out); wait `retry_after` seconds.", body = ErrorBody),
    ),
)]
pub async fn begin_passkey(
    State(state): State<AppState>,
    ctx: Ctx,
    CallerJson(Enrolling(info, _), b): CallerJson<Enrolling, BeginPasskeyBody>,
) -> Result<Json<PasskeySetup>, ApiError> {
    let start = state
        .app
        .begin_passkey(
            &info,
            b.password.as_deref().map(String::as_str),
            &b.name,
            b.kind.into(),
            &ctx.req,
        )
        .await?;
    Ok(Json(PasskeySetup {
        id: start.factor_id.to_string(),
        options: start.options,
    }))
}

#[derive(Deserialize, ToSchema)]
pub struct CredentialBody {
    /// The browser's answer: the `PublicKeyCredential`, in its `toJSON()` shape.
    #[schema(value_type = Object)]
    pub credential: serde_json::Value,
}

/// Confirm a passkey with the browser's answer
///
/// Verifies the answer to the options of `POST /me/factors/passkey` (challenge,
/// origin, relying party, user verification; attestation `none`) and stores the
/// key. With the account's first factor the answer carries `recovery_codes` (shown
/// this once). An answer is checked once: a second try needs new options.
#[utoipa::path(
    post, path = "/me/factors/passkey/{id}/confirm", tag = "account", operation_id = "confirmPasskey",
    params(("id" = String, Path, description = "The factor's id (a UUID); one that is not gives 404 `not_found`.")),
    request_body = CredentialBody,
    security(("sessionCookie" = [])),
    responses(
        (status = 200, description = "The passkey, now active.", body = ConfirmedFactor),
        (status = 400, description = "`passkey_expired`: the answer belongs to no open registration of this session (expired, used, or another's).", body = ErrorBody),
        (status = 401, description = "`passkey_invalid`: the answer did not verify.", body = ErrorBody),
        (status = 404, description = "`not_found`: no such unconfirmed passkey of this account.", body = ErrorBody),
        (status = 409, description = "`passkey_already_registered`: this authenticator is registered already.", body = ErrorBody),
    ),
)]
pub async fn confirm_passkey(
    State(state): State<AppState>,
    ctx: Ctx,
    jar: CookieJar,
    Path(id): Path<String>,
    CallerJson(Enrolling(info, _), b): CallerJson<Enrolling, CredentialBody>,
) -> Result<(CookieJar, Json<ConfirmedFactor>), ApiError> {
    let id = parse_id(&id)?;
    let codes = state
        .app
        .confirm_passkey(&info, id, &b.credential, &ctx.req)
        .await?;
    confirmed(&state, &ctx, jar, &info, id, codes).await
}
