//! PostgreSQL: failed attempts recorded in groups (issue 19).
//!
//! A wrong code is answered only once its failure (the counter, the lock it may
//! set, the audit row) is committed. One statement and one commit each made
//! PostgreSQL's work per statement and its wait for the log's flush most of a
//! wrong code's cost, with a fifth of the cores idle at 16 connections.
//! Failures that arrive while others are being written queue here and are
//! written together: one statement, one commit, one flush for all of them.
//!
//! A group waits for no row lock, so that one account, or a row held long
//! elsewhere, cannot hold up the others' failures (table locks, e.g. a full
//! import's or a schema change's, still hold everything up, as they did before):
//! - a second failure of an account already in the group is written alone, by a
//!   statement of its own on a task of its own, as without groups;
//! - the group's statement takes the accounts' row locks with `SKIP LOCKED`; a
//!   failure whose account's row another transaction holds is written alone
//!   too, and waits for that row as before;
//! - a group whose statement fails is written one by one (one bad failure must
//!   not leave the others unrecorded).
//!
//! A queued failure is written whatever its caller does (the server drops the
//! request of a client that hangs up); if the writers are gone, [`FailureGroups::record`]
//! writes it alone itself (`attempts::write_one`, the one statement for a lone failure).
//!
//! Otherwise the statement keeps the single failure's checks: each counter goes
//! up only while its lock is off, the lock set on reaching the threshold, and
//! each failure's audit row says whether its attempt was taken.

use super::attempts::{write_one, Failure};
use super::audit::bind_audit;
use crate::rows::{count, guard_columns, Columns};
use crate::sql::{placeholders, query, Db, Exec, Query, Value};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};
use tweestap_domain::lockout::Guard;
use tweestap_domain::store::{StoreError, StoreResult};

/// Failures written by one statement at most.
const MAX_GROUP: usize = 64;

/// Statements of groups under way at once: one group is written while the next
/// forms, and one commit's flush overlaps the next statement's work (2 did best:
/// 3 and 4 gave smaller groups and fewer failures a second).
const WRITERS: usize = 2;

/// Failures waiting at most; callers beyond wait to queue.
const QUEUE: usize = 4096;

/// Parameters per failure in the statement (see [`group_sql`]).
const COLUMNS: usize = 13;

/// What a group's statement did with one of its failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recorded {
    /// Written with its group: the account's failures after it, or `None` while
    /// its lock was on.
    Counted(Option<u32>),
    /// Not written: to be written alone.
    Alone,
}

struct Pending {
    failure: Failure,
    /// The account's failures after it, or `None` while its lock was on.
    reply: oneshot::Sender<StoreResult<Option<u32>>>,
}

/// The queue of the writing tasks; clones share it. The tasks end when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct FailureGroups {
    queue: mpsc::Sender<Pending>,
    /// For a failure written alone when the writers are gone.
    db: Db,
}

impl FailureGroups {
    /// Starts the writing tasks on the current runtime, writing through `db`.
    pub(crate) fn start(db: Db) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        let pending = Arc::new(Mutex::new(pending));
        for _ in 0..WRITERS {
            tokio::spawn(write_groups(db.clone(), pending.clone()));
        }
        Self { queue, db }
    }

    /// Records `failure` with whatever else is waiting, or alone (also, here,
    /// when the writers are gone): the account's failures after it, or `None`
    /// while its lock was on. Once queued, it is written even if the caller
    /// stops waiting.
    pub(crate) async fn record(&self, failure: Failure) -> StoreResult<Option<u32>> {
        let (reply, answer) = oneshot::channel();
        if let Err(gone) = self.queue.send(Pending { failure, reply }).await {
            return write_one(&self.db, &gone.0.failure).await;
        }
        // No answer: its writer stopped, maybe after its statement committed, so
        // it is not written again.
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Unavailable(
                "the writer of failed attempts stopped".into(),
            ))
        })
    }
}

/// One writing task: takes what has queued (at least one failure, at most
/// [`MAX_GROUP`]), writes it, answers, and again, until the queue closes.
async fn write_groups(db: Db, pending: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let mut group = Vec::new();
        {
            let mut queue = pending.lock().await;
            match queue.recv().await {
                Some(first) => group.push(first),
                None => return,
            }
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(next) => group.push(next),
                    Err(_) => break,
                }
            }
        }
        let (group, alone) = one_statement(group);
        for p in alone {
            write_alone(db.clone(), p);
        }
        write(&db, group).await;
    }
}

/// What one statement writes of `group`: the first guard's failures, each
/// account once; the rest go back.
fn one_statement(group: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let guard = group.first().map(|p| p.failure.guard);
    let mut now: Vec<Pending> = Vec::with_capacity(group.len());
    let mut alone = Vec::new();
    for p in group {
        let fits = Some(p.failure.guard) == guard
            && !now.iter().any(|n| n.failure.account == p.failure.account);
        if fits {
            now.push(p);
        } else {
            alone.push(p);
        }
    }
    (now, alone)
}

/// Writes `group` (one guard, each account once) in one statement
/// and answers each of its callers.
async fn write(mut db: &Db, group: Vec<Pending>) {
    let Some(guard) = group.first().map(|p| p.failure.guard) else {
        return;
    };
    let failures: Vec<&Failure> = group.iter().map(|p| &p.failure).collect();
    let answers = match db.fetch_all(group_query(guard, &failures)).await {
        Ok(rows) => outcomes(guard, &rows, group.len()).map_or_else(
            |e| vec![Err(e); group.len()],
            |o| o.into_iter().map(Ok).collect(),
        ),
        // The statement may have committed before the connection was lost: not
        // written again.
        Err(e @ StoreError::Unavailable(_)) => vec![Err(e); group.len()],
        Err(e) => {
            tracing::warn!(error = %e, failures = group.len(),
                "a group of failed attempts is written one by one");
            vec![Ok(Recorded::Alone); group.len()]
        }
    };
    for (p, answer) in group.into_iter().zip(answers) {
        // A caller that stopped waiting no longer listens.
        match answer {
            Ok(Recorded::Alone) => write_alone(db.clone(), p),
            Ok(Recorded::Counted(n)) => drop(p.reply.send(Ok(n))),
            Err(e) => drop(p.reply.send(Err(e))),
        }
    }
}

/// Writes one failure by a statement of its own, on a task of its own (it may
/// wait for its account's row), and answers its caller.
fn write_alone(db: Db, p: Pending) {
    tokio::spawn(async move {
        drop(p.reply.send(write_one(&db, &p.failure).await));
    });
}

/// What became of each failure (by its place in the group), from the rows the
/// statement returned: one per failure whose attempt was taken, one per failure
/// whose account's row was held elsewhere (`alone`); the others found their lock
/// on, or no account.
fn outcomes(guard: Guard, rows: &[crate::sql::Row], len: usize) -> StoreResult<Vec<Recorded>> {
    let (counter, _) = guard_columns(guard);
    let mut outcomes = vec![Recorded::Counted(None); len];
    for r in rows {
        let place = usize::try_from(r.int("place")?)
            .ok()
            .and_then(|i| outcomes.get_mut(i))
            .ok_or_else(|| StoreError::Corrupt("a failure's place out of its group".into()))?;
        *place = if r.int("alone")? != 0 {
            Recorded::Alone
        } else {
            Recorded::Counted(r.opt_int(counter)?.map(count))
        };
    }
    Ok(outcomes)
}

/// The statement for `failures`, padded to a power of two with rows that match
/// nothing, so that a connection prepares a handful of statements, not one per
/// group size.
fn group_query(guard: Guard, failures: &[&Failure]) -> Query {
    let rows = failures.len().next_power_of_two();
    let q = query(group_sql(guard, rows));
    let q = failures.iter().enumerate().fold(q, |q, (place, f)| {
        let place = i64::try_from(place).unwrap_or(i64::MAX);
        let q = q
            .bind(place)
            .bind(f.account)
            .bind(i64::from(f.max_failures))
            .bind(f.hold)
            .bind(f.now);
        bind_audit(q, &f.audit).bind(f.locked_detail.as_deref())
    });
    (failures.len()..rows).fold(q, |q, _| padding().into_iter().fold(q, |q, v| q.bind(v)))
}

/// A row of NULLs, each of its column's type (PostgreSQL types every parameter).
fn padding() -> [Value; COLUMNS] {
    use Value::{Id, Int, Text, Time};
    [
        Int(None),
        Id(None),
        Int(None),
        Time(None),
        Time(None),
        Time(None),
        Text(None),
        Id(None),
        Text(None),
        Text(None),
        Text(None),
        Text(None),
        Text(None),
    ]
}

/// `reserve_failed_attempt`'s statement for `rows` failures of `guard`: the
/// accounts' rows that no one else holds locked in id order (`l`, read whole
/// before any update), the failures of the others sent back (`k`), each counter
/// in `l` raised while its lock is off (`r`), and the audit row of every failure
/// not sent back, in the group's order, saying whether its attempt was taken.
fn group_sql(guard: Guard, rows: usize) -> String {
    let (counter, lock) = guard_columns(guard);
    if rows == 1 {
        // The same for one failure, without the list: a third cheaper for
        // PostgreSQL than the list's form with one row.
        return format!(
            "WITH l AS MATERIALIZED (SELECT id FROM accounts WHERE id = $2
                                     FOR NO KEY UPDATE SKIP LOCKED),
                  k AS MATERIALIZED (SELECT $1 AS place WHERE NOT EXISTS (SELECT 1 FROM l)
                                     AND EXISTS (SELECT 1 FROM accounts WHERE id = $2)),
                  r AS (UPDATE accounts SET {counter} = {counter} + 1,
                            {lock} = CASE WHEN {counter} + 1 >= $3 THEN $4 ELSE {lock} END
                        WHERE id = $2 AND EXISTS (SELECT 1 FROM l)
                          AND ({lock} IS NULL OR {lock} <= $5)
                        RETURNING {counter}),
                  au AS (INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail)
                         SELECT $6, $7, $8, $9, $10, $11,
                                CASE WHEN EXISTS (SELECT 1 FROM r) THEN $12 ELSE $13 END
                         WHERE NOT EXISTS (SELECT 1 FROM k))
             SELECT $1 AS place, {counter}, CAST(0 AS BIGINT) AS alone FROM r
             UNION ALL SELECT place, NULL, 1 FROM k"
        );
    }
    let values = placeholders(rows, COLUMNS);
    format!(
        "WITH v (place, id, max_failures, hold, now, at, event, account_id, email, ip,
                 user_agent, detail, locked_detail) AS (VALUES {values}),
         l AS MATERIALIZED (SELECT id FROM accounts WHERE id IN (SELECT id FROM v)
                            ORDER BY id FOR NO KEY UPDATE SKIP LOCKED),
         k AS MATERIALIZED (SELECT v.place FROM v
                            WHERE v.id NOT IN (SELECT id FROM l)
                              AND EXISTS (SELECT 1 FROM accounts x WHERE x.id = v.id)),
         r AS (UPDATE accounts a SET {counter} = a.{counter} + 1,
                   {lock} = CASE WHEN a.{counter} + 1 >= v.max_failures THEN v.hold
                            ELSE a.{lock} END
               FROM v
               WHERE (SELECT count(*) FROM l) >= 0 AND a.id = v.id
                 AND a.id IN (SELECT id FROM l)
                 AND (a.{lock} IS NULL OR a.{lock} <= v.now)
               RETURNING v.place, a.{counter}),
         au AS (INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail)
                SELECT v.at, v.event, v.account_id, v.email, v.ip, v.user_agent,
                       CASE WHEN EXISTS (SELECT 1 FROM r WHERE r.place = v.place)
                            THEN v.detail ELSE v.locked_detail END
                FROM v WHERE v.place IS NOT NULL AND v.place NOT IN (SELECT place FROM k)
                ORDER BY v.place)
         SELECT place, {counter}, CAST(0 AS BIGINT) AS alone FROM r
         UNION ALL SELECT place, NULL, 1 FROM k"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use tweestap_domain::account::AccountId;
    use tweestap_domain::audit::AuditRecord;

    fn pending(account: u128, guard: Guard) -> Pending {
        with_reply(account, guard).0
    }

    fn with_reply(
        account: u128,
        guard: Guard,
    ) -> (Pending, oneshot::Receiver<StoreResult<Option<u32>>>) {
        let now = Utc::now();
        let (reply, answer) = oneshot::channel();
        let p = Pending {
            failure: Failure {
                account: AccountId(uuid::Uuid::from_u128(account)),
                guard,
                max_failures: 5,
                hold: now,
                now,
                audit: AuditRecord {
                    at: now,
                    event: "code_failed".into(),
                    account_id: None,
                    email: None,
                    ip: None,
                    user_agent: None,
                    detail: None,
                },
                locked_detail: None,
            },
            reply,
        };
        (p, answer)
    }

    fn accounts(group: &[Pending]) -> Vec<u128> {
        group
            .iter()
            .map(|p| p.failure.account.0.as_u128())
            .collect()
    }

    /// One guard per statement and each account once; the rest go back to be
    /// written alone.
    #[test]
    fn a_statement_takes_one_guard_and_each_account_once() {
        let group = vec![
            pending(1, Guard::Code),
            pending(2, Guard::Code),
            pending(1, Guard::Code),
            pending(3, Guard::Password),
            pending(4, Guard::Code),
        ];
        let (now, alone) = one_statement(group);
        assert_eq!(accounts(&now), [1, 2, 4]);
        assert_eq!(accounts(&alone), [1, 3]);
        let (now, alone) = one_statement(vec![pending(1, Guard::Code), pending(1, Guard::Code)]);
        assert_eq!((accounts(&now), accounts(&alone)), (vec![1], vec![1]));
    }

    /// Padded to a power of two: a handful of statement texts.
    #[test]
    fn groups_are_padded_to_a_power_of_two() {
        let group: Vec<Pending> = (0..5).map(|i| pending(i, Guard::Code)).collect();
        let failures: Vec<&Failure> = group.iter().map(|p| &p.failure).collect();
        let q = group_query(Guard::Code, &failures);
        assert!(q.sql.contains(&format!("${}", 8 * COLUMNS)));
        assert!(!q.sql.contains(&format!("${}", 8 * COLUMNS + 1)));
        assert_eq!(q.sql, group_sql(Guard::Code, 8));
    }

    /// A group's statement waits for no row another transaction holds: that
    /// failure is written alone, waiting for the row, the others at once (an
    /// unknown account's as refused); a statement that fails has each written
    /// alone.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_skips_a_held_account_and_writes_each_alone_when_it_fails() {
        use sqlx::Connection;
        let Some(url) = tweestap_testkit::fresh_postgres_database().await else {
            return;
        };
        let store = crate::PostgresStore::connect(&url, &crate::PoolSettings::default(), true)
            .await
            .unwrap();
        let db = store.db().clone();
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        for (id, email) in [(1u128, "held@x.be"), (2, "free@x.be")] {
            sqlx::query(
                "INSERT INTO accounts (id, email, name, role, password_hash, created_at)
                 VALUES ($1, $2, '', 'user', 'x', now())",
            )
            .bind(uuid::Uuid::from_u128(id))
            .bind(email)
            .execute(&mut other)
            .await
            .unwrap();
        }
        sqlx::query("BEGIN").execute(&mut other).await.unwrap();
        sqlx::query("UPDATE accounts SET code_failures = 3 WHERE id = $1")
            .bind(uuid::Uuid::from_u128(1))
            .execute(&mut other)
            .await
            .unwrap();

        let within =
            |what: &'static str| move |r: Result<(), tokio::time::error::Elapsed>| r.expect(what);
        let (held, mut held_answer) = with_reply(1, Guard::Code);
        let (free, free_answer) = with_reply(2, Guard::Code);
        let (nobody, nobody_answer) = with_reply(3, Guard::Code);
        let wrote = write(&db, vec![held, free, nobody]);
        within("a group waits for no held row")(
            tokio::time::timeout(std::time::Duration::from_secs(5), wrote).await,
        );
        let answer = |r: Result<StoreResult<Option<u32>>, _>| r.unwrap().unwrap();
        assert_eq!(answer(free_answer.await), Some(1));
        assert_eq!(answer(nobody_answer.await), None);
        let short = std::time::Duration::from_millis(300);
        assert!(
            tokio::time::timeout(short, &mut held_answer).await.is_err(),
            "the held account's failure waits for its row, alone"
        );

        // The same, one at a time (the statement for one failure).
        let (one, one_answer) = with_reply(2, Guard::Code);
        write(&db, vec![one]).await;
        assert_eq!(answer(one_answer.await), Some(2));
        let (held_too, mut held_too_answer) = with_reply(1, Guard::Code);
        within("one failure waits for no held row either")(
            tokio::time::timeout(
                std::time::Duration::from_secs(5),
                write(&db, vec![held_too]),
            )
            .await,
        );
        assert!(tokio::time::timeout(short, &mut held_too_answer)
            .await
            .is_err());

        // Text PostgreSQL refuses (a NUL) fails the statement: each is written
        // alone, the good one recorded.
        let (mut bad, bad_answer) = with_reply(2, Guard::Code);
        bad.failure.audit.user_agent = Some("a\0b".into());
        let (good, good_answer) = with_reply(3, Guard::Code);
        write(&db, vec![bad, good]).await;
        assert!(bad_answer.await.unwrap().is_err());
        assert_eq!(answer(good_answer.await), None);

        // The row let go (3 committed), the held ones count on from it.
        sqlx::query("COMMIT").execute(&mut other).await.unwrap();
        let mut held = [answer(held_answer.await), answer(held_too_answer.await)];
        held.sort();
        assert_eq!(held, [Some(4), Some(5)]);
        let mut look = sqlx::PgConnection::connect(&url).await.unwrap();
        let audit: i64 = sqlx::query_scalar("SELECT count(*) FROM audit_log")
            .fetch_one(&mut look)
            .await
            .unwrap();
        drop(look);
        assert_eq!(
            audit, 6,
            "2 by the group, 1 alone, the good one, the 2 held"
        );

        drop(other);
        drop(store);
        drop(db);
        tweestap_testkit::drop_database(&url).await;
    }
}
