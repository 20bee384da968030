//! A group's statements in one go, on a writing connection of our own (issue 19).
//!
//! sqlx runs every statement of a SQLite connection on that connection's own
//! thread: each is a hand-off there and a wake-up back. The writer runs its
//! groups one after the other, so those hand-offs were its chain: a right code's
//! six statements, with the group's BEGIN and COMMIT around them, held the code
//! step near 2,000 right codes/s with the cores half idle. Here a whole group
//! (BEGIN IMMEDIATE, every job's statements, COMMIT) runs in one go on the
//! writer's thread (see [`super::own_thread`]), on a rusqlite connection to the
//! same file with the same settings as sqlx's writing connection; in the same
//! turn the groups that queued meanwhile run too ([`Direct::commit_following`]).
//!
//! One writes at a time: a group here takes the writer's turn
//! ([`super::Writer::turn`]), which a caller's transaction on sqlx's writing
//! connection holds until it has committed or rolled back, so neither meets the
//! other's lock in SQLite's busy handler (which sleeps). A database that is not
//! a plain file (in memory, or named by a URL with options) keeps every write on
//! sqlx's connection.

use super::{answer, Done, Job, Lost, Outcome, Want, WrittenRow, MAX_GROUP};
use crate::query::Query;
use crate::sqlite_inline::{all_rows, bind, single, InlineRow, Unbound};
use rusqlite::{ffi, Connection, OpenFlags, TransactionBehavior};
use sqlx::SqlitePool;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tweestap_domain::store::StoreError;

/// The settings copied from sqlx's writing connection: how commits sync, foreign
/// keys, the wait for another process's lock, and no checkpoint inside a commit
/// (see [`super::Writer::start`]).
const COPIED: [&str; 5] = [
    "synchronous",
    "foreign_keys",
    "busy_timeout",
    "wal_autocheckpoint",
    "journal_size_limit",
];

/// Groups run after the first in one turn at most (then the turn is let go, for
/// a checkpoint or a caller's transaction that waits for it).
pub(super) const FOLLOWING: usize = 8;

/// How long a turn goes on taking more groups, counted from its first.
const FOLLOWING_FOR: Duration = Duration::from_millis(5);

/// Prepared statements kept: every write the server makes, about.
const STATEMENTS: usize = 256;

/// The writing connection of our own, opened when first needed (and again after
/// a group lost its transaction, whatever state that left it in).
pub(super) struct Direct {
    path: PathBuf,
    settings: Vec<(&'static str, i64)>,
    conn: Option<Connection>,
}

impl Direct {
    /// Writes to the file at `path` with the settings `pool`'s connection has.
    pub(super) async fn configure(pool: &SqlitePool, path: PathBuf) -> Result<Self, sqlx::Error> {
        let mut settings = Vec::with_capacity(COPIED.len());
        for name in COPIED {
            let value: i64 = sqlx::query_scalar(&format!("PRAGMA {name}"))
                .fetch_one(pool)
                .await?;
            settings.push((name, value));
        }
        Ok(Self {
            path,
            settings,
            conn: None,
        })
    }

    /// Whether every statement of `group` can run here: one statement per text
    /// (sqlx runs all of a text's, rusqlite only the first).
    pub(super) fn takes(group: &[Job]) -> bool {
        group.iter().all(|job| match job {
            Job::One { query, .. } => single(query),
            Job::Together { steps, .. } => steps.iter().all(single),
        })
    }

    /// [`super::commit_group`] on this connection: runs and commits the group,
    /// then answers each caller; a job that loses the transaction is answered
    /// with its error and the others run again. The jobs not run when the
    /// connection does not open, for sqlx's connection to run.
    pub(super) fn commit_group(&mut self, mut group: Vec<Job>) -> Option<Vec<Job>> {
        while !group.is_empty() {
            let conn = match self.connection() {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "the SQLite writer's own connection did not open");
                    return Some(group);
                }
            };
            match run_group(conn, &group) {
                Ok(done) => {
                    answer(group, done);
                    return None;
                }
                Err(lost) => {
                    // Whatever state the connection was left in, the next try
                    // gets a fresh one.
                    self.conn = None;
                    lost.answer(&mut group);
                }
            }
        }
        None
    }

    /// [`Self::commit_group`], then, while the caller's turn is held, the jobs
    /// that queued meanwhile, group after group on this thread, for at most
    /// [`FOLLOWING`] groups and [`FOLLOWING_FOR`], without letting the turn go
    /// and taking it again for each. What is left for sqlx's connection (see
    /// [`Self::commit_group`]), or jobs whose statements this connection does not
    /// take.
    pub(super) fn commit_following(
        &mut self,
        group: Vec<Job>,
        jobs: &mut mpsc::Receiver<Job>,
    ) -> Option<Vec<Job>> {
        self.commit_following_within(group, jobs, FOLLOWING, FOLLOWING_FOR)
    }

    /// [`Self::commit_following`] with at most `groups` more groups, taken for
    /// `time` from the start.
    pub(super) fn commit_following_within(
        &mut self,
        group: Vec<Job>,
        jobs: &mut mpsc::Receiver<Job>,
        groups: usize,
        time: Duration,
    ) -> Option<Vec<Job>> {
        let started = Instant::now();
        let mut rest = self.commit_group(group);
        for _ in 0..groups {
            if rest.is_some() || started.elapsed() >= time {
                break;
            }
            let mut next = Vec::new();
            while next.len() < MAX_GROUP {
                match jobs.try_recv() {
                    Ok(job) => next.push(job),
                    Err(_) => break,
                }
            }
            if next.is_empty() {
                break;
            }
            if !Self::takes(&next) {
                return Some(next);
            }
            rest = self.commit_group(next);
        }
        rest
    }

    pub(super) fn connection(&mut self) -> rusqlite::Result<&mut Connection> {
        let conn = match self.conn.take() {
            Some(c) => c,
            None => self.open()?,
        };
        Ok(self.conn.insert(conn))
    }

    fn open(&self) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        for (name, value) in &self.settings {
            // Stepped to the end: some of these answer with the new value.
            let mut stmt = conn.prepare(&format!("PRAGMA {name} = {value}"))?;
            let mut rows = stmt.raw_query();
            while rows.next()?.is_some() {}
        }
        conn.set_prepared_statement_cache_capacity(STATEMENTS);
        Ok(conn)
    }
}

/// Runs the group's statements in one transaction and commits: each job's
/// answer, or what lost the transaction. As on sqlx's connection (see
/// [`super::commit_group`]), a constraint broken by a job of one statement fails
/// that job alone: SQLite undoes that statement and the transaction goes on.
fn run_group(conn: &mut Connection, group: &[Job]) -> Result<Vec<Outcome>, Lost> {
    let lost = |at: Option<usize>| {
        move |e: rusqlite::Error| Lost {
            at,
            error: store_error(&e),
        }
    };
    // IMMEDIATE takes the write lock now (waiting for another process, e.g. an
    // admin command, under the busy timeout) rather than at the first write.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(lost(None))?;
    let mut done = Vec::with_capacity(group.len());
    for (i, job) in group.iter().enumerate() {
        match job {
            Job::One { query, want, .. } => match run(&tx, query) {
                Ok((rows, changes)) => done.push(Outcome::One(Ok(match want {
                    Want::Affected => Done::Affected(changes),
                    Want::Rows => Done::Rows(rows.into_iter().map(WrittenRow::Inline).collect()),
                }))),
                Err(e) if fails_alone(&e) => done.push(Outcome::One(Err(store_error(&e)))),
                Err(e) => return Err(lost(Some(i))(e)),
            },
            Job::Together { steps, .. } => {
                let mut rows = Vec::with_capacity(steps.len());
                for q in steps {
                    let (r, _) = run(&tx, q).map_err(lost(Some(i)))?;
                    rows.push(r.into_iter().map(WrittenRow::Inline).collect());
                }
                done.push(Outcome::Together(rows));
            }
        }
    }
    tx.commit().map_err(lost(None))?;
    Ok(done)
}

/// Runs `q` to its end: its rows and the rows it changed.
fn run(conn: &Connection, q: &Query) -> rusqlite::Result<(Vec<InlineRow>, u64)> {
    let mut stmt = conn.prepare_cached(&q.sql)?;
    bind(&mut stmt, q, Unbound::AsSqlx)?;
    let rows = all_rows(&mut stmt)?;
    Ok((rows, conn.changes()))
}

/// SQLite's extended code of `e`, if it is SQLite's error.
fn extended_code(e: &rusqlite::Error) -> Option<i32> {
    e.sqlite_error().map(|f| f.extended_code)
}

/// A broken constraint that SQLite undid alone (the kinds sqlx tells apart).
fn fails_alone(e: &rusqlite::Error) -> bool {
    matches!(
        extended_code(e),
        Some(
            ffi::SQLITE_CONSTRAINT_UNIQUE
                | ffi::SQLITE_CONSTRAINT_PRIMARYKEY
                | ffi::SQLITE_CONSTRAINT_FOREIGNKEY
                | ffi::SQLITE_CONSTRAINT_NOTNULL
                | ffi::SQLITE_CONSTRAINT_CHECK
        )
    )
}

/// As `crate::map_err` has sqlx's errors: a duplicate is a conflict, anything
/// else an error with SQLite's message.
fn store_error(e: &rusqlite::Error) -> StoreError {
    match extended_code(e) {
        Some(ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY) => {
            StoreError::Conflict
        }
        _ => StoreError::Other(e.to_string()),
    }
}
