use super::*;
use crate::query::query;
use crate::rows::Columns;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
use sqlx::Row;

/// How the writer under test runs its groups.
#[derive(Clone, Copy)]
pub(super) enum Way {
    /// On sqlx's connection, as for a database in memory.
    Sqlx,
    /// On a connection of its own, as for a plain file (see [`direct`]).
    Direct,
}

async fn writer(way: Way) -> (tempfile::TempDir, SqlitePool, Writer) {
    writer_of(way, "k TEXT PRIMARY KEY, n INTEGER NOT NULL").await
}

async fn writer_of(way: Way, columns: &str) -> (tempfile::TempDir, SqlitePool, Writer) {
    writer_waiting(way, columns, std::time::Duration::from_secs(5)).await
}

/// A writer whose connections wait up to `busy` for SQLite's write lock.
async fn writer_waiting(
    way: Way,
    columns: &str,
    busy: std::time::Duration,
) -> (tempfile::TempDir, SqlitePool, Writer) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.db");
    let opts = SqliteConnectOptions::new()
        .filename(&file)
        .busy_timeout(busy)
        .foreign_keys(true);
    let pool = writer_pool(opts, columns).await;
    let file = matches!(way, Way::Direct).then_some(file);
    let w = Writer::start(pool.clone(), Readers::Writer(pool.clone()), file);
    (dir, pool, w)
}

/// The one writing connection to a new database of `opts`, holding table `t`
/// with `columns`.
async fn writer_pool(opts: SqliteConnectOptions, columns: &str) -> SqlitePool {
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts.create_if_missing(true))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE TABLE t ({columns})"))
        .execute(&pool)
        .await
        .unwrap();
    pool
}

fn insert(k: &str, n: i64) -> Query {
    query("INSERT INTO t (k, n) VALUES ($1, $2)")
        .bind(k)
        .bind(n)
}

async fn keys(pool: &SqlitePool) -> Vec<String> {
    sqlx::query("SELECT k FROM t ORDER BY k")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|r| r.get::<String, _>("k"))
        .collect()
}

/// Many writers at once share transactions; a duplicate fails alone, and a
/// job of several statements whose second fails leaves nothing of its first,
/// while everyone else's writes stand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_fails_alone() {
    a_failing_write_fails_alone_by(Way::Sqlx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_write_fails_alone_on_the_writers_own_connection() {
    a_failing_write_fails_alone_by(Way::Direct).await;
}

async fn a_failing_write_fails_alone_by(way: Way) {
    let (_dir, pool, w) = writer(way).await;
    w.execute(insert("dup", 0)).await.unwrap();
    // The writer's connection held while the jobs queue up, so that they
    // meet in a few groups rather than each finding the writer idle.
    let held = pool.acquire().await.unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for i in 0..200 {
        let w = w.clone();
        calls.spawn(async move {
            match i % 4 {
                0 => w.execute(insert("dup", i)).await.map(|_| "dup"),
                1 => w
                    .together(vec![insert(&format!("half{i:03}"), i), insert("dup", i)])
                    .await
                    .map(|_| "half"),
                2 => w
                    .together(vec![
                        insert(&format!("pair{i:03}a"), i),
                        query("UPDATE t SET n = n + 1 WHERE k = $1").bind(format!("pair{i:03}a")),
                    ])
                    .await
                    .map(|_| "pair"),
                _ => w
                    .execute(insert(&format!("one{i:03}"), i))
                    .await
                    .map(|_| "one"),
            }
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(held);
    let mut ok = 0;
    while let Some(r) = calls.join_next().await {
        match r.unwrap() {
            Ok(kind) => {
                assert!(kind == "pair" || kind == "one", "{kind} must fail");
                ok += 1;
            }
            Err(e) => assert!(matches!(e, StoreError::Conflict), "{e:?}"),
        }
    }
    assert_eq!(ok, 100);
    let keys = keys(&pool).await;
    assert_eq!(keys.len(), 101, "dup, 50 pairs, 50 ones: {keys:?}");
    assert!(keys.iter().all(|k| !k.starts_with("half")));
    let bumped: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM t WHERE k LIKE 'pair%' AND n % 4 = 3")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(bumped, 50, "each pair's second statement saw its first");
}

/// A statement's rows come back after the commit, and the rows it changed.
#[tokio::test]
async fn returning_rows_come_back() {
    for way in [Way::Sqlx, Way::Direct] {
        let (_dir, pool, w) = writer(way).await;
        let mut rows = w
            .fetch_all(query("INSERT INTO t (k, n) VALUES ('a', 7) RETURNING n"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        let row = rows.remove(0);
        // Each way really ran it: rows of sqlx's, or of the writer's own.
        match (way, &row) {
            (Way::Sqlx, WrittenRow::Sqlx(_)) | (Way::Direct, WrittenRow::Inline(_)) => {}
            _ => panic!("the group ran the other way"),
        }
        assert_eq!(crate::sql::Row::from(row).int("n").unwrap(), 7);
        assert_eq!(keys(&pool).await, ["a"]);
        w.execute(insert("b", 1)).await.unwrap();
        let q = query("UPDATE t SET n = n + 1 WHERE n < $1").bind(10i64);
        assert_eq!(w.execute(q).await.unwrap(), 2);
    }
}

/// The writer's own connection has sqlx's writing connection's settings, each
/// set here to other than its default (the bundled SQLite's own defaults
/// differ from sqlx's, e.g. foreign keys are on in both, syncs are not).
#[tokio::test]
async fn the_writers_own_connection_has_sqlxs_settings() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.db");
    let opts = SqliteConnectOptions::new()
        .filename(&file)
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
        .foreign_keys(false)
        .busy_timeout(std::time::Duration::from_millis(1234))
        .pragma("wal_autocheckpoint", "0")
        .pragma("journal_size_limit", "777777");
    let pool = writer_pool(opts, "k TEXT PRIMARY KEY").await;
    let mut direct = Direct::configure(&pool, file).await.unwrap();
    let conn = direct.connection().unwrap();
    let settings = [
        "synchronous",
        "foreign_keys",
        "busy_timeout",
        "wal_autocheckpoint",
        "journal_size_limit",
    ];
    for name in settings {
        let sql = format!("PRAGMA {name}");
        let ours: i64 = conn.query_row(&sql, [], |r| r.get(0)).unwrap();
        let sqlxs: i64 = sqlx::query_scalar(&sql).fetch_one(&pool).await.unwrap();
        assert_eq!(ours, sqlxs, "{name}");
    }
}

/// A caller's transaction keeps the writer's groups out until it ends: a write
/// queued meanwhile waits for it, then sees what it committed. Without waiting
/// for its turn it would meet SQLite's lock, and fail here, where nothing waits
/// for SQLite's lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_keeps_the_groups_out_until_it_ends() {
    for way in [Way::Sqlx, Way::Direct] {
        let columns = "k TEXT PRIMARY KEY, n INTEGER NOT NULL";
        let (_dir, pool, w) = writer_waiting(way, columns, std::time::Duration::ZERO).await;
        // The writer under way (it reads its settings from sqlx's connection first).
        w.execute(insert("first", 0)).await.unwrap();
        let turn = w.turn().await.unwrap();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (k, n) VALUES ('tx', 1)")
            .execute(&mut *tx)
            .await
            .unwrap();
        let queued = tokio::spawn({
            let w = w.clone();
            async move {
                let q = query("UPDATE t SET n = n + 1 WHERE k = 'tx'");
                w.execute(q).await
            }
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!queued.is_finished(), "a group ran beside the transaction");
        tx.commit().await.unwrap();
        drop(turn);
        assert_eq!(queued.await.unwrap().unwrap(), 1);
    }
}

/// A transaction dropped without a commit (an error returned halfway) lets its
/// turn go only once sqlx has rolled it back: the group queued meanwhile never
/// meets its write lock (which fails here, where nothing waits for SQLite's
/// lock), and nothing of it stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_transaction_lets_its_turn_go_once_rolled_back() {
    let columns = "k TEXT PRIMARY KEY, n INTEGER NOT NULL";
    let (_dir, pool, w) = writer_waiting(Way::Direct, columns, std::time::Duration::ZERO).await;
    w.execute(insert("first", 0)).await.unwrap();
    for i in 0..20 {
        let turn = w.turn().await.unwrap();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.unwrap();
        sqlx::query("INSERT INTO t (k, n) VALUES ($1, 0)")
            .bind(format!("gone{i:02}"))
            .execute(&mut *tx)
            .await
            .unwrap();
        let queued = tokio::spawn({
            let w = w.clone();
            async move { w.execute(insert(&format!("kept{i:02}"), i)).await }
        });
        // In `Tx::Sqlite`'s order: the transaction, then the turn.
        drop(tx);
        drop(turn);
        assert_eq!(queued.await.unwrap().unwrap(), 1, "round {i}");
    }
    let keys = keys(&pool).await;
    assert_eq!(keys.len(), 21, "{keys:?}");
    assert!(keys.iter().all(|k| !k.starts_with("gone")));
}

/// Parameters are bound as sqlx-sqlite binds them, either way: `?` takes the
/// next of the bare ones' arguments, the binding ends at a parameter past the
/// arguments, and a name that is no number is refused. A text of two
/// statements runs both (on sqlx's connection).
#[tokio::test]
async fn parameters_bind_as_sqlx_binds_them_either_way() {
    for way in [Way::Sqlx, Way::Direct] {
        let (_dir, pool, w) = writer(way).await;
        let q = query("INSERT INTO t (k, n) VALUES (?, ?)")
            .bind("q")
            .bind(5i64);
        assert_eq!(w.execute(q).await.unwrap(), 1);
        let q = query("INSERT INTO t (k, n) VALUES ($2, ?)")
            .bind(7i64)
            .bind("s");
        assert_eq!(w.execute(q).await.unwrap(), 1);
        let q = query("UPDATE t SET n = $2 WHERE k = $1").bind("q");
        assert_eq!(w.execute(q).await.unwrap(), 0, "k = NULL matches nothing");
        let q = query("UPDATE t SET n = :n WHERE k = $1").bind("q");
        assert!(w.execute(q).await.is_err());
        let two =
            query("INSERT INTO t (k, n) VALUES ('u', 1); INSERT INTO t (k, n) VALUES ('v', 2)");
        w.execute(two).await.unwrap();
        let rows: Vec<(String, i64)> = sqlx::query_as("SELECT k, n FROM t ORDER BY k")
            .fetch_all(&pool)
            .await
            .unwrap();
        let want = [("q", 5), ("s", 7), ("u", 1), ("v", 2)].map(|(k, n)| (k.to_owned(), n));
        assert_eq!(rows, want);
    }
}

/// Under steady writes the log starts afresh again and again (each reader's
/// checkpoint beside the writes is finished by the writer between two groups).
/// SQLite counts the log's fresh starts in its header (the checkpoint sequence
/// number, bytes 12 to 15, big-endian); a checkpoint beside steady commits
/// never copies all of the log, so without the writer's the count stays put.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_starts_afresh_under_steady_writes() {
    the_log_starts_afresh_by(Way::Sqlx).await;
    the_log_starts_afresh_by(Way::Direct).await;
}

/// A writer to a new file in WAL mode, checkpointed as the server's is (from a
/// reader's connection, then by the writer), with table `t (k, pad)`; its log.
pub(super) async fn checkpointed_writer(
    way: Way,
) -> (tempfile::TempDir, SqlitePool, Writer, PathBuf) {
    use sqlx::sqlite::SqliteJournalMode;
    let dir = tempfile::tempdir().unwrap();
    let opts = SqliteConnectOptions::new()
        .filename(dir.path().join("w.db"))
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(5))
        // No sync per commit, so that a slow disk still gives steady writes.
        .synchronous(sqlx::sqlite::SqliteSynchronous::Off)
        .pragma("wal_autocheckpoint", "0")
        .pragma("journal_size_limit", "-1");
    let pool = writer_pool(opts.clone(), "k TEXT PRIMARY KEY, pad BLOB NOT NULL").await;
    let settings = crate::PoolSettings::default();
    let readers = Readers::Kept(crate::kept::Kept::new(opts, &settings));
    let file = matches!(way, Way::Direct).then(|| dir.path().join("w.db"));
    let w = Writer::start(pool.clone(), readers, file);
    let log = dir.path().join("w.db-wal");
    (dir, pool, w, log)
}

async fn the_log_starts_afresh_by(way: Way) {
    let (_dir, _pool, w, log) = checkpointed_writer(way).await;
    let fresh_starts = || {
        use std::io::Read;
        let mut header = [0u8; 16];
        std::fs::File::open(&log)
            .unwrap()
            .read_exact(&mut header)
            .unwrap();
        u32::from_be_bytes([header[12], header[13], header[14], header[15]])
    };
    let before = fresh_starts();
    let started = std::time::Instant::now();
    let mut i = 0i64;
    // Checkpoints come every half second, a reader's taking up to a second on
    // a busy machine: writes go on until the log has started afresh twice, or
    // for ten seconds, which a working writer never needs.
    let mut after = before;
    while after < before + 2 && started.elapsed() < std::time::Duration::from_secs(10) {
        for _ in 0..100 {
            let q = query("INSERT INTO t (k, pad) VALUES ($1, zeroblob(4000))");
            w.execute(q.bind(format!("k{i}"))).await.unwrap();
            i += 1;
        }
        after = fresh_starts();
    }
    assert!(
        after >= before + 2,
        "the log started afresh {} times in {i} inserts",
        after.saturating_sub(before)
    );
}

/// A job for the writer's own connection, queued on `queue` with its answer.
fn queued(queue: &mpsc::Sender<Job>, q: Query) -> oneshot::Receiver<StoreResult<Done>> {
    let (reply, answer) = oneshot::channel();
    let job = Job::One {
        query: q,
        want: Want::Affected,
        reply,
    };
    queue.try_send(job).unwrap();
    answer
}

/// The own connection of a new database's writer, and the database's pool.
async fn own_connection() -> (tempfile::TempDir, SqlitePool, Direct) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("w.db");
    let opts = SqliteConnectOptions::new().filename(&file);
    let pool = writer_pool(opts, "k TEXT PRIMARY KEY, n INTEGER NOT NULL").await;
    let direct = Direct::configure(&pool, file).await.unwrap();
    (dir, pool, direct)
}

/// Time enough for any group here, on a loaded machine too: the bounds tested
/// are the count of groups and, separately, a budget of none.
const AMPLE: std::time::Duration = std::time::Duration::from_secs(60);

/// What queued while a group ran is committed after it in the same turn,
/// without letting the turn go; a turn runs a bounded number of
/// groups, and stops at jobs its connection does not take.
#[tokio::test]
async fn jobs_queued_meanwhile_follow_the_group_within_bounds() {
    let (_dir, pool, mut direct) = own_connection().await;
    let (queue, mut jobs) = mpsc::channel(QUEUE);
    let first = queued(&queue, insert("first", 0));
    let Ok(group) = jobs.try_recv() else {
        panic!("nothing queued")
    };
    let mut answers = Vec::new();
    for i in 0..20 {
        answers.push(queued(&queue, insert(&format!("k{i:02}"), i)));
    }
    let rest = direct.commit_following_within(vec![group], &mut jobs, direct::FOLLOWING, AMPLE);
    assert!(rest.is_none());
    assert!(
        jobs.try_recv().is_err(),
        "every queued job ran in this turn"
    );
    assert!(matches!(first.await.unwrap(), Ok(Done::Affected(1))));
    for a in answers {
        assert!(matches!(a.await.unwrap(), Ok(Done::Affected(1))));
    }
    assert_eq!(keys(&pool).await.len(), 21);

    // More than a turn may run: the rest stays queued for the next turn.
    let many = MAX_GROUP * (direct::FOLLOWING + 3);
    let mut answers = Vec::new();
    for i in 0..many {
        answers.push(queued(&queue, insert(&format!("m{i:05}"), 0)));
    }
    let group = vec![jobs.try_recv().unwrap()];
    let rest = direct.commit_following_within(group, &mut jobs, direct::FOLLOWING, AMPLE);
    assert!(rest.is_none());
    assert_eq!(
        jobs.len(),
        many - 1 - MAX_GROUP * direct::FOLLOWING,
        "a turn runs its group and {} full ones",
        direct::FOLLOWING
    );

    // With its time spent, a turn takes no more groups.
    let left = jobs.len();
    let group = vec![jobs.try_recv().unwrap()];
    let rest = direct.commit_following_within(
        group,
        &mut jobs,
        direct::FOLLOWING,
        std::time::Duration::ZERO,
    );
    assert!(rest.is_none());
    assert_eq!(jobs.len(), left - 1, "only the turn's own group ran");

    // Two statements in one text are sqlx's to run: handed back, not run.
    let group = vec![jobs.try_recv().unwrap()];
    while jobs.try_recv().is_ok() {}
    let odd = queued(&queue, query("UPDATE t SET n = 1; UPDATE t SET n = 2"));
    let rest = direct
        .commit_following_within(group, &mut jobs, direct::FOLLOWING, AMPLE)
        .expect("handed back");
    assert_eq!(rest.len(), 1);
    assert!(matches!(rest[0], Job::One { .. }));
    drop(rest);
    assert!(odd.await.is_err(), "not answered here");
    drop(answers);
}

/// Writes that never stop, so that the queue never empties, still leave a
/// caller's transaction its turn soon.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transaction_gets_its_turn_while_writes_stream() {
    let (_dir, _pool, w) = writer(Way::Direct).await;
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = tokio::task::JoinSet::new();
    for t in 0..MAX_GROUP * 3 {
        let (w, stop) = (w.clone(), stop.clone());
        writers.spawn(async move {
            let mut i = 0u64;
            while !stop.load(Ordering::SeqCst) {
                w.execute(insert(&format!("s{t:04}-{i:08}"), 0))
                    .await
                    .unwrap();
                i += 1;
            }
            i
        });
    }
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let mut waits = Vec::new();
    for _ in 0..5 {
        let asked = std::time::Instant::now();
        let turn = tokio::time::timeout(std::time::Duration::from_secs(2), w.turn()).await;
        waits.push(asked.elapsed());
        assert!(matches!(turn, Ok(Ok(_)) | Err(_)), "the turn failed");
        drop(turn);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut written = 0;
    while let Some(n) = writers.join_next().await {
        written += n.unwrap();
    }
    assert!(written > 0);
    assert!(
        waits
            .iter()
            .all(|w| *w < std::time::Duration::from_millis(500)),
        "a transaction waited for its turn: {waits:?}"
    );
}

/// The own connection's thread answers each job as it comes, waits for the
/// turn while a caller's transaction holds it, hands a text of two statements
/// to sqlx's connection, and ends (its end heard, as `run` hears it) once
/// every handle of its queue is dropped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_own_thread_writes_in_turn_until_its_queue_closes() {
    use std::time::Duration;
    let (_dir, pool, direct) = own_connection().await;
    let (queue, jobs) = mpsc::channel(QUEUE);
    let turn = Arc::new(Mutex::new(()));
    let wrote = Arc::new(AtomicBool::new(false));
    let started = own_thread::start(direct, jobs, pool.clone(), turn.clone(), wrote.clone());
    let ended = started.map_err(|(_, e)| e).unwrap();
    let affected = |done: StoreResult<Done>| match done {
        Ok(Done::Affected(n)) => n,
        Ok(Done::Rows(_)) => panic!("rows where changes were wanted"),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(affected(queued(&queue, insert("a", 1)).await.unwrap()), 1);
    assert!(
        wrote.swap(false, Ordering::SeqCst),
        "a turn that wrote is told"
    );

    let held = turn.clone().lock_owned().await;
    let mut answer = queued(&queue, insert("b", 2));
    let early = tokio::time::timeout(Duration::from_millis(300), &mut answer).await;
    assert!(early.is_err(), "a group ran while the turn was held");
    drop(held);
    assert_eq!(affected(answer.await.unwrap()), 1);

    let two = query("INSERT INTO t (k, n) VALUES ('c', 3); INSERT INTO t (k, n) VALUES ('d', 4)");
    affected(queued(&queue, two).await.unwrap());
    assert_eq!(keys(&pool).await, ["a", "b", "c", "d"]);

    drop(queue);
    let heard = tokio::time::timeout(Duration::from_secs(10), ended).await;
    assert!(heard.is_ok(), "the thread did not end with its queue");
}
