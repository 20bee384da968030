//! Every secret sealed at rest, page by page, for `tweestap keys rotate-secret`,
//! which seals each again under a new key.

use crate::error::StoreResult;
use crate::factor::FactorId;
use async_trait::async_trait;
use uuid::Uuid;

/// The columns that hold sealed secrets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SealedKind {
    /// `factors.secret_sealed`: an app's TOTP key, a phone number, a passkey.
    FactorSecret,
    /// `oidc_signing_keys.private_sealed`: an ID token signing key.
    SigningKey,
    /// `mail_queue.payload`: a notice as JSON, some with a sealed link or code.
    MailPayload,
}

impl SealedKind {
    pub const ALL: [SealedKind; 3] = [Self::FactorSecret, Self::SigningKey, Self::MailPayload];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::FactorSecret => "factor secrets",
            Self::SigningKey => "signing keys",
            Self::MailPayload => "queued mail",
        }
    }
}

/// The row a sealed value is in; its id is what the value is sealed with as
/// associated data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SealedAt {
    Factor(FactorId),
    /// By kid.
    SigningKey(String),
    Mail(Uuid),
}

/// A sealed value as stored (for mail, the payload's JSON as UTF-8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedValue {
    pub at: SealedAt,
    pub value: Vec<u8>,
}

/// A value sealed again: written only where the row still holds `old`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resealed {
    pub at: SealedAt,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

#[async_trait]
pub trait SealedStore: Send + Sync + 'static {
    /// Up to `limit` values of `kind` in the order of their rows' ids, after the
    /// row `after` (from the first without).
    async fn sealed_values(
        &self,
        kind: SealedKind,
        after: Option<&SealedAt>,
        limit: u32,
    ) -> StoreResult<Vec<SealedValue>>;

    /// Writes a batch in one transaction. A row that changed or went since it was
    /// read is left alone (a rotation's next pass sees it again). How many rows
    /// changed.
    async fn replace_sealed(&self, batch: &[Resealed]) -> StoreResult<u64>;
}
