//! SQLite's plain reads, run on the calling thread (issue 19).
//!
//! sqlx runs every statement of a SQLite connection on that connection's own
//! thread: a read is a hand-off there and a wake-up back, two context switches
//! that cost more than the read (a session by its hash is a few µs of SQLite
//! work; the hand-off made it 70 µs, and the profile page spent 45% of its time
//! in the kernel switching threads). A read of a WAL database takes no lock a
//! writer holds, so it can run where it is asked for: here, on a connection of
//! our own (rusqlite, over the same libsqlite3 as sqlx), inline.
//!
//! Inline means the runtime's thread waits for the read, so a read here should
//! not take long: the connections have no busy timeout, and a read SQLite answers
//! with `SQLITE_BUSY` (a log being reset, a recovery), or one that runs past a
//! budget of SQLite's steps (a search through every address of a large
//! console), is stopped and goes the sqlx way instead, where waiting blocks no
//! one. So does any read that fails here for any other reason: sqlx's readers
//! give the answer, and its error, as before ([`Inline::fetch_all`] says why).
//! A read past the budget closes the connections it used, here and there: each
//! would keep up to 2 MB of the scan's pages that the short reads never need.
//! Transactions and checkpoints keep to sqlx's connections (writes have a
//! connection of their own: `sqlite_writer::direct`).
//! What the budget does not bound: opening a connection, pages read from a cold
//! disk, and SQLite's own short retries while a read begins on a log being reset.

use crate::query::Query;
use crate::rows::Columns;
use chrono::{DateTime, Utc};
use rusqlite::types::{Type, ValueRef};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tweestap_domain::store::{StoreError, StoreResult};
use uuid::Uuid;

/// Connections kept between reads beyond one per core (each runtime worker
/// reads on one at a time).
const SPARE: usize = 4;

/// Prepared statements kept per connection: every read the server makes, about.
const STATEMENTS: usize = 256;

/// SQLite's virtual machine steps between two calls of the progress handler, and
/// the calls an inline read may take: 200,000 steps, a millisecond or two. A
/// session, account or token by its key takes a few hundred.
const STEPS_PER_CALL: i32 = 1_000;
const CALLS: u32 = 200;

/// Why a read is left to sqlx's readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotInline {
    /// It ran past the budget: a scan of a large table, likely to fill the
    /// page cache of whichever connection reads it.
    Large,
    /// Busy, not ours to bind, or failed.
    Other,
}

/// The database file's reading connections, opened when needed.
#[derive(Debug, Clone)]
pub(crate) struct Inline {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    path: PathBuf,
    idle: Mutex<Vec<ReadConn>>,
    kept: usize,
}

/// A connection, the progress handler's count of the read it runs, and the
/// database's `data_version` when [`Inline::changed`] last looked on it.
#[derive(Debug)]
struct ReadConn {
    conn: Connection,
    calls: Arc<AtomicU32>,
    version: Option<i64>,
}

/// A row read inline: its values, by the statement's column names.
#[derive(Debug)]
pub(crate) struct InlineRow {
    names: Arc<[String]>,
    values: Vec<Cell>,
}

/// A column's value as SQLite has it; text kept as bytes until read, so that text
/// that is not UTF-8 is an error of the column read, as with sqlx, not a panic.
#[derive(Debug)]
enum Cell {
    Null,
    Integer(i64),
    Real,
    Text(Vec<u8>),
    Blob(Vec<u8>),
}

impl From<ValueRef<'_>> for Cell {
    fn from(v: ValueRef<'_>) -> Self {
        match v {
            ValueRef::Null => Cell::Null,
            ValueRef::Integer(i) => Cell::Integer(i),
            ValueRef::Real(_) => Cell::Real,
            ValueRef::Text(t) => Cell::Text(t.to_vec()),
            ValueRef::Blob(b) => Cell::Blob(b.to_vec()),
        }
    }
}

impl Inline {
    /// Reads of the database file at `path` (a file's absolute path, as SQLite
    /// names it: see `sqlite::main_file`).
    pub(crate) fn new(path: PathBuf) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Self {
            shared: Arc::new(Shared {
                path,
                idle: Mutex::default(),
                kept: cores + SPARE,
            }),
        }
    }

    /// The database file's path.
    pub(crate) fn path(&self) -> &std::path::Path {
        &self.shared.path
    }

    /// The rows of the read `q`, or why it is for sqlx's readers: SQLite was
    /// busy, the read ran past its budget, or anything else failed.
    pub(crate) fn fetch_all(&self, q: &Query) -> Result<Vec<InlineRow>, NotInline> {
        let conn = self.take_for_read()?;
        // Whether the connection is kept for the next read.
        let (outcome, keep) = match read(&conn.conn, q) {
            Ok(Some(rows)) => (Ok(rows), true),
            Ok(None) => (Err(NotInline::Other), true),
            // Closed: its page cache is full of the large read's pages now (up to
            // SQLite's 2 MB a connection), which the reads made here never need.
            Err(e) if over_budget(&e) => (Err(NotInline::Large), false),
            Err(e) if busy(&e) => (Err(NotInline::Other), true),
            // Closed too: a fresh one costs little, a broken one kept would fail
            // every read after.
            Err(e) => {
                tracing::debug!(error = %e, "an inline SQLite read failed");
                (Err(NotInline::Other), false)
            }
        };
        if keep {
            self.give_back(conn);
        }
        outcome
    }

    /// Whether another connection (this server's writer, or another process:
    /// a `tweestap` command) may have committed to the database since the
    /// connection that looks now last looked; `true` on its first look. Each
    /// commit is seen by every connection once, and `on_change` runs before
    /// the connection that saw it can look again: so a caller voiding what it
    /// keeps in `on_change` has voided it after every commit before any look
    /// that follows the commit answers `false` (SQLite's `PRAGMA
    /// data_version`, which starts a read and so sees the log as of now). An
    /// error (SQLite busy, a connection that did not open) answers nothing
    /// either way.
    pub(crate) fn changed(&self, on_change: impl FnOnce()) -> Result<bool, NotInline> {
        let mut conn = self.take_for_read()?;
        let read = conn
            .conn
            .prepare_cached("PRAGMA data_version")
            .and_then(|mut s| s.query_row([], |r| r.get::<_, i64>(0)));
        match read {
            Ok(now) => {
                let changed = conn.version != Some(now);
                if changed {
                    // Before the connection is given back: another look on it
                    // would answer `false` before the caller had voided.
                    on_change();
                    conn.version = Some(now);
                }
                self.give_back(conn);
                Ok(changed)
            }
            Err(e) if busy(&e) => {
                self.give_back(conn);
                Err(NotInline::Other)
            }
            Err(e) => {
                tracing::debug!(error = %e, "an inline SQLite look at the data version failed");
                Err(NotInline::Other)
            }
        }
    }

    /// A connection for one read, its budget counted afresh.
    fn take_for_read(&self) -> Result<ReadConn, NotInline> {
        let conn = self.take().map_err(|e| {
            tracing::debug!(error = %e, "an inline SQLite connection did not open");
            NotInline::Other
        })?;
        conn.calls.store(0, Ordering::Relaxed);
        Ok(conn)
    }

    fn take(&self) -> rusqlite::Result<ReadConn> {
        let kept = self
            .shared
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        match kept {
            Some(c) => Ok(c),
            None => open(&self.shared.path),
        }
    }

    fn give_back(&self, conn: ReadConn) {
        let mut idle = self
            .shared
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if idle.len() < self.shared.kept {
            idle.push(conn);
        }
    }
}

/// A reading connection: the file must exist (the writer made and migrated it),
/// no waiting for locks, a read stopped past its budget, and writes refused
/// (`query_only`), whatever a query says.
fn open(path: &std::path::Path) -> rusqlite::Result<ReadConn> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(Duration::ZERO)?;
    conn.pragma_update(None, "query_only", true)?;
    conn.set_prepared_statement_cache_capacity(STATEMENTS);
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    conn.progress_handler(
        STEPS_PER_CALL,
        Some(move || counted.fetch_add(1, Ordering::Relaxed) >= CALLS),
    );
    Ok(ReadConn {
        conn,
        calls,
        version: None,
    })
}

/// The rows of `q`; `None` for what sqlx's readers do their own way: a
/// parameter that is not `$N`, or a `$N` with no argument (sqlx binds NULL), and
/// more than one statement (rusqlite would run the first only).
fn read(conn: &Connection, q: &Query) -> rusqlite::Result<Option<Vec<InlineRow>>> {
    if !single(q) {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(&q.sql)?;
    if !bind(&mut stmt, q, Unbound::Refuse)? {
        return Ok(None);
    }
    all_rows(&mut stmt).map(Some)
}

/// Whether `q` is one statement (sqlx runs every statement of a text, rusqlite
/// the first only).
pub(crate) fn single(q: &Query) -> bool {
    !q.sql.trim_end().trim_end_matches(';').contains(';')
}

/// What [`bind`] does with a parameter that is not `$N` with an argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unbound {
    /// Binds nothing and answers `false`: the statement is left to sqlx.
    Refuse,
    /// As sqlx-sqlite binds (`SqliteArguments::bind`): `?NNN` is argument NNN too,
    /// a bare `?` the next argument of the bare ones, any other name an error,
    /// and the first parameter past the arguments ends the binding (the rest are
    /// NULL, as SQLite has unbound parameters).
    AsSqlx,
}

/// Binds `q`'s arguments to `stmt`: `$N` is a named parameter to SQLite,
/// numbered in order of first use, so each is bound by its name. `false` when a
/// parameter is left unbound (see [`Unbound`]).
pub(crate) fn bind(
    stmt: &mut rusqlite::CachedStatement<'_>,
    q: &Query,
    unbound: Unbound,
) -> rusqlite::Result<bool> {
    let args: Vec<_> = q.rusqlite_values().collect();
    let mut bare = 0;
    for at in 1..=stmt.parameter_count() {
        let name = stmt.parameter_name(at);
        let number = |prefix: char| {
            name.and_then(|n| n.strip_prefix(prefix))
                .and_then(|n| n.parse::<usize>().ok())
        };
        let n = match (number('$'), unbound) {
            (Some(n), _) => n,
            (None, Unbound::Refuse) => return Ok(false),
            (None, Unbound::AsSqlx) => match (name, number('?')) {
                (_, Some(n)) => n,
                (None, None) => {
                    bare += 1;
                    bare
                }
                (Some(other), None) => {
                    return Err(rusqlite::Error::InvalidParameterName(other.to_owned()))
                }
            },
        };
        match (n.checked_sub(1).and_then(|i| args.get(i)), unbound) {
            (Some(v), _) => stmt.raw_bind_parameter(at, v)?,
            (None, Unbound::AsSqlx) => break,
            (None, Unbound::Refuse) => return Ok(false),
        }
    }
    Ok(true)
}

/// Runs the bound `stmt` to its end: its rows.
pub(crate) fn all_rows(
    stmt: &mut rusqlite::CachedStatement<'_>,
) -> rusqlite::Result<Vec<InlineRow>> {
    let names: Arc<[String]> = stmt.column_names().into_iter().map(str::to_owned).collect();
    let width = names.len();
    let mut rows = stmt.raw_query();
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        let values = (0..width)
            .map(|i| row.get_ref(i).map(Cell::from))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        out.push(InlineRow {
            names: names.clone(),
            values,
        });
    }
    Ok(out)
}

/// The progress handler stopped the read.
fn over_budget(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::OperationInterrupted)
}

fn busy(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code()
        .is_some_and(|c| matches!(c, ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked))
}

impl InlineRow {
    /// The column `name`; of two of that name, the last, as sqlx has it.
    fn value(&self, name: &str) -> StoreResult<&Cell> {
        self.names
            .iter()
            .rposition(|n| n == name)
            .and_then(|i| self.values.get(i))
            .ok_or_else(|| StoreError::Other(format!("no column {name:?} in the row")))
    }

    fn opt_text_ref(&self, name: &str) -> StoreResult<Option<&str>> {
        match self.value(name)? {
            Cell::Null => Ok(None),
            Cell::Text(t) => std::str::from_utf8(t)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{name}: {e}"))),
            other => Err(mistyped(name, other)),
        }
    }
}

fn mistyped(name: &str, v: &Cell) -> StoreError {
    let kind = match v {
        Cell::Null => Type::Null,
        Cell::Integer(_) => Type::Integer,
        Cell::Real => Type::Real,
        Cell::Text(_) => Type::Text,
        Cell::Blob(_) => Type::Blob,
    };
    StoreError::Corrupt(format!("{name}: {kind}, not the type expected"))
}

/// As sqlx decodes them: text as text, integers as integers, bytes from a blob
/// (or text), and times and ids from their text (see `query::sqlite_time`). A
/// NULL read as bytes is corrupt data, as on PostgreSQL (sqlx-sqlite would give
/// no bytes; every such column is `NOT NULL`).
impl Columns for InlineRow {
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        Ok(self.opt_text_ref(name)?.map(str::to_owned))
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        match self.value(name)? {
            Cell::Null => Ok(None),
            Cell::Integer(i) => Ok(Some(*i)),
            other => Err(mistyped(name, other)),
        }
    }
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
        match self.value(name)? {
            Cell::Blob(b) | Cell::Text(b) => Ok(b.clone()),
            other => Err(mistyped(name, other)),
        }
    }
    fn opt_time(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.opt_text_ref(name)?
            .map(crate::rows::parse_sqlite_time)
            .transpose()
    }
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<Uuid>> {
        self.opt_text_ref(name)?
            .map(crate::rows::parse_uuid)
            .transpose()
    }
}

#[cfg(test)]
mod tests;
