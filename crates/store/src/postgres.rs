//! PostgreSQL, for several server nodes sharing one database.
//!
//! The queries are the SQLite ones ([`crate::sql_store`]); the checks that must
//! hold across nodes (failure counters, one use per TOTP step, confirming a factor
//! once) are single conditional statements, so the database decides them
//! atomically: under READ COMMITTED a concurrent statement on the same row waits
//! for ours, then re-checks its condition against the committed value.

use crate::sql::Db;
use crate::sql_store::{Backend, SqlStore};
use crate::{map_err, PoolSettings};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use std::str::FromStr;
use tweestap_domain::store::StoreResult;

/// PostgreSQL as the database of a [`SqlStore`].
#[derive(Clone, Copy, Debug)]
pub struct Postgres;

impl Backend for Postgres {}

pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`) and applies
    /// pending migrations when `migrate` is set.
    ///
    /// Gives up after `pool.acquire_timeout` with [`StoreError::Unavailable`] when the
    /// server cannot be reached. Once connected, the pool checks each connection
    /// before handing it out and reconnects by itself when PostgreSQL comes back after
    /// a restart; in between, calls fail with `Unavailable`.
    ///
    /// [`StoreError::Unavailable`]: tweestap_domain::store::StoreError::Unavailable
    pub async fn connect(url: &str, pool: &PoolSettings, migrate: bool) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url).map_err(map_err)?;
        let pool = pool
            .apply(PgPoolOptions::new())
            // Every connection checked before use after all: one killed by the
            // server (pg_terminate_backend, a fail-over) while it sat in the pool
            // for less than a second must not fail a request.
            .test_before_acquire(true)
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        Self::start(Db::Postgres(pool), migrate).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweestap_domain::store::prelude::*;
    use tweestap_domain::store::StoreError;
    use tweestap_testkit as testing;

    /// A connection PostgreSQL terminates under our feet reports `Unavailable`, and
    /// the pool replaces it by itself on the next call.
    #[tokio::test]
    async fn terminated_connections_are_unavailable_then_replaced() {
        let Some(url) = testing::fresh_postgres_database().await else {
            return;
        };
        let store = PostgresStore::connect(&url, &PoolSettings::default(), true)
            .await
            .unwrap();
        let Db::Postgres(pool) = store.db() else {
            unreachable!("a PostgresStore holds a PostgreSQL pool")
        };
        let mut victim = pool.acquire().await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *victim)
            .await
            .unwrap();
        // With a timeout, PostgreSQL waits until the backend is really gone.
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(pool)
            .await
            .unwrap();
        assert!(killed);
        let err = sqlx::query("SELECT 1")
            .execute(&mut *victim)
            .await
            .unwrap_err();
        assert!(
            matches!(map_err(err), StoreError::Unavailable(_)),
            "a terminated connection must be Unavailable"
        );
        drop(victim);

        // Kill every other connection of the pool too; the store must carry on.
        sqlx::query(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(pool)
        .await
        .unwrap();
        store.ping().await.unwrap();
        assert!(store.list_accounts().await.unwrap().is_empty());

        pool.close().await;
        testing::drop_database(&url).await;
    }
}
