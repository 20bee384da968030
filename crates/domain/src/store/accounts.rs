//! Accounts: who they are, their passwords, languages and lock-out counters.

use crate::account::{Account, AccountId, Email, Role};
use crate::audit::AuditRecord;
use crate::error::StoreResult;
use crate::factor::Factor;
use crate::lockout::Guard;
use crate::mail::{Language, NewMail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// An account as the password step needs it: with its factors (confirmed or not)
/// and how many unused recovery codes it has.
#[derive(Debug, Clone)]
pub struct SignInAccount {
    pub account: Account,
    pub factors: Vec<Factor>,
    pub recovery_codes_left: u32,
}

#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    async fn insert_account(&self, a: &NewAccount) -> StoreResult<()>;
    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>>;
    /// [`Self::account_by_email`] with what the sign-in asks next (its factors, in
    /// the order of `factors_of`, and its unused recovery codes), in one read.
    async fn account_for_sign_in(&self, email: &Email) -> StoreResult<Option<SignInAccount>>;
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;
    /// Accounts whose address or name contains `query` (case-insensitive), by
    /// address, at most `limit`.
    async fn search_accounts(&self, query: &str, limit: u32) -> StoreResult<Vec<Account>>;
    /// Gives an account a new address; `Conflict` when another account has it.
    async fn change_email(&self, account: AccountId, email: &Email) -> StoreResult<()>;
    async fn set_language(&self, id: AccountId, language: Language) -> StoreResult<()>;
    /// Disables (`Some(at)`) or enables (`None`) an account. Disabling ends, in the
    /// same transaction, its sessions, remembered browsers and everything portals
    /// hold (tokens revoked, logout tokens queued).
    async fn set_disabled(
        &self,
        id: AccountId,
        disabled_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;

    /// The accounts with these addresses (any order; unknown ones are left out).
    async fn accounts_by_emails(&self, emails: &[Email]) -> StoreResult<Vec<Account>>;
    /// An account import, in one transaction with its audit records: each account is
    /// inserted, or, when its address exists, gets the name, role and password hash
    /// given (its id and creation time stay). Written in batches of many rows per
    /// statement, so 100,000 accounts take seconds.
    async fn import_accounts(
        &self,
        accounts: &[NewAccount],
        audit: &[AuditRecord],
    ) -> StoreResult<()>;
    /// Replaces a password hash that just verified by a stronger one, unless it
    /// changed meanwhile (then false: the newer password stands).
    async fn upgrade_password_hash(
        &self,
        id: AccountId,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool>;

    /// Atomically adds one to the consecutive failures and returns the new count.
    async fn increment_failures(&self, id: AccountId, guard: Guard) -> StoreResult<u32>;
    /// Takes one attempt, in one statement: unless the guard is locked at `now`, adds
    /// one to the failures (counted before the answer is known) and, when that
    /// reaches `max_failures`, locks until `hold` at once, so requests in parallel
    /// cannot check more than the allowed number. The new count, or None when locked.
    async fn reserve_attempt(
        &self,
        id: AccountId,
        guard: Guard,
        max_failures: u32,
        hold: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<u32>>;
    /// A wrong code: [`reserve_attempt`](Self::reserve_attempt) and the audit row
    /// `failed` written in one transaction (one statement on PostgreSQL), so that the
    /// failure and its record cost one commit; a store may write failures that
    /// arrive together in one commit (both do). The row is written also when the
    /// guard is locked, then with `locked_detail` as its detail.
    #[allow(clippy::too_many_arguments)]
    async fn reserve_failed_attempt(
        &self,
        id: AccountId,
        guard: Guard,
        max_failures: u32,
        hold: DateTime<Utc>,
        now: DateTime<Utc>,
        failed: &AuditRecord,
        locked_detail: Option<&str>,
    ) -> StoreResult<Option<u32>>;
    async fn set_lock(
        &self,
        id: AccountId,
        guard: Guard,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Clears the failures and any lock.
    async fn reset_failures(&self, id: AccountId, guard: Guard) -> StoreResult<()>;

    /// Sets a new password hash in one transaction with its consequences: the
    /// password failures and lock and the account's password throttles are cleared
    /// (the code lock and throttles stay), every open reset
    /// link, every session and every remembered device of the account ends, and so
    /// does what portals hold (OIDC tokens revoked, unexchanged codes deleted);
    /// `notice` is queued in the same transaction.
    async fn change_password(
        &self,
        account: AccountId,
        password_hash: &str,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
    ) -> StoreResult<()>;
}
