//! What portals hold of a person's browser sign-ins beyond codes and tokens: which
//! portals a sign-in reached (for back-channel logout), the queue of logout tokens,
//! and the consents given to third-party portals.

use crate::account::AccountId;
use crate::error::StoreResult;
use crate::oidc::backchannel::QueuedLogout;
use crate::oidc::consent::Consent;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait PortalStore: Send + Sync + 'static {
    /// Notes that browser sign-in `sid` signed in to `client` (one with a
    /// back-channel logout URI), so that its end reaches the client.
    async fn record_session_client(
        &self,
        sid: &str,
        client_id: &str,
        account: AccountId,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Claims up to `limit` due logout tokens for worker `claim` (as `claim_mail`).
    async fn claim_logouts(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        claim: uuid::Uuid,
        limit: u32,
    ) -> StoreResult<Vec<QueuedLogout>>;
    /// Removes a delivered (or given-up) logout; false when the claim was lost.
    async fn finish_logout(&self, q: &QueuedLogout) -> StoreResult<bool>;
    /// Releases a claimed logout to be tried again at `at`.
    async fn retry_logout(
        &self,
        q: &QueuedLogout,
        at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<bool>;
    /// Logout tokens waiting to be delivered.
    async fn pending_logouts(&self) -> StoreResult<u64>;

    /// The scopes (space-separated) the person allowed `client`, if any.
    async fn oidc_consent(
        &self,
        account: AccountId,
        client_id: &str,
    ) -> StoreResult<Option<String>>;
    /// Records (or widens) a consent.
    async fn grant_oidc_consent(
        &self,
        account: AccountId,
        client_id: &str,
        scope: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// The person's consents: client id, scopes, when; oldest first.
    async fn oidc_consents(&self, account: AccountId) -> StoreResult<Vec<Consent>>;
    /// Withdraws a consent and, in the same transaction, revokes the tokens the
    /// client holds for the person. False when there was none.
    async fn revoke_oidc_consent(
        &self,
        account: AccountId,
        client_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
}
