//! Which portals a browser sign-in reached, the back-channel logout queue, and the
//! consents given to third-party portals.

use super::{Backend, SqlStore};
use crate::rows::{consent_from, logout_from};
use crate::sql::{query, Exec, Tx, Value};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::oidc::backchannel::QueuedLogout;
use tweestap_domain::oidc::consent::Consent;
use tweestap_domain::store::{PortalStore, StoreResult};
use uuid::Uuid;

/// Queues a logout token for every portal reached by the sign-ins that `filter`
/// (a fixed condition on `oidc_session_clients` with one parameter, `$1`, never
/// input) selects, and forgets them; inside the caller's transaction, so the
/// session's end and the portals being told are one. Returns how many were queued.
pub(super) async fn queue_logouts(
    mut tx: &mut Tx,
    filter: &str,
    key: Value,
    at: DateTime<Utc>,
) -> StoreResult<u64> {
    let q = query(format!(
        "INSERT INTO oidc_logout_queue (sid, client_id, subject, created_at, next_attempt_at, attempts)
         SELECT sid, client_id, CAST(account_id AS TEXT), $2, $2, 0
         FROM oidc_session_clients WHERE {filter}
         ON CONFLICT DO NOTHING"
    ))
    .bind(key.clone())
    .bind(at);
    let queued = tx.execute(q).await?;
    let q = query(format!("DELETE FROM oidc_session_clients WHERE {filter}")).bind(key);
    tx.execute(q).await?;
    Ok(queued)
}

#[async_trait]
impl<B: Backend> PortalStore for SqlStore<B> {
    async fn record_session_client(
        &self,
        sid: &str,
        client_id: &str,
        account: AccountId,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let q = query(
            "INSERT INTO oidc_session_clients (sid, client_id, account_id, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(sid)
        .bind(client_id)
        .bind(account)
        .bind(at);
        self.db().run(q).await
    }

    async fn claim_logouts(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        claim: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<QueuedLogout>> {
        let skip_locked = self.db().sql_skip_locked();
        let q = query(format!(
            "UPDATE oidc_logout_queue SET locked_until = $1, claimed_by = $2, attempts = attempts + 1
             WHERE (sid, client_id) IN (
                 SELECT sid, client_id FROM oidc_logout_queue
                 WHERE next_attempt_at <= $3 AND (locked_until IS NULL OR locked_until <= $3)
                 ORDER BY next_attempt_at, sid, client_id
                 LIMIT $4
                 {skip_locked})
             RETURNING *"
        ))
        .bind(lease_until)
        .bind(claim)
        .bind(now)
        .bind(i64::from(limit));
        self.db().all(q, logout_from).await
    }

    async fn finish_logout(&self, q: &QueuedLogout) -> StoreResult<bool> {
        let s = query(
            "DELETE FROM oidc_logout_queue WHERE sid = $1 AND client_id = $2 AND claimed_by = $3",
        )
        .bind(&q.sid)
        .bind(&q.client_id)
        .bind(q.claim);
        Ok(self.db().execute(s).await? == 1)
    }

    async fn retry_logout(
        &self,
        q: &QueuedLogout,
        at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<bool> {
        let s = query(
            "UPDATE oidc_logout_queue SET next_attempt_at = $1, locked_until = NULL, last_error = $2
             WHERE sid = $3 AND client_id = $4 AND claimed_by = $5",
        )
        .bind(at)
        .bind(error)
        .bind(&q.sid)
        .bind(&q.client_id)
        .bind(q.claim);
        Ok(self.db().execute(s).await? == 1)
    }

    async fn pending_logouts(&self) -> StoreResult<u64> {
        let q = query("SELECT COUNT(*) AS n FROM oidc_logout_queue");
        let n = self.db().fetch_one(q).await?;
        Ok(crate::rows::Columns::int(&n, "n")?.try_into().unwrap_or(0))
    }

    async fn oidc_consent(
        &self,
        account: AccountId,
        client_id: &str,
    ) -> StoreResult<Option<String>> {
        let q = query("SELECT * FROM oidc_consents WHERE account_id = $1 AND client_id = $2")
            .bind(account)
            .bind(client_id);
        Ok(self.db().optional(q, consent_from).await?.map(|c| c.scope))
    }

    async fn grant_oidc_consent(
        &self,
        account: AccountId,
        client_id: &str,
        scope: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let q = query(
            "INSERT INTO oidc_consents (account_id, client_id, scope, granted_at)
             VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, client_id)
             DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
        )
        .bind(account)
        .bind(client_id)
        .bind(scope)
        .bind(at);
        self.db().run(q).await
    }

    async fn oidc_consents(&self, account: AccountId) -> StoreResult<Vec<Consent>> {
        let q = query(
            "SELECT * FROM oidc_consents WHERE account_id = $1 ORDER BY granted_at, client_id",
        )
        .bind(account);
        self.db().all(q, consent_from).await
    }

    async fn revoke_oidc_consent(
        &self,
        account: AccountId,
        client_id: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let mut tx = self.db().begin().await?;
        let q = query("DELETE FROM oidc_consents WHERE account_id = $1 AND client_id = $2")
            .bind(account)
            .bind(client_id);
        if (&mut tx).execute(q).await? != 1 {
            return Ok(false);
        }
        let q = query(
            "UPDATE oidc_tokens SET revoked_at = $1
             WHERE account_id = $2 AND client_id = $3 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(account)
        .bind(client_id);
        (&mut tx).execute(q).await?;
        let q = query(
            "DELETE FROM oidc_codes WHERE account_id = $1 AND client_id = $2 AND used_at IS NULL",
        )
        .bind(account)
        .bind(client_id);
        (&mut tx).execute(q).await?;
        tx.commit().await?;
        Ok(true)
    }
}
