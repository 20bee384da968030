//! Keeping the database healthy: is it there, and what may go.

use super::{Backend, SqlStore};
use crate::sql::{query, Exec};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::store::{StoreResult, Upkeep};

#[async_trait]
impl<B: Backend> Upkeep for SqlStore<B> {
    async fn ping(&self) -> StoreResult<()> {
        self.db().execute(query("SELECT 1")).await?;
        Ok(())
    }

    async fn delete_spent(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut n = 0;
        for sql in [
            "DELETE FROM mail_queue WHERE status IN ('sent', 'failed') AND created_at < $1",
            "DELETE FROM password_resets WHERE created_at < $1",
            "DELETE FROM enrollment_links
             WHERE created_at < $1 AND (used_at IS NOT NULL OR expires_at < $1)",
            "DELETE FROM remembered_devices WHERE expires_at < $1",
            "DELETE FROM sms_sends WHERE at < $1",
            "DELETE FROM throttles
             WHERE last_at < $1 AND (locked_until IS NULL OR locked_until < $1)",
            "DELETE FROM oidc_requests WHERE expires_at < $1",
            "DELETE FROM oidc_codes WHERE created_at < $1",
            "DELETE FROM oidc_tokens WHERE expires_at < $1",
            // A sign-in that expired (rather than ended) tells no portal; what it
            // reached is forgotten once no session carries it any more.
            "DELETE FROM oidc_session_clients
             WHERE created_at < $1 AND sid NOT IN (SELECT sid FROM sessions WHERE sid IS NOT NULL)",
        ] {
            n += self.db().execute(query(sql).bind(before)).await?;
        }
        Ok(n)
    }
}
