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
//!   and a reader's checkpoint, beside the writes, has copied all of the log (so
//!   that the writer's turn holds no copying, only the cut); tried on every tick
//!   until it is done, or once a minute after an error;
//! - while writes go on: only a log file grown past [`LARGE`] (by a burst, or
//!   a reader that kept the log from starting afresh), tried at most once a
//!   minute, since each cut stalls the writes for as long as freeing it takes.
//!
//! A cut waits for no one: a reader still reading from the log, or another
//! process holding SQLite's locks, makes it give up at once (SQLite answers
//! `busy`), and a later try does it.

use super::{BESIDE_AT_MOST, CHECKPOINT};
use crate::query::query;
use crate::sqlite_readers::Readers;
use sqlx::{Row, SqlitePool};
use std::path::{Path, PathBuf};
use tokio::time::{Duration, Instant};

/// Copies all of the log into the database file and cuts the log to nothing.
const TRUNCATE: &str = "PRAGMA wal_checkpoint(TRUNCATE)";

/// A log file this large is cut back while writes go on (what SQLite's limit
/// was set to before).
const LARGE: u64 = 64 * 1024 * 1024;

/// Tries while writes go on, and after a try that failed, at most this often.
const WHILE_WRITING_EVERY: Duration = Duration::from_secs(60);

/// What a try came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tried {
    Cut,
    /// A reader still reads from the log, or another process holds a lock.
    Busy,
    Failed,
}

/// When the log is cut back.
pub(super) struct CutBack {
    /// The log file, when the database is a plain file (`None`: its size is
    /// unknown, so it is cut back at rest only).
    log: Option<PathBuf>,
    /// Written to since the last cut.
    pending: bool,
    /// The last try while writes went on.
    tried: Instant,
    /// No try at rest before this (after an error).
    not_before: Instant,
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
            not_before: Instant::now(),
        }
    }

    /// Something was written: the log is to be cut back once writes stop.
    pub(super) fn written(&mut self) {
        self.pending = true;
    }

    /// Writes have stopped: whether a cut is still to be done at `now`.
    pub(super) fn wanted_at_rest(&self, now: Instant) -> bool {
        self.pending && now >= self.not_before
    }

    /// Writes go on: whether to try at `now` (a large log, a minute since the
    /// last try).
    pub(super) fn wanted_while_writing(&self, now: Instant) -> bool {
        // The minute first: the file's size is a system call.
        now >= self.tried + WHILE_WRITING_EVERY
            && self
                .log
                .as_ref()
                .and_then(|log| std::fs::metadata(log).ok())
                .is_some_and(|m| m.len() > LARGE)
    }

    /// Tries to cut the log back, on `pool`'s one connection; the caller holds
    /// the writer's turn.
    pub(super) async fn try_now(&mut self, pool: &SqlitePool) {
        let now = Instant::now();
        self.tried = now;
        match try_truncate(pool).await {
            Tried::Cut => self.pending = false,
            Tried::Busy => {}
            Tried::Failed => self.not_before = now + WHILE_WRITING_EVERY,
        }
    }
}

/// A reader's checkpoint, beside the writer: whether it copied all of the log
/// (then a cut copies only what was written since).
pub(super) async fn copied_beside(readers: &Readers) -> bool {
    // Answers whether a reader kept it from copying all (`busy`), the log's
    // frames and those copied; given up on after the beside checkpoint's time.
    let checkpoint = query(CHECKPOINT);
    let run = readers.fetch_all(&checkpoint, false);
    let Ok(Ok(rows)) = tokio::time::timeout(BESIDE_AT_MOST, run).await else {
        return false;
    };
    rows.first().is_some_and(|r| {
        let column = |i: usize| r.try_get::<i64, _>(i).ok();
        column(0) == Some(0) && column(1).is_some() && column(1) == column(2)
    })
}

/// `TRUNCATE` without waiting for a lock (the connection's wait is put back
/// after).
async fn try_truncate(pool: &SqlitePool) -> Tried {
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "SQLite log not cut back; the next try may");
            return Tried::Failed;
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
            Tried::Cut
        }
        Ok(false) => {
            tracing::debug!("SQLite log still read from or locked; cut back later");
            Tried::Busy
        }
        Err(e) => {
            // It may have kept no wait for another process's lock: a new
            // connection gets the settings again.
            conn.close_on_drop();
            tracing::warn!(error = %e, "SQLite log not cut back; the next try may");
            Tried::Failed
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{checkpointed_writer, Way};
    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;

    /// While writes go on, only a log past the bound is cut, once a minute.
    #[test]
    fn a_large_log_is_cut_while_writing_once_a_minute() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("w.db");
        let log = dir.path().join("w.db-wal");
        let cut = CutBack::new(Some(&db));
        assert_eq!(cut.log.as_deref(), Some(log.as_path()));
        let a_minute_on = cut.tried + WHILE_WRITING_EVERY;
        // No log at all, then one at the bound: never.
        assert!(!cut.wanted_while_writing(a_minute_on));
        let file = std::fs::File::create(&log).unwrap();
        file.set_len(LARGE).unwrap();
        assert!(!cut.wanted_while_writing(a_minute_on));
        // Past the bound: a minute after the last try, not sooner.
        file.set_len(LARGE + 1).unwrap();
        assert!(cut.wanted_while_writing(a_minute_on));
        assert!(!cut.wanted_while_writing(a_minute_on - Duration::from_secs(1)));
        // A database of unknown file: at rest only, once written to.
        let mut unknown = CutBack::new(None);
        assert!(!unknown.wanted_while_writing(a_minute_on));
        assert!(!unknown.wanted_at_rest(a_minute_on));
        unknown.written();
        assert!(unknown.wanted_at_rest(Instant::now()));
    }

    /// A try that failed (here: the pool is closed) waits a minute before the
    /// next at rest; one that found the log busy does not wait.
    #[tokio::test]
    async fn a_failed_try_waits_a_minute_at_rest() {
        let pool = sqlx::sqlite::SqlitePoolOptions::new()
            .connect("sqlite::memory:")
            .await
            .unwrap();
        pool.close().await;
        let mut cut = CutBack::new(None);
        cut.written();
        cut.try_now(&pool).await;
        assert!(cut.pending);
        assert!(!cut.wanted_at_rest(Instant::now()));
        assert!(cut.wanted_at_rest(Instant::now() + WHILE_WRITING_EVERY));
    }

    /// Once writes stop, the log is copied in full and cut to nothing, by either
    /// way of writing; what was written stays.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_is_cut_back_once_writes_stop() {
        the_log_is_cut_back_by(Way::Sqlx).await;
        the_log_is_cut_back_by(Way::Direct).await;
    }

    async fn the_log_is_cut_back_by(way: Way) {
        let (_dir, pool, w, log) = checkpointed_writer(way).await;
        for i in 0..50 {
            let q = query("INSERT INTO t (k, pad) VALUES ($1, zeroblob(4000))");
            w.execute(q.bind(format!("k{i}"))).await.unwrap();
        }
        let size = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        assert!(size() > 0, "the log holds the writes");
        // Two checkpoints after the last write, half a second apart (a reader's
        // taking up to a second on a busy machine), then the cut on the next tick:
        // ten seconds is plenty.
        let started = std::time::Instant::now();
        while size() > 0 && started.elapsed() < std::time::Duration::from_secs(10) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(size(), 0, "the log was not cut back");
        // The pool's connection waits for the write lock as before.
        let waits: i64 = sqlx::query_scalar("PRAGMA busy_timeout")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(waits, 5000);
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 50);
    }

    /// A reader still reading from the log keeps it; the cut is tried again, and
    /// done once that reader ends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_on_the_log_puts_the_cut_off_until_it_ends() {
        use sqlx::Connection;
        let (dir, _pool, w, log) = checkpointed_writer(Way::Direct).await;
        let size = || std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
        let insert = |i: i64| {
            query("INSERT INTO t (k, pad) VALUES ($1, zeroblob(4000))").bind(format!("k{i}"))
        };
        for i in 0..25 {
            w.execute(insert(i)).await.unwrap();
        }
        let mut reader = sqlx::SqliteConnection::connect_with(
            &SqliteConnectOptions::new().filename(dir.path().join("w.db")),
        )
        .await
        .unwrap();
        sqlx::query("BEGIN").execute(&mut reader).await.unwrap();
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
            .fetch_one(&mut reader)
            .await
            .unwrap();
        assert_eq!(seen, 25);
        for i in 25..50 {
            w.execute(insert(i)).await.unwrap();
        }
        // Past the two checkpoints after the last write and a few tries at rest.
        tokio::time::sleep(std::time::Duration::from_secs(3)).await;
        assert!(size() > 0, "the log was cut under a reader");
        sqlx::query("COMMIT").execute(&mut reader).await.unwrap();
        let started = std::time::Instant::now();
        while size() > 0 && started.elapsed() < std::time::Duration::from_secs(10) {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert_eq!(size(), 0, "the log was not cut back once the reader ended");
    }
}
