//! One-time codes of half-finished sessions (mailed and SMS) and the SMS sends
//! that the hourly limits count.

use crate::account::AccountId;
use crate::error::StoreResult;
use crate::session_code::{CodePurpose, SessionCode};
use crate::sms::{SentLastHour, SmsSend};
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait CodeStore: Send + Sync + 'static {
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
    /// Deletes the code (used up); true for the one call that deleted it, so of two
    /// uses of a right code at once only one has it.
    async fn delete_session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<bool>;

    async fn record_sms_send(&self, s: &SmsSend) -> StoreResult<()>;
    /// Sends since `since`: of this account, to this number, from this address, all.
    async fn sms_sends_since(
        &self,
        account: AccountId,
        number_mac: &str,
        ip: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<SentLastHour>;
    /// The time of the send since `since` that comes `skip` places after the
    /// oldest, among the sends of `of`: when it is an hour old, an hourly limit that
    /// was reached frees up.
    async fn sms_send_at(
        &self,
        of: SmsSendsOf<'_>,
        since: DateTime<Utc>,
        skip: u32,
    ) -> StoreResult<Option<DateTime<Utc>>>;
}

/// Whose SMS sends an hourly limit counts.
#[derive(Debug, Clone, Copy)]
pub enum SmsSendsOf<'a> {
    Account(AccountId),
    /// HMAC of the number.
    Number(&'a str),
    Ip(&'a str),
}
