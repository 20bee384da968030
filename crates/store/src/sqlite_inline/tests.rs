//! The inline reads against sqlx's, on real database files.
use super::*;
use crate::kept::Kept;
use crate::query::query;
use crate::rows::Columns;
use crate::sql::{Exec, Row, SqlitePools};
use crate::sqlite_readers::Readers;
use chrono::TimeZone;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};

/// A database file with a table of every kind of column, written by sqlx.
async fn database(dir: &std::path::Path) -> (PathBuf, SqliteConnectOptions, sqlx::SqlitePool) {
    let path = dir.join("t.db");
    let opts = SqliteConnectOptions::new()
        .filename(&path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    let pool = sqlx::SqlitePool::connect_with(opts.clone()).await.unwrap();
    run(
        &pool,
        "CREATE TABLE t (id TEXT, name TEXT, n INTEGER, b BLOB, at TEXT, gone TEXT)",
    )
    .await;
    (path, opts, pool)
}

/// Runs `sql` the sqlx way.
async fn run(pool: &sqlx::SqlitePool, sql: &str) {
    sqlx::query(sql).execute(pool).await.unwrap();
}

/// The same row, read the sqlx way and inline, column by column.
fn same(a: &Row, b: &InlineRow) {
    assert_eq!(a.opt_uuid("id").unwrap(), b.opt_uuid("id").unwrap());
    assert_eq!(a.opt_text("name").unwrap(), b.opt_text("name").unwrap());
    assert_eq!(a.opt_int("n").unwrap(), b.opt_int("n").unwrap());
    assert_eq!(a.bytes("b").unwrap(), b.bytes("b").unwrap());
    assert_eq!(a.opt_time("at").unwrap(), b.opt_time("at").unwrap());
    assert_eq!(a.opt_text("gone").unwrap(), b.opt_text("gone").unwrap());
}

#[tokio::test]
async fn reads_what_sqlx_bound_as_sqlx_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, pool) = database(dir.path()).await;
    let id = Uuid::new_v4();
    let at = Utc.with_ymd_and_hms(2026, 12, 5, 23, 59, 1).unwrap()
        + chrono::Duration::nanoseconds(123_456_789);
    let insert = query("INSERT INTO t VALUES ($1, $2, $3, $4, $5, $6)")
        .bind(id)
        .bind("Eva")
        .bind(7i64)
        .bind(&vec![1u8, 2, 3])
        .bind(at)
        .bind(None::<&str>);
    insert.sqlite().execute(&pool).await.unwrap();

    let inline = Inline::new(path);
    // `$2` before `$1`: bound by name, not by place; the time as sqlx binds it.
    let q = || {
        query("SELECT * FROM t WHERE name = $2 AND at >= $1")
            .bind(at)
            .bind("Eva")
    };
    let rows = inline.fetch_all(&q()).unwrap();
    assert_eq!(rows.len(), 1);
    let by_sqlx = q().sqlite().fetch_all(&pool).await.unwrap();
    same(&Row::Sqlite(by_sqlx.into_iter().next().unwrap()), &rows[0]);
    let r = &rows[0];
    assert_eq!(r.uuid("id").unwrap(), id);
    assert_eq!(r.text("name").unwrap(), "Eva");
    assert_eq!(r.int("n").unwrap(), 7);
    assert_eq!(r.bytes("b").unwrap(), vec![1, 2, 3]);
    assert_eq!(r.time("at").unwrap(), crate::rows::micros(at));
    assert_eq!(r.opt_text("gone").unwrap(), None);
    assert!(r.int("name").is_err(), "text is no integer");
    assert!(r.text("nothing").is_err(), "no such column");
    let later = query("SELECT * FROM t WHERE at > $1").bind(at);
    assert!(inline.fetch_all(&later).unwrap().is_empty());
    // The connection went back and served the next read too.
    assert_eq!(inline.shared.idle.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn text_that_is_no_utf8_is_an_error_of_its_column_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, pool) = database(dir.path()).await;
    run(
        &pool,
        "INSERT INTO t (name, b) VALUES (CAST(x'ff' AS TEXT), x'00')",
    )
    .await;
    let rows = Inline::new(path)
        .fetch_all(&query("SELECT * FROM t"))
        .unwrap();
    assert!(matches!(rows[0].text("name"), Err(StoreError::Corrupt(_))));
    assert_eq!(rows[0].bytes("b").unwrap(), vec![0]);
}

#[tokio::test]
async fn a_busy_database_is_left_to_the_waiting_readers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("CREATE TABLE t (name TEXT); BEGIN EXCLUSIVE; INSERT INTO t VALUES ('x');")
        .unwrap();
    let inline = Inline::new(path);
    let q = query("SELECT name FROM t");
    let asked = std::time::Instant::now();
    assert_eq!(inline.fetch_all(&q).err(), Some(NotInline::Other), "busy");
    // No wait for the lock (rusqlite's own default would wait 5 s), and the
    // connection is kept for the next read.
    assert!(
        asked.elapsed() < Duration::from_millis(500),
        "{:?}",
        asked.elapsed()
    );
    assert_eq!(inline.shared.idle.lock().unwrap().len(), 1);
    conn.execute_batch("COMMIT").unwrap();
    let rows = inline.fetch_all(&q).unwrap();
    assert_eq!(rows[0].text("name").unwrap(), "x");
}

const LONG: &str = "SELECT (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
                    WHERE x < 3000000) SELECT count(*) FROM c) AS n";

#[tokio::test]
async fn a_long_read_is_stopped_and_the_next_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, _pool) = database(dir.path()).await;
    let inline = Inline::new(path);
    let conn = inline.take().unwrap();
    let stopped = read(&conn.conn, &query(LONG)).unwrap_err();
    assert!(over_budget(&stopped), "{stopped}");
    inline.give_back(conn);
    assert_eq!(inline.fetch_all(&query(LONG)).err(), Some(NotInline::Large));
    // Closed: its page cache holds what the long read pulled in.
    assert_eq!(inline.shared.idle.lock().unwrap().len(), 0);
    let short = query(
        "SELECT (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c
         WHERE x < 1000) SELECT count(*) FROM c) AS n",
    );
    let rows = inline.fetch_all(&short).unwrap();
    assert_eq!(rows[0].int("n").unwrap(), 1000);
}

#[tokio::test]
async fn what_is_not_read_inline_is_read_by_sqlx() {
    let dir = tempfile::tempdir().unwrap();
    let (path, opts, pool) = database(dir.path()).await;
    run(&pool, "INSERT INTO t (name) VALUES ('x')").await;
    let kept = Kept::new(opts, &crate::PoolSettings::default());
    let readers = Readers::Kept(kept.clone());
    let db = crate::sql::Db::Sqlite(SqlitePools::new(
        readers,
        pool,
        Some(Inline::new(path)),
        None,
    ));
    // Past the budget; a `?` parameter (not ours to bind); two statements.
    let long = (&db).fetch_one(query(LONG)).await.unwrap();
    assert_eq!(long.int("n").unwrap(), 3_000_000);
    assert!(matches!(long, Row::Sqlite(_)));
    assert_eq!(
        kept.size(),
        0,
        "the reader of a large read is closed after it"
    );
    let q = query("SELECT name FROM t WHERE name = ?1").bind("x");
    let named = (&db).fetch_one(q).await.unwrap();
    assert_eq!(named.text("name").unwrap(), "x");
    assert!(matches!(named, Row::Sqlite(_)));
    assert_eq!(kept.size(), 1, "the reader of a plain read is kept");
    let two = || query("SELECT name FROM t; SELECT 1 AS one");
    assert!(Inline::new(dir.path().join("t.db"))
        .fetch_all(&two())
        .is_err_and(|why| why == NotInline::Other));
    let rows = (&db).fetch_all(two()).await.unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| matches!(r, Row::Sqlite(_))));
    let plain = (&db).fetch_one(query("SELECT name FROM t")).await.unwrap();
    assert!(matches!(plain, Row::Inline(_)), "a plain read runs inline");
}

#[tokio::test]
async fn a_read_connection_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, pool) = database(dir.path()).await;
    let inline = Inline::new(path);
    let conn = inline.take().unwrap();
    for sql in [
        "DELETE FROM t RETURNING name",
        "INSERT INTO t (name) VALUES ('y') RETURNING name",
    ] {
        let refused = read(&conn.conn, &query(sql)).unwrap_err();
        assert_eq!(
            refused.sqlite_error_code(),
            Some(ErrorCode::ReadOnly),
            "{sql}"
        );
        assert!(inline.fetch_all(&query(sql)).is_err(), "{sql}");
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn changed_answers_true_once_per_connection_after_each_commit() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _, pool) = database(dir.path()).await;
    let inline = Inline::new(path);
    let voids = std::cell::Cell::new(0);
    let look = || inline.changed(|| voids.set(voids.get() + 1));
    assert_eq!(look(), Ok(true), "a connection's first look");
    assert_eq!(look(), Ok(false));
    run(&pool, "INSERT INTO t (name) VALUES ('x')").await;
    assert_eq!(look(), Ok(true));
    assert_eq!(look(), Ok(false));
    sqlx::query("SELECT count(*) FROM t")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(look(), Ok(false), "a read is no commit");
    assert_eq!(voids.get(), 2, "on_change runs on each `true`, only");
}

/// Lookups on several threads while another connection commits: a hit never
/// misses a commit made before the lookup began. Each kept entry holds the
/// newest row its read saw; a hit older than the last commit finished before
/// it is stale.
#[test]
fn no_hit_misses_a_commit_made_before_it_began() {
    use crate::session_cache::{tests::found, SessionCache};
    use std::sync::atomic::AtomicI64;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.db");
    let writer = Connection::open(&path).unwrap();
    writer
        .execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER)")
        .unwrap();
    let inline = Inline::new(path);
    let cache = SessionCache::local(Duration::from_secs(60), inline.clone());
    let committed = AtomicI64::new(0);
    let (hits, stale) = (AtomicU32::new(0), AtomicU32::new(0));
    let newest = query("SELECT coalesce(max(n), 0) AS n FROM t");
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                while committed.load(Ordering::SeqCst) < 300 {
                    let before = committed.load(Ordering::SeqCst);
                    if let Some(f) = cache.session("k", false) {
                        hits.fetch_add(1, Ordering::Relaxed);
                        if f.session.amr.parse::<i64>().unwrap() < before {
                            stale.fetch_add(1, Ordering::Relaxed);
                        }
                        continue;
                    }
                    let Some(ticket) = cache.ticket() else {
                        continue;
                    };
                    let Ok(rows) = inline.fetch_all(&newest) else {
                        continue;
                    };
                    let mut f = found();
                    f.session.amr = rows[0].int("n").unwrap().to_string();
                    cache.keep_session("k", ticket, f);
                }
            });
        }
        for n in 1..=300 {
            writer
                .execute("INSERT INTO t (n) VALUES (?1)", [n])
                .unwrap();
            committed.store(n, Ordering::SeqCst);
            std::thread::sleep(Duration::from_micros(200));
        }
    });
    assert!(hits.load(Ordering::Relaxed) > 0, "nothing was served");
    assert_eq!(stale.load(Ordering::Relaxed), 0, "stale hits");
}

/// SQLite's session cache, as `Db` hands it out: every commit of any
/// connection voids it before its next hit, and nothing else does.
#[tokio::test]
async fn the_session_cache_is_voided_by_every_commit_and_by_nothing_else() {
    use crate::session_cache::tests::found;
    use crate::sql::Db;
    let dir = tempfile::tempdir().unwrap();
    let (path, opts, pool) = database(dir.path()).await;
    // Another process's connection, as a `tweestap` command's.
    let outside = sqlx::SqlitePool::connect_with(opts.clone()).await.unwrap();
    let inline = Inline::new(path);
    let readers = Readers::Kept(Kept::new(opts, &crate::PoolSettings::default()));
    let ttl = Some(Duration::from_secs(60));
    let db = Db::Sqlite(SqlitePools::new(readers, pool, Some(inline.clone()), ttl));
    let keep = |db: &Db| {
        let c = db.session_cache().unwrap();
        c.keep_session("k", c.ticket().unwrap(), found());
    };
    let kept = |db: &Db| db.session_cache().unwrap().session("k", false).is_some();

    // Misses are not looked for; the first hit's look is a connection's first,
    // which knows nothing of before.
    keep(&db);
    assert!(!kept(&db), "a connection's first look");
    keep(&db);
    for _ in 0..3 {
        assert!(kept(&db), "served again while nothing was written");
    }
    (&db).fetch_all(query("SELECT name FROM t")).await.unwrap();
    assert!(kept(&db), "a read is no write");
    run(&outside, "INSERT INTO t (name) VALUES ('outside')").await;
    assert!(!kept(&db), "another process's commit");
    keep(&db);
    assert!(kept(&db));
    (&db)
        .run(query("INSERT INTO t (name) VALUES ('own')"))
        .await
        .unwrap();
    assert!(!kept(&db), "the store's own writer's commit");

    // Each connection looks for itself: one that has not looked since a
    // commit voids the cache when it next looks, and a new one at once.
    keep(&db);
    let a = inline.take().unwrap();
    assert!(!kept(&db), "a new connection's first look");
    keep(&db);
    assert!(kept(&db));
    inline.give_back(a);
    assert!(kept(&db), "nothing committed since this one looked");
    run(&outside, "INSERT INTO t (name) VALUES ('again')").await;
    assert!(!kept(&db));
    keep(&db);
    let a = inline.take().unwrap();
    assert!(!kept(&db), "the other connection had not seen that commit");
    inline.give_back(a);
    keep(&db);
    assert!(kept(&db));
}

#[tokio::test]
async fn no_session_cache_without_inline_reads_or_when_off() {
    let dir = tempfile::tempdir().unwrap();
    let (path, opts, pool) = database(dir.path()).await;
    let readers = || Readers::Kept(Kept::new(opts.clone(), &crate::PoolSettings::default()));
    let ttl = Some(Duration::from_secs(60));
    let off = crate::sql::Db::Sqlite(SqlitePools::new(
        readers(),
        pool.clone(),
        Some(Inline::new(path)),
        None,
    ));
    assert!(off.session_cache().is_none());
    let no_inline = crate::sql::Db::Sqlite(SqlitePools::new(readers(), pool, None, ttl));
    assert!(no_inline.session_cache().is_none());
}
