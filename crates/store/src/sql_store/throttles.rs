//! Throttles kept apart from the account, one row per key.
//!
//! Taking, giving back and clearing attempts (and the buckets') commit lazily
//! (see `ThrottleStore` for the rule that makes that safe): on PostgreSQL the
//! wait for the disk was most of a password step's writes, and the address
//! budget's row stayed locked through it.

use super::{Backend, SqlStore};
use crate::rows::{count, Columns};
use crate::sql::{placeholders, query, Db, Exec, Query};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::store::{
    Attempt, Bucket, BucketTake, StoreError, StoreResult, ThrottleState, ThrottleStore,
};

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
        .bind(a.cap.map_or(NEVER, i64::from))
        .commit_lazily();
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
        .bind(key)
        .commit_lazily();
        self.db().run(q).await
    }

    async fn clear_throttle(&self, key: &str) -> StoreResult<()> {
        self.settle_right_answer(&[key], None).await
    }

    async fn take_from_bucket(&self, b: &Bucket<'_>) -> StoreResult<BucketTake> {
        // A bucket's row keeps in `failures` the moment (ms since 1970) it will be
        // empty (GCRA's "theoretical arrival time"), integer arithmetic that reads
        // the same on both databases. An attempt adds one interval to it, counted
        // from now if it lies behind; the bucket is full when that would end more
        // than `capacity` intervals from now.
        let (now, step) = (b.now.timestamp_millis(), interval_ms(b));
        let last_room = now + step * (i64::from(b.capacity) - 1);
        let q = query(
            "INSERT INTO throttles (key, account_id, failures, since, last_at, locked_until)
             VALUES ($1, NULL, $2 + $3, $4, $4, NULL)
             ON CONFLICT (key) DO UPDATE SET
                 failures = CASE WHEN throttles.failures < $2 THEN $2
                                 ELSE throttles.failures END + $3,
                 last_at = $4
             WHERE throttles.failures <= $5
             RETURNING failures",
        )
        .bind(b.key)
        .bind(now)
        .bind(step)
        .bind(b.now)
        .bind(last_room)
        .commit_lazily();
        if let Some(r) = self.db().fetch_optional(q).await? {
            let empty_at = r.int("failures")?;
            // Whole intervals, rounded up: 1 for this attempt into an empty one.
            let held = (empty_at - now + step - 1) / step;
            return Ok(BucketTake::Taken(count(held)));
        }
        let q = query("SELECT failures FROM throttles WHERE key = $1").bind(b.key);
        let empty_at = self
            .db()
            .optional(q, |r| r.int("failures"))
            .await?
            .unwrap_or(now);
        let room_at = empty_at - step * (i64::from(b.capacity) - 1);
        let until = chrono::DateTime::from_timestamp_millis(room_at.max(now))
            .ok_or_else(|| StoreError::Corrupt(format!("bucket {}: {empty_at}", b.key)))?;
        Ok(BucketTake::Full { until })
    }

    async fn give_back_to_bucket(&self, b: &Bucket<'_>) -> StoreResult<()> {
        self.db().run(bucket_give_back(b)).await
    }

    async fn settle_right_answer(
        &self,
        keys: &[&str],
        bucket: Option<&Bucket<'_>>,
    ) -> StoreResult<()> {
        debug_assert!(
            bucket.is_none_or(|b| !keys.contains(&b.key)),
            "a bucket is settled apart from the throttles cleared"
        );
        // `($1, …)`: the keys, numbered from 1.
        let listed = placeholders(1, keys.len());
        let clear = format!("DELETE FROM throttles WHERE key IN {listed}");
        let with_keys = |sql: String| keys.iter().fold(query(sql), |q, k| q.bind(*k));
        let Some(b) = bucket else {
            if keys.is_empty() {
                return Ok(());
            }
            return self.db().run(with_keys(clear).commit_lazily()).await;
        };
        if keys.is_empty() {
            return self.db().run(bucket_give_back(b)).await;
        }
        let Db::Sqlite(pools) = self.db() else {
            // One statement: the rows are different ones (a data-modifying WITH
            // runs whether read or not).
            let sql = format!(
                "WITH cleared AS ({clear}) {}",
                give_back_sql(keys.len() + 1)
            );
            let q = with_keys(sql).bind(interval_ms(b)).bind(b.key);
            return self.db().run(q.commit_lazily()).await;
        };
        // SQLite has no writes in WITH: two statements in one transaction, each
        // numbering its parameters from 1.
        let steps = vec![with_keys(clear).commit_lazily(), bucket_give_back(b)];
        pools.writer.together(steps).await?;
        Ok(())
    }
}

/// Takes an attempt out of bucket `b`.
fn bucket_give_back(b: &Bucket<'_>) -> Query {
    let q = query(give_back_sql(1)).bind(interval_ms(b)).bind(b.key);
    q.commit_lazily()
}

/// The statement that takes an attempt out of a bucket, its parameters (the
/// interval, then the key) numbered from `$first`.
fn give_back_sql(first: usize) -> String {
    format!(
        "UPDATE throttles SET failures = failures - ${first} WHERE key = ${}",
        first + 1
    )
}

/// A bucket's interval in milliseconds, at least 1.
fn interval_ms(b: &Bucket<'_>) -> i64 {
    b.interval.num_milliseconds().max(1)
}
