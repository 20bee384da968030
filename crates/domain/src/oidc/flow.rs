//! The authorization code flow: pending authorization requests, codes and tokens.
//!
//! Everything handed to a browser or a relying party is a random [`Token`]; the
//! database keeps only its SHA-256. What a code or token stands for (the "grant":
//! client, account, scope, nonce, PKCE challenge, how the person signed in) is kept
//! as JSON next to the hash.

use crate::account::{Account, AccountId};
use crate::token::TokenHash;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a code or token stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub client_id: String,
    pub account_id: uuid::Uuid,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: Option<String>,
    /// Unix seconds.
    pub auth_time: i64,
    /// The session's methods, space-separated (`pwd otp`): `acr` and `amr` both
    /// come from this (see [`super::acr::SignInProof`]).
    pub amr: String,
    /// The browser session it came from (the ID token's `sid`).
    #[serde(default)]
    pub sid: Option<String>,
}

/// What a service's token (`client_credentials`) stands for: no person.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceGrant {
    pub client_id: String,
    pub scope: String,
    pub audience: Vec<String>,
    /// Always true: tells the two kinds of grant apart in storage.
    pub service: bool,
}

impl Grant {
    pub fn has_scope(&self, s: &str) -> bool {
        self.scope.split(' ').any(|x| x == s)
    }
}

/// A pending authorization request as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredRequest {
    pub id_hash: TokenHash,
    /// [`AuthRequest`] as JSON.
    pub request: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An authorization code as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCode {
    pub code_hash: TokenHash,
    /// Whose sign-in it carries (also inside the grant; a column so that a password
    /// change or support reset can end it).
    pub account_id: AccountId,
    /// [`Grant`] as JSON.
    pub grant: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    /// The browser session it came from.
    pub sid: Option<String>,
    /// The client it was issued to.
    pub client_id: String,
}

/// The outcome of claiming a code.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeClaim {
    /// First use (expiry is still to be checked).
    Fresh(StoredCode),
    /// Used before: a replay.
    Reused(StoredCode),
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

impl TokenKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Access => "access",
            TokenKind::Refresh => "refresh",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "access" => Some(TokenKind::Access),
            "refresh" => Some(TokenKind::Refresh),
            _ => None,
        }
    }
}

/// An access or refresh token as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredToken {
    pub token_hash: TokenHash,
    /// `None` for a service's token.
    pub account_id: Option<AccountId>,
    pub client_id: String,
    /// The browser session it ends with; `None` when it outlives it
    /// (`offline_access`, services).
    pub kind: TokenKind,
    /// Everything issued from one code shares a family (the code's hash), so a
    /// replay can revoke all of it at once.
    pub family: String,
    pub sid: Option<String>,
    /// [`Grant`] or [`ServiceGrant`] as JSON.
    pub grant: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// A refresh token is used once (rotation).
    pub used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A stored token and what it stands on, read together.
#[derive(Debug, Clone)]
pub struct TokenFacts {
    pub token: StoredToken,
    /// Its client is registered in the database (those of the configuration file
    /// are not).
    pub client_stored: bool,
    /// Some signed-in session carries its sid and has not expired.
    pub sid_live: bool,
    /// The account of its `account_id` column, if any.
    pub account: Option<Account>,
}

/// An OAuth error answer (`error`, `error_description`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcError {
    pub error: &'static str,
    pub description: String,
}

impl OidcError {
    pub fn new(error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            description: description.into(),
        }
    }
}

impl From<crate::error::StoreError> for OidcError {
    fn from(e: crate::error::StoreError) -> Self {
        crate::error::Error::from(e).into()
    }
}

impl From<crate::error::Error> for OidcError {
    fn from(e: crate::error::Error) -> Self {
        tracing::error!(error = %e, "OIDC request failed");
        OidcError::new("server_error", "the server could not complete the request")
    }
}

/// The S256 challenge of a PKCE verifier (RFC 7636, 4.2).
pub fn s256(verifier: &str) -> String {
    B64.encode(Sha256::digest(verifier.as_bytes()))
}

/// A verifier as RFC 7636 (4.1) allows: 43 to 128 unreserved characters.
pub fn valid_verifier(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(valid_verifier(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        ));
        assert!(!valid_verifier("short"));
    }
}
