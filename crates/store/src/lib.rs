//! The storage of [`tweestap_domain::store::Store`], one implementation for SQLite
//! (the embedded default) and PostgreSQL (for several server nodes sharing one
//! database): [`SqlStore`], with its queries written once.
//!
//! Both keep their schema in `migrations/<backend>/` (the column types differ:
//! SQLite keeps ids and times as text); the two directories must stay in step (same
//! numbering, same meaning), which `tests/conformance.rs` checks along with the
//! behaviour of every trait method on both backends.

mod kept;
mod migrations;
mod postgres;
mod query;
mod rows;
mod session_cache;
mod session_listener;
mod sql;
mod sql_store;
mod sqlite;
mod sqlite_inline;
mod sqlite_readers;
mod sqlite_writer;

pub use postgres::{Postgres, PostgresStore};
pub use sql_store::{Backend, SqlStore};
pub use sqlite::{Sqlite, SqliteStore};

use std::time::Duration;
use tweestap_domain::store::StoreError;

/// How a store's connection pool is sized and how long a caller waits for a
/// connection.
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub max_connections: u32,
    /// Connections kept open even when idle.
    pub min_connections: u32,
    /// How long a query waits for a connection (including opening one) before
    /// giving up with [`StoreError::Unavailable`].
    pub acquire_timeout: Duration,
    /// Idle connections above `min_connections` are closed after this long.
    pub idle_timeout: Option<Duration>,
    /// How long a store serves a session it looked up again without reading
    /// it (while no write anywhere could have changed it: see
    /// `session_cache`); `None` reads it every time. On SQLite only for a
    /// plain file (read in-process: `sqlite_inline`).
    pub session_cache: Option<Duration>,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            max_connections: 10,
            min_connections: 0,
            acquire_timeout: Duration::from_secs(5),
            idle_timeout: Some(Duration::from_secs(10 * 60)),
            session_cache: Some(Duration::from_secs(2)),
        }
    }
}

/// How long a connection may sit unused before it is pinged when handed out (by
/// sqlx's pool, which only SQLite's writer still uses, and by [`kept`]).
const PING_WHEN_IDLE_FOR: Duration = Duration::from_secs(1);

impl PoolSettings {
    /// Applies the settings; `max_connections` is at least 1 and `min_connections`
    /// at most `max_connections`.
    pub(crate) fn apply<DB: sqlx::Database>(
        &self,
        opts: sqlx::pool::PoolOptions<DB>,
    ) -> sqlx::pool::PoolOptions<DB> {
        let max = self.max_connections.max(1);
        opts.max_connections(max)
            .min_connections(self.min_connections.min(max))
            .acquire_timeout(self.acquire_timeout)
            .idle_timeout(self.idle_timeout)
            // sqlx pings every connection it hands out by default (and again when
            // it comes back, which cannot be turned off: hence `kept` for the
            // connections that serve single queries); one in steady use proved
            // itself a moment ago.
            .test_before_acquire(false)
            .before_acquire(|conn, meta| {
                Box::pin(async move {
                    if meta.idle_for > PING_WHEN_IDLE_FOR {
                        sqlx::Connection::ping(conn).await?;
                    }
                    Ok(true)
                })
            })
    }
}

/// PostgreSQL error codes (SQLSTATE) that mean the server cannot serve us right now
/// rather than that the query is wrong.
fn pg_unavailable(code: &str) -> bool {
    // Class 08: connection exception.
    code.starts_with("08")
        // admin_shutdown, crash_shutdown, cannot_connect_now.
        || matches!(code, "57P01" | "57P02" | "57P03")
        // too_many_connections (sqlx retries it while connecting, too).
        || code == "53300"
}

/// Sorts sqlx errors into what callers can act on: unreachable (503), duplicate, other.
pub(crate) fn map_err(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db)
            if db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some_and(|pg| pg_unavailable(pg.code())) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        // A connection cut mid-conversation (a proxy or the server going away while
        // we talk) surfaces as a protocol error, e.g. "unexpected response from
        // SSLRequest: 0x00" on an immediate EOF: also "try again later".
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => StoreError::Unavailable(e.to_string()),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(e.to_string())
        }
        _ => StoreError::Other(e.to_string()),
    }
}

/// Refuses to run on a schema older than this binary's when migrations at start are
/// off, with a message that says what to do, instead of failing later on a missing
/// column. A newer schema is fine: migrations only add, so during a rolling upgrade
/// older nodes keep working (except across 0010, which merges two tables; see
/// docs/deployment.md).
pub(crate) fn require_migrated(
    migrator: &sqlx::migrate::Migrator,
    applied: tweestap_domain::store::StoreResult<Vec<i64>>,
) -> tweestap_domain::store::StoreResult<()> {
    let applied = match applied {
        Ok(v) => v,
        Err(u @ StoreError::Unavailable(_)) => return Err(u),
        // No migrations table yet: nothing applied.
        Err(_) => Vec::new(),
    };
    let pending = migrator
        .iter()
        .filter(|m| !applied.contains(&m.version))
        .count();
    if pending == 0 {
        Ok(())
    } else {
        Err(StoreError::Other(format!(
            "the database lacks {pending} migration(s) this version needs; run `tweestap migrate` (or set [database] migrate_at_start = true)"
        )))
    }
}

/// The versions applied, as sqlx records them.
pub(crate) const APPLIED_MIGRATIONS: &str = "SELECT version FROM _sqlx_migrations WHERE success";

/// A failed migration is [`StoreError::Unavailable`] when the database went away,
/// [`StoreError::Other`] otherwise.
pub(crate) fn map_migrate_err(e: sqlx::migrate::MigrateError) -> StoreError {
    use sqlx::migrate::MigrateError;
    match e {
        MigrateError::Execute(inner) | MigrateError::ExecuteMigration(inner, _) => {
            let message = format!("migration failed: {inner}");
            match map_err(inner) {
                StoreError::Unavailable(_) => StoreError::Unavailable(message),
                _ => StoreError::Other(message),
            }
        }
        other => StoreError::Other(format!("migration failed: {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_codes_meaning_unreachable() {
        for code in [
            "08000", "08006", "08001", "57P01", "57P02", "57P03", "53300",
        ] {
            assert!(pg_unavailable(code), "{code}");
        }
        for code in ["23505", "42P01", "57014", "22003", "2067"] {
            assert!(!pg_unavailable(code), "{code}");
        }
    }

    #[test]
    fn pool_and_io_errors_are_unavailable() {
        assert!(matches!(
            map_err(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            map_err(sqlx::Error::Io(refused)),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::RowNotFound),
            StoreError::Other(_)
        ));
    }
}
