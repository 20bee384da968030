//! SQLite's writes, committed in groups (issue 19).
//!
//! SQLite has one writer at a time. With a pool of writers, a second one finds the
//! lock taken and sleeps in SQLite's busy handler (1, 2, 5, 10 … ms): the code
//! step's p99 was 19 ms at 2,000/s. And each commit in WAL mode with
//! `synchronous=FULL` syncs the log (about 130 µs here), which alone caps a writer
//! near 7,000 commits/s.
//!
//! So every statement that writes and is not part of a caller's transaction goes
//! to one writer here, which writes one group at a time, in turn with callers'
//! transactions (on sqlx's one writing connection). The writer runs whatever has
//! queued up in one transaction (a statement that fails leaves the others: see
//! [`commit_group`]), commits once, and only then answers each caller: a caller
//! hears "done" only once its write is on disk, as with a commit of its own, but
//! a hundred of them share one sync. Readers have a pool of their own (WAL lets
//! them read the last commit while the writer works). For a plain file the groups
//! run on a connection of the writer's own, each in one go, in its turn (see
//! [`direct`]), on a thread that owns that connection and the queue (see
//! [`own_thread`]); the task then keeps the checkpoints.

use crate::map_err;
use crate::query::{query, Query};
use crate::sqlite_inline::InlineRow;
use crate::sqlite_readers::Readers;
use cut_back::CutBack;
use direct::Direct;
use sqlx::sqlite::SqliteConnection;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, SqlitePool};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex, OwnedMutexGuard};
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

mod cut_back;
mod direct;
mod own_thread;

/// A row a write returned: read by sqlx, or on the writer's own connection
/// (see [`direct`]).
pub(crate) enum WrittenRow {
    Sqlx(SqliteRow),
    Inline(InlineRow),
}

/// The answer of a statement.
enum Done {
    Affected(u64),
    Rows(Vec<WrittenRow>),
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
        reply: oneshot::Sender<StoreResult<Vec<Vec<WrittenRow>>>>,
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
    Together(Vec<Vec<WrittenRow>>),
}

/// The handle of the writing task (and of the own connection's thread); clones
/// share it. Both end when the last handle is dropped.
#[derive(Debug, Clone)]
pub(crate) struct Writer {
    queue: mpsc::Sender<Job>,
    /// Set at each group's turn and by a transaction committed on sqlx's writing
    /// connection: the log needs checkpointing.
    wrote: Arc<AtomicBool>,
    /// Held by a group on the writer's own connection, and by a caller's
    /// transaction on sqlx's: one writes at a time, so neither waits in SQLite's
    /// busy handler (which sleeps). A lock of our own rather than sqlx's
    /// connection, whose every return to its pool is a hand-off to its thread.
    turn: Arc<Mutex<()>>,
    /// sqlx's writing connection's pool: how long to wait for a turn, and when a
    /// transaction that did not commit has rolled back (see [`WriteTurn`]).
    pool: SqlitePool,
}

/// A caller's turn at writing, held for its transaction on sqlx's writing
/// connection (see [`Writer::turn`]).
///
/// sqlx rolls back a transaction dropped without a commit (an error returned
/// halfway, a client gone) only once its connection is on the way back to its
/// pool, after the turn would be let go: so the turn of a transaction that did
/// not commit is let go only when that connection can be had again, and a
/// group never meets the transaction's write lock in SQLite's busy handler.
pub(crate) struct WriteTurn {
    writer: Writer,
    turn: Option<OwnedMutexGuard<()>>,
    committed: bool,
}

impl WriteTurn {
    /// The transaction's COMMIT ran (`ok`: it committed): the log needs
    /// checkpointing.
    pub(crate) fn ended(&mut self, ok: bool) {
        self.writer.wrote.store(true, Ordering::SeqCst);
        self.committed = ok;
    }
}

impl Drop for WriteTurn {
    fn drop(&mut self) {
        let Some(turn) = self.turn.take() else {
            return;
        };
        if self.committed {
            return;
        }
        let pool = self.writer.pool.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // Had again (or given up on after the pool's wait): rolled back.
                drop(pool.acquire().await);
                drop(turn);
            });
        }
    }
}

impl Writer {
    /// Starts the task on the current runtime, writing through `pool` (one
    /// connection); when the database is the plain file `file`, its groups run on
    /// a connection of the writer's own, each in its turn, on a thread of its own
    /// (see [`direct`] and [`own_thread`]).
    ///
    /// The log is checkpointed from `checkpoints` (a reader's connection) every
    /// half second while writes go on, then finished by the writer between two
    /// groups; never by the commit that fills it: SQLite's automatic checkpoint runs
    /// inside that commit, copying and syncing pages while every writer waits
    /// behind it (the code step's p99 at 70% of its maximum rate was 27 ms).
    pub(crate) fn start(pool: SqlitePool, checkpoints: Readers, file: Option<PathBuf>) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let wrote = Arc::new(AtomicBool::new(false));
        let turn = Arc::new(Mutex::new(()));
        let writing = Writing {
            pool,
            checkpoints,
            file,
            wrote: wrote.clone(),
            turn: turn.clone(),
        };
        let writer = Self {
            queue,
            wrote,
            turn,
            pool: writing.pool.clone(),
        };
        tokio::spawn(run(writing, jobs));
        writer
    }

    /// The turn at writing, for a transaction on sqlx's writing connection: no
    /// group runs on the writer's own connection until it is dropped. Waited
    /// for as long as sqlx's pool waits for a connection, then `Unavailable`.
    pub(crate) async fn turn(&self) -> StoreResult<WriteTurn> {
        Ok(WriteTurn {
            writer: self.clone(),
            turn: Some(wait_turn(&self.turn, &self.pool).await?),
            committed: false,
        })
    }

    /// Runs a statement; the rows it touched, once committed.
    pub(crate) async fn execute(&self, query: Query) -> StoreResult<u64> {
        match self.submit(query, Want::Affected).await? {
            Done::Affected(n) => Ok(n),
            Done::Rows(rows) => Ok(rows.len() as u64),
        }
    }

    /// Runs a statement that returns rows (`RETURNING`); its rows, once committed.
    pub(crate) async fn fetch_all(&self, query: Query) -> StoreResult<Vec<WrittenRow>> {
        match self.submit(query, Want::Rows).await? {
            Done::Rows(rows) => Ok(rows),
            Done::Affected(_) => Ok(Vec::new()),
        }
    }

    /// Runs `steps` in order, all or none (one after the other on the writing
    /// connection, so a step may read what the one before did, e.g. `changes()`);
    /// each step's rows, once committed.
    pub(crate) async fn together(&self, steps: Vec<Query>) -> StoreResult<Vec<Vec<WrittenRow>>> {
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

/// The turn at writing, for a transaction or a group: waited for as long as
/// sqlx's pool waits for a connection (which is what they waited for before the
/// turn), then `Unavailable`.
async fn wait_turn(turn: &Arc<Mutex<()>>, pool: &SqlitePool) -> StoreResult<OwnedMutexGuard<()>> {
    let wait = pool.options().get_acquire_timeout();
    tokio::time::timeout(wait, turn.clone().lock_owned())
        .await
        .map_err(|_| {
            StoreError::Unavailable("timed out waiting for the turn to write to SQLite".into())
        })
}

/// How often the log is checkpointed while writes go on.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// The reader's checkpoint gets this long (a reader's connection may be slow to
/// come while every one is busy); then the writer checkpoints alone, so that the
/// log is synced about once a second whatever the readers do.
const BESIDE_AT_MOST: std::time::Duration = std::time::Duration::from_secs(1);

/// What the writing task works with.
struct Writing {
    pool: SqlitePool,
    checkpoints: Readers,
    file: Option<PathBuf>,
    wrote: Arc<AtomicBool>,
    turn: Arc<Mutex<()>>,
}

async fn run(writing: Writing, jobs: mpsc::Receiver<Job>) {
    let Writing {
        pool,
        checkpoints,
        file,
        wrote,
        turn,
    } = writing;
    let mut cut = CutBack::new(file.as_deref());
    let direct = match file {
        Some(path) => match Direct::configure(&pool, path).await {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!(error = %e, "SQLite writes stay on sqlx's connection");
                None
            }
        },
        None => None,
    };
    // Where the jobs go: to the own connection's thread, or to this task, which
    // commits them on sqlx's connection.
    let (mut queue, mut thread) = match direct {
        Some(direct) => {
            match own_thread::start(direct, jobs, pool.clone(), turn.clone(), wrote.clone()) {
                Ok(ended) => (None, Some(ended)),
                Err((jobs, e)) => {
                    tracing::warn!(error = %e, "SQLite writes stay on sqlx's connection");
                    (Some(jobs), None)
                }
            }
        }
        None => (Some(jobs), None),
    };
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
            n = next_group(&mut queue, &mut group) => {
                if n == 0 {
                    return;
                }
                commit_group(&pool, group).await;
                due = 2;
                cut.written();
            }
            () = thread_ended(&mut thread) => return,
            () = ended(&mut beside), if beside.is_some() => {
                beside = None;
                // In the writer's turn, between two groups, the writer copies what
                // was committed while the reader's checkpoint ran and syncs the
                // log: little, since the reader's just synced and copied the rest.
                // A checkpoint beside steady commits never copies all of the log,
                // and SQLite starts the log afresh only after one that did, so
                // without this the log would grow for as long as the writes go on;
                // done alone, every other half second, this checkpoint synced half a
                // second of log while every writer waited (3 to 22 ms; the open
                // loop's p99 was 47.8 ms).
                match wait_turn(&turn, &pool).await {
                    Ok(held) => {
                        checked(sqlx::query(CHECKPOINT).execute(&pool).await.map(|r| r.rows_affected()));
                        if cut.wanted_while_writing(tokio::time::Instant::now()) {
                            cut.try_now(&pool).await;
                        }
                        drop(held);
                    }
                    Err(_) => tracing::debug!("no turn for the writer's checkpoint; the next one tries again"),
                }
            }
            _ = tick.tick() => {
                if wrote.swap(false, Ordering::SeqCst) {
                    due = 2;
                    cut.written();
                }
                let Some(readers) = readers.clone() else {
                    continue;
                };
                if due == 0 && beside.is_none() && cut.wanted_at_rest(tokio::time::Instant::now()) {
                    // Writes have stopped and both checkpoints after them ran.
                    // The writer's turn is taken only once a reader's checkpoint
                    // has copied all of the log (one held back by a long read
                    // would otherwise be copied in the turn when that read ends).
                    if cut_back::copied_beside(&readers).await {
                        match wait_turn(&turn, &pool).await {
                            Ok(_held) => cut.try_now(&pool).await,
                            Err(_) => tracing::debug!("no turn to cut the log back; the next tick tries again"),
                        }
                    }
                }
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

/// The jobs queued for this task, `MAX_GROUP` at most (0 once the queue has
/// closed); pending forever when they go to the own connection's thread.
async fn next_group(queue: &mut Option<mpsc::Receiver<Job>>, group: &mut Vec<Job>) -> usize {
    match queue {
        Some(q) => q.recv_many(group, MAX_GROUP).await,
        None => std::future::pending().await,
    }
}

/// Waits for the own connection's thread to end, however it ends; pending
/// forever when there is none.
async fn thread_ended(thread: &mut Option<oneshot::Receiver<()>>) {
    match thread {
        Some(ended) => drop(ended.await),
        None => std::future::pending().await,
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
            Ok(done) => return answer(group, done),
            Err(lost) => {
                // Whatever state the connection was left in, the next try gets a
                // fresh one.
                conn.close_on_drop();
                drop(conn);
                lost.answer(&mut group);
            }
        }
    }
}

/// Answers each job of a committed group with what it did.
fn answer(group: Vec<Job>, done: Vec<Outcome>) {
    for (job, outcome) in group.into_iter().zip(done) {
        // A caller that gave up no longer listens; its write stands.
        match (job, outcome) {
            (Job::One { reply, .. }, Outcome::One(r)) => drop(reply.send(r)),
            (Job::Together { reply, .. }, Outcome::Together(r)) => drop(reply.send(Ok(r))),
            (job, _) => job.fail(StoreError::Other("writer mix-up".into())),
        }
    }
}

/// A group's transaction lost, by the statement at `at` (or by BEGIN or COMMIT).
struct Lost {
    at: Option<usize>,
    error: StoreError,
}

impl Lost {
    /// Answers the job at fault with the error and takes it out of `group`, for
    /// the rest to run again; when BEGIN or COMMIT failed (nothing of the group's
    /// own), every job fails.
    fn answer(self, group: &mut Vec<Job>) {
        match self.at {
            Some(i) => group.remove(i).fail(self.error),
            None => {
                for job in group.drain(..) {
                    job.fail(self.error.clone());
                }
            }
        }
    }
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
                    let r = q.sqlite().fetch_all(&mut *tx).await;
                    rows.push(
                        r.map_err(lost(Some(i)))?
                            .into_iter()
                            .map(WrittenRow::Sqlx)
                            .collect(),
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
        Want::Rows => query
            .sqlite()
            .fetch_all(conn)
            .await
            .map(|rows| Done::Rows(rows.into_iter().map(WrittenRow::Sqlx).collect())),
    }
}

#[cfg(test)]
mod tests;
