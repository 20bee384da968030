//! The embedded default: one SQLite file in the data directory.

use crate::kept::Kept;
use crate::sql::{Db, SqlitePools};
use crate::sql_store::{Backend, SqlStore};
use crate::sqlite_inline::Inline;
use crate::sqlite_readers::Readers;
use crate::{map_err, PoolSettings};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;
use tweestap_domain::store::StoreResult;

/// SQLite as the database of a [`SqlStore`].
#[derive(Clone, Copy, Debug)]
pub struct Sqlite;

impl Backend for Sqlite {}

pub type SqliteStore = SqlStore<Sqlite>;

impl SqlStore<Sqlite> {
    /// The pool [`open`](Self::open) and [`open_url`](Self::open_url) use: eight
    /// connections (SQLite has one writer at a time anyway), otherwise the defaults.
    pub fn default_pool_settings() -> PoolSettings {
        PoolSettings {
            max_connections: 8,
            ..PoolSettings::default()
        }
    }

    /// Opens (creating if needed) the database file and applies pending migrations
    /// when `migrate` is set.
    pub async fn open(path: &Path, migrate: bool) -> StoreResult<Self> {
        Self::open_with(path, &Self::default_pool_settings(), migrate).await
    }

    /// [`open`](Self::open) with the caller's pool settings.
    pub async fn open_with(path: &Path, pool: &PoolSettings, migrate: bool) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::new().filename(path);
        let opts = settled(opts).synchronous(SqliteSynchronous::Normal);
        Self::connect(opts, pool, migrate, true).await
    }

    pub async fn open_url(url: &str, migrate: bool) -> StoreResult<Self> {
        Self::open_url_with(url, &Self::default_pool_settings(), migrate).await
    }

    /// [`open_url`](Self::open_url) with the caller's pool settings.
    pub async fn open_url_with(url: &str, pool: &PoolSettings, migrate: bool) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url).map_err(map_err)?;
        // A URL's options (`mode`, `vfs`, `immutable` …) are sqlx's to honour: a
        // URL with any keeps every read on sqlx's connections.
        let plain = !url.contains('?');
        Self::connect(settled(opts), pool, migrate, plain).await
    }

    /// Opens the writer first (it creates the file, turns on WAL and migrates), then
    /// the readers; an in-memory database is one connection's, so there both are
    /// one. A `plain` file's reads run inline too (`sqlite_inline`).
    async fn connect(
        opts: SqliteConnectOptions,
        pool: &PoolSettings,
        migrate: bool,
        plain: bool,
    ) -> StoreResult<Self> {
        let writer_settings = PoolSettings {
            max_connections: 1,
            min_connections: 1,
            idle_timeout: None,
            ..pool.clone()
        };
        let writer_pool = writer_settings
            .apply(SqlitePoolOptions::new())
            .connect_with(opts.clone())
            .await
            .map_err(map_err)?;
        if migrate {
            Self::migrate_sqlite(&writer_pool).await?;
        }
        let (readers, inline) = if in_memory(&opts) {
            (Readers::Writer(writer_pool.clone()), None)
        } else {
            let inline = match plain {
                true => main_file(&writer_pool).await?.map(Inline::new),
                false => None,
            };
            let kept = Kept::new(opts, pool);
            kept.open_min(0).await.map_err(map_err)?;
            (Readers::Kept(kept), inline)
        };
        // Migrated above: start only checks.
        let pools = SqlitePools::new(readers, writer_pool, inline, pool.session_cache);
        Self::start(Db::Sqlite(pools), false).await
    }
}

/// What every database gets: created when missing, WAL, foreign keys enforced, up
/// to five seconds of waiting for the write lock, and no checkpoint inside a
/// commit.
fn settled(opts: SqliteConnectOptions) -> SqliteConnectOptions {
    opts.create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(5))
        // The server's writer checkpoints beside the writes (`sqlite_writer`);
        // SQLite checkpoints anyway when the last connection closes, so a short
        // admin command leaves no log behind.
        .pragma("wal_autocheckpoint", "0")
        // Not cut back inside a commit: the server's writer cuts it back
        // between commits (`sqlite_writer`); a short admin command's log goes
        // when its last connection closes.
        .pragma("journal_size_limit", "-1")
}

/// The database file as SQLite opened it (absolute), made by the writer; none
/// for a database in memory.
async fn main_file(writer: &SqlitePool) -> StoreResult<Option<PathBuf>> {
    let file: Option<String> =
        sqlx::query_scalar("SELECT file FROM pragma_database_list WHERE name = 'main'")
            .fetch_optional(writer)
            .await
            .map_err(map_err)?;
    Ok(file.filter(|f| !f.is_empty()).map(PathBuf::from))
}

/// Whether the database lives only in a connection's memory.
fn in_memory(opts: &SqliteConnectOptions) -> bool {
    let name = opts.get_filename().to_string_lossy();
    // sqlx names `sqlite::memory:` databases so; `?mode=memory` ones are named
    // and shared between connections, so they need no special case.
    name == ":memory:" || name.starts_with("file:sqlx-in-memory-")
}
