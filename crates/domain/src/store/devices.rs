//! Remembered devices and recovery codes: the ways around a second factor.

use crate::account::AccountId;
use crate::device::RememberedDevice;
use crate::error::StoreResult;
use crate::factor::Factor;
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What an account has for the code step, as the profile shows it, and how many
/// portals it gave consent to (the profile's one read, with the session).
#[derive(Debug, Clone, Default)]
pub struct SecondSteps {
    /// Oldest first, confirmed or not.
    pub factors: Vec<Factor>,
    /// Most recently used first, expired or not.
    pub devices: Vec<RememberedDevice>,
    pub recovery_codes_left: u32,
    /// Portals the person has given consent to: the profile reads them (one more
    /// query) only when there are some, which for most people there are not.
    pub consents: u32,
}

#[async_trait]
pub trait DeviceStore: Send + Sync + 'static {
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
    /// The account's factors, devices and unused recovery codes, read at once
    /// (one query: the profile and `GET /me` show all three).
    async fn second_steps_of(&self, account: AccountId) -> StoreResult<SecondSteps>;
}
