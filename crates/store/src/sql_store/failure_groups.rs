//! PostgreSQL: failed attempts recorded in groups (issue 19).
//!
//! A wrong code is answered only once its failure (the counter, the lock it may
//! set, the audit row) is committed. One statement and one commit each made
//! PostgreSQL's work per statement and its wait for the log's flush most of a
//! wrong code's cost (4,100/s at 16 connections, a fifth of the cores idle,
//! waiting for flushes). Failures that arrive while earlier ones are being
//! written queue here and are written together: one statement, one commit, one
//! flush for all of them. Nothing waits for a group to fill: a failure that finds
//! no one writing goes at once, so it waits at most for the statements already
//! under way ([`WRITERS`] of them).
//!
//! The statement keeps the single failure's checks: each account's counter goes
//! up only while its lock is not on (the lock check and the increment one atomic
//! update under the row's lock, re-read after a concurrent writer commits), and
//! each failure's audit row says whether its attempt was taken. The accounts'
//! rows are locked in the order of their ids first, so that groups written at
//! once (here or on other nodes) cannot wait on each other in a circle; an
//! account failing twice in one group goes in the next statement (an update
//! changes a row once per statement).

use super::accounts::placeholders;
use crate::rows::{count, guard_columns, Columns};
use crate::sql::{query, Db, Exec, Query, Value};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Mutex};
use tweestap_domain::account::AccountId;
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::lockout::Guard;
use tweestap_domain::store::{StoreError, StoreResult};

/// Failures written by one statement at most.
const MAX_GROUP: usize = 64;

/// Statements of groups under way at once: one group is written while the next
/// forms, and one commit's flush overlaps the next statement's work.
const WRITERS: usize = 2;

/// Failures waiting at most; callers beyond wait to queue.
const QUEUE: usize = 4096;

/// Parameters per failure in the statement (see [`group_sql`]).
const COLUMNS: usize = 13;

/// One failed attempt to record, as `reserve_failed_attempt` takes it.
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    pub account: AccountId,
    pub guard: Guard,
    pub max_failures: u32,
    pub hold: DateTime<Utc>,
    pub now: DateTime<Utc>,
    pub audit: AuditRecord,
    pub locked_detail: Option<String>,
}

struct Pending {
    failure: Failure,
    /// The account's failures after this one, or `None` while it was locked.
    reply: oneshot::Sender<StoreResult<Option<u32>>>,
}

/// The queue of the writing tasks; clones share it. The tasks end when the last
/// clone is dropped.
#[derive(Debug, Clone)]
pub(crate) struct FailureGroups {
    queue: mpsc::Sender<Pending>,
}

impl FailureGroups {
    /// Starts the writing tasks on the current runtime, writing through `db`.
    pub(crate) fn start(db: Db) -> Self {
        let (queue, pending) = mpsc::channel(QUEUE);
        let pending = Arc::new(Mutex::new(pending));
        for _ in 0..WRITERS {
            tokio::spawn(write_groups(db.clone(), pending.clone()));
        }
        Self { queue }
    }

    /// Records `failure` with whatever else is waiting; the account's failures
    /// after it, or `None` if its lock was on (then only the audit row is
    /// written, with `locked_detail`). Once queued, the failure is recorded even
    /// if the caller stops waiting.
    pub(crate) async fn record(&self, failure: Failure) -> StoreResult<Option<u32>> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { failure, reply })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn gone() -> StoreError {
    StoreError::Other("the failure recorder has stopped".into())
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
        while !group.is_empty() {
            let (now, later) = one_statement(group);
            write(&db, now).await;
            group = later;
        }
    }
}

/// What one statement may write of `group`: the first guard's failures, each
/// account once; the rest for the next.
fn one_statement(group: Vec<Pending>) -> (Vec<Pending>, Vec<Pending>) {
    let guard = group.first().map(|p| p.failure.guard);
    let mut now: Vec<Pending> = Vec::with_capacity(group.len());
    let mut later = Vec::new();
    for p in group {
        let fits = Some(p.failure.guard) == guard
            && !now.iter().any(|n| n.failure.account == p.failure.account);
        if fits {
            now.push(p);
        } else {
            later.push(p);
        }
    }
    (now, later)
}

/// Writes `group` (one guard, each account once) in one statement and answers
/// each of its callers.
async fn write(mut db: &Db, group: Vec<Pending>) {
    let Some(guard) = group.first().map(|p| p.failure.guard) else {
        return;
    };
    let failures: Vec<&Failure> = group.iter().map(|p| &p.failure).collect();
    let answers = match db.fetch_all(group_query(guard, &failures)).await {
        Ok(rows) => counters(guard, &rows, group.len()),
        Err(e) => Err(e),
    };
    match answers {
        Ok(counts) => {
            for (p, n) in group.into_iter().zip(counts) {
                // A caller that stopped waiting no longer listens.
                drop(p.reply.send(Ok(n)));
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, failures = group.len(), "recording failed attempts failed");
            for p in group {
                drop(p.reply.send(Err(e.clone())));
            }
        }
    }
}

/// Each failure's counter after it (by its place in the group), from the rows
/// the statement returned: one per failure whose attempt was taken.
fn counters(guard: Guard, rows: &[crate::sql::Row], len: usize) -> StoreResult<Vec<Option<u32>>> {
    let (counter, _) = guard_columns(guard);
    let mut counts = vec![None; len];
    for r in rows {
        let place = usize::try_from(r.int("place")?)
            .ok()
            .and_then(|i| counts.get_mut(i))
            .ok_or_else(|| StoreError::Corrupt("a failure's place out of its group".into()))?;
        *place = Some(count(r.int(counter)?));
    }
    Ok(counts)
}

/// The statement for `failures`, padded to a power of two with rows that match
/// nothing, so that a connection prepares a handful of statements, not one per
/// group size.
fn group_query(guard: Guard, failures: &[&Failure]) -> Query {
    let rows = failures.len().next_power_of_two();
    let q = query(group_sql(guard, rows));
    let q = failures.iter().enumerate().fold(q, |q, (place, f)| {
        let place = i64::try_from(place).unwrap_or(i64::MAX);
        q.bind(place)
            .bind(f.account)
            .bind(i64::from(f.max_failures))
            .bind(f.hold)
            .bind(f.now)
            .bind(f.audit.at)
            .bind(f.audit.event.as_str())
            .bind(f.audit.account_id)
            .bind(f.audit.email.as_deref())
            .bind(f.audit.ip.as_deref())
            .bind(f.audit.user_agent.as_deref())
            .bind(f.audit.detail.as_deref())
            .bind(f.locked_detail.as_deref())
    });
    (failures.len()..rows).fold(q, |q, _| {
        q.bind(Value::Int(None))
            .bind(Value::Id(None))
            .bind(Value::Int(None))
            .bind(Value::Time(None))
            .bind(Value::Time(None))
            .bind(Value::Time(None))
            .bind(Value::Text(None))
            .bind(Value::Id(None))
            .bind(Value::Text(None))
            .bind(Value::Text(None))
            .bind(Value::Text(None))
            .bind(Value::Text(None))
            .bind(Value::Text(None))
    })
}

/// `reserve_failed_attempt`'s statement for `rows` failures of `guard`: the
/// accounts' rows locked in id order (`l`, read whole before any update), each
/// counter raised while its lock is off (`r`), and every failure's audit row,
/// in the group's order, saying whether its attempt was taken.
fn group_sql(guard: Guard, rows: usize) -> String {
    let (counter, lock) = guard_columns(guard);
    if rows == 1 {
        // Alone: one row, its lock taken by the update itself; a third cheaper
        // for PostgreSQL than the group's form with one row.
        return format!(
            "WITH r AS (UPDATE accounts SET {counter} = {counter} + 1,
                            {lock} = CASE WHEN {counter} + 1 >= $3 THEN $4 ELSE {lock} END
                        WHERE id = $2 AND ({lock} IS NULL OR {lock} <= $5)
                        RETURNING {counter}),
                  au AS (INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail)
                         SELECT $6, $7, $8, $9, $10, $11,
                                CASE WHEN EXISTS (SELECT 1 FROM r) THEN $12 ELSE $13 END)
             SELECT $1 AS place, {counter} FROM r"
        );
    }
    let values = placeholders(rows, COLUMNS);
    format!(
        "WITH v (place, id, max_failures, hold, now, at, event, account_id, email, ip,
                 user_agent, detail, locked_detail) AS (VALUES {values}),
         l AS MATERIALIZED (SELECT id FROM accounts WHERE id IN (SELECT id FROM v)
                            ORDER BY id FOR NO KEY UPDATE),
         r AS (UPDATE accounts a SET {counter} = a.{counter} + 1,
                   {lock} = CASE WHEN a.{counter} + 1 >= v.max_failures THEN v.hold
                            ELSE a.{lock} END
               FROM v
               WHERE (SELECT count(*) FROM l) >= 0 AND a.id = v.id
                 AND (a.{lock} IS NULL OR a.{lock} <= v.now)
               RETURNING v.place, a.{counter}),
         au AS (INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail)
                SELECT v.at, v.event, v.account_id, v.email, v.ip, v.user_agent,
                       CASE WHEN EXISTS (SELECT 1 FROM r WHERE r.place = v.place)
                            THEN v.detail ELSE v.locked_detail END
                FROM v WHERE v.place IS NOT NULL ORDER BY v.place)
         SELECT place, {counter} FROM r"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(account: u128, guard: Guard) -> Pending {
        let now = Utc::now();
        Pending {
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
            reply: oneshot::channel().0,
        }
    }

    fn accounts(group: &[Pending]) -> Vec<u128> {
        group
            .iter()
            .map(|p| p.failure.account.0.as_u128())
            .collect()
    }

    /// One guard per statement and each account once: the rest waits, in order.
    #[test]
    fn a_statement_takes_one_guard_and_each_account_once() {
        let group = vec![
            pending(1, Guard::Code),
            pending(2, Guard::Code),
            pending(1, Guard::Code),
            pending(3, Guard::Password),
            pending(4, Guard::Code),
        ];
        let (now, later) = one_statement(group);
        assert_eq!(accounts(&now), [1, 2, 4]);
        let (again, last) = one_statement(later);
        assert_eq!(accounts(&again), [1]);
        let (then, none) = one_statement(last);
        assert_eq!(accounts(&then), [3]);
        assert!(then.iter().all(|p| p.failure.guard == Guard::Password));
        assert!(none.is_empty());
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
}
