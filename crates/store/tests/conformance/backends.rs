//! What only one backend does: connection errors, several PostgreSQL nodes,
//! collations, pool settings; and the two migration directories in step.

use super::accounts::accounts_listed_in_byte_order_of_email;
use super::*;
use tweestap_domain::store::{AppCode, AppCodeTaken, PassedStep};

#[tokio::test]
async fn unreachable_postgres_is_unavailable_quickly() {
    let started = Instant::now();
    let r = PostgresStore::connect(
        "postgres://postgres@127.0.0.1:1/x",
        &PoolSettings::default(),
        true,
    )
    .await;
    assert!(matches!(r, Err(StoreError::Unavailable(_))), "{r:?}");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn malformed_postgres_url_is_an_error_not_a_panic() {
    let r = PostgresStore::connect("postgres://[nope", &PoolSettings::default(), false).await;
    assert!(matches!(r, Err(StoreError::Other(_))), "{r:?}");
}

/// Several nodes starting at once against one new database all migrate fine, and
/// migrating again is a no-op.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_nodes_migrate_together() {
    let Some(url) = testing::fresh_postgres_database().await else {
        return;
    };
    let nodes: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                PostgresStore::connect(&url, &PoolSettings::default(), true).await
            })
        })
        .collect();
    let mut stores = Vec::new();
    for n in nodes {
        stores.push(n.await.unwrap().unwrap());
    }
    stores[0].migrate().await.unwrap();
    let a = new_account("an@x.be");
    stores[1].insert_account(&a).await.unwrap();
    assert!(stores[2].account_by_id(a.id).await.unwrap().is_some());
    drop(stores);
    testing::drop_database(&url).await;
}

/// Accounts come in byte order of the e-mail address, as from SQLite, even when the
/// column has a locale-aware collation (a database created with, say, en_US.UTF-8).
#[tokio::test]
async fn postgres_lists_accounts_in_byte_order_under_any_collation() {
    let Some(url) = testing::fresh_postgres_database().await else {
        return;
    };
    let store: Dyn = Arc::new(
        PostgresStore::connect(&url, &PoolSettings::default(), true)
            .await
            .unwrap(),
    );
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    let icu: Option<String> = sqlx::query_scalar(
        "SELECT collname::text FROM pg_collation WHERE collname IN ('en-x-icu', 'en_US.utf8', 'en_US') \
         ORDER BY collname LIMIT 1",
    )
    .fetch_optional(&raw)
    .await
    .unwrap();
    let Some(collation) = icu else {
        eprintln!("no English collation on this server; byte order checked under its default only");
        accounts_listed_in_byte_order_of_email(store).await;
        testing::drop_database(&url).await;
        return;
    };
    sqlx::query(&format!(
        r#"ALTER TABLE accounts ALTER COLUMN email TYPE TEXT COLLATE "{collation}""#
    ))
    .execute(&raw)
    .await
    .unwrap();
    raw.close().await;
    accounts_listed_in_byte_order_of_email(store.clone()).await;
    drop(store);
    testing::drop_database(&url).await;
}

#[tokio::test]
async fn sqlite_takes_pool_settings() {
    let dir = tempfile::tempdir().unwrap();
    let settings = PoolSettings {
        max_connections: 2,
        min_connections: 1,
        acquire_timeout: std::time::Duration::from_secs(1),
        idle_timeout: None,
        session_cache: None,
    };
    let s = SqliteStore::open_with(&dir.path().join("t.db"), &settings, true)
        .await
        .unwrap();
    s.ping().await.unwrap();
    let url = format!("sqlite://{}", dir.path().join("u.db").display());
    let s = SqliteStore::open_url_with(&url, &settings, true)
        .await
        .unwrap();
    s.ping().await.unwrap();
}

/// The two migration directories hold the same files, by number and name.
#[test]
fn migrations_in_step() {
    let list = |backend: &str| -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        names.sort();
        names
    };
    let sqlite = list("sqlite");
    assert!(!sqlite.is_empty());
    assert_eq!(
        sqlite,
        list("postgres"),
        "migrations/sqlite and migrations/postgres differ"
    );
}

/// A fresh PostgreSQL database with an account, its app factor and a
/// half-finished sign-in, and a second connection in a transaction of its own,
/// for a right code to race with.
struct CodeStepRace {
    url: String,
    s: Dyn,
    account: AccountId,
    factor: FactorId,
    half: Session,
    other: sqlx::PgConnection,
}

impl CodeStepRace {
    async fn start() -> Option<Self> {
        use sqlx::Connection;
        let url = testing::fresh_postgres_database().await?;
        let s: Dyn = Arc::new(
            PostgresStore::connect(&url, &PoolSettings::default(), true)
                .await
                .unwrap(),
        );
        let a = account(&s, "an@x.be").await;
        let f = factor(a.id, t0());
        s.insert_factor(&f).await.unwrap();
        let half = session(a.id, t0());
        s.insert_session(&half).await.unwrap();
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        sqlx::query("BEGIN").execute(&mut other).await.unwrap();
        Some(Self {
            url,
            s,
            account: a.id,
            factor: f.id,
            half,
            other,
        })
    }

    /// Runs `sql` (binding the account's id) in the other transaction.
    async fn meanwhile(&mut self, sql: &str) {
        sqlx::query(sql)
            .bind(self.account.0)
            .execute(&mut self.other)
            .await
            .unwrap();
    }

    /// Sends the right code of step 10 while the other transaction is open, then
    /// commits that one: what the code came to, and whether its new session is
    /// there. The code must wait for the other transaction.
    async fn right_code_then_commit(&mut self) -> (AppCodeTaken, bool) {
        let code = AppCode {
            account: self.account,
            factor: self.factor,
            step: 10,
            max_failures: 5,
            hold: t0() + Duration::minutes(5),
            now: t0(),
        };
        let (s, half) = (self.s.clone(), self.half.clone());
        let taking = tokio::spawn(async move {
            let mut new = session(half.account_id, t0());
            new.stage = SessionStage::Authenticated;
            new.sid = half.sid.clone();
            let passed = PassedStep {
                session: &new,
                half: &half.id_hash,
                audit: None,
            };
            let taken = s.take_app_code(&code, &passed).await.unwrap();
            (taken, s.session(&new.id_hash).await.unwrap().is_some())
        });
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(
            !taking.is_finished(),
            "the code waits for the account's row"
        );
        sqlx::query("COMMIT")
            .execute(&mut self.other)
            .await
            .unwrap();
        taking.await.unwrap()
    }

    async fn last_step(&self) -> Option<i64> {
        self.s.factors_of(self.account).await.unwrap()[0].last_step
    }

    async fn end(self) {
        drop(self.other);
        drop(self.s);
        testing::drop_database(&self.url).await;
    }
}

/// PostgreSQL: a right app code that comes while another transaction is locking
/// the code step waits for it and then sees the lock: it does not pass, and its
/// time step stays unused (the account's row is locked and read again after the
/// wait, not read from the statement's earlier snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_right_code_waits_for_a_lock_being_set() {
    let Some(mut race) = CodeStepRace::start().await else {
        return;
    };
    let until = (t0() + Duration::hours(1)).to_rfc3339();
    race.meanwhile(&format!(
        "UPDATE accounts SET code_failures = 5, code_locked_until = '{until}' WHERE id = $1"
    ))
    .await;
    assert_eq!(
        race.right_code_then_commit().await,
        (AppCodeTaken::Locked, false)
    );
    assert_eq!(race.last_step().await, None);
    assert!(race.s.session(&race.half.id_hash).await.unwrap().is_some());
    race.end().await;
}

/// PostgreSQL: a right app code that comes while a password change is ending the
/// account's sessions waits for it and then finds its sign-in gone: no session
/// outlives the change, no attempt is counted, the step stays unused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_right_code_during_a_password_change_signs_no_one_in() {
    let Some(mut race) = CodeStepRace::start().await else {
        return;
    };
    // What `change_password` does first: the account's row, then its sessions.
    race.meanwhile("UPDATE accounts SET password_hash = 'new' WHERE id = $1")
        .await;
    race.meanwhile("DELETE FROM sessions WHERE account_id = $1")
        .await;
    assert_eq!(
        race.right_code_then_commit().await,
        (AppCodeTaken::Gone, false)
    );
    assert_eq!(race.last_step().await, None);
    let account = race.s.account_by_id(race.account).await.unwrap().unwrap();
    assert_eq!(account.code_failures, 0);
    race.end().await;
}

/// PostgreSQL: while another transaction holds an account's row, the other
/// accounts' wrong codes are answered (in groups or alone: `failure_groups`);
/// the held account's wait for the row, then count on from what that
/// transaction committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_wrong_codes_go_on_while_an_account_is_held_elsewhere() {
    let Some(mut race) = CodeStepRace::start().await else {
        return;
    };
    race.meanwhile("UPDATE accounts SET code_failures = 3 WHERE id = $1")
        .await;
    let mut others = Vec::new();
    for i in 0..10 {
        others.push(account(&race.s, &format!("other{i}@x.be")).await.id);
    }
    let fail = |s: Dyn, id: AccountId, email: String| {
        tokio::spawn(async move {
            let failed = audit(t0(), "code_failed", Some(&email));
            let hold = t0() + Duration::minutes(5);
            s.reserve_failed_attempt(id, Guard::Code, 100, hold, t0(), &failed, Some("locked"))
                .await
                .unwrap()
        })
    };
    let mut held = Vec::new();
    let mut free = Vec::new();
    for round in 0..5 {
        held.push(fail(race.s.clone(), race.account, "an@x.be".into()));
        for (i, id) in others.iter().enumerate() {
            if round < 3 {
                free.push(fail(race.s.clone(), *id, format!("other{i}@x.be")));
            }
        }
    }
    let answered = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        let mut counts = Vec::new();
        for f in free {
            counts.push(f.await.unwrap());
        }
        counts
    })
    .await
    .expect("the other accounts' failures are answered while one account is held");
    assert_eq!(answered.len(), 30);
    assert!(answered.iter().all(Option::is_some), "{answered:?}");
    for id in &others {
        let a = race.s.account_by_id(*id).await.unwrap().unwrap();
        assert_eq!(a.code_failures, 3);
    }
    assert!(
        held.iter().all(|h| !h.is_finished()),
        "the held account's failures wait for its row"
    );
    sqlx::query("COMMIT")
        .execute(&mut race.other)
        .await
        .unwrap();
    let mut counts = Vec::new();
    for h in held {
        counts.push(h.await.unwrap().unwrap());
    }
    counts.sort_unstable();
    assert_eq!(counts, [4, 5, 6, 7, 8], "counted on from the committed 3");
    let rows = race.s.list_audit(100, Some("an@x.be")).await.unwrap();
    assert_eq!(rows.len(), 5);
    race.end().await;
}

/// PostgreSQL: a wrong code whose caller hangs up while its account's row is
/// held elsewhere is still counted and recorded once the row is free (the
/// server drops a request whose client went away).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_a_wrong_code_is_counted_when_its_caller_hangs_up() {
    let Some(mut race) = CodeStepRace::start().await else {
        return;
    };
    race.meanwhile("UPDATE accounts SET code_failures = 3 WHERE id = $1")
        .await;
    let failed = audit(t0(), "code_failed", Some("an@x.be"));
    let hold = t0() + Duration::minutes(5);
    // Hangs up at once: the failure is queued, its answer not yet come.
    let gave_up = tokio::time::timeout(
        std::time::Duration::ZERO,
        race.s
            .reserve_failed_attempt(race.account, Guard::Code, 100, hold, t0(), &failed, None),
    )
    .await;
    assert!(gave_up.is_err(), "{gave_up:?}");
    sqlx::query("COMMIT")
        .execute(&mut race.other)
        .await
        .unwrap();
    let counted = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let a = race.s.account_by_id(race.account).await.unwrap().unwrap();
            if a.code_failures == 4 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        counted.is_ok(),
        "the failure is counted after its caller left"
    );
    let rows = race.s.list_audit(10, Some("an@x.be")).await.unwrap();
    assert_eq!(rows.len(), 1);
    race.end().await;
}
