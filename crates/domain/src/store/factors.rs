//! Second factors: TOTP apps and SMS numbers.

use crate::account::AccountId;
use crate::error::StoreResult;
use crate::factor::{Factor, FactorId};
use crate::mail::NewMail;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait FactorStore: Send + Sync + 'static {
    async fn insert_factor(&self, f: &Factor) -> StoreResult<()>;
    async fn factors_of(&self, account: AccountId) -> StoreResult<Vec<Factor>>;
    /// Confirms a factor being set up (false when it is not pending) and, in the
    /// same transaction, queues `notice` and replaces the account's recovery codes
    /// by `recovery_code_macs` (when it was confirmed), so the change never happens
    /// without its notice, nor a first factor without its recovery codes.
    async fn confirm_factor(
        &self,
        id: FactorId,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
        recovery_code_macs: Option<&[String]>,
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
}
