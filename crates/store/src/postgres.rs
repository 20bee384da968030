//! PostgreSQL, for several server nodes sharing one database.
//!
//! The queries are the SQLite ones ([`crate::sql_store`]); the checks that must
//! hold across nodes (failure counters, one use per TOTP step, confirming a factor
//! once) are single conditional statements, so the database decides them
//! atomically: under READ COMMITTED a concurrent statement on the same row waits
//! for ours, then re-checks its condition against the committed value.

use crate::kept::{Kept, Lent};
use crate::query::Query;
use crate::session_cache::SessionCache;
use crate::session_listener;
use crate::sql::Db;
use crate::sql_store::{Backend, SqlStore};
use crate::{map_err, PoolSettings};
use sqlx::postgres::{PgConnectOptions, PgRow, PgSslMode};
use sqlx::PgConnection;
use std::net::IpAddr;
use std::str::FromStr;
use tweestap_domain::store::StoreResult;

/// PostgreSQL as the database of a [`SqlStore`].
#[derive(Clone, Copy, Debug)]
pub struct Postgres;

impl Backend for Postgres {}

pub type PostgresStore = SqlStore<Postgres>;

impl SqlStore<Postgres> {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`) and applies
    /// pending migrations when `migrate` is set.
    ///
    /// Gives up after `pool.acquire_timeout` with [`StoreError::Unavailable`] when the
    /// server cannot be reached. Once connected, a connection that broke is closed
    /// and a new one opened when needed, so the store carries on by itself when
    /// PostgreSQL comes back after a restart; in between, calls fail with
    /// `Unavailable`.
    ///
    /// [`StoreError::Unavailable`]: tweestap_domain::store::StoreError::Unavailable
    pub async fn connect(url: &str, pool: &PoolSettings, migrate: bool) -> StoreResult<Self> {
        let opts = connect_options(url, tls_in_environment())?;
        // No ping before every use (a round trip per query, a third of the code
        // step's) nor after (`crate::kept`): one that sat idle for over a second is
        // pinged, and one killed by the server meanwhile (pg_terminate_backend, a
        // fail-over) is retried (`run_on_live`).
        let kept: Kept<PgConnection> = Kept::new(opts.clone(), pool);
        kept.open_min(1).await.map_err(map_err)?;
        let lazy = lazy_connections(&opts, pool, &kept, LAZY_COMMIT).await;
        let cache = pool.session_cache.map(SessionCache::new);
        if let Some(c) = &cache {
            session_listener::start(opts, c);
        }
        Self::start(Db::Postgres(kept, cache, lazy), migrate).await
    }
}

/// What the connections of [`lazy_connections`] ask for.
const LAZY_COMMIT: (&str, &str) = ("synchronous_commit", "off");

/// The connections for writes that need not wait for the disk
/// ([`Query::commit_lazily`]): a quarter of `max_connections` (at least one),
/// each statement on them is short. They ask for `synchronous_commit = off` at
/// start-up (the `options` parameter, so it can never reach another client's
/// connection through a pooler). A pooler that refuses that parameter (PgBouncer
/// unless told to allow it) would fail every password check: so one is opened
/// now, and if that fails the statements run on `main` and wait, as any other.
async fn lazy_connections(
    opts: &PgConnectOptions,
    pool: &PoolSettings,
    main: &Kept<PgConnection>,
    setting: (&str, &str),
) -> Kept<PgConnection> {
    let settings = PoolSettings {
        max_connections: pool.max_connections.div_ceil(4).max(1),
        min_connections: pool.min_connections.min(1),
        ..pool.clone()
    };
    let opts = opts.clone().options([setting]);
    let lazy: Kept<PgConnection> = Kept::new(opts, &settings);
    match lazy.open_min(1).await {
        Ok(()) => lazy,
        Err(e) => {
            tracing::warn!(
                error = %e,
                "no connection with synchronous_commit = off (a pooler refusing the \
                 `options` start-up parameter?): throttles' writes wait for the disk"
            );
            main.clone()
        }
    }
}

/// The options `url` names, with TLS off for a server on this machine (a loopback
/// address, `localhost` or a Unix socket) unless TLS was asked for: any `ssl…`
/// parameter in the URL, or any `PGSSL…` variable in the environment (`tls_env`:
/// a mode, a client certificate). sqlx's default, `prefer`, would encrypt every
/// statement and answer there, which guards nothing that leaves the machine and
/// cost about a tenth of the code step's CPU (`docs/benchmarks.md`). Any other
/// server keeps what the URL says, `prefer` by default.
fn connect_options(url: &str, tls_env: bool) -> StoreResult<PgConnectOptions> {
    let opts = PgConnectOptions::from_str(url).map_err(map_err)?;
    // In any case of letters: a key sqlx ignores still says TLS was thought of.
    let named = url::Url::parse(url).is_ok_and(|u| {
        u.query_pairs()
            .any(|(key, _)| key.to_ascii_lowercase().starts_with("ssl"))
    });
    Ok(match on_this_machine(&opts) && !named && !tls_env {
        true => opts.ssl_mode(PgSslMode::Disable),
        false => opts,
    })
}

/// Whether a `PGSSL…` variable (`PGSSLMODE`, `PGSSLCERT`, `PGSSLROOTCERT`, …) is
/// set: TLS settings sqlx reads from the environment.
fn tls_in_environment() -> bool {
    std::env::vars_os().any(|(key, _)| key.to_string_lossy().starts_with("PGSSL"))
}

/// Whether `opts` reach a server on this machine: a Unix socket (named as such or
/// as a host that is a path), `localhost`, or a literal loopback address. Any
/// other spelling (`localhost.`, `127.1`, an IPv4-mapped address) counts as
/// elsewhere and keeps TLS.
fn on_this_machine(opts: &PgConnectOptions) -> bool {
    let host = opts.get_host();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    opts.get_socket().is_some()
        || host.starts_with('/')
        || host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether the connection `e` came from was gone before the statement reached the
/// server, so that it may run again elsewhere: the server said it had ended the
/// connection (terminated, shutting down), which aborts any statement in flight.
/// A closed socket says less: the statement may have committed before it closed,
/// so only a statement that `only_reads` is run again after one.
fn dead_connection(e: &sqlx::Error, only_reads: bool) -> bool {
    match e {
        sqlx::Error::Io(_) => only_reads,
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.code(), "57P01" | "57P02" | "57P03")),
        _ => false,
    }
}

/// Whether `e` ended a statement that PostgreSQL chose as a deadlock's victim. A
/// statement of its own (not inside a caller's transaction) was then rolled back
/// whole, so it may simply run again: the other side has its locks by then.
/// Single statements that lock several rows in parallel (the code step's lock the
/// account's row, then write the factor's and the sessions') can meet this under
/// load on one account.
fn deadlock_victim(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| pg.code() == "40P01"),
        _ => false,
    }
}

/// How often a statement chosen as a deadlock's victim runs again.
const DEADLOCK_RETRIES: u32 = 3;

/// Runs `q` on a live connection of `pool`: a dead one found on the way is
/// closed and the next tried, at most as many as the pool holds; a statement
/// that lost a deadlock runs again, a few times at most.
macro_rules! run_on_live {
    ($pool:expr, $reads:expr, |$conn:ident| $run:expr) => {{
        let pool: &Kept<PgConnection> = $pool;
        let mut left = pool.size() + 1;
        let mut deadlocks = DEADLOCK_RETRIES;
        loop {
            let mut $conn = pool.acquire().await?;
            let done = $run.await;
            match done {
                Err(e) if left > 0 && dead_connection(&e, $reads) => {
                    $conn.back_after(Some(&e));
                    left -= 1;
                }
                Err(e) if deadlocks > 0 && deadlock_victim(&e) => {
                    tracing::debug!(error = %e, "a statement lost a deadlock; running it again");
                    $conn.back_after(Some(&e));
                    deadlocks -= 1;
                }
                done => {
                    $conn.back(&done);
                    break done;
                }
            }
        }
    }};
}

/// Runs a statement; the rows it touched.
pub(crate) async fn execute(pool: &Kept<PgConnection>, q: &Query) -> Result<u64, sqlx::Error> {
    run_on_live!(pool, q.only_reads(), |conn| q
        .postgres()
        .execute(&mut *conn))
    .map(|r| r.rows_affected())
}

/// Runs a query; its rows.
pub(crate) async fn fetch_all(
    pool: &Kept<PgConnection>,
    q: &Query,
) -> Result<Vec<PgRow>, sqlx::Error> {
    run_on_live!(pool, q.only_reads(), |conn| q
        .postgres()
        .fetch_all(&mut *conn))
}

/// Begins a transaction on a live connection.
/// Only a BEGIN that failed on a dead connection is tried again, not a failure to
/// get one (that already waited for the acquire timeout).
pub(crate) async fn begin(pool: &Kept<PgConnection>) -> Result<Lent<PgConnection>, sqlx::Error> {
    let mut left = pool.size() + 1;
    loop {
        let mut conn = pool.acquire().await?;
        match sqlx::Executor::execute(&mut *conn, "BEGIN").await {
            Ok(_) => return Ok(conn),
            Err(e) => {
                conn.back_after(Some(&e));
                if left == 0 || !dead_connection(&e, true) {
                    return Err(e);
                }
                left -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tweestap_domain::store::prelude::*;
    use tweestap_domain::store::StoreError;
    use tweestap_testkit as testing;

    async fn count(conn: &mut PgConnection, sql: &str) -> i64 {
        sqlx::query_scalar(sql).fetch_one(conn).await.unwrap()
    }

    fn mode(url: &str, tls_env: bool) -> String {
        format!(
            "{:?}",
            connect_options(url, tls_env).unwrap().get_ssl_mode()
        )
    }

    /// What sqlx makes of `url` by itself (`prefer`, or what `PGSSLMODE` says).
    fn as_sqlx(url: &str) -> String {
        format!(
            "{:?}",
            PgConnectOptions::from_str(url).unwrap().get_ssl_mode()
        )
    }

    #[test]
    fn tls_is_off_on_this_machine_unless_asked_for() {
        for here in [
            "postgres://u@127.0.0.1:5432/db",
            "postgres://u@127.3.2.1/db",
            "postgres://u@localhost/db",
            "postgres://u@LOCALHOST:5432/db?application_name=x",
            "postgres://u@[::1]:5432/db",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/db",
            "postgres:///db?host=/var/run/postgresql",
            "postgres://u@db.remote/db?host=127.0.0.1",
            "postgres://u@db.remote/db?hostaddr=127.0.0.1",
        ] {
            assert_eq!(mode(here, false), "Disable", "{here}");
            // A PGSSL… variable decides when the URL does not.
            assert_eq!(mode(here, true), as_sqlx(here), "{here}");
        }
        for asked in [
            "postgres://u@127.0.0.1/db?sslmode=require",
            "postgres://u@localhost/db?ssl-mode=verify-full",
            "postgres://u@127.0.0.1/db?sslmode=prefer",
            "postgres://u@127.0.0.1/db?sslrootcert=/etc/ca.pem",
            "postgres://u@127.0.0.1/db?SSLMODE=require",
            "postgres://u@127.0.0.1/db?%73slmode=require",
        ] {
            assert_eq!(mode(asked, false), as_sqlx(asked), "{asked}");
        }
        assert_eq!(
            mode("postgres://u@127.0.0.1/db?sslmode=require", false),
            "Require"
        );
        for elsewhere in [
            "postgres://u@db.internal:5432/db",
            "postgres://u@10.0.0.5/db",
            "postgres://u@[2001:db8::1]/db",
            "postgres://u@localhost.example.org/db",
            "postgres://u@localhost./db",
            "postgres://u@128.0.0.1/db",
            "postgres://u@[::ffff:127.0.0.1]/db",
            "postgres://u@127.0.0.1/db?host=db.remote",
            "postgres://u@localhost/db?hostaddr=10.0.0.5",
        ] {
            assert_eq!(mode(elsewhere, false), as_sqlx(elsewhere), "{elsewhere}");
        }
        // Not vacuous: sqlx alone would encrypt where it can.
        if std::env::var_os("PGSSLMODE").is_none() {
            assert_eq!(as_sqlx("postgres://u@127.0.0.1/db"), "Prefer");
        }
    }

    /// On a real server that offers TLS: the store's connections to it on this
    /// machine are plain unless the URL asks for TLS, and then they are encrypted.
    #[tokio::test]
    async fn connections_on_this_machine_are_plain_unless_tls_is_asked_for() {
        let Some(db) = testing::TestDatabase::create().await else {
            return;
        };
        let url = db.url().to_owned();
        // Whether the store's connection uses TLS, whether any connection to the
        // database does (once the session cache's listener, which connects on
        // its own, is there too), and whether the server offers TLS at all.
        let encrypted = |store: PostgresStore| async move {
            let Db::Postgres(pool, ..) = store.db() else {
                unreachable!("a PostgresStore holds PostgreSQL connections")
            };
            let mut conn = pool.acquire().await.unwrap();
            let own = count(
                &mut conn,
                "SELECT count(*) FROM pg_stat_ssl WHERE pid = pg_backend_pid() AND ssl",
            )
            .await;
            let here = "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()";
            let mut connected = 0;
            for _ in 0..100 {
                connected = count(&mut conn, here).await;
                if connected >= 2 {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert!(
                connected >= 2,
                "the session cache's listener never connected"
            );
            let any = count(
                &mut conn,
                "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
                 WHERE a.datname = current_database() AND s.ssl",
            )
            .await;
            let offered = count(
                &mut conn,
                "SELECT count(*) FROM pg_settings WHERE name = 'ssl' AND setting = 'on'",
            )
            .await;
            conn.back_after(None);
            (own > 0, any > 0, offered > 0)
        };
        let settings = PoolSettings::default();
        let plain = PostgresStore::connect(&url, &settings, true).await.unwrap();
        let (_, tls, offered) = encrypted(plain).await;
        // Worked out apart from the code under test: the usual test URLs.
        let parsed = url::Url::parse(&url).unwrap();
        let loopback = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
        let plain_expected =
            loopback && !url.to_ascii_lowercase().contains("ssl") && !tls_in_environment();
        let unchecked = match (offered, plain_expected) {
            (false, _) => Some("the PostgreSQL server offers no TLS"),
            (true, true) => {
                assert!(
                    !tls,
                    "connections on this machine (the listener's too) must not use TLS by default"
                );
                None
            }
            _ => Some("the test server is elsewhere or TLS is asked for: the plain default"),
        };
        if offered {
            let asked = format!(
                "{url}{}sslmode=require",
                if url.contains('?') { '&' } else { '?' }
            );
            let store = PostgresStore::connect(&asked, &settings, false)
                .await
                .unwrap();
            assert!(encrypted(store).await.0, "sslmode=require must encrypt");
        }
        if let Some(why) = unchecked {
            let why = format!("{why}: not all checked");
            assert!(!testing::require_all(), "{why}");
            eprintln!("SKIPPED (loudly): {why}");
        }
    }

    /// Statements marked `commit_lazily` run on connections whose commits do not
    /// wait for the disk; every other statement on ones that keep the server's
    /// setting. Among the throttles' writes exactly the six that take, give back
    /// and settle attempts are marked; `lock_throttle` and the audit log's rows wait.
    /// Where the lazy connections cannot be had, the statements wait too.
    #[tokio::test]
    async fn only_statements_marked_lazy_commit_without_waiting_for_the_disk() {
        use crate::rows::Columns;
        use crate::sql::{query, Exec};
        use tweestap_domain::store::{Attempt, Bucket};
        let Some(db) = testing::TestDatabase::create().await else {
            return;
        };
        let settings = PoolSettings {
            max_connections: 1,
            ..PoolSettings::default()
        };
        let store = PostgresStore::connect(db.url(), &settings, true)
            .await
            .unwrap();
        let text = |sql: &'static str, lazily: bool| {
            let store = &store;
            async move {
                let q = query(sql);
                let q = if lazily { q.commit_lazily() } else { q };
                let rows = store.db().fetch_all(q).await.unwrap();
                rows[0].text("v").unwrap()
            }
        };
        let setting = "SELECT current_setting('synchronous_commit') AS v";
        let server = "SELECT reset_val AS v FROM pg_settings WHERE name = 'synchronous_commit'";
        assert_eq!(text(setting, true).await, "off");
        assert_eq!(text(setting, false).await, text(server, false).await);

        // Which statement the lazy connection (one here) ran last.
        let pid = text("SELECT pg_backend_pid()::text AS v", true).await;
        let last_lazy = || {
            let (store, pid) = (&store, pid.clone());
            async move {
                let q = query("SELECT query AS v FROM pg_stat_activity WHERE pid = $1::int")
                    .bind(pid.as_str());
                let rows = store.db().fetch_all(q).await.unwrap();
                rows[0].text("v").unwrap()
            }
        };
        let now = chrono::Utc::now();
        let attempt = Attempt {
            key: "test:lazy",
            account: None,
            now,
            lock_at: None,
            cap: None,
            restart_before: None,
        };
        let bucket = Bucket {
            key: "test:bucket",
            now,
            capacity: 10,
            interval: chrono::Duration::seconds(1),
        };
        assert_eq!(store.take_attempt(&attempt).await.unwrap(), Some(1));
        assert!(
            last_lazy().await.contains("failures + 1"),
            "take_attempt waited"
        );
        store.give_back_attempt("test:lazy", None).await.unwrap();
        assert!(
            last_lazy().await.contains("failures - 1"),
            "give_back_attempt waited"
        );
        store.clear_throttle("test:lazy").await.unwrap();
        assert!(
            last_lazy().await.starts_with("DELETE FROM throttles"),
            "clear_throttle waited"
        );
        store.take_from_bucket(&bucket).await.unwrap();
        assert!(
            last_lazy().await.contains("throttles.failures <= $5"),
            "take_from_bucket waited"
        );
        store.give_back_to_bucket(&bucket).await.unwrap();
        assert!(
            last_lazy().await.contains("failures - $1"),
            "give_back_to_bucket waited"
        );
        store
            .settle_right_answer(&["test:lazy"], Some(&bucket))
            .await
            .unwrap();
        assert!(
            last_lazy().await.starts_with("WITH cleared AS (DELETE"),
            "settle_right_answer waited"
        );
        store.lock_throttle("test:bucket", now).await.unwrap();
        assert!(
            !last_lazy().await.contains("locked_until = $1"),
            "lock_throttle did not wait"
        );
        let record = tweestap_domain::audit::AuditRecord {
            at: now,
            event: "login_failed".to_owned(),
            account_id: None,
            email: None,
            ip: None,
            user_agent: None,
            detail: None,
        };
        store.append_audit(&record).await.unwrap();
        assert!(
            !last_lazy().await.contains("audit_log"),
            "an audit row did not wait"
        );

        // A setting the server refuses at start-up (as a pooler refuses the
        // `options` parameter): the marked statements run on the main
        // connections, and wait.
        let Db::Postgres(main, ..) = store.db() else {
            unreachable!("a PostgresStore holds PostgreSQL connections")
        };
        let opts = PgConnectOptions::from_str(db.url()).unwrap();
        let refused = ("synchronous_commit", "not-a-setting");
        let lazy = lazy_connections(&opts, &settings, main, refused).await;
        let mut conn = lazy.acquire().await.unwrap();
        let sync: String = sqlx::query_scalar(setting)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        conn.back_after(None);
        assert_ne!(sync, "off");
    }

    /// A connection PostgreSQL terminates under our feet reports `Unavailable`, and
    /// the pool replaces it by itself on the next call.
    #[tokio::test]
    async fn terminated_connections_are_unavailable_then_replaced() {
        let Some(url) = testing::fresh_postgres_database().await else {
            return;
        };
        let store = PostgresStore::connect(&url, &PoolSettings::default(), true)
            .await
            .unwrap();
        let Db::Postgres(pool, ..) = store.db() else {
            unreachable!("a PostgresStore holds PostgreSQL connections")
        };
        let mut victim = pool.acquire().await.unwrap();
        let mut killer = pool.acquire().await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *victim)
            .await
            .unwrap();
        // With a timeout, PostgreSQL waits until the backend is really gone.
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&mut *killer)
            .await
            .unwrap();
        assert!(killed);
        let err = sqlx::query("SELECT 1")
            .execute(&mut *victim)
            .await
            .unwrap_err();
        let open = pool.size();
        victim.back_after(Some(&err));
        assert_eq!(
            pool.size(),
            open - 1,
            "a broken connection is closed, not kept"
        );
        assert!(
            matches!(map_err(err), StoreError::Unavailable(_)),
            "a terminated connection must be Unavailable"
        );

        // Kill every other connection of the pool too; the store must carry on.
        sqlx::query(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(&mut *killer)
        .await
        .unwrap();
        killer.back_after(None);
        store.ping().await.unwrap();
        assert!(store.list_accounts().await.unwrap().is_empty());

        pool.close().await;
        testing::drop_database(&url).await;
    }
}
