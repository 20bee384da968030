//! What sqlx's pool costs per query: a one-row SELECT by primary key from four
//! tasks, through a pool and on connections held across queries (the reason for
//! `kept.rs`; figures in docs/benchmarks.md).
//!
//! `cargo run --release -p tweestap-store --example pool_ping [postgres URL]`
//! (default `postgres://postgres@127.0.0.1:5432/postgres`; SQLite in a temporary
//! file).

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Connection, Database, Executor, IntoArguments, Pool};
use std::error::Error;
use std::str::FromStr;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const TASKS: usize = 4;
const PER_TASK: i64 = 20_000;

#[tokio::main]
async fn main() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let sqlite = SqliteConnectOptions::new()
        .filename(dir.path().join("p.db"))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect_with(sqlite.clone())
        .await?;
    run::<sqlx::Sqlite>("SQLite", &pool, sqlite).await?;

    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let pg = PgConnectOptions::from_str(&url)?;
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .test_before_acquire(false)
        .connect_with(pg.clone())
        .await?;
    run::<sqlx::Postgres>("PostgreSQL", &pool, pg).await?;
    pool.execute("DROP TABLE IF EXISTS pool_ping").await?;
    Ok(())
}

async fn run<DB>(
    name: &str,
    pool: &Pool<DB>,
    opts: <DB::Connection as Connection>::Options,
) -> Res<()>
where
    DB: Database,
    for<'c> &'c Pool<DB>: Executor<'c, Database = DB>,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'a> <DB as Database>::Arguments<'a>: IntoArguments<'a, DB>,
    i64: sqlx::Encode<'static, DB> + sqlx::Type<DB>,
    String: for<'r> sqlx::Decode<'r, DB> + sqlx::Type<DB>,
    for<'r> (String,): sqlx::FromRow<'r, DB::Row>,
{
    pool.execute("DROP TABLE IF EXISTS pool_ping").await?;
    pool.execute("CREATE TABLE pool_ping (id BIGINT PRIMARY KEY, v TEXT NOT NULL)")
        .await?;
    pool.execute("INSERT INTO pool_ping SELECT 0, 'x'").await?;
    for round in 1..=3 {
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let pool = pool.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..PER_TASK {
                    let _: (String,) = sqlx::query_as("SELECT v FROM pool_ping WHERE id = $1")
                        .bind(0i64)
                        .fetch_one(&pool)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let pooled = rate(t);
        let t = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..TASKS {
            let opts = opts.clone();
            tasks.push(tokio::spawn(async move {
                let mut conn = DB::Connection::connect_with(&opts).await?;
                for _ in 0..PER_TASK {
                    let _: (String,) = sqlx::query_as("SELECT v FROM pool_ping WHERE id = $1")
                        .bind(0i64)
                        .fetch_one(&mut conn)
                        .await?;
                }
                Ok::<_, sqlx::Error>(())
            }));
        }
        for t in tasks {
            t.await??;
        }
        let held = rate(t);
        println!(
            "{name} round {round}: through the pool {pooled:.0}/s, held {held:.0}/s, ratio {:.2}",
            held / pooled
        );
    }
    Ok(())
}

fn rate(since: Instant) -> f64 {
    (TASKS as i64 * PER_TASK) as f64 / since.elapsed().as_secs_f64()
}
