//! Browser sessions, signed in or half-way.

use crate::account::AccountId;
use crate::error::StoreResult;
use crate::session::Session;
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    async fn insert_session(&self, s: &Session) -> StoreResult<()>;
    async fn session(&self, id: &TokenHash) -> StoreResult<Option<Session>>;
    async fn touch_session(&self, id: &TokenHash, at: DateTime<Utc>) -> StoreResult<()>;
    async fn delete_session(&self, id: &TokenHash) -> StoreResult<()>;
    async fn delete_sessions_of(&self, account: AccountId) -> StoreResult<()>;
    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64>;
}
