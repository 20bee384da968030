//! Cutting SQLite's log back to nothing, in the writer's turn, never inside a
//! commit.
//!
//! SQLite's own limit (`journal_size_limit`) cuts the log in the first commit
//! after each fresh start: under steady writes, most fresh starts. There the
//! file system freed the log's tail while every writer waited (on a disk
//! mounted with `discard`, 2 to 16 ms for the device), and the next commits
//! allocated it again. So the server's connections keep no limit
//! (`crate::sqlite`), and the writer cuts the log back here instead:
//! - at rest: once writes have stopped and the checkpoints after them have run,
//!   tried on every tick until it is done;
//! - while writes go on: only a log file grown past [`LARGE`] (by a burst, or
//!   a reader that kept the log from starting afresh), tried at most once a
//!   minute, since each cut stalls the writes for as long as freeing it takes.
//!
//! A cut waits for no one: a reader still reading from the log, or another
//! process holding SQLite's locks, makes it give up at once (SQLite answers
//! `busy`), and a later try does it.

use sqlx::SqlitePool;
use std::path::{Path, PathBuf};
use tokio::time::{Duration, Instant};

/// Copies all of the log into the database file and cuts the log to nothing.
const TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

/// A log file this large is cut back while writes go on (what SQLite's limit
/// was set to before).
const LARGE: u64 = 64 * 1024 * 1024;

/// Tries while writes go on, at most this often.
const WHILE_WRITING_EVERY: Duration = Duration::from_secs(60);

/// When the log is cut back.
pub(super) struct CutBack {
    /// The log file, when the database is a plain file (`None`: its size is
    /// unknown, so it is cut back at rest only).
    log: Option<PathBuf>,
    /// Written to since the last cut.
    pending: bool,
    /// The last try while writes went on.
    tried: Instant,
}

impl CutBack {
    pub(super) fn new(database: Option<&Path>) -> Self {
        Self {
            log: database.map(|db| {
                let mut name = db.as_os_str().to_owned();
                name.push("-wal");
                PathBuf::from(name)
            }),
            pending: false,
            tried: Instant::now(),
        }
    }

    /// Something was written: the log is to be cut back once writes stop.
    pub(super) fn written(&mut self) {
        self.pending = true;
    }

    /// Writes have stopped: whether a cut is still to be done.
    pub(super) fn wanted_at_rest(&self) -> bool {
        self.pending
    }

    /// Writes go on: whether to try now (a large log, a minute since the last
    /// try).
    pub(super) fn wanted_while_writing(&self) -> bool {
        let large = self
            .log
            .as_ref()
            .and_then(|log| std::fs::metadata(log).ok())
            .is_some_and(|m| m.len() > LARGE);
        large && self.tried.elapsed() >= WHILE_WRITING_EVERY
    }

    /// Tries to cut the log back, on `pool`'s one connection; the caller holds
    /// the writer's turn.
    pub(super) async fn try_now(&mut self, pool: &SqlitePool) {
        self.tried = Instant::now();
        if try_truncate(pool).await {
            self.pending = false;
        }
    }
}

/// `TRUNCATE` without waiting for a lock (the connection's wait is put back
/// after): whether the log was cut.
async fn try_truncate(pool: &SqlitePool) -> bool {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "SQLite log not cut back; the next try may");
            return false;
        }
    };
    let tried = async {
        let waits: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&mut *conn)
            .await?;
        sqlx::query("PRAGMA busy_timeout = 0")
            .execute(&mut *conn)
            .await?;
        let busy: i64 = sqlx::query_scalar(TRUNCATE).fetch_one(&mut *conn).await?;
        sqlx::query(&format!("PRAGMA busy_timeout = {waits}"))
            .execute(&mut *conn)
            .await?;
        Ok::<_, sqlx::Error>(busy == 0)
    }
    .await;
    match tried {
        Ok(true) => {
            tracing::debug!("SQLite log cut back");
            true
        }
        Ok(false) => {
            tracing::debug!("SQLite log still read from or locked; cut back later");
            false
        }
        Err(e) => {
            // It may have kept no wait for another process's lock: a new
            // connection gets the settings again.
            conn.close_on_drop();
            tracing::warn!(error = %e, "SQLite log not cut back; the next try may");
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// While writes go on, only a log past the bound is cut, once a minute.
    #[test]
    fn a_large_log_is_cut_while_writing_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let log = dir.path().join("w.db-wal");
        let mut cut = CutBack::new(Some(&db));
        assert_eq!(cut.log.as_deref(), Some(log.as_path()));
        let ago = |d: Duration| Instant::now().checked_sub(d).unwrap();
        // No log at all, then one at the bound: never.
        cut.tried = ago(WHILE_WRITING_EVERY);
        assert!(!cut.wanted_while_writing());
        let file = std::fs::File::create(&log).unwrap();
        file.set_len(LARGE).unwrap();
        assert!(!cut.wanted_while_writing());
        // Past the bound: a minute after the last try, not sooner.
        file.set_len(LARGE + 1).unwrap();
        assert!(cut.wanted_while_writing());
        cut.tried = ago(WHILE_WRITING_EVERY - Duration::from_secs(1));
        assert!(!cut.wanted_while_writing());
        // A database of unknown file: at rest only, once written to.
        let mut unknown = CutBack::new(None);
        unknown.tried = ago(WHILE_WRITING_EVERY);
        assert!(!unknown.wanted_while_writing());
        assert!(!unknown.wanted_at_rest());
        unknown.written();
        assert!(unknown.wanted_at_rest());
    }
}
