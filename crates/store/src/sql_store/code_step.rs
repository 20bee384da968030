//! The code step's writes in one commit: on SQLite one job of the writer (one
//! group commit instead of four waits for a right code), on PostgreSQL one
//! statement (one round trip).

use super::audit::{bind_audit, AUDIT_COLUMNS};
use super::sessions::{bind_session, INSERT_SESSION_COLUMNS};
use super::{Backend, SqlStore};
use crate::rows::{count, Columns};
use crate::sql::{query, Db, Exec, Query, Row};
use async_trait::async_trait;
use tweestap_domain::store::{AppCode, AppCodeTaken, CodeStepStore, PassedStep, StoreResult};

/// PostgreSQL: the account `$2` locked first (NO KEY: new rows that refer to it
/// may still be written meanwhile), then the half-finished session `$11` (a
/// row lock re-reads the row after a writer in parallel commits: one that ended
/// the session, e.g. a password change, is seen).
const LOCKED_ACCOUNT_AND_HALF: &str =
    "l AS MATERIALIZED (SELECT id FROM accounts WHERE id = $2 FOR NO KEY UPDATE),
     h AS MATERIALIZED (SELECT id_hash FROM sessions WHERE id_hash = $11
                        AND EXISTS (SELECT 1 FROM l) FOR UPDATE)";

/// SQLite: the new session `$1` is there (the chain's condition after it is
/// written).
const NEW_THERE: &str = "EXISTS (SELECT 1 FROM sessions WHERE id_hash = $1)";

#[async_trait]
impl<B: Backend> CodeStepStore for SqlStore<B> {
    async fn pass_code_step(&self, passed: &PassedStep<'_>) -> StoreResult<bool> {
        let s = passed.session;
        let Db::Sqlite(pools) = self.db() else {
            // One statement; its data-modifying WITH queries all run, read or
            // not, each only while the half-finished session is there (`h`,
            // locked after the account's row: see `reset_two_factor`).
            let audit = match passed.audit {
                Some(_) => format!(
                    ", au AS (INSERT INTO audit_log ({AUDIT_COLUMNS})
                              SELECT $12, $13, $14, $15, $16, $17, $18
                              WHERE EXISTS (SELECT 1 FROM h))"
                ),
                None => String::new(),
            };
            let q = query(format!(
                "WITH {LOCKED_ACCOUNT_AND_HALF},
                 s AS (INSERT INTO sessions ({INSERT_SESSION_COLUMNS})
                       SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                       WHERE EXISTS (SELECT 1 FROM h)),
                 a AS (UPDATE accounts SET last_sign_in_at = $4, code_failures = 0,
                       code_locked_until = NULL WHERE id = $2 AND EXISTS (SELECT 1 FROM h)),
                 d AS (DELETE FROM sessions
                       WHERE (id_hash = $11 OR sid = $10) AND id_hash <> $1
                         AND EXISTS (SELECT 1 FROM h)){audit}
                 SELECT count(*) AS passed FROM h"
            ));
            let q = with_audit(bind_session(q, s).bind(&passed.half.0), passed);
            return Ok(self.db().fetch_one(q).await?.int("passed")? > 0);
        };
        // One after the other on the writing connection, all or none: the new
        // session only while the half-finished one is there, the rest only if
        // the new one is.
        let mut steps = vec![
            bind_session(
                query(format!(
                    "INSERT INTO sessions ({INSERT_SESSION_COLUMNS})
                     SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10
                     WHERE EXISTS (SELECT 1 FROM sessions WHERE id_hash = $11)
                     RETURNING id_hash"
                )),
                s,
            )
            .bind(&passed.half.0),
            query(format!(
                "UPDATE accounts SET last_sign_in_at = $2, code_failures = 0,
                 code_locked_until = NULL WHERE id = $3 AND {NEW_THERE}"
            ))
            .bind(&s.id_hash.0)
            .bind(s.created_at)
            .bind(s.account_id),
        ];
        steps.extend(ended_and_audited(passed));
        let rows = pools.writer.together(steps).await?;
        Ok(rows.first().is_some_and(|r| !r.is_empty()))
    }

    async fn take_app_code(
        &self,
        code: &AppCode,
        passed: &PassedStep<'_>,
    ) -> StoreResult<AppCodeTaken> {
        let s = passed.session;
        let Db::Sqlite(pools) = self.db() else {
            return self.take_app_code_in_one_statement(code, passed).await;
        };
        // One after the other on the writing connection, all or none; each step
        // goes on only if the one before did: the claim only while the code step
        // is not locked and the half-finished session is there, the new session
        // only if the claim changed its row (`changes()`), the rest only if the
        // new session is there. The first statement reads what decided.
        let half_there = "EXISTS (SELECT 1 FROM sessions WHERE id_hash = $1)";
        let unlocked = "EXISTS (SELECT 1 FROM accounts WHERE id = $2
                        AND (code_locked_until IS NULL OR code_locked_until <= $3))";
        let standing = query(format!(
            "SELECT {unlocked} AS unlocked, {half_there} AS half"
        ))
        .bind(&passed.half.0)
        .bind(code.account)
        .bind(code.now);
        let claim = query(
            "UPDATE factors SET last_step = $1, last_used_at = $2
             WHERE id = $3 AND (last_step IS NULL OR last_step < $1)
               AND EXISTS (SELECT 1 FROM accounts WHERE id = $4
                           AND (code_locked_until IS NULL OR code_locked_until <= $2))
               AND EXISTS (SELECT 1 FROM sessions WHERE id_hash = $5)",
        )
        .bind(code.step)
        .bind(code.now)
        .bind(code.factor.0)
        .bind(code.account)
        .bind(&passed.half.0);
        let session = bind_session(
            query(format!(
                "INSERT INTO sessions ({INSERT_SESSION_COLUMNS})
                 SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE changes() > 0
                 RETURNING id_hash"
            )),
            s,
        );
        // The half-finished session is still there at this point when it was at
        // the claim (it ends in the next statement).
        let counted_row = "id = $5 AND (code_locked_until IS NULL OR code_locked_until <= $6)
                           AND EXISTS (SELECT 1 FROM sessions WHERE id_hash = $7)";
        let account = query(counted(NEW_THERE, "$2", "$3", "$4", counted_row))
            .bind(&s.id_hash.0)
            .bind(s.created_at)
            .bind(i64::from(code.max_failures))
            .bind(code.hold)
            .bind(code.account)
            .bind(code.now)
            .bind(&passed.half.0);
        let mut steps = vec![standing, claim, session, account];
        steps.extend(ended_and_audited(passed));
        let mut rows = pools.writer.together(steps).await?;
        let (unlocked, half) = match rows.get_mut(0).and_then(Vec::pop).map(Row::from) {
            Some(r) => (r.int("unlocked")? > 0, r.int("half")? > 0),
            None => (false, false),
        };
        let passed = rows.get(2).is_some_and(|r| !r.is_empty());
        let failures = match rows.get_mut(3).and_then(Vec::pop) {
            Some(r) => Some(Row::from(r).int("code_failures")?),
            None => None,
        };
        Ok(taken(passed, unlocked, half, failures))
    }
}

impl<B: Backend> SqlStore<B> {
    /// [`CodeStepStore::take_app_code`] on PostgreSQL: the account's row is locked
    /// first (`FOR NO KEY UPDATE`, re-read after a writer in parallel commits, so
    /// its lock is seen; and first, see `reset_two_factor`), then the
    /// half-finished session's (so one ended meanwhile is seen), then each part
    /// runs only if the one before did, as on SQLite. The account's row is
    /// changed by one part only (a row changed twice in one statement would keep
    /// one change, unpredictably).
    async fn take_app_code_in_one_statement(
        &self,
        code: &AppCode,
        passed: &PassedStep<'_>,
    ) -> StoreResult<AppCodeTaken> {
        let s = passed.session;
        let audit = match passed.audit {
            Some(_) => format!(
                ", au AS (INSERT INTO audit_log ({AUDIT_COLUMNS})
                          SELECT $18, $19, $20, $21, $22, $23, $24 WHERE EXISTS (SELECT 1 FROM s))"
            ),
            None => String::new(),
        };
        // The row is locked (in l) and was unlocked then, and the half-finished
        // session is there and locked (in h): no second look needed.
        let unlocked = "id = $1 AND EXISTS (SELECT 1 FROM h)";
        let account = counted("EXISTS (SELECT 1 FROM s)", "$8", "$15", "$16", unlocked);
        let q = query(format!(
            "WITH l AS MATERIALIZED (SELECT id FROM accounts WHERE id = $1
                   AND (code_locked_until IS NULL OR code_locked_until <= $2)
                   FOR NO KEY UPDATE),
             h AS MATERIALIZED (SELECT id_hash FROM sessions WHERE id_hash = $17
                   AND EXISTS (SELECT 1 FROM l) FOR UPDATE),
             c AS (UPDATE factors SET last_step = $3, last_used_at = $2
                   WHERE id = $4 AND (last_step IS NULL OR last_step < $3)
                     AND EXISTS (SELECT 1 FROM h) RETURNING id),
             s AS (INSERT INTO sessions ({INSERT_SESSION_COLUMNS})
                   SELECT $5, $6, $7, $8, $9, $10, $11, $12, $13, $14
                   WHERE EXISTS (SELECT 1 FROM c) RETURNING id_hash),
             a AS ({account}),
             d AS (DELETE FROM sessions WHERE (id_hash = $17 OR sid = $14) AND id_hash <> $5
                   AND EXISTS (SELECT 1 FROM s)){audit}
             SELECT (SELECT code_failures FROM a) AS code_failures,
                    (SELECT count(*) FROM s) AS passed,
                    (SELECT count(*) FROM l) AS unlocked,
                    (SELECT count(*) FROM h) AS half"
        ))
        .bind(code.account)
        .bind(code.now)
        .bind(code.step)
        .bind(code.factor.0);
        let q = bind_session(q, s)
            .bind(i64::from(code.max_failures))
            .bind(code.hold)
            .bind(&passed.half.0);
        let row = self.db().fetch_one(with_audit(q, passed)).await?;
        let failures = row.opt_int("code_failures")?;
        let (passed, unlocked) = (row.int("passed")? > 0, row.int("unlocked")? > 0);
        Ok(taken(passed, unlocked, row.int("half")? > 0, failures))
    }
}

/// The account's row after an app code was taken, if `unlocked` (the WHERE that
/// names the row while the code step is not locked): when `passed` (an SQL
/// condition) holds, signed in at `at` with the failures cleared; otherwise one
/// failure more, locked until `hold` once they reach `max` (as `reserve_attempt`
/// counts). Answers the failures.
fn counted(passed: &str, at: &str, max: &str, hold: &str, unlocked: &str) -> String {
    format!(
        "UPDATE accounts SET
             code_failures = CASE WHEN {passed} THEN 0 ELSE code_failures + 1 END,
             code_locked_until = CASE WHEN {passed} THEN NULL
                 WHEN code_failures + 1 >= {max} THEN {hold} ELSE code_locked_until END,
             last_sign_in_at = CASE WHEN {passed} THEN {at} ELSE last_sign_in_at END
         WHERE {unlocked}
         RETURNING code_failures"
    )
}

/// Ends the half-finished session `$1` and every session of the sid `$2` but the
/// new one `$3`, if `condition` (SQL appended to the WHERE) holds.
fn ended_sessions(condition: &str) -> Query {
    query(format!(
        "DELETE FROM sessions WHERE (id_hash = $1 OR sid = $2) AND id_hash <> $3{condition}"
    ))
}

/// Binds the audit row of `passed`, if it has one.
fn with_audit(q: Query, passed: &PassedStep<'_>) -> Query {
    match passed.audit {
        Some(r) => bind_audit(q, r),
        None => q,
    }
}

/// SQLite: the last statements of a passed step's chain, each only if its new
/// session is there: the sessions it ends, and its audit row if it has one.
fn ended_and_audited(passed: &PassedStep<'_>) -> Vec<Query> {
    let s = passed.session;
    let mut steps = vec![
        ended_sessions(" AND EXISTS (SELECT 1 FROM sessions WHERE id_hash = $3)")
            .bind(&passed.half.0)
            .bind(&s.sid)
            .bind(&s.id_hash.0),
    ];
    if let Some(r) = passed.audit {
        let q = format!(
            "INSERT INTO audit_log ({AUDIT_COLUMNS})
             SELECT $1, $2, $3, $4, $5, $6, $7
             WHERE EXISTS (SELECT 1 FROM sessions WHERE id_hash = $8)"
        );
        steps.push(bind_audit(query(q), r).bind(&s.id_hash.0));
    }
    steps
}

/// What taking an app code came to, from what the statements read and wrote.
fn taken(passed: bool, unlocked: bool, half: bool, failures: Option<i64>) -> AppCodeTaken {
    match (passed, unlocked, half, failures) {
        (true, ..) => AppCodeTaken::Passed,
        (false, false, ..) => AppCodeTaken::Locked,
        (false, true, false, _) => AppCodeTaken::Gone,
        (false, true, true, Some(n)) => AppCodeTaken::Replayed(count(n)),
        // Unlocked when read, then not counted: cannot happen within one
        // transaction; answered as locked, which writes nothing more.
        (false, true, true, None) => AppCodeTaken::Locked,
    }
}
