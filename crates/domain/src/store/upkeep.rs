//! Keeping the database healthy: is it there, and what may go.

use crate::error::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait Upkeep: Send + Sync + 'static {
    async fn ping(&self) -> StoreResult<()>;
    /// Retention: deletes what only mattered for a while — sent or failed mail,
    /// reset links and QR links (used or expired), expired remembered devices, SMS
    /// send records, throttles left idle, and OIDC requests, codes and tokens — from
    /// before `before`.
    async fn delete_spent(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}
