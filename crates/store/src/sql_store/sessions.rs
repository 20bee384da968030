//! Browser sessions, signed in or half-way.

use super::{Backend, SqlStore};
use crate::rows::session_from;
use crate::sql::{query, Exec};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::session::Session;
use tweestap_domain::store::{SessionStore, StoreResult};
use tweestap_domain::token::TokenHash;

#[async_trait]
impl<B: Backend> SessionStore for SqlStore<B> {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        let q = query(
            "INSERT INTO sessions
             (id_hash, account_id, stage, created_at, last_seen_at, auth_time, amr, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.id_hash.0)
        .bind(s.account_id)
        .bind(s.stage.as_str())
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.auth_time)
        .bind(&s.amr)
        .bind(s.ip.as_deref())
        .bind(s.user_agent.as_deref());
        self.db().run(q).await
    }

    async fn session(&self, id: &TokenHash) -> StoreResult<Option<Session>> {
        let q = query("SELECT * FROM sessions WHERE id_hash = $1").bind(&id.0);
        self.db().optional(q, session_from).await
    }

    async fn touch_session(&self, id: &TokenHash, at: DateTime<Utc>) -> StoreResult<()> {
        let q = query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(at)
            .bind(&id.0);
        self.db().run(q).await
    }

    async fn delete_session(&self, id: &TokenHash) -> StoreResult<()> {
        let q = query("DELETE FROM sessions WHERE id_hash = $1").bind(&id.0);
        self.db().run(q).await
    }

    async fn delete_sessions_of(&self, account: AccountId) -> StoreResult<()> {
        let q = query("DELETE FROM sessions WHERE account_id = $1").bind(account);
        self.db().run(q).await
    }

    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let q = query("DELETE FROM sessions WHERE last_seen_at < $1").bind(before);
        self.db().execute(q).await
    }
}
