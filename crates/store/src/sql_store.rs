//! The one store: every trait of [`tweestap_domain::store`], written once for
//! SQLite and PostgreSQL alike (one file per trait).

mod accounts;
mod attempts;
mod audit;
mod code_step;
mod codes;
mod console;
mod devices;
mod factors;
mod failure_groups;
mod links;
mod mail_queue;
mod oidc;
mod passkeys;
mod portals;
mod sealed;
mod sessions;
mod throttles;
mod upkeep;

use crate::sql::{query, Db, Exec};
use crate::{map_migrate_err, migrations, require_migrated};
use sqlx::migrate::Migrator;
use std::marker::PhantomData;
use std::sync::LazyLock;
use tweestap_domain::store::StoreResult;

/// A database behind [`SqlStore`]; it only chooses the constructors
/// ([`crate::SqliteStore`] opens a file, [`crate::PostgresStore`] connects to a
/// server). The queries are the same for both.
pub trait Backend: Clone + std::fmt::Debug + Send + Sync + 'static {}

/// The store on the database `B`.
#[derive(Clone, Debug)]
pub struct SqlStore<B: Backend> {
    db: Db,
    /// PostgreSQL: failed attempts recorded together (SQLite's writer already
    /// commits its statements in groups).
    failures: Option<failure_groups::FailureGroups>,
    backend: PhantomData<B>,
}

static SQLITE_MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| migrations::migrator(migrations::SQLITE));
static POSTGRES_MIGRATOR: LazyLock<Migrator> =
    LazyLock::new(|| migrations::migrator(migrations::POSTGRES));

impl<B: Backend> SqlStore<B> {
    /// Wraps a pool, then applies pending migrations when `migrate` is set, or
    /// refuses a database that lacks some.
    pub(crate) async fn start(db: Db, migrate: bool) -> StoreResult<Self> {
        let failures = match &db {
            Db::Sqlite(_) => None,
            Db::Postgres(..) => Some(failure_groups::FailureGroups::start(db.clone())),
        };
        let s = Self {
            db,
            failures,
            backend: PhantomData,
        };
        if migrate {
            s.migrate().await?;
        } else {
            let applied = s.db().fetch_all(query(crate::APPLIED_MIGRATIONS)).await;
            let applied = applied.and_then(|rows| {
                rows.iter()
                    .map(|r| crate::rows::Columns::int(r, "version"))
                    .collect()
            });
            require_migrated(s.migrator(), applied)?;
        }
        Ok(s)
    }

    /// Applies SQLite's pending migrations through `pool`, before any other
    /// connection opens: a connection that read the schema before a migration
    /// changed a table can misread that table's rows in sqlx.
    pub(crate) async fn migrate_sqlite(pool: &sqlx::SqlitePool) -> StoreResult<()> {
        SQLITE_MIGRATOR.run(pool).await.map_err(map_migrate_err)
    }

    fn migrator(&self) -> &'static Migrator {
        match self.db {
            Db::Sqlite(_) => &SQLITE_MIGRATOR,
            Db::Postgres(..) => &POSTGRES_MIGRATOR,
        }
    }

    /// Applies pending migrations. PostgreSQL nodes starting together are safe:
    /// sqlx holds an advisory lock while it migrates.
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.db {
            Db::Sqlite(p) => {
                let mut turn = p.writer.turn().await?;
                let done = SQLITE_MIGRATOR.run(&p.writer_pool).await;
                // What it wrote is checkpointed, and the log cut back, as any
                // transaction's.
                turn.ended(done.is_ok());
                done
            }
            Db::Postgres(p, cache, _) => {
                let mut conn = p.acquire().await.map_err(crate::map_err)?;
                let done = POSTGRES_MIGRATOR.run_direct(&mut *conn).await;
                if let Some(c) = cache {
                    c.changed();
                }
                // A failed migration may leave its advisory lock held: closed then.
                if done.is_ok() {
                    conn.back_after(None);
                }
                done
            }
        }
        .map_err(map_migrate_err)
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }
}
