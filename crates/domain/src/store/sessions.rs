//! Browser sessions, signed in or half-way.

use crate::account::{Account, AccountId};
use crate::audit::AuditRecord;
use crate::error::StoreResult;
use crate::factor::Factor;
use crate::session::Session;
use crate::store::SecondSteps;
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn insert_session(&self, s: &Session) -> StoreResult<()>;
    /// Stores a new session that is not signed in yet (nothing else a signed-in
    /// one needs, such as the account's last sign-in, is written) and its audit
    /// row, all or none, in one commit (on PostgreSQL one statement): one
    /// commit instead of two, and never a session without its row.
    async fn insert_session_audited(&self, s: &Session, audit: &AuditRecord) -> StoreResult<()>;
    /// Every session with this `sid` (a step-up may briefly leave two).
    async fn sessions_with_sid(&self, sid: &str) -> StoreResult<Vec<Session>>;
    /// Deletes the sessions with `sid` other than `keep` (after a step-up), without
    /// ending the sid: what portals hold of it stays valid.
    async fn delete_other_sessions_with_sid(&self, sid: &str, keep: &TokenHash) -> StoreResult<()>;
    /// Ends the browser sign-in `sid`, in one transaction: its sessions are deleted,
    /// the tokens bound to it revoked and its unused codes deleted, and a logout token
    /// is queued for every client with a back-channel logout URI that it signed in
    /// to. Returns how many were queued.
    async fn end_sid(&self, sid: &str, at: DateTime<Utc>) -> StoreResult<u64>;
    async fn session(&self, id: &TokenHash) -> StoreResult<Option<Session>>;
    /// The session and its account in one query (asked on every signed-in request).
    async fn session_with_account(&self, id: &TokenHash)
        -> StoreResult<Option<(Session, Account)>>;
    /// The session, its account and the account's factors (oldest first) in one
    /// query: the code step asks it on every attempt.
    async fn session_with_factors(
        &self,
        id: &TokenHash,
    ) -> StoreResult<Option<(Session, Account, Vec<Factor>)>>;
    /// The session, its account and the account's second steps (as
    /// `DeviceStore::second_steps_of` reads them) in one query: the profile page
    /// and `GET /me` ask it.
    async fn session_with_second_steps(
        &self,
        id: &TokenHash,
    ) -> StoreResult<Option<(Session, Account, SecondSteps)>>;
    async fn touch_session(&self, id: &TokenHash, at: DateTime<Utc>) -> StoreResult<()>;
    async fn delete_session(&self, id: &TokenHash) -> StoreResult<()>;
    async fn delete_sessions_of(&self, account: AccountId) -> StoreResult<()>;
    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}
