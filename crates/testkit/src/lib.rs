//! Test support for every tweestap test binary (a dev-only crate): a fresh, empty
//! PostgreSQL database per test.
//!
//! The server comes from `TWEESTAP_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); that account must be allowed to
//! create databases. When the server cannot be used the tests skip loudly, unless
//! `TWEESTAP_REQUIRE_ALL=1` (as in CI), which makes them fail instead.
//!
//! Databases are named `tweestap_test_<32 hex digits>`. [`TestDatabase`] drops its
//! database when it goes, even when the test panics; a test that calls
//! [`fresh_postgres_database`] itself and panics before [`drop_database`] leaves its
//! database behind, and
//! `SELECT datname FROM pg_database WHERE datname LIKE 'tweestap_test_%'` finds them.

use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Executor};
use std::str::FromStr;
use std::time::Duration;
use url::Url;

/// The environment variable naming the PostgreSQL server for tests.
pub const POSTGRES_URL_VAR: &str = "TWEESTAP_TEST_POSTGRES_URL";
/// Used when [`POSTGRES_URL_VAR`] is not set.
pub const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
/// Every database [`fresh_postgres_database`] creates starts with this.
pub const DATABASE_PREFIX: &str = "tweestap_test_";

/// The URL of the PostgreSQL server for tests (the maintenance database on it).
pub fn postgres_url() -> String {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_POSTGRES_URL.to_owned())
}

/// Whether `TWEESTAP_REQUIRE_ALL=1`: nothing may skip.
pub fn require_all() -> bool {
    std::env::var("TWEESTAP_REQUIRE_ALL").is_ok_and(|v| v.trim() == "1")
}

/// Creates an empty database `tweestap_test_<random hex>` and returns its URL.
///
/// Returns `None` after a loud message on stderr when PostgreSQL cannot be used;
/// panics instead when `TWEESTAP_REQUIRE_ALL=1`.
pub async fn fresh_postgres_database() -> Option<String> {
    let base = postgres_url();
    match create_database(&base).await {
        Ok(url) => Some(url),
        Err(why) => {
            let shown = redacted(&base);
            if require_all() {
                panic!(
                    "TWEESTAP_REQUIRE_ALL=1 but PostgreSQL at {shown} cannot be used: {why}. \
                     Start it or point {POSTGRES_URL_VAR} at one that can create databases."
                );
            }
            eprintln!(
                "\n==================================================================\n\
                 SKIPPING PostgreSQL: {why}\n\
                 (server {shown}; set {POSTGRES_URL_VAR} to use another one,\n\
                 TWEESTAP_REQUIRE_ALL=1 to fail instead of skipping)\n\
                 ==================================================================\n"
            );
            None
        }
    }
}

/// Drops a database made by [`fresh_postgres_database`], closing whatever is still
/// connected to it. Best effort: failures are printed, never raised. Refuses
/// databases whose name does not start with [`DATABASE_PREFIX`].
pub async fn drop_database(url: &str) {
    if let Err(why) = try_drop_database(url).await {
        eprintln!("could not drop test database {}: {why}", redacted(url));
    }
}

/// A fresh PostgreSQL database for one test, dropped when the guard is dropped —
/// also while a panicking test unwinds.
#[derive(Debug)]
pub struct TestDatabase {
    url: String,
}

impl TestDatabase {
    /// A new empty database, or `None` (after a loud message) when PostgreSQL cannot
    /// be used; see [`fresh_postgres_database`].
    pub async fn create() -> Option<Self> {
        fresh_postgres_database().await.map(|url| Self { url })
    }

    /// The database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let url = std::mem::take(&mut self.url);
        // Drop cannot await, and blocking on the test's own runtime from inside it
        // panics: drop the database from a fresh thread with its own small runtime,
        // and wait for it, so the database is gone when the test ends.
        let dropping =
            std::thread::spawn(move || {
                match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(runtime) => runtime.block_on(drop_database(&url)),
                    Err(why) => eprintln!(
                        "could not drop test database {}: no runtime: {why}",
                        redacted(&url)
                    ),
                }
            });
        if dropping.join().is_err() {
            eprintln!("could not drop a test database: the dropping thread panicked");
        }
    }
}

async fn create_database(base: &str) -> Result<String, String> {
    let name = format!("{DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let url = with_database(base, &name)?;
    let mut admin = admin_connection(base).await?;
    let created = admin
        .execute(format!(r#"CREATE DATABASE "{name}""#).as_str())
        .await
        .map(|_| ())
        .map_err(|e| format!("CREATE DATABASE {name}: {e}"));
    let _ = admin.close().await;
    created.map(|()| url)
}

async fn try_drop_database(url: &str) -> Result<(), String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    let name = parsed.path().trim_start_matches('/');
    let made_for_a_test = name
        .strip_prefix(DATABASE_PREFIX)
        .is_some_and(|rest| !rest.is_empty() && rest.chars().all(|c| c.is_ascii_alphanumeric()));
    if !made_for_a_test {
        return Err(format!(
            "refusing to drop {name:?}: not a database made for a test"
        ));
    }
    // Connect to the maintenance database of the configured server, on the host of
    // `url`.
    let base = postgres_url();
    let maintenance = Url::parse(&base)
        .map_err(|e| format!("{POSTGRES_URL_VAR} is not a URL: {e}"))?
        .path()
        .trim_start_matches('/')
        .to_owned();
    let admin_url = with_database(
        url,
        if maintenance.is_empty() {
            "postgres"
        } else {
            &maintenance
        },
    )?;
    let mut admin = admin_connection(&admin_url).await?;
    let dropped = admin
        .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
        .await
        .map(|_| ())
        .map_err(|e| e.to_string());
    let _ = admin.close().await;
    dropped
}

/// One connection, waiting at most 5 s for the server; errors say why it failed
/// (connection refused, authentication, …).
async fn admin_connection(url: &str) -> Result<PgConnection, String> {
    let opts = PgConnectOptions::from_str(url).map_err(|e| format!("bad URL: {e}"))?;
    match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&opts)).await {
        Ok(Ok(c)) => Ok(c),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err("cannot connect: no answer within 5 s".to_owned()),
    }
}

/// `url` with its database (the path) replaced by `name`; query parameters stay.
fn with_database(url: &str, name: &str) -> Result<String, String> {
    let mut u = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    u.set_path(&format!("/{name}"));
    Ok(u.into())
}

/// `url` without its password, for messages.
fn redacted(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.into()
        }
        Err(_) => "(unparsable URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            with_database("postgres://u:p@h:5/postgres?sslmode=disable", "x").unwrap(),
            "postgres://u:p@h:5/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h", "x").unwrap(),
            "postgres://u@h/x"
        );
        assert_eq!(redacted("postgres://u:secret@h/d"), "postgres://u:***@h/d");
        assert_eq!(redacted("postgres://u@h/d"), "postgres://u@h/d");
    }

    #[tokio::test]
    async fn refuses_to_drop_other_databases() {
        let e = try_drop_database("postgres://postgres@127.0.0.1:1/postgres")
            .await
            .unwrap_err();
        assert!(e.contains("refusing"), "{e}");
        let e = try_drop_database("postgres://postgres@127.0.0.1:1/tweestap_test_x;y")
            .await
            .unwrap_err();
        assert!(e.contains("refusing"), "{e}");
    }

    /// The guard drops its database even when the test holding it panics.
    #[test]
    fn the_guard_drops_its_database_when_the_test_panics() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let Some(database) = runtime.block_on(TestDatabase::create()) else {
            return;
        };
        let url = database.url().to_owned();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _held = database;
            panic!("a failing test");
        }));
        assert!(panicked.is_err());
        let name = url.rsplit('/').next().unwrap().to_owned();
        let still_there = runtime.block_on(async {
            let mut admin = admin_connection(&postgres_url()).await.unwrap();
            let n: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_one(&mut admin)
                .await
                .unwrap();
            n
        });
        assert_eq!(still_there, 0, "{name} is still there");
    }
}
