//! The mail queue: messages wait here until a worker (on any node) sends them.

use super::{Backend, SqlStore};
use crate::rows::{count, mail_from, Columns};
use crate::sql::{query, Exec};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::mail::{NewMail, QueuedMail};
use tweestap_domain::store::{MailQueue, StoreResult};
use uuid::Uuid;

#[async_trait]
impl<B: Backend> MailQueue for SqlStore<B> {
    async fn enqueue_mail(&self, m: &NewMail) -> StoreResult<()> {
        insert_mail(self.db(), m).await
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        claim: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<QueuedMail>> {
        // One statement; how concurrent claims keep apart is the dialect's
        // (`Db::sql_skip_locked`).
        let skip_locked = self.db().sql_skip_locked();
        let q = query(format!(
            "UPDATE mail_queue SET locked_until = $1, claimed_by = $2, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM mail_queue
                 WHERE status = 'queued' AND next_attempt_at <= $3
                   AND (locked_until IS NULL OR locked_until <= $3)
                 ORDER BY next_attempt_at, id
                 LIMIT $4
                 {skip_locked})
             RETURNING *"
        ))
        .bind(lease_until)
        .bind(claim)
        .bind(now)
        .bind(i64::from(limit));
        self.db().all(q, mail_from).await
    }

    async fn mark_mail_sent(&self, m: &QueuedMail, at: DateTime<Utc>) -> StoreResult<bool> {
        let q = query(
            "UPDATE mail_queue SET status = 'sent', sent_at = $1, locked_until = NULL, last_error = NULL
             WHERE id = $2 AND claimed_by = $3 AND status = 'queued'",
        )
        .bind(at)
        .bind(m.id)
        .bind(m.claim);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn retry_mail(
        &self,
        m: &QueuedMail,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<bool> {
        self.release_mail(m, "queued", next_attempt_at, error).await
    }

    async fn fail_mail(&self, m: &QueuedMail, at: DateTime<Utc>, error: &str) -> StoreResult<bool> {
        self.release_mail(m, "failed", at, error).await
    }

    async fn mail_counts(&self) -> StoreResult<Vec<(String, u64)>> {
        let q =
            query("SELECT status, COUNT(*) AS n FROM mail_queue GROUP BY status ORDER BY status");
        let rows = self.db().fetch_all(q).await?;
        rows.iter()
            .map(|r| Ok((r.text("status")?, r.int("n")?.try_into().unwrap_or(0))))
            .collect()
    }

    async fn mails_since(
        &self,
        account: AccountId,
        kind: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let q = query(
            "SELECT COUNT(*) AS n FROM mail_queue
             WHERE account_id = $1 AND kind = $2 AND created_at >= $3",
        )
        .bind(account)
        .bind(kind)
        .bind(since);
        Ok(count(self.db().fetch_one(q).await?.int("n")?))
    }
}

impl<B: Backend> SqlStore<B> {
    /// Gives a claimed message back: to be tried again at `at` (`queued`) or for good
    /// (`failed`). False when the claim was lost to another worker.
    async fn release_mail(
        &self,
        m: &QueuedMail,
        status: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<bool> {
        let q = query(
            "UPDATE mail_queue SET status = $1, next_attempt_at = $2, locked_until = NULL, last_error = $3
             WHERE id = $4 AND claimed_by = $5 AND status = 'queued'",
        )
        .bind(status)
        .bind(at)
        .bind(error)
        .bind(m.id)
        .bind(m.claim);
        Ok(self.db().execute(q).await? == 1)
    }
}

/// Queues `m`, due at once, on the pool or in the caller's transaction (so that a
/// change and its notice are written together).
pub(super) async fn insert_mail(mut db: impl Exec, m: &NewMail) -> StoreResult<()> {
    let q = query(
        "INSERT INTO mail_queue
         (id, account_id, recipient, recipient_name, language, kind, payload, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(m.id)
    .bind(m.account_id)
    .bind(&m.to)
    .bind(&m.to_name)
    .bind(m.language.code())
    .bind(m.notice.kind())
    .bind(m.notice.to_json())
    .bind(m.created_at);
    db.run(q).await
}
