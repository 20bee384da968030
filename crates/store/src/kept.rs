//! Connections kept between queries, without sqlx's pool.
//!
//! sqlx's pool pings every connection on its way back in (a spawned task and a
//! round trip to SQLite's worker thread or to PostgreSQL per query). Measured
//! with four tasks on two cores, a one-row SELECT ran 1.9 times (SQLite) and 2.3
//! times (PostgreSQL) as fast on a connection held across queries as through the
//! pool. Here a connection goes back without a check when its query finished, and
//! is closed instead when the query was cancelled midway or its connection broke:
//! that is all the ping on release guarded against. One idle for over a second is
//! pinged before it is lent again, as before (`PoolSettings::apply`).

use crate::{PoolSettings, PING_WHEN_IDLE_FOR};
use sqlx::{ConnectOptions, Connection};
use std::fmt;
use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Up to `max_connections` connections of one database, opened when needed;
/// clones share them.
pub(crate) struct Kept<C: Connection> {
    shared: Arc<Shared<C>>,
}

struct Shared<C: Connection> {
    /// Most recently returned last: the next caller gets the warmest one.
    idle: Mutex<Vec<Idle<C>>>,
    /// One per connection that may be open; a caller holds one while it has one.
    permits: Arc<Semaphore>,
    options: C::Options,
    acquire_timeout: Duration,
    /// Idle connections beyond `min` close after this long unused.
    idle_timeout: Option<Duration>,
    min: u32,
    /// Connections open now (lent and idle).
    open: AtomicU32,
}

struct Idle<C> {
    conn: C,
    since: Instant,
}

/// A connection lent by [`Kept`]. [`back`](Lent::back) returns it; dropped
/// otherwise (a cancelled query, a broken connection, a transaction never
/// committed), it is closed, and the database drops whatever it was in the middle
/// of.
pub(crate) struct Lent<C: Connection> {
    conn: Option<C>,
    shared: Arc<Shared<C>>,
    _permit: OwnedSemaphorePermit,
}

impl<C: Connection> Clone for Kept<C> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl<C: Connection + 'static> fmt::Debug for Kept<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kept")
            .field("open", &self.size())
            .field("idle", &lock(&self.shared.idle).len())
            .finish()
    }
}

impl<C: Connection + 'static> Kept<C> {
    /// Opens no connection yet.
    pub(crate) fn new(options: C::Options, settings: &PoolSettings) -> Self {
        Self {
            shared: Arc::new(Shared {
                idle: Mutex::default(),
                permits: Arc::new(Semaphore::new(settings.max_connections.max(1) as usize)),
                options,
                acquire_timeout: settings.acquire_timeout,
                idle_timeout: settings.idle_timeout,
                min: settings
                    .min_connections
                    .min(settings.max_connections.max(1)),
                open: AtomicU32::new(0),
            }),
        }
    }

    /// Connections open now.
    pub(crate) fn size(&self) -> u32 {
        self.shared.open.load(Ordering::Relaxed)
    }

    /// Opens connections until `min_connections`, and at least `at_least`, are
    /// open: proves the database reachable (or fails after the acquire timeout)
    /// and has them ready.
    pub(crate) async fn open_min(&self, at_least: u32) -> Result<(), sqlx::Error> {
        let mut lent = Vec::new();
        while self.size() < self.shared.min.max(at_least) {
            lent.push(self.acquire().await?);
        }
        for conn in lent {
            conn.back_after(None);
        }
        Ok(())
    }

    /// A connection: an idle one, or a new one while fewer than the maximum are
    /// open. Waits at most `acquire_timeout` in all (`PoolTimedOut`), retrying a
    /// database that refuses connections for now (restarting, too many clients).
    pub(crate) async fn acquire(&self) -> Result<Lent<C>, sqlx::Error> {
        let deadline = Instant::now() + self.shared.acquire_timeout;
        let permit = tokio::time::timeout_at(deadline, self.shared.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        loop {
            let idle = lock(&self.shared.idle).pop();
            let Some(Idle { conn, since }) = idle else {
                let conn = self.open(deadline).await?;
                return Ok(self.lend(conn, permit));
            };
            let idle_for = since.elapsed();
            if self.shared.stale(idle_for) {
                self.shared.close_quietly(conn);
                continue;
            }
            // Counted as open until lent; closed and uncounted if the caller gives
            // up meanwhile. The ping waits no longer than the acquire may (a peer
            // gone without a word never answers).
            let mut held = Held {
                conn: Some(conn),
                shared: &self.shared,
            };
            if idle_for > PING_WHEN_IDLE_FOR {
                let ping = tokio::time::timeout_at(deadline, held.conn().ping()).await;
                if !matches!(ping, Ok(Ok(()))) {
                    drop(held);
                    continue;
                }
            }
            return Ok(self.lend(held.take(), permit));
        }
    }

    /// Closes the idle connections and lends no more; lent ones close when they
    /// come back.
    #[cfg(test)]
    pub(crate) async fn close(&self) {
        self.shared.permits.close();
        let idle = std::mem::take(&mut *lock(&self.shared.idle));
        for Idle { conn, .. } in idle {
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            let _ = conn.close().await;
        }
    }

    fn lend(&self, conn: C, permit: OwnedSemaphorePermit) -> Lent<C> {
        Lent {
            conn: Some(conn),
            shared: self.shared.clone(),
            _permit: permit,
        }
    }

    async fn open(&self, deadline: Instant) -> Result<C, sqlx::Error> {
        let mut pause = Duration::from_millis(10);
        loop {
            let attempt = tokio::time::timeout_at(deadline, self.shared.options.connect()).await;
            match attempt {
                Err(_) => return Err(sqlx::Error::PoolTimedOut),
                Ok(Ok(conn)) => {
                    self.shared.open.fetch_add(1, Ordering::Relaxed);
                    return Ok(conn);
                }
                Ok(Err(e)) if refused_for_now(&e) && Instant::now() + pause < deadline => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Ok(Err(e)) => return Err(e),
            }
        }
    }
}

/// An open connection on its way from the idle list to a caller.
struct Held<'a, C: Connection> {
    conn: Option<C>,
    shared: &'a Shared<C>,
}

impl<C: Connection> Held<'_, C> {
    fn conn(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("held until taken"))
    }

    fn take(mut self) -> C {
        self.conn
            .take()
            .unwrap_or_else(|| unreachable!("taken once"))
    }
}

impl<C: Connection> Drop for Held<'_, C> {
    fn drop(&mut self) {
        if self.conn.take().is_some() {
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<C: Connection + 'static> Shared<C> {
    /// Closes `conn` politely, in the background.
    fn close_quietly(&self, conn: C) {
        self.open.fetch_sub(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let _ = conn.close().await;
        });
    }

    /// Whether an idle connection unused for `idle_for` should close: past the
    /// idle timeout, while more than the minimum are open.
    fn stale(&self, idle_for: Duration) -> bool {
        self.idle_timeout.is_some_and(|t| idle_for > t)
            && self.open.load(Ordering::Relaxed) > self.min
    }
}

impl<C: Connection + 'static> Lent<C> {
    /// Returns the connection for the next caller, unless `outcome` (what was
    /// last run on it) says it broke; then it is closed.
    pub(crate) fn back<T>(self, outcome: &Result<T, sqlx::Error>) {
        self.back_after(outcome.as_ref().err());
    }

    /// Closes the connection instead of returning it.
    pub(crate) fn close(mut self) {
        if let Some(conn) = self.conn.take() {
            self.shared.close_quietly(conn);
        }
    }

    /// [`back`](Self::back) after `error`, if any.
    pub(crate) fn back_after(mut self, error: Option<&sqlx::Error>) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        if error.is_some_and(|e| !still_usable(e)) || self.shared.permits.is_closed() {
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
            drop(conn);
            return;
        }
        let now = Instant::now();
        let stale = {
            let mut idle = lock(&self.shared.idle);
            idle.push(Idle { conn, since: now });
            // The least recently used one, once unused for the idle timeout, closes:
            // under light load the others serve.
            let oldest_stale = idle
                .first()
                .is_some_and(|i| self.shared.stale(now.duration_since(i.since)));
            oldest_stale.then(|| idle.remove(0))
        };
        if let Some(Idle { conn, .. }) = stale {
            self.shared.close_quietly(conn);
        }
    }
}

impl<C: Connection> Drop for Lent<C> {
    fn drop(&mut self) {
        if self.conn.take().is_some() {
            self.shared.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<C: Connection> Deref for Lent<C> {
    type Target = C;
    fn deref(&self) -> &C {
        // `conn` is taken only by `back` and `close` (which consume the Lent)
        // and by drop.
        self.conn
            .as_ref()
            .unwrap_or_else(|| unreachable!("a lent connection is there until it goes back"))
    }
}

impl<C: Connection> DerefMut for Lent<C> {
    fn deref_mut(&mut self) -> &mut C {
        self.conn
            .as_mut()
            .unwrap_or_else(|| unreachable!("a lent connection is there until it goes back"))
    }
}

/// Whether the connection an error came from still works: the database answered
/// (a broken constraint, a row that did not decode), as opposed to a socket,
/// protocol or worker failure, or PostgreSQL ending the connection.
fn still_usable(e: &sqlx::Error) -> bool {
    use sqlx::postgres::PgSeverity;
    match e {
        // A FATAL error ends the connection whatever its code (an idle transaction
        // timed out, a recovery conflict).
        sqlx::Error::Database(db) => !db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| {
                pg.code().starts_with("08")
                    || pg.code().starts_with("57P")
                    || matches!(pg.severity(), PgSeverity::Fatal | PgSeverity::Panic)
            }),
        sqlx::Error::RowNotFound
        | sqlx::Error::ColumnNotFound(_)
        | sqlx::Error::ColumnIndexOutOfBounds { .. }
        | sqlx::Error::ColumnDecode { .. }
        | sqlx::Error::Decode(_)
        | sqlx::Error::TypeNotFound { .. } => true,
        _ => false,
    }
}

/// A database that refuses connections for a moment: not listening yet, starting
/// or shutting down, or at its connection limit. (A wrong host name or an
/// unreachable network fails at once.)
fn refused_for_now(e: &sqlx::Error) -> bool {
    use std::io::ErrorKind;
    match e {
        sqlx::Error::Io(io) => matches!(
            io.kind(),
            ErrorKind::ConnectionRefused
                | ErrorKind::ConnectionReset
                | ErrorKind::ConnectionAborted
                | ErrorKind::UnexpectedEof
        ),
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.code(), "57P03" | "53300")),
        _ => false,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding it left a plain Vec: still consistent.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqliteConnectOptions;
    use sqlx::SqliteConnection;

    fn kept(dir: &tempfile::TempDir, max: u32, idle: Option<Duration>) -> Kept<SqliteConnection> {
        kept_min(dir, max, 0, idle)
    }

    fn kept_min(
        dir: &tempfile::TempDir,
        max: u32,
        min: u32,
        idle: Option<Duration>,
    ) -> Kept<SqliteConnection> {
        let opts = SqliteConnectOptions::new()
            .filename(dir.path().join("k.db"))
            .create_if_missing(true);
        let settings = PoolSettings {
            max_connections: max,
            min_connections: min,
            acquire_timeout: Duration::from_millis(200),
            idle_timeout: idle,
            session_cache: None,
        };
        Kept::new(opts, &settings)
    }

    async fn one(conn: &mut SqliteConnection) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar("SELECT 1").fetch_one(conn).await
    }

    #[tokio::test]
    async fn a_finished_query_gives_its_connection_back_for_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let k = kept(&dir, 4, None);
        for _ in 0..5 {
            let mut c = k.acquire().await.unwrap();
            let r = one(&mut c).await;
            assert_eq!(*r.as_ref().unwrap(), 1);
            c.back(&r);
        }
        assert_eq!(k.size(), 1, "one connection served every query in turn");
        // An error of the statement (not of the connection) keeps it too.
        let mut c = k.acquire().await.unwrap();
        let r = sqlx::query("SELECT * FROM no_such_table")
            .execute(&mut *c)
            .await;
        assert!(r.is_err());
        c.back(&r);
        assert_eq!(k.size(), 1);
    }

    #[tokio::test]
    async fn a_connection_not_given_back_is_closed() {
        let dir = tempfile::tempdir().unwrap();
        let k = kept(&dir, 4, None);
        let c = k.acquire().await.unwrap();
        assert_eq!(k.size(), 1);
        // As when the caller's future is dropped midway through a query.
        drop(c);
        assert_eq!(k.size(), 0);
        let mut c = k.acquire().await.unwrap();
        assert_eq!(one(&mut c).await.unwrap(), 1);
        c.back_after(Some(&sqlx::Error::WorkerCrashed));
        assert_eq!(k.size(), 0, "a broken connection is not kept");
    }

    #[tokio::test]
    async fn no_more_than_the_maximum_are_lent_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let k = kept(&dir, 2, None);
        let a = k.acquire().await.unwrap();
        let b = k.acquire().await.unwrap();
        let waited = k.acquire().await;
        assert!(matches!(waited, Err(sqlx::Error::PoolTimedOut)));
        a.back_after(None);
        let c = k.acquire().await.unwrap();
        assert_eq!(k.size(), 2);
        b.back_after(None);
        c.back_after(None);
    }

    #[tokio::test]
    async fn connections_unused_for_the_idle_timeout_close() {
        let dir = tempfile::tempdir().unwrap();
        let k = kept(&dir, 4, Some(Duration::from_millis(50)));
        let a = k.acquire().await.unwrap();
        let b = k.acquire().await.unwrap();
        a.back_after(None);
        tokio::time::sleep(Duration::from_millis(80)).await;
        // Returning b finds a stale at the bottom and closes it.
        b.back_after(None);
        assert_eq!(k.size(), 1);
        tokio::time::sleep(Duration::from_millis(80)).await;
        // The one left is stale by now: a new one is opened instead.
        let mut c = k.acquire().await.unwrap();
        assert_eq!(one(&mut c).await.unwrap(), 1);
        assert_eq!(k.size(), 1);
        c.back_after(None);
    }

    #[tokio::test]
    async fn the_minimum_opens_at_once_and_stays_open_when_idle() {
        let dir = tempfile::tempdir().unwrap();
        let k = kept_min(&dir, 4, 2, Some(Duration::from_millis(30)));
        k.open_min(0).await.unwrap();
        assert_eq!(k.size(), 2);
        tokio::time::sleep(Duration::from_millis(60)).await;
        let mut c = k.acquire().await.unwrap();
        assert_eq!(one(&mut c).await.unwrap(), 1);
        c.back_after(None);
        assert_eq!(
            k.size(),
            2,
            "idle beyond the timeout, but only the minimum open"
        );
    }
}
