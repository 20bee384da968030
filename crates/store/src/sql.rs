//! The one place that knows there are two databases.
//!
//! Queries are written once with `$N` placeholders (sqlx-sqlite reads `$N` as
//! parameter N, and the same `$N` twice is one parameter on both databases). Their
//! arguments are [`Value`]s, a small typed "any" of our own: each backend binds
//! them its own way (SQLite keeps ids and times as text, PostgreSQL has uuid and
//! timestamptz), and NULLs stay typed so PostgreSQL can infer every parameter.
//! What the dialects really differ in besides is in [`Db`]'s `sql_*` methods.

use crate::kept::{Kept, Lent};
pub(crate) use crate::query::{placeholders, query, Query, Value};
use crate::rows::{parse_sqlite_time, parse_uuid, Columns};
use crate::session_cache::SessionCache;
use crate::sqlite_inline::{Inline, InlineRow, NotInline};
use crate::sqlite_readers::Readers;
use crate::sqlite_writer::{WriteTurn, Writer, WrittenRow};
use crate::{map_err, postgres};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::sqlite::SqliteRow;
use sqlx::{PgConnection, Sqlite, SqliteConnection, SqlitePool, Transaction};
use tweestap_domain::store::{StoreError, StoreResult};
use uuid::Uuid;
/// The connections of either database.
#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePools),
    /// The connections, the node's session cache (told of every write), and
    /// the connections whose commits do not wait for the disk, for the writes
    /// marked [`Query::commit_lazily`].
    Postgres(Kept<PgConnection>, Option<SessionCache>, Kept<PgConnection>),
}

/// SQLite's connections: readers, and the one writer (see [`crate::sqlite_writer`]).
#[derive(Debug, Clone)]
pub(crate) struct SqlitePools {
    pub(crate) readers: Readers,
    /// One connection: the group-committing task's, lent to transactions between
    /// its groups.
    pub(crate) writer_pool: SqlitePool,
    pub(crate) writer: Writer,
    /// A file's plain reads, on the calling thread (none for a database in memory
    /// or a temporary one, or one named by a URL with options).
    pub(crate) inline: Option<Inline>,
    /// The session cache, when on; only with `inline`, which it asks for
    /// commits.
    cache: Option<SessionCache>,
}

impl SqlitePools {
    /// Starts the writing task on `writer_pool`; keeps session lookups for
    /// `cache`, when given and the reads are `inline`.
    pub(crate) fn new(
        readers: Readers,
        writer_pool: SqlitePool,
        inline: Option<Inline>,
        cache: Option<std::time::Duration>,
    ) -> Self {
        let file = inline.as_ref().map(|i| i.path().to_owned());
        let writer = Writer::start(writer_pool.clone(), readers.clone(), file);
        let cache = cache
            .zip(inline.clone())
            .map(|(ttl, file)| SessionCache::local(ttl, file));
        Self {
            readers,
            writer_pool,
            writer,
            inline,
            cache,
        }
    }

    /// The rows of the read `q`: inline when it can, else on a reader of sqlx's.
    async fn read(&self, q: &Query) -> StoreResult<Vec<Row>> {
        let large = match self.inline.as_ref().map(|i| i.fetch_all(q)) {
            Some(Ok(rows)) => {
                // Nothing above waited: a task reading in a loop still gives the
                // runtime's other tasks their turn.
                tokio::task::consume_budget().await;
                return Ok(rows.into_iter().map(Row::Inline).collect());
            }
            Some(Err(why)) => why == NotInline::Large,
            None => false,
        };
        rows_of(self.readers.fetch_all(q, large).await, Row::Sqlite)
    }
}

/// An open transaction on either database; dropped without
/// [`commit`](Tx::commit), it rolls back (a kept connection is closed, and the
/// database rolls back what it had open).
pub(crate) enum Tx {
    /// The writer's connection's, with the turn at writing (the writer told of
    /// the commit, to checkpoint after it). The turn is dropped after the
    /// transaction.
    Sqlite(Transaction<'static, Sqlite>, WriteTurn),
    /// A reader's.
    SqliteRead(Lent<SqliteConnection>),
    /// A connection, and the session cache to tell of the commit.
    Postgres(Lent<PgConnection>, Option<SessionCache>),
}

/// Commits the transaction on the lent connection `$conn`, then returns it; a
/// COMMIT that failed may leave the transaction open, so then it is closed. (A
/// macro: a function generic over the connection type cannot name its executor in
/// a bound that async_trait's futures accept.)
macro_rules! commit {
    ($conn:expr) => {{
        let mut conn = $conn;
        let done = sqlx::Executor::execute(&mut *conn, "COMMIT")
            .await
            .map(drop);
        if done.is_ok() {
            conn.back_after(None);
        }
        done
    }};
}

/// A reader's connection with a (read) transaction begun on it.
async fn begin_read(k: &Kept<SqliteConnection>) -> Result<Lent<SqliteConnection>, sqlx::Error> {
    let mut conn = k.acquire().await?;
    if let Err(e) = sqlx::Executor::execute(&mut *conn, "BEGIN").await {
        conn.back_after(Some(&e));
        return Err(e);
    }
    Ok(conn)
}

/// A result row of either database.
pub(crate) enum Row {
    Sqlite(SqliteRow),
    /// A SQLite row read on the calling thread.
    Inline(InlineRow),
    Postgres(PgRow),
}

impl From<WrittenRow> for Row {
    fn from(r: WrittenRow) -> Self {
        match r {
            WrittenRow::Sqlx(r) => Row::Sqlite(r),
            WrittenRow::Inline(r) => Row::Inline(r),
        }
    }
}

impl Db {
    /// A transaction that may write. On SQLite it holds the one writing connection
    /// and takes the write lock at once (IMMEDIATE), so it never has to upgrade a
    /// read lock that a commit in between made stale.
    pub(crate) async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(p) => {
                let turn = p.writer.turn().await?;
                let tx = p.writer_pool.begin_with("BEGIN IMMEDIATE").await;
                Tx::Sqlite(tx.map_err(map_err)?, turn)
            }
            Db::Postgres(p, c, _) => {
                Tx::Postgres(postgres::begin(p).await.map_err(map_err)?, c.clone())
            }
        })
    }

    /// A transaction that only reads (an export's snapshot): on SQLite a reader's,
    /// so that writes go on meanwhile.
    pub(crate) async fn begin_read(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(p) => match &p.readers {
                Readers::Kept(k) => Tx::SqliteRead(begin_read(k).await.map_err(map_err)?),
                Readers::Writer(pool) => {
                    let turn = p.writer.turn().await?;
                    Tx::Sqlite(pool.begin().await.map_err(map_err)?, turn)
                }
            },
            Db::Postgres(p, c, _) => {
                Tx::Postgres(postgres::begin(p).await.map_err(map_err)?, c.clone())
            }
        })
    }

    /// The session cache, when on.
    pub(crate) fn session_cache(&self) -> Option<&SessionCache> {
        match self {
            Db::Sqlite(p) => p.cache.as_ref(),
            Db::Postgres(_, c, _) => c.as_ref(),
        }
    }

    /// `COLLATE` for byte order, as SQLite's default BINARY, whatever the
    /// PostgreSQL database's locale.
    pub(crate) fn sql_byte_order(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "COLLATE BINARY",
            Db::Postgres(..) => r#"COLLATE "C""#,
        }
    }

    /// What the mail claim adds to its row choice. SQLite runs the claim under its
    /// single write lock, so the rows chosen are claimed before any other writer
    /// looks; on PostgreSQL, SKIP LOCKED makes concurrent workers on other nodes pass
    /// over rows being claimed right now instead of waiting for (and then
    /// re-taking) them. The lease keeps claimed rows out of later claims.
    pub(crate) fn sql_skip_locked(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "",
            Db::Postgres(..) => "FOR UPDATE SKIP LOCKED",
        }
    }

    /// The first statement of an export's transaction: PostgreSQL reads every table
    /// as of one instant only under REPEATABLE READ; a SQLite read transaction
    /// already does.
    pub(crate) fn sql_snapshot(&self) -> Option<&'static str> {
        match self {
            Db::Sqlite(_) => None,
            Db::Postgres(..) => Some("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"),
        }
    }

    /// Rows per multi-row statement of `cols` parameters each. sqlx binds each SQLite parameter
    /// by looking up its `$N` name, which SQLite finds by a scan of all of them, so a
    /// statement's binding costs the square of its parameters there: a few hundred
    /// parameters per statement is the sweet spot. PostgreSQL takes up to 65,535 and
    /// pays per round trip instead.
    pub(crate) fn rows_per_statement(&self, cols: usize) -> usize {
        let params = match self {
            Db::Sqlite(_) => 600,
            Db::Postgres(..) => 7000,
        };
        (params / cols.max(1)).max(1)
    }

    /// The first statement of an import's transaction, so that two imports at once
    /// cannot both see an empty database (SQLite has one writer at a time anyway).
    pub(crate) fn sql_import_lock(&self) -> Option<&'static str> {
        match self {
            Db::Sqlite(_) => None,
            Db::Postgres(..) => Some("LOCK TABLE accounts IN EXCLUSIVE MODE"),
        }
    }
}

impl Tx {
    pub(crate) async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t, mut turn) => {
                let done = t.commit().await;
                turn.ended(done.is_ok());
                done
            }
            Tx::SqliteRead(c) => commit!(c),
            Tx::Postgres(c, cache) => {
                let done = commit!(c);
                // Committed, or maybe not: either way what was read before may
                // be stale now.
                wrote(cache.as_ref());
                done
            }
        }
        .map_err(map_err)
    }
}

/// Makes a domain value of a row.
pub(crate) type ReadRow<T> = fn(&Row) -> StoreResult<T>;

/// Runs queries on the pool or inside a transaction, so that helpers writing one
/// row serve both (a change and its notice are written together).
#[async_trait]
pub(crate) trait Exec: Send {
    /// Runs a statement; the number of rows it touched.
    async fn execute(&mut self, q: Query) -> StoreResult<u64>;
    async fn fetch_all(&mut self, q: Query) -> StoreResult<Vec<Row>>;

    async fn fetch_optional(&mut self, q: Query) -> StoreResult<Option<Row>> {
        Ok(self.fetch_all(q).await?.into_iter().next())
    }

    async fn fetch_one(&mut self, q: Query) -> StoreResult<Row> {
        self.fetch_optional(q)
            .await?
            .ok_or_else(|| StoreError::Other("the query returned no row".into()))
    }

    /// Runs a statement for its effect only.
    async fn run(&mut self, q: Query) -> StoreResult<()> {
        self.execute(q).await.map(drop)
    }

    /// Every row, each read with `from`.
    async fn all<T: Send>(&mut self, q: Query, from: ReadRow<T>) -> StoreResult<Vec<T>> {
        self.fetch_all(q).await?.iter().map(from).collect()
    }

    /// The first row, if any, read with `from`.
    async fn optional<T: Send>(&mut self, q: Query, from: ReadRow<T>) -> StoreResult<Option<T>> {
        self.fetch_optional(q).await?.as_ref().map(from).transpose()
    }
}

/// PostgreSQL's connections for `q`: `lazy` for a write marked
/// [`Query::commit_lazily`], `main` for anything else.
fn pool_for<'p>(
    q: &Query,
    main: &'p Kept<PgConnection>,
    lazy: &'p Kept<PgConnection>,
) -> &'p Kept<PgConnection> {
    if q.commits_lazily() {
        lazy
    } else {
        main
    }
}

#[async_trait]
impl Exec for &Db {
    async fn execute(&mut self, q: Query) -> StoreResult<u64> {
        match self {
            Db::Sqlite(p) if q.only_reads() => p.readers.execute(&q).await.map_err(map_err),
            Db::Sqlite(p) => p.writer.execute(q).await,
            Db::Postgres(p, c, lazy) => {
                let done = postgres::execute(pool_for(&q, p, lazy), &q)
                    .await
                    .map_err(map_err);
                if !q.only_reads() {
                    wrote(c.as_ref());
                }
                done
            }
        }
    }

    async fn fetch_all(&mut self, q: Query) -> StoreResult<Vec<Row>> {
        Ok(match self {
            Db::Sqlite(p) if q.only_reads() => p.read(&q).await?,
            Db::Sqlite(p) => p
                .writer
                .fetch_all(q)
                .await?
                .into_iter()
                .map(Row::from)
                .collect(),
            Db::Postgres(p, c, lazy) => {
                let done = postgres::fetch_all(pool_for(&q, p, lazy), &q).await;
                if !q.only_reads() {
                    wrote(c.as_ref());
                }
                rows_of(done, Row::Postgres)?
            }
        })
    }
}

#[async_trait]
impl Exec for &mut Tx {
    async fn execute(&mut self, q: Query) -> StoreResult<u64> {
        match self {
            Tx::Sqlite(t, _) => q
                .sqlite()
                .execute(&mut **t)
                .await
                .map(|r| r.rows_affected()),
            Tx::SqliteRead(c) => q
                .sqlite()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
            Tx::Postgres(c, _) => q
                .postgres()
                .execute(&mut **c)
                .await
                .map(|r| r.rows_affected()),
        }
        .map_err(map_err)
    }

    async fn fetch_all(&mut self, q: Query) -> StoreResult<Vec<Row>> {
        Ok(match self {
            Tx::Sqlite(t, _) => rows_of(q.sqlite().fetch_all(&mut **t).await, Row::Sqlite)?,
            Tx::SqliteRead(c) => rows_of(q.sqlite().fetch_all(&mut **c).await, Row::Sqlite)?,
            Tx::Postgres(c, _) => rows_of(q.postgres().fetch_all(&mut **c).await, Row::Postgres)?,
        })
    }
}

/// After a write (done or failed: it may have reached the database): the session
/// cache's reads from before count no more.
fn wrote(cache: Option<&SessionCache>) {
    if let Some(c) = cache {
        c.changed();
    }
}

fn rows_of<R>(rows: Result<Vec<R>, sqlx::Error>, wrap: fn(R) -> Row) -> StoreResult<Vec<Row>> {
    Ok(rows.map_err(map_err)?.into_iter().map(wrap).collect())
}

fn col<'r, R, T>(row: &'r R, name: &str) -> StoreResult<T>
where
    R: sqlx::Row,
    for<'n> &'n str: sqlx::ColumnIndex<R>,
    T: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    row.try_get(name).map_err(map_err)
}

/// SQLite keeps times and ids as text, parsed here; PostgreSQL has them natively.
impl Columns for Row {
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        match self {
            Row::Inline(r) => r.opt_text(name),
            Row::Sqlite(r) => col(r, name),
            Row::Postgres(r) => col(r, name),
        }
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        match self {
            Row::Inline(r) => r.opt_int(name),
            Row::Sqlite(r) => col(r, name),
            Row::Postgres(r) => col(r, name),
        }
    }
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
        match self {
            Row::Inline(r) => r.bytes(name),
            Row::Sqlite(r) => col(r, name),
            Row::Postgres(r) => col(r, name),
        }
    }
    fn opt_time(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        match self {
            Row::Inline(r) => r.opt_time(name),
            Row::Sqlite(r) => col::<_, Option<String>>(r, name)?
                .as_deref()
                .map(parse_sqlite_time)
                .transpose(),
            Row::Postgres(r) => col(r, name),
        }
    }
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<Uuid>> {
        match self {
            Row::Inline(r) => r.opt_uuid(name),
            Row::Sqlite(r) => col::<_, Option<String>>(r, name)?
                .as_deref()
                .map(parse_uuid)
                .transpose(),
            Row::Postgres(r) => col(r, name),
        }
    }
}
