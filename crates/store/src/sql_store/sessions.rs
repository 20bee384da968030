//! Browser sessions, signed in or half-way.

use super::audit::{audit_insert, bind_audit, AUDIT_COLUMNS};
use super::devices::{
    second_steps_columns, second_steps_from, second_steps_joins, SECOND_STEPS_ORDER,
};
use super::portals::queue_logouts;
use super::{Backend, SqlStore};
use crate::rows::{account_from, factors_in, session_from, Columns, F_COLUMNS};
use crate::session_cache::{Found, SessionCache};
use crate::sql::{query, Db, Exec, Query};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::{Account, AccountId};
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::factor::Factor;
use tweestap_domain::session::{Session, SessionStage};
use tweestap_domain::store::{SecondSteps, SessionStore, StoreResult};
use tweestap_domain::token::TokenHash;

/// The columns of a session (`s`) joined with its account (`a`). Both tables have
/// `created_at`: the session's is renamed, and read back under its own name by
/// [`session_and_account_from`].
macro_rules! session_and_account {
    () => {
        "a.*, s.id_hash, s.account_id, s.stage, s.created_at AS session_created_at,
         s.last_seen_at, s.auth_time, s.amr, s.ip, s.user_agent, s.sid"
    };
}

/// The session and its account of a row with [`session_and_account!`]'s columns.
fn session_and_account_from(row: &impl Columns) -> StoreResult<(Session, Account)> {
    let session = session_from(&Renamed(row, "created_at", "session_created_at"))?;
    Ok((session, account_from(row)?))
}

#[async_trait]
impl<B: Backend> SessionStore for SqlStore<B> {
    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        self.db().run(session_insert(s)).await
    }

    async fn insert_session_audited(&self, s: &Session, audit: &AuditRecord) -> StoreResult<()> {
        let Db::Sqlite(pools) = self.db() else {
            // A data-modifying WITH query runs whether read or not.
            let q = query(format!(
                "WITH s AS (INSERT INTO sessions ({INSERT_SESSION_COLUMNS})
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10))
                 INSERT INTO audit_log ({AUDIT_COLUMNS})
                 VALUES ($11, $12, $13, $14, $15, $16, $17)"
            ));
            return self.db().run(bind_audit(bind_session(q, s), audit)).await;
        };
        // SQLite has no writes in WITH: two statements, all or none.
        let steps = vec![session_insert(s), audit_insert(audit)];
        pools.writer.together(steps).await?;
        Ok(())
    }

    async fn sessions_with_sid(&self, sid: &str) -> StoreResult<Vec<Session>> {
        let q = query("SELECT * FROM sessions WHERE sid = $1").bind(sid);
        self.db().all(q, session_from).await
    }

    async fn delete_other_sessions_with_sid(&self, sid: &str, keep: &TokenHash) -> StoreResult<()> {
        let q = query("DELETE FROM sessions WHERE sid = $1 AND id_hash <> $2")
            .bind(sid)
            .bind(&keep.0);
        self.db().run(q).await
    }

    async fn end_sid(&self, sid: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        let mut tx = self.db().begin().await?;
        (&mut tx)
            .execute(query("DELETE FROM sessions WHERE sid = $1").bind(sid))
            .await?;
        let q =
            query("UPDATE oidc_tokens SET revoked_at = $1 WHERE sid = $2 AND revoked_at IS NULL")
                .bind(at)
                .bind(sid);
        (&mut tx).execute(q).await?;
        let q = query("DELETE FROM oidc_codes WHERE sid = $1 AND used_at IS NULL").bind(sid);
        (&mut tx).execute(q).await?;
        let queued = queue_logouts(&mut tx, "sid = $1", sid.into(), at).await?;
        tx.commit().await?;
        Ok(queued)
    }

    async fn session(&self, id: &TokenHash) -> StoreResult<Option<Session>> {
        let q = query("SELECT * FROM sessions WHERE id_hash = $1").bind(&id.0);
        self.db().optional(q, session_from).await
    }

    async fn session_with_account(
        &self,
        id: &TokenHash,
    ) -> StoreResult<Option<(Session, Account)>> {
        let found = self.found_session(id, false).await?;
        Ok(found.map(|f| (f.session, f.account)))
    }

    async fn session_with_factors(
        &self,
        id: &TokenHash,
    ) -> StoreResult<Option<(Session, Account, Vec<Factor>)>> {
        let q = query(format!(
            "SELECT {}, {F_COLUMNS}
             FROM sessions s JOIN accounts a ON a.id = s.account_id
             LEFT JOIN factors f ON f.account_id = a.id
             WHERE s.id_hash = $1
             ORDER BY f.created_at, f.id",
            session_and_account!(),
        ))
        .bind(&id.0);
        let rows = self.db().fetch_all(q).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let (session, account) = session_and_account_from(first)?;
        let factors = factors_in(&rows)?;
        Ok(Some((session, account, factors)))
    }

    async fn session_with_second_steps(
        &self,
        id: &TokenHash,
    ) -> StoreResult<Option<(Session, Account, SecondSteps)>> {
        let found = self.found_session(id, true).await?;
        // Read with its steps, so they are there.
        Ok(found.and_then(|f| Some((f.session, f.account, f.steps?))))
    }

    async fn touch_session(&self, id: &TokenHash, at: DateTime<Utc>) -> StoreResult<()> {
        let q = query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(at)
            .bind(&id.0);
        self.db().run(q).await
    }

    async fn delete_session(&self, id: &TokenHash) -> StoreResult<()> {
        let q = query("DELETE FROM sessions WHERE id_hash = $1").bind(&id.0);
        self.db().run(q).await
    }

    async fn delete_sessions_of(&self, account: AccountId) -> StoreResult<()> {
        let q = query("DELETE FROM sessions WHERE account_id = $1").bind(account);
        self.db().run(q).await
    }

    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let q = query("DELETE FROM sessions WHERE last_seen_at < $1").bind(before);
        self.db().execute(q).await
    }
}

/// The session lookups as the database answers them (the cache's misses).
impl<B: Backend> SqlStore<B> {
    /// A session by its hash, with its second steps when `steps` asks for them,
    /// through the node's session cache when there is one. Only signed-in
    /// sessions are kept: the writes of a sign-in under way (the code step's)
    /// then need not tell other nodes (migration 0018), and signed-in requests
    /// are the many.
    async fn found_session(&self, id: &TokenHash, steps: bool) -> StoreResult<Option<Found>> {
        let cache = self.db().session_cache();
        if let Some(f) = cache.and_then(|c| c.session(&id.0, steps)) {
            return Ok(Some(f));
        }
        let ticket = cache.and_then(SessionCache::ticket);
        let found = if steps {
            let read = self.read_session_with_second_steps(id).await?;
            read.map(|(session, account, steps)| Found {
                session,
                account,
                steps: Some(steps),
            })
        } else {
            let read = self.read_session_with_account(id).await?;
            read.map(|(session, account)| Found {
                session,
                account,
                steps: None,
            })
        };
        if let (Some(c), Some(t), Some(f)) = (cache, ticket, &found) {
            if f.session.stage == SessionStage::Authenticated {
                c.keep_session(&id.0, t, f.clone());
            }
        }
        Ok(found)
    }

    async fn read_session_with_account(
        &self,
        id: &TokenHash,
    ) -> StoreResult<Option<(Session, Account)>> {
        let q = query(concat!(
            "SELECT ",
            session_and_account!(),
            " FROM sessions s JOIN accounts a ON a.id = s.account_id WHERE s.id_hash = $1"
        ))
        .bind(&id.0);
        self.db().optional(q, session_and_account_from).await
    }

    async fn read_session_with_second_steps(
        &self,
        id: &TokenHash,
    ) -> StoreResult<Option<(Session, Account, SecondSteps)>> {
        let q = query(format!(
            "SELECT {}, {}
             FROM sessions s JOIN accounts a ON a.id = s.account_id {}
             WHERE s.id_hash = $1
             ORDER BY {SECOND_STEPS_ORDER}",
            session_and_account!(),
            second_steps_columns("a.id"),
            second_steps_joins("a.id"),
        ))
        .bind(&id.0);
        let rows = self.db().fetch_all(q).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        let (session, account) = session_and_account_from(first)?;
        Ok(Some((session, account, second_steps_from(&rows)?)))
    }
}

/// The columns a new session's row is written with, in [`bind_session`]'s order.
pub(super) const INSERT_SESSION_COLUMNS: &str =
    "id_hash, account_id, stage, created_at, last_seen_at, auth_time, amr, ip, user_agent, sid";

/// The statement that writes the new session `s` alone.
fn session_insert(s: &Session) -> Query {
    let q = format!(
        "INSERT INTO sessions ({INSERT_SESSION_COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
    );
    bind_session(query(q), s)
}

/// Binds a new session's ten values, in [`INSERT_SESSION_COLUMNS`]' order.
pub(super) fn bind_session(q: Query, s: &Session) -> Query {
    q.bind(&s.id_hash.0)
        .bind(s.account_id)
        .bind(s.stage.as_str())
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(s.auth_time)
        .bind(&s.amr)
        .bind(s.ip.as_deref())
        .bind(s.user_agent.as_deref())
        .bind(&s.sid)
}

/// A row whose column `.1` is read under the name `.2` (a joined query's alias).
struct Renamed<'a, R>(&'a R, &'static str, &'static str);

impl<R: Columns> Renamed<'_, R> {
    fn name<'n>(&self, name: &'n str) -> &'n str {
        if name == self.1 {
            self.2
        } else {
            name
        }
    }
}

impl<R: Columns> Columns for Renamed<'_, R> {
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        self.0.opt_text(self.name(name))
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.0.opt_int(self.name(name))
    }
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
        self.0.bytes(self.name(name))
    }
    fn opt_time(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        self.0.opt_time(self.name(name))
    }
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<uuid::Uuid>> {
        self.0.opt_uuid(self.name(name))
    }
}
