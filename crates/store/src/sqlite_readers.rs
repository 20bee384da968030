//! SQLite's reading connections: a file's have their own ([`Kept`]); an in-memory
//! database is one connection's, so there reads share the writer's.

use crate::kept::Kept;
use crate::query::Query;
use sqlx::sqlite::SqliteRow;
use sqlx::{SqliteConnection, SqlitePool};

#[derive(Debug, Clone)]
pub(crate) enum Readers {
    Kept(Kept<SqliteConnection>),
    Writer(SqlitePool),
}

impl Readers {
    /// The rows of `q`. A read that scans much (`large`: it ran past the inline
    /// budget) closes its connection after it, so that the pages it pulled in
    /// (up to SQLite's 2 MB a connection) are not kept in memory for reads that
    /// never need them. Such reads are rare (the console's searches and hourly
    /// counts); a connection opens in about a millisecond.
    pub(crate) async fn fetch_all(
        &self,
        q: &Query,
        large: bool,
    ) -> Result<Vec<SqliteRow>, sqlx::Error> {
        match self {
            Readers::Kept(k) => {
                let mut conn = k.acquire().await?;
                let rows = q.sqlite().fetch_all(&mut *conn).await;
                if large {
                    conn.close();
                } else {
                    conn.back(&rows);
                }
                rows
            }
            Readers::Writer(p) => q.sqlite().fetch_all(p).await,
        }
    }

    /// Runs a statement; the rows it touched.
    pub(crate) async fn execute(&self, q: &Query) -> Result<u64, sqlx::Error> {
        let done = match self {
            Readers::Kept(k) => {
                let mut conn = k.acquire().await?;
                let done = q.sqlite().execute(&mut *conn).await;
                conn.back(&done);
                done
            }
            Readers::Writer(p) => q.sqlite().execute(p).await,
        };
        done.map(|r| r.rows_affected())
    }
}
