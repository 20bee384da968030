//! Answer bodies more than one endpoint gives.

use crate::error::{ApiError, ErrorCode};
use crate::qr;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use tweestap_domain::factor::{Factor, FactorKind};
use tweestap_domain::service::TotpEnrollment;
use utoipa::ToSchema;

/// A way to pass the code step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SecondFactorMethod {
    /// The code of an authenticator app.
    Totp,
    /// A code sent by SMS (`POST /login/sms`).
    Sms,
    /// One of the account's unused recovery codes.
    RecoveryCode,
    /// A passkey (`POST /login/passkey/options`, then `POST /login/passkey`).
    Passkey,
}

impl From<FactorKind> for SecondFactorMethod {
    fn from(k: FactorKind) -> Self {
        match k {
            FactorKind::Totp => Self::Totp,
            FactorKind::Sms => Self::Sms,
            FactorKind::Passkey => Self::Passkey,
        }
    }
}

/// Every method `POST /login/second-factor` accepts: the account's kinds of
/// factor, and `recovery_code` while it has unused codes.
pub fn second_factor_methods(
    kinds: &[FactorKind],
    recovery_codes_left: u32,
) -> Vec<SecondFactorMethod> {
    let mut methods: Vec<SecondFactorMethod> = kinds.iter().map(|&k| k.into()).collect();
    if recovery_codes_left > 0 {
        methods.push(SecondFactorMethod::RecoveryCode);
    }
    methods
}

/// An account's role.
#[derive(Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Support,
    Admin,
}

impl From<Role> for tweestap_domain::account::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::User => Self::User,
            Role::Support => Self::Support,
            Role::Admin => Self::Admin,
        }
    }
}

impl From<tweestap_domain::account::Role> for Role {
    fn from(r: tweestap_domain::account::Role) -> Self {
        use tweestap_domain::account::Role as R;
        match r {
            R::User => Self::User,
            R::Support => Self::Support,
            R::Admin => Self::Admin,
        }
    }
}

/// The kind of a second factor.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// An authenticator app (RFC 6238).
    Totp,
    /// Codes by SMS.
    Sms,
    /// A passkey or security key (WebAuthn).
    Passkey,
}

impl From<FactorKind> for Kind {
    fn from(k: FactorKind) -> Self {
        match k {
            FactorKind::Totp => Self::Totp,
            FactorKind::Sms => Self::Sms,
            FactorKind::Passkey => Self::Passkey,
        }
    }
}

/// An active second factor.
#[derive(Serialize, ToSchema)]
pub struct FactorView {
    #[schema(format = Uuid)]
    pub id: String,
    pub kind: Kind,
    #[schema(examples("Authenticator app"))]
    pub label: String,
    /// RFC 3339.
    #[schema(format = DateTime)]
    pub created_at: String,
    /// RFC 3339; null if never used to sign in.
    #[schema(format = DateTime)]
    pub last_used_at: Option<String>,
}

impl From<&Factor> for FactorView {
    fn from(f: &Factor) -> Self {
        Self {
            id: f.id.to_string(),
            kind: f.kind.into(),
            label: f.label.clone(),
            created_at: f.created_at.to_rfc3339(),
            last_used_at: f.last_used_at.map(|t| t.to_rfc3339()),
        }
    }
}

/// A factor just confirmed; with the account's first factor, its recovery codes.
#[derive(Serialize, ToSchema)]
pub struct ConfirmedFactor {
    #[serde(flatten)]
    pub factor: FactorView,
    /// Only with the account's first factor, and only in this answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recovery_codes: Option<Vec<String>>,
}

/// The set-up of an authenticator app: what the QR page shows.
#[derive(Serialize, ToSchema)]
pub struct TotpSetup {
    /// The new factor's id, for the confirm call.
    #[schema(format = Uuid)]
    pub id: String,
    /// The 160-bit secret in unpadded base32 (RFC 4648), 32 characters.
    #[schema(pattern = "^[A-Z2-7]+$", examples("JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"))]
    pub secret: String,
    /// The `otpauth://totp/...` URI that apps read from a QR code.
    pub otpauth_uri: String,
    /// The QR code of `otpauth_uri` as inline SVG markup (no XML declaration).
    pub qr_svg: String,
    /// The address is a shared mailbox (`[policy] shared_mailboxes`): the app would
    /// tie it to one person's phone; show a warning.
    pub shared_mailbox: bool,
}

impl TotpSetup {
    pub fn new(e: &TotpEnrollment) -> Result<Self, ApiError> {
        let qr_svg = qr::svg(&e.otpauth_uri).map_err(|err| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                err.to_string(),
            )
        })?;
        Ok(Self {
            id: e.factor_id.to_string(),
            secret: e.secret_base32.clone(),
            otpauth_uri: e.otpauth_uri.clone(),
            qr_svg,
            shared_mailbox: e.shared_mailbox,
        })
    }
}

/// An SMS code was sent.
#[derive(Serialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum SmsSent {
    CodeSent {
        /// The number, masked: `+32 4•• •• •• 56`.
        to: String,
    },
}

/// The body of requests that need a password confirmation.
#[derive(serde::Deserialize, ToSchema)]
pub struct PasswordBody {
    /// The account password, as confirmation.
    #[schema(examples("correct horse battery staple"))]
    #[schema(value_type = String)]
    pub password: zeroize::Zeroizing<String>,
}

/// A code.
#[derive(serde::Deserialize, ToSchema)]
pub struct CodeBody {
    /// The 6-digit code; spaces and dashes are ignored.
    #[schema(examples("123456"))]
    #[schema(value_type = String)]
    pub code: zeroize::Zeroizing<String>,
}
