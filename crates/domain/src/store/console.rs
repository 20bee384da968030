//! What the roll-out console reads and writes: the account list with its filters,
//! roles, deletion, the step-up time of a session, the stored policy, the roll-out
//! counts and their daily series, reminder claims, and the audit log's pages.

use crate::account::{Account, AccountId, Role};
use crate::audit::AuditRecord;
use crate::console::{AccountFilter, AccountListing, Cursor, RolloutCounts, RolloutDay};
use crate::error::StoreResult;
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

/// The audit log's filters (all optional), newest first, paged by id.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub account: Option<AccountId>,
    pub event: Option<String>,
    pub ip: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Only records older than this one (the previous page's last id).
    pub before_id: Option<i64>,
}

/// A reminder that went out.
#[derive(Debug, Clone)]
pub struct SentReminder {
    pub account_id: AccountId,
    pub email: String,
    pub deadline: NaiveDate,
    pub stage: u32,
    pub sent_at: DateTime<Utc>,
}

#[async_trait]
pub trait ConsoleStore: Send + Sync + 'static {
    /// One page of accounts by address, after `after`; `shared` are the local parts
    /// that make a shared mailbox (for that filter).
    async fn list_accounts_page(
        &self,
        filter: &AccountFilter,
        shared: &[String],
        after: Option<&Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<AccountListing>>;
    /// One account as the list shows it.
    async fn account_listing(&self, id: AccountId) -> StoreResult<Option<AccountListing>>;
    async fn set_role(&self, id: AccountId, role: Role) -> StoreResult<()>;
    /// Deletes an account with everything of it except its audit records.
    async fn delete_account(&self, id: AccountId) -> StoreResult<()>;
    async fn set_last_sign_in(&self, id: AccountId, at: DateTime<Utc>) -> StoreResult<()>;
    /// When the session last proved a second factor after its sign-in.
    async fn session_code_at(&self, session: &TokenHash) -> StoreResult<Option<DateTime<Utc>>>;
    async fn set_session_code_at(&self, session: &TokenHash, at: DateTime<Utc>) -> StoreResult<()>;

    async fn console_setting(&self, key: &str) -> StoreResult<Option<String>>;
    async fn save_console_setting(
        &self,
        key: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()>;

    /// Per role, how many accounts (not disabled) have which second factors now.
    async fn rollout_counts(&self) -> StoreResult<Vec<(Role, RolloutCounts)>>;
    /// Records (or replaces) the counts of a day.
    async fn save_rollout_day(&self, day: &RolloutDay) -> StoreResult<()>;
    async fn rollout_days(&self, since: NaiveDate) -> StoreResult<Vec<RolloutDay>>;
    /// Accounts of `role` (not disabled) without any active second factor, by address.
    async fn without_two_factor(&self, role: Role, limit: u32) -> StoreResult<Vec<Account>>;

    /// Claims a reminder stage for an account: true for exactly one caller, on any
    /// node, ever.
    async fn claim_reminder(
        &self,
        account: AccountId,
        deadline: NaiveDate,
        stage: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Gives a claim back when its mail could not be queued.
    async fn release_reminder(
        &self,
        account: AccountId,
        deadline: NaiveDate,
        stage: u32,
    ) -> StoreResult<()>;
    async fn sent_reminders(&self, limit: u32) -> StoreResult<Vec<SentReminder>>;

    /// One page of the audit log, newest first, each with its id.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> StoreResult<Vec<(i64, AuditRecord)>>;
    /// Removes audit records older than `before`; how many.
    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}
