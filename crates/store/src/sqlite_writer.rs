//! SQLite's writes, committed in groups (issue 19).
//!
//! SQLite has one writer at a time. With a pool of writers, a second one finds the
//! lock taken and sleeps in SQLite's busy handler (1, 2, 5, 10 … ms): the code
//! step's p99 was 19 ms at 2,000/s. And each commit in WAL mode with
//! `synchronous=FULL` syncs the log (about 130 µs here), which alone caps a writer
//! near 7,000 commits/s.
//!
//! So every statement that writes and is not part of a caller's transaction goes
//! to one task here, which owns the only writing connection (transactions take it
//! from the same one-connection pool). The task runs whatever has queued up in one
//! transaction (a statement that fails leaves the others: see [`commit_group`]),
//! commits once, and only then answers each caller: a caller hears
//! "done" only once its write is on disk, as with a commit of its own, but a
//! hundred of them share one sync. Readers have a pool of their own (WAL lets them
//! read the last commit while the writer works).

use crate::map_err;
use crate::query::{query, Query};
use crate::sqlite_readers::Readers;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, SqlitePool};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tweestap_domain::store::{StoreError, StoreResult};

/// Statements run in one transaction at most; a queue longer than this is
/// committed in several.
const MAX_GROUP: usize = 256;

/// Statements waiting for the writer at most; callers beyond wait to queue.
const QUEUE: usize = 4096;

/// What a caller wants of its statement.
enum Want {
    Affected,
    Rows,
}

/// The answer of a statement.
enum Done {
    Affected(u64),
    Rows(Vec<SqliteRow>),
}

/// One caller's write: one statement, or several that stand or fall together.
enum Job {
    One {
        query: Query,
        want: Want,
        reply: oneshot::Sender<StoreResult<Done>>,
    },
    Together {
        steps: Vec<Query>,
        reply: oneshot::Sender<StoreResult<Vec<Vec<SqliteRow>>>>,
    },
}

impl Job {
    /// Answers the caller with `error`.
    fn fail(self, error: StoreError) {
        // A caller that gave up no longer listens.
        match self {
            Job::One { reply, .. } => drop(reply.send(Err(error))),
            Job::Together { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// What a job did inside the group's transaction.
enum Outcome {
    One(StoreResult<Done>),
    Together(Vec<Vec<SqliteRow>>),
}

/// The handle of the writing task; clones share it. The task ends when the last
/// handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    /// Set by a transaction committed on the writer's connection between groups:
    /// the log needs checkpointing then too.
    wrote: Arc<AtomicBool>,
}

impl Writer {
    /// Starts the task on the current runtime, writing through `pool` (one
    /// connection).
    ///
    /// The log is checkpointed from `checkpoints` (a reader's connection) every
    /// half second while writes go on, then finished by the writer between two
    /// groups; never by the commit that fills it: SQLite's automatic checkpoint runs
    /// inside that commit, copying and syncing pages while every writer waits
    /// behind it (the code step's p99 at 70% of its maximum rate was 27 ms).
    pub(crate) fn start(pool: SqlitePool, checkpoints: Readers) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let wrote = Arc::new(AtomicBool::new(false));
        tokio::spawn(run(pool, checkpoints, jobs, wrote.clone()));
        Self { queue, wrote }
    }

    /// A transaction on the writer's connection committed.
    pub(crate) fn wrote_beside(&self) {
        self.wrote.store(true, Ordering::SeqCst);
    }

    /// Runs a statement; the rows it touched, once committed.
    pub(crate) async fn execute(&self, query: Query) -> StoreResult<u64> {
        match self.submit(query, Want::Affected).await? {
            Done::Affected(n) => Ok(n),
            Done::Rows(rows) => Ok(rows.len() as u64),
        }
    }

    /// Runs a statement that returns rows (`RETURNING`); its rows, once committed.
    pub(crate) async fn fetch_all(&self, query: Query) -> StoreResult<Vec<SqliteRow>> {
        match self.submit(query, Want::Rows).await? {
            Done::Rows(rows) => Ok(rows),
            Done::Affected(_) => Ok(Vec::new()),
        }
    }

    /// Runs `steps` in order, all or none (one after the other on the writing
    /// connection, so a step may read what the one before did, e.g. `changes()`);
    /// each step's rows, once committed.
    pub(crate) async fn together(&self, steps: Vec<Query>) -> StoreResult<Vec<Vec<SqliteRow>>> {
        let (reply, answer) = oneshot::channel();
        let job = Job::Together { steps, reply };
        self.queue.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    async fn submit(&self, query: Query, want: Want) -> StoreResult<Done> {
        let (reply, answer) = oneshot::channel();
        let job = Job::One { query, want, reply };
        self.queue.send(job).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn gone() -> StoreError {
    StoreError::Unavailable("the SQLite writer has stopped".into())
}

/// How often the log is checkpointed while writes go on.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// The reader's checkpoint gets this long (a reader's connection may be slow to
/// come while every one is busy); then the writer checkpoints alone, so that the
/// log is synced about once a second whatever the readers do.
const BESIDE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(1);

async fn run(
    pool: SqlitePool,
    checkpoints: Readers,
    mut jobs: mpsc::Receiver<Job>,
    wrote: Arc<AtomicBool>,
) {
    // A database in one connection's memory has no log to checkpoint.
    let readers = match checkpoints {
        Readers::Kept(_) => Some(checkpoints),
        Readers::Writer(_) => None,
    };
    let first = tokio::time::Instant::now() + CHECKPOINT_EVERY;
    let mut tick = tokio::time::interval_at(first, CHECKPOINT_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Checkpoints still worth running: two after any write, none while nothing is
    // written, so that an idle server keeps no reader's connection open for them.
    let mut due = 0u8;
    // The reader's checkpoint running now, if any; the writer's own follows it.
    let mut beside: Option<JoinHandle<()>> = None;
    loop {
        let mut group = Vec::new();
        tokio::select! {
            n = jobs.recv_many(&mut group, MAX_GROUP) => {
                if n == 0 {
                    return;
                }
                commit_group(&pool, group).await;
                due = 2;
            }
            () = ended(&mut beside), if beside.is_some() => {
                beside = None;
                // Between two groups, the writer copies what was committed while
                // the reader's checkpoint ran and syncs the log: little, since the
                // reader's just synced and copied the rest. A checkpoint beside
                // steady commits never copies all of the log, and SQLite starts the
                // log afresh only after one that did, so without this the log would
                // grow for as long as the writes go on; done alone, every other half
                // second, this checkpoint synced half a second of log while every
                // writer waited (3 to 22 ms; the open loop's p99 was 47.8 ms).
                checked(sqlx::query(CHECKPOINT).execute(&pool).await.map(|r| r.rows_affected()));
            }
            _ = tick.tick() => {
                if wrote.swap(false, Ordering::SeqCst) {
                    due = 2;
                }
                let Some(readers) = readers.clone() else {
                    continue;
                };
                if due == 0 || beside.is_some() {
                    continue;
                }
                due -= 1;
                // Beside the writes, a reader's connection copies most of the log
                // and syncs it without holding anyone up; then the writer finishes.
                beside = Some(tokio::spawn(async move {
                    let checkpoint = query(CHECKPOINT);
                    let run = readers.execute(&checkpoint);
                    match tokio::time::timeout(BESIDE_AT_MOST, run).await {
                        Ok(done) => checked(done),
                        Err(_) => tracing::debug!("a reader's checkpoint took too long; the writer's does it all"),
                    }
                }));
            }
        }
    }
}

/// Waits for the task in `beside` to end, however it ends (a panic included);
/// pending forever when there is none.
async fn ended(beside: &mut Option<JoinHandle<()>>) {
    match beside {
        Some(task) => drop(task.await),
        None => std::future::pending().await,
    }
}

/// Copies what the log holds into the database file (PASSIVE: it waits for no
/// reader).
const CHECKPOINT: &str = "PRAGMA wal_checkpoint(PASSIVE)";

fn checked(checkpoint: Result<u64, sqlx::Error>) {
    if let Err(e) = checkpoint {
        tracing::warn!(error = %e, "SQLite checkpoint failed; the next one tries again");
    }
}

/// A statement that breaks a constraint (a duplicate, say) fails alone: SQLite
/// undoes that statement and the transaction goes on. Any other error, or any error
/// in a job of several statements (whose first ones stand), may leave the group's
/// work half done, so the group is rolled back, the failing job answered with its
/// error, and the others run again in a new transaction: no one's write is lost
/// or failed for another's.
async fn commit_group(pool: &SqlitePool, mut group: Vec<Job>) {
    while !group.is_empty() {
        let mut conn = match pool.acquire().await.map_err(map_err) {
            Ok(c) => c,
            Err(e) => {
                for job in group {
                    job.fail(e.clone());
                }
                return;
            }
        };
        match run_group(&mut conn, &group).await {
            Ok(done) => {
                for (job, outcome) in group.into_iter().zip(done) {
                    // A caller that gave up no longer listens; its write stands.
                    match (job, outcome) {
                        (Job::One { reply, .. }, Outcome::One(r)) => drop(reply.send(r)),
                        (Job::Together { reply, .. }, Outcome::Together(r)) => {
                            drop(reply.send(Ok(r)))
                        }
                        (job, _) => job.fail(StoreError::Other("writer mix-up".into())),
                    }
                }
                return;
            }
            Err(Lost { at, error }) => {
                // Whatever state the connection was left in, the next try gets a
                // fresh one.
                conn.close_on_drop();
                drop(conn);
                match at {
                    Some(i) => group.remove(i).fail(error),
                    // Nothing of the group's own (BEGIN or COMMIT failed): all fail.
                    None => {
                        for job in group {
                            job.fail(error.clone());
                        }
                        return;
                    }
                }
            }
        }
    }
}

/// A group's transaction lost, by the statement at `at` (or by BEGIN or COMMIT).
struct Lost {
    at: Option<usize>,
    error: StoreError,
}

/// Runs the group's statements in one transaction and commits: each statement's
/// answer, or what lost the transaction.
async fn run_group(conn: &mut SqliteConnection, group: &[Job]) -> Result<Vec<Outcome>, Lost> {
    let lost = |at: Option<usize>| {
        move |e: sqlx::Error| Lost {
            at,
            error: map_err(e),
        }
    };
    // IMMEDIATE takes the write lock now (waiting for another process, e.g. an
    // admin command, under the busy timeout) rather than at the first write.
    let mut tx = conn
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(lost(None))?;
    let mut done = Vec::with_capacity(group.len());
    for (i, job) in group.iter().enumerate() {
        match job {
            Job::One { query, want, .. } => match run_one(&mut tx, query, want).await {
                Ok(d) => done.push(Outcome::One(Ok(d))),
                Err(sqlx::Error::Database(e)) if e.kind() != sqlx::error::ErrorKind::Other => {
                    done.push(Outcome::One(Err(map_err(sqlx::Error::Database(e)))));
                }
                Err(e) => return Err(lost(Some(i))(e)),
            },
            Job::Together { steps, .. } => {
                let mut rows = Vec::with_capacity(steps.len());
                for q in steps {
                    rows.push(
                        q.sqlite()
                            .fetch_all(&mut *tx)
                            .await
                            .map_err(lost(Some(i)))?,
                    );
                }
                done.push(Outcome::Together(rows));
            }
        }
    }
    tx.commit().await.map_err(lost(None))?;
    Ok(done)
}

async fn run_one(
    conn: &mut SqliteConnection,
    query: &Query,
    want: &Want,
) -> Result<Done, sqlx::Error> {
    match want {
        Want::Affected => query
            .sqlite()
            .execute(conn)
            .await
            .map(|r| Done::Affected(r.rows_affected())),
        Want::Rows => query.sqlite().fetch_all(conn).await.map(Done::Rows),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::query;
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    use sqlx::Row;

    async fn writer() -> (tempfile::TempDir, SqlitePool, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new().filename(dir.path().join("w.db"));
        let pool = writer_pool(opts, "k TEXT PRIMARY KEY, n INTEGER NOT NULL").await;
        let w = Writer::start(pool.clone(), Readers::Writer(pool.clone()));
        (dir, pool, w)
    }

    /// The one writing connection to a new database of `opts`, holding table `t`
    /// with `columns`.
    async fn writer_pool(opts: SqliteConnectOptions, columns: &str) -> SqlitePool {
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.create_if_missing(true))
            .await
            .unwrap();
        sqlx::query(&format!("CREATE TABLE t ({columns})"))
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    fn insert(k: &str, n: i64) -> Query {
        query("INSERT INTO t (k, n) VALUES ($1, $2)")
            .bind(k)
            .bind(n)
    }

    async fn keys(pool: &SqlitePool) -> Vec<String> {
        sqlx::query("SELECT k FROM t ORDER BY k")
            .fetch_all(pool)
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<String, _>("k"))
            .collect()
    }

    /// Many writers at once share transactions; a duplicate fails alone, and a
    /// job of several statements whose second fails leaves nothing of its first,
    /// while everyone else's writes stand.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_write_fails_alone() {
        let (_dir, pool, w) = writer().await;
        w.execute(insert("dup", 0)).await.unwrap();
        // The writer's connection held while the jobs queue up, so that they
        // meet in a few groups rather than each finding the writer idle.
        let held = pool.acquire().await.unwrap();
        let mut calls = tokio::task::JoinSet::new();
        for i in 0..200 {
            let w = w.clone();
            calls.spawn(async move {
                match i % 4 {
                    0 => w.execute(insert("dup", i)).await.map(|_| "dup"),
                    1 => w
                        .together(vec![insert(&format!("half{i:03}"), i), insert("dup", i)])
                        .await
                        .map(|_| "half"),
                    2 => w
                        .together(vec![
                            insert(&format!("pair{i:03}a"), i),
                            query("UPDATE t SET n = n + 1 WHERE k = $1")
                                .bind(format!("pair{i:03}a")),
                        ])
                        .await
                        .map(|_| "pair"),
                    _ => w
                        .execute(insert(&format!("one{i:03}"), i))
                        .await
                        .map(|_| "one"),
                }
            });
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        drop(held);
        let mut ok = 0;
        while let Some(r) = calls.join_next().await {
            match r.unwrap() {
                Ok(kind) => {
                    assert!(kind == "pair" || kind == "one", "{kind} must fail");
                    ok += 1;
                }
                Err(e) => assert!(matches!(e, StoreError::Conflict), "{e:?}"),
            }
        }
        assert_eq!(ok, 100);
        let keys = keys(&pool).await;
        assert_eq!(keys.len(), 101, "dup, 50 pairs, 50 ones: {keys:?}");
        assert!(keys.iter().all(|k| !k.starts_with("half")));
        let bumped: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE k LIKE 'pair%' AND n % 4 = 3")
                .fetch_one(&pool)
                .await
                .unwrap();
        assert_eq!(bumped, 50, "each pair's second statement saw its first");
    }

    /// A statement's rows come back after the commit.
    #[tokio::test]
    async fn returning_rows_come_back() {
        let (_dir, pool, w) = writer().await;
        let rows = w
            .fetch_all(query("INSERT INTO t (k, n) VALUES ('a', 7) RETURNING n"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].get::<i64, _>("n"), 7);
        assert_eq!(keys(&pool).await, ["a"]);
    }

    /// Under steady writes the log starts afresh again and again (each reader's
    /// checkpoint beside the writes is finished by the writer between two groups).
    /// SQLite counts the log's fresh starts in its header (the checkpoint sequence
    /// number, bytes 12 to 15, big-endian); a checkpoint beside steady commits
    /// never copies all of the log, so without the writer's the count stays put.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_log_starts_afresh_under_steady_writes() {
        use sqlx::sqlite::SqliteJournalMode;
        let dir = tempfile::tempdir().unwrap();
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("w.db"))
            .journal_mode(SqliteJournalMode::Wal)
            // No sync per commit, so that a slow disk still gives steady writes.
            .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
            .pragma("wal_autocheckpoint", "0");
        let pool = writer_pool(opts.clone(), "k TEXT PRIMARY KEY, pad BLOB NOT NULL").await;
        let settings = crate::PoolSettings::default();
        let readers = Readers::Kept(crate::kept::Kept::new(opts, &settings));
        let w = Writer::start(pool.clone(), readers);
        let log = dir.path().join("w.db-wal");
        let fresh_starts = || {
            use std::io::Read;
            let mut header = [0u8; 16];
            std::fs::File::open(&log)
                .unwrap()
                .read_exact(&mut header)
                .unwrap();
            u32::from_be_bytes([header[12], header[13], header[14], header[15]])
        };
        let before = fresh_starts();
        let started = std::time::Instant::now();
        let mut i = 0i64;
        // Checkpoints come every half second, a reader's taking up to a second on
        // a busy machine: writes go on until the log has started afresh twice, or
        // for ten seconds, which a working writer never needs.
        let mut after = before;
        while after < before + 2 && started.elapsed() < std::time::Duration::from_secs(10) {
            for _ in 0..100 {
                let q = query("INSERT INTO t (k, pad) VALUES ($1, zeroblob(4000))");
                w.execute(q.bind(format!("k{i}"))).await.unwrap();
                i += 1;
            }
            after = fresh_starts();
        }
        assert!(
            after >= before + 2,
            "the log started afresh {} times in {i} inserts",
            after.saturating_sub(before)
        );
    }
}
