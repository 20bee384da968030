//! The mail queue: messages wait here until a worker (on any node) sends them.

use crate::account::AccountId;
use crate::error::StoreResult;
use crate::mail::{NewMail, QueuedMail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait MailQueue: Send + Sync + 'static {
    /// Queues a message, due at once.
    async fn enqueue_mail(&self, m: &NewMail) -> StoreResult<()>;
    /// Atomically claims up to `limit` queued messages that are due (`next_attempt_at
    /// <= now`) and not held by a live claim (`locked_until` unset or `<= now`):
    /// sets `locked_until = lease_until`, `claimed_by = claim`, counts the attempt.
    /// Two workers, on one node or on several sharing the database, never get the
    /// same message while the lease lasts.
    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        claim: uuid::Uuid,
        limit: u32,
    ) -> StoreResult<Vec<QueuedMail>>;
    /// Marks a claimed message sent; false when the claim was lost.
    async fn mark_mail_sent(&self, m: &QueuedMail, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Releases a claimed message to be tried again at `next_attempt_at`.
    async fn retry_mail(
        &self,
        m: &QueuedMail,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<bool>;
    /// Gives a claimed message up for good.
    async fn fail_mail(&self, m: &QueuedMail, at: DateTime<Utc>, error: &str) -> StoreResult<bool>;
    /// Messages per status (`queued`, `sent`, `failed`), for status output and tests.
    async fn mail_counts(&self) -> StoreResult<Vec<(String, u64)>>;
    /// Messages of `kind` queued for the account at or after `since`, whatever
    /// became of them: the per-account hourly caps count these.
    async fn mails_since(
        &self,
        account: AccountId,
        kind: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<u32>;
}
