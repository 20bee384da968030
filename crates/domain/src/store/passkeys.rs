//! Passkeys: the credential id of each (to find the key a browser answers with) and
//! the ceremonies waiting for the browser's answer.

use crate::error::StoreResult;
use crate::factor::{Factor, FactorId};
use crate::mail::NewMail;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A ceremony waiting for the browser: its challenge's hash, the half-finished
/// sign-in or signed-in session it belongs to (none for a sign-in without a
/// password) and its state (JSON).
#[derive(Debug, Clone)]
pub struct Ceremony {
    pub challenge_hash: String,
    pub session_hash: Option<String>,
    pub state: String,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait PasskeyStore: Send + Sync + 'static {
    /// Keeps a ceremony; with `cap`, only while fewer than `cap` ceremonies without
    /// a session are unexpired at `now` (false: refused), so strangers cannot fill
    /// the table.
    async fn insert_ceremony(
        &self,
        c: &Ceremony,
        cap: Option<u64>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Takes (deletes and returns) the ceremony of `challenge_hash`: an answer is
    /// checked once, so a replayed one finds nothing. Atomic across nodes.
    async fn take_ceremony(&self, challenge_hash: &str) -> StoreResult<Option<Ceremony>>;
    /// Forgets ceremonies that expired before `now`.
    async fn prune_ceremonies(&self, now: DateTime<Utc>) -> StoreResult<u64>;
    /// Confirms a passkey being registered: its credential (sealed) and id replace
    /// the ceremony's placeholder, and in the same transaction `notice` is queued
    /// and the account's recovery codes replaced by `recovery_code_macs` (as
    /// `FactorStore::confirm_factor`). False when it is not pending; `Conflict`
    /// when the credential id is taken.
    async fn confirm_passkey(
        &self,
        id: FactorId,
        sealed: &[u8],
        credential_id: &str,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
        recovery_code_macs: Option<&[String]>,
    ) -> StoreResult<bool>;
    /// The active passkey with this credential id (base64url).
    async fn passkey_by_credential(&self, credential_id: &str) -> StoreResult<Option<Factor>>;
    /// Stores a passkey's credential after a use (its counter and backup flags).
    async fn passkey_used(&self, id: FactorId, sealed: &[u8], at: DateTime<Utc>)
        -> StoreResult<()>;
}
