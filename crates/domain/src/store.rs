//! Storage as a trait: one interface, one implementation per database.

use crate::account::{Account, AccountId, Email, Role};
use crate::audit::AuditRecord;
use crate::device::RememberedDevice;
use crate::enrollment::EnrollmentLink;
use crate::factor::{Factor, FactorId};
use crate::lockout::Guard;
use crate::mail::{Language, NewMail, QueuedMail};
use crate::oidc::flow::{CodeClaim, StoredCode, StoredRequest, StoredToken};
use crate::oidc::{OidcClient, SigningKey};
use crate::session::Session;
use crate::session_code::{CodePurpose, SessionCode};
use crate::snapshot::Contents;
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached; callers answer 503 and try again later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

#[derive(Debug, Clone)]
pub struct NewAccount {
    pub id: AccountId,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
}

/// A forgotten-password link as stored: only the hash of its token.
#[derive(Debug, Clone)]
pub struct NewPasswordReset {
    pub token_hash: TokenHash,
    pub account_id: AccountId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    async fn ping(&self) -> StoreResult<()>;

    async fn insert_account(&self, a: &NewAccount) -> StoreResult<()>;
    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>>;
    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;

    /// Atomically adds one to the consecutive failures and returns the new count.
    async fn increment_failures(&self, id: AccountId, guard: Guard) -> StoreResult<u32>;
    async fn set_lock(
        &self,
        id: AccountId,
        guard: Guard,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<()>;
    /// Clears the failures and any lock.
    async fn reset_failures(&self, id: AccountId, guard: Guard) -> StoreResult<()>;

    async fn insert_factor(&self, f: &Factor) -> StoreResult<()>;
    async fn factors_of(&self, account: AccountId) -> StoreResult<Vec<Factor>>;
    /// Confirms a factor being set up (false when it is not pending) and, in the
    /// same transaction, queues `notice` (when it was confirmed), so the change
    /// never happens without its notice.
    async fn confirm_factor(
        &self,
        id: FactorId,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
    ) -> StoreResult<bool>;
    /// Deletes a factor (false when there is none) and, in the same transaction,
    /// forgets the remembered devices of `forget_devices_of` and queues `notice`.
    async fn remove_factor(
        &self,
        id: FactorId,
        forget_devices_of: Option<AccountId>,
        notice: Option<&NewMail>,
    ) -> StoreResult<bool>;
    async fn delete_unconfirmed_factors(&self, account: AccountId) -> StoreResult<()>;
    /// Records `step` as used if it is later than the last used step; false means the
    /// step (or a later one) was already used: a replay. Atomic across nodes.
    async fn claim_totp_step(
        &self,
        id: FactorId,
        step: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;

    async fn insert_session(&self, s: &Session) -> StoreResult<()>;
    async fn session(&self, id: &TokenHash) -> StoreResult<Option<Session>>;
    async fn touch_session(&self, id: &TokenHash, at: DateTime<Utc>) -> StoreResult<()>;
    async fn delete_session(&self, id: &TokenHash) -> StoreResult<()>;
    async fn delete_sessions_of(&self, account: AccountId) -> StoreResult<()>;
    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()>;
    /// Every account, factor and audit record (oldest first), read in one
    /// transaction, for `tweestap export`.
    async fn export_contents(&self) -> StoreResult<Contents>;
    /// Writes an export in one transaction: all or nothing. `Conflict` when the
    /// database already holds an account (imports never merge).
    async fn import_contents(&self, c: &Contents) -> StoreResult<()>;
    async fn list_audit(&self, limit: u32, email: Option<&str>) -> StoreResult<Vec<AuditRecord>>;

    async fn set_language(&self, id: AccountId, language: Language) -> StoreResult<()>;

    // ---- the mail queue ---------------------------------------------------------

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

    // ---- forgotten passwords ------------------------------------------------------

    /// Stores a new reset link and, in the same transaction, ends every other open
    /// link of the account (`used_at = created_at`).
    async fn insert_password_reset(&self, r: &NewPasswordReset) -> StoreResult<()>;
    /// The account of an open link (unused, `expires_at > now`), without using it.
    async fn password_reset_account(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>>;
    /// Uses an open link, atomically: one `UPDATE ... WHERE used_at IS NULL AND
    /// expires_at > now`; of two concurrent claims exactly one gets the account.
    async fn claim_password_reset(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>>;
    /// Sets a new password hash in one transaction with its consequences: the
    /// password failures and lock are cleared (the code lock stays), every open reset
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

    // ---- the set-up journeys --------------------------------------------------------

    /// Accounts whose address or name contains `query` (case-insensitive), by
    /// address, at most `limit`.
    async fn search_accounts(&self, query: &str, limit: u32) -> StoreResult<Vec<Account>>;
    /// Gives an account a new address; `Conflict` when another account has it.
    async fn change_email(&self, account: AccountId, email: &Email) -> StoreResult<()>;

    /// Stores a new QR link and, in the same transaction, ends the account's other
    /// open links (`used_at = created_at`).
    async fn insert_enrollment_link(&self, l: &EnrollmentLink) -> StoreResult<()>;
    async fn enrollment_link(&self, token_hash: &TokenHash) -> StoreResult<Option<EnrollmentLink>>;
    /// Uses an open link, atomically (one conditional `UPDATE`): of two concurrent
    /// claims exactly one gets the account.
    async fn claim_enrollment_link(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>>;
    /// A support reset, in one transaction: every factor, session (and so every
    /// mailed code), open link and portal grant (OIDC tokens and codes) of the
    /// account is gone, `link` is the one open link left, and `notice` (the mail
    /// carrying that link) is queued.
    async fn reset_two_factor(
        &self,
        account: AccountId,
        link: &EnrollmentLink,
        notice: Option<&NewMail>,
    ) -> StoreResult<()>;

    /// Retention: deletes what only mattered for a while — sent or failed mail,
    /// reset links and QR links (used or expired), expired remembered devices, SMS
    /// send records, and OIDC requests, codes and tokens — from before `before`.
    async fn delete_spent(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    // ---- remembered devices and recovery codes ------------------------------------

    async fn insert_device(&self, d: &RememberedDevice) -> StoreResult<()>;
    async fn device_by_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RememberedDevice>>;
    async fn touch_device(&self, id: uuid::Uuid, at: DateTime<Utc>) -> StoreResult<()>;
    /// The account's devices, most recently used first.
    async fn devices_of(&self, account: AccountId) -> StoreResult<Vec<RememberedDevice>>;
    async fn delete_device(&self, account: AccountId, id: uuid::Uuid) -> StoreResult<bool>;
    async fn delete_devices_of(&self, account: AccountId) -> StoreResult<u64>;

    /// Replaces the account's recovery codes by these MACs, in one transaction.
    async fn replace_recovery_codes(
        &self,
        account: AccountId,
        macs: &[String],
        at: DateTime<Utc>,
    ) -> StoreResult<()>;
    /// Uses an unused code, atomically; false when there is none with this MAC.
    async fn use_recovery_code(
        &self,
        account: AccountId,
        mac: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool>;
    async fn recovery_codes_left(&self, account: AccountId) -> StoreResult<u32>;

    // ---- one-time codes of half-finished sessions (mailed and SMS) -----------------

    /// Stores the code of `c.purpose` for a session, replacing an earlier one of the
    /// same purpose (its tries start again; `factor_id` and `sends` are as given). A
    /// session's mailed code and its SMS code do not touch each other. The code dies
    /// with its session, and an SMS code also with its factor.
    async fn put_session_code(&self, c: &SessionCode) -> StoreResult<()>;
    async fn session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<Option<SessionCode>>;
    /// Atomically counts one more try and returns the count, so concurrent guesses
    /// cannot exceed the limit; `None` when there is no code.
    async fn count_session_code_try(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<Option<u32>>;
    async fn delete_session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<()>;

    // ---- SMS -------------------------------------------------------------------------

    async fn record_sms_send(&self, s: &crate::sms::SmsSend) -> StoreResult<()>;
    /// Sends since `since`: of this account, to this number, from this address, all.
    async fn sms_sends_since(
        &self,
        account: AccountId,
        number_mac: &str,
        ip: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<crate::sms::SentLastHour>;

    // ---- OpenID Connect ----------------------------------------------------------

    /// Adds a signing key; `Conflict` when its algorithm already has an active key
    /// (a unique index decides, so nodes starting at once add one between them).
    async fn insert_signing_key(&self, k: &SigningKey) -> StoreResult<()>;
    /// Every signing key, active and retired, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// In one transaction: the active key of `k.alg` is retired at `at` and `k`
    /// becomes the active one. `Conflict` when a concurrent rotation won.
    async fn rotate_signing_key(&self, k: &SigningKey, at: DateTime<Utc>) -> StoreResult<()>;
    /// Deletes the keys retired before `before`.
    async fn delete_retired_signing_keys(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Registers a client; `Conflict` when the id is taken.
    async fn insert_client(&self, c: &OidcClient) -> StoreResult<()>;
    async fn client(&self, id: &str) -> StoreResult<Option<OidcClient>>;
    /// Every client in the database, oldest first.
    async fn list_clients(&self) -> StoreResult<Vec<OidcClient>>;
    async fn delete_client(&self, id: &str) -> StoreResult<bool>;

    // ---- the OpenID Connect code flow ----------------------------------------------

    /// Keeps a validated authorization request while the person signs in.
    async fn insert_oidc_request(&self, r: &StoredRequest) -> StoreResult<()>;
    /// The request (JSON) when it exists and `expires_at > now`.
    async fn oidc_request(&self, id: &TokenHash, now: DateTime<Utc>)
        -> StoreResult<Option<String>>;
    async fn insert_oidc_code(&self, c: &StoredCode) -> StoreResult<()>;
    /// Uses a code, atomically (one conditional `UPDATE`): of two concurrent claims
    /// exactly one is `Fresh`; a used code is `Reused`. Expiry is the caller's.
    async fn claim_oidc_code(&self, hash: &TokenHash, now: DateTime<Utc>)
        -> StoreResult<CodeClaim>;
    async fn insert_oidc_token(&self, t: &StoredToken) -> StoreResult<()>;
    async fn oidc_token(&self, hash: &TokenHash) -> StoreResult<Option<StoredToken>>;
    /// Marks an unused, unrevoked refresh token used (rotation), atomically; false
    /// when it was used or revoked already.
    async fn use_refresh_token(&self, hash: &TokenHash, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Revokes every token of a family (issued from one code); returns how many.
    async fn revoke_oidc_family(&self, family: &str, at: DateTime<Utc>) -> StoreResult<u64>;
}
