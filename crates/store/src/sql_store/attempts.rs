//! One failed attempt: the conditional update that takes it and, on
//! PostgreSQL, the statement that also writes its audit row (what a failure
//! written alone runs; `failure_groups` writes many in one).

use super::audit::bind_audit;
use crate::rows::{count, guard_columns, Columns};
use crate::sql::{query, Db, Exec, Query};
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::lockout::Guard;
use tweestap_domain::store::StoreResult;

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

/// Takes one attempt of `guard` unless it is locked, locking it when the attempt
/// reaches `$1`, as one statement (SET reads the old values on both databases), so
/// requests in parallel cannot take more than allowed. Binds: [`bind_reserve`].
pub(super) fn reserve_sql(guard: Guard) -> String {
    let (counter, lock) = guard_columns(guard);
    format!(
        "UPDATE accounts SET {counter} = {counter} + 1,
             {lock} = CASE WHEN {counter} + 1 >= $1 THEN $2 ELSE {lock} END
         WHERE id = $3 AND ({lock} IS NULL OR {lock} <= $4)
         RETURNING {counter}"
    )
}

/// Binds [`reserve_sql`]'s four values.
pub(super) fn bind_reserve(
    q: Query,
    max_failures: u32,
    hold: DateTime<Utc>,
    id: AccountId,
    now: DateTime<Utc>,
) -> Query {
    q.bind(i64::from(max_failures))
        .bind(hold)
        .bind(id)
        .bind(now)
}

/// PostgreSQL: writes `f` by a statement of its own, waiting for its account's
/// row if another transaction holds it: the attempt taken unless the lock is on
/// ([`reserve_sql`]), and the audit row saying whether it was (one round trip:
/// a data-modifying WITH runs whether or not it is read). The account's failures
/// after it, or `None` while its lock was on.
pub(super) async fn write_one(mut db: &Db, f: &Failure) -> StoreResult<Option<u32>> {
    let (counter, _) = guard_columns(f.guard);
    let reserve = reserve_sql(f.guard);
    let q = query(format!(
        "WITH r AS ({reserve}),
              a AS (INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail)
                    SELECT $5, $6, $7, $8, $9, $10,
                           CASE WHEN EXISTS (SELECT 1 FROM r) THEN $11 ELSE $12 END)
         SELECT {counter} FROM r"
    ));
    let q = bind_reserve(q, f.max_failures, f.hold, f.account, f.now);
    let q = bind_audit(q, &f.audit).bind(f.locked_detail.as_deref());
    match db.fetch_optional(q).await? {
        Some(row) => Ok(Some(count(row.int(counter)?))),
        None => Ok(None),
    }
}
