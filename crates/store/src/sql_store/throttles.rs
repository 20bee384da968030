//! Throttles kept apart from the account, one row per key.

use super::{Backend, SqlStore};
use crate::rows::{count, Columns};
use crate::sql::{query, Exec};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::store::{Attempt, StoreResult, ThrottleState, ThrottleStore};

/// A count that never comes: no lock, no cap.
const NEVER: i64 = i64::MAX;

#[async_trait]
impl<B: Backend> ThrottleStore for SqlStore<B> {
    async fn take_attempt(&self, a: &Attempt<'_>) -> StoreResult<Option<u32>> {
        // One statement on both databases: PostgreSQL takes the row's lock for the
        // conflict and re-reads it, SQLite has one writer at a time, so parallel
        // attempts are counted one after the other. SET reads the old values; the
        // row is left alone (and none returned) while locked or at its cap.
        let q = query(
            "INSERT INTO throttles (key, account_id, failures, since, last_at, locked_until)
             VALUES ($1, $2, 1, $3, $3, CASE WHEN $4 <= 1 THEN $5 END)
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN throttles.since <= $6 THEN 1
                                 ELSE throttles.failures + 1 END,
                 since = CASE WHEN throttles.since <= $6 THEN $3 ELSE throttles.since END,
                 last_at = $3,
                 locked_until = CASE
                     WHEN (CASE WHEN throttles.since <= $6 THEN 1
                                ELSE throttles.failures + 1 END) >= $4 THEN $5
                     ELSE throttles.locked_until END
             WHERE (throttles.locked_until IS NULL OR throttles.locked_until <= $3)
               AND (throttles.since <= $6 OR throttles.failures < $7)
             RETURNING failures",
        )
        .bind(a.key)
        .bind(a.account)
        .bind(a.now)
        .bind(a.lock_at.map_or(NEVER, |(n, _)| i64::from(n)))
        .bind(a.lock_at.map(|(_, hold)| hold))
        .bind(a.restart_before)
        .bind(a.cap.map_or(NEVER, i64::from));
        match self.db().fetch_optional(q).await? {
            Some(r) => Ok(Some(count(r.int("failures")?))),
            None => Ok(None),
        }
    }

    async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>> {
        let q =
            query("SELECT failures, since, locked_until FROM throttles WHERE key = $1").bind(key);
        self.db()
            .optional(q, |r| {
                Ok(ThrottleState {
                    failures: count(r.int("failures")?),
                    since: r.time("since")?,
                    locked_until: r.opt_time("locked_until")?,
                })
            })
            .await
    }

    async fn lock_throttle(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()> {
        let q = query("UPDATE throttles SET locked_until = $1 WHERE key = $2")
            .bind(until)
            .bind(key);
        self.db().run(q).await
    }

    async fn give_back_attempt(&self, key: &str, lock_at: Option<u32>) -> StoreResult<()> {
        let q = query(
            "UPDATE throttles SET failures = failures - 1,
                 locked_until = CASE WHEN failures - 1 < $1 THEN NULL ELSE locked_until END
             WHERE key = $2 AND failures > 0",
        )
        .bind(lock_at.map_or(NEVER, i64::from))
        .bind(key);
        self.db().run(q).await
    }

    async fn clear_throttle(&self, key: &str) -> StoreResult<()> {
        let q = query("DELETE FROM throttles WHERE key = $1").bind(key);
        self.db().run(q).await
    }
}
