//! PostgreSQL, for several server nodes sharing one database.
//!
//! Every method means exactly what it means in [`crate::SqliteStore`]; the checks
//! that must hold across nodes (failure counters, one use per TOTP step, confirming
//! a factor once) are single conditional statements, so the database decides them
//! atomically.

use crate::rows::{
    self, account_from, audit_from, count, factor_from, guard_columns, mail_from, session_from,
    Columns,
};
use crate::{map_err, map_migrate_err, PoolSettings};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::{PgPool, Row};
use std::str::FromStr;
use tweestap_domain::account::{Account, AccountId, Email};
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::device::RememberedDevice;
use tweestap_domain::enrollment::EnrollmentLink;
use tweestap_domain::factor::{Factor, FactorId};
use tweestap_domain::lockout::Guard;
use tweestap_domain::mail::{Language, NewMail, QueuedMail};
use tweestap_domain::oidc::flow::{CodeClaim, StoredCode, StoredRequest, StoredToken};
use tweestap_domain::oidc::{OidcClient, SigningKey};
use tweestap_domain::session::Session;
use tweestap_domain::session_code::{CodePurpose, SessionCode};
use tweestap_domain::snapshot::Contents;
use tweestap_domain::store::{NewAccount, NewPasswordReset, Store, StoreError, StoreResult};
use tweestap_domain::token::TokenHash;
use uuid::Uuid;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url` (`postgres://user:password@host:port/database?…`) and applies
    /// pending migrations when `migrate` is set.
    ///
    /// Gives up after `pool.acquire_timeout` with [`StoreError::Unavailable`] when the
    /// server cannot be reached. Once connected, the pool checks each connection
    /// before handing it out and reconnects by itself when PostgreSQL comes back after
    /// a restart; in between, calls fail with `Unavailable`.
    ///
    /// [`StoreError::Unavailable`]: tweestap_domain::store::StoreError::Unavailable
    pub async fn connect(url: &str, pool: &PoolSettings, migrate: bool) -> StoreResult<Self> {
        let opts = PgConnectOptions::from_str(url).map_err(map_err)?;
        let pool = pool
            .apply(PgPoolOptions::new())
            .test_before_acquire(true)
            .connect_with(opts)
            .await
            .map_err(map_err)?;
        let s = Self { pool };
        if migrate {
            s.migrate().await?;
        } else {
            let applied = sqlx::query_scalar(crate::APPLIED_MIGRATIONS)
                .fetch_all(&s.pool)
                .await;
            crate::require_migrated(&MIGRATOR, applied)?;
        }
        Ok(s)
    }

    /// Applies pending migrations. Nodes starting together are safe: sqlx holds an
    /// advisory lock while it migrates.
    pub async fn migrate(&self) -> StoreResult<()> {
        MIGRATOR.run(&self.pool).await.map_err(map_migrate_err)
    }

    /// Gives a claimed message back: to be tried again at `at` (`queued`) or for good
    /// (`failed`). False when the claim was lost to another worker.
    async fn release_mail(
        &self,
        m: &QueuedMail,
        status: &str,
        at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE mail_queue SET status = $1, next_attempt_at = $2, locked_until = NULL, last_error = $3
             WHERE id = $4 AND claimed_by = $5 AND status = 'queued'",
        )
        .bind(status)
        .bind(ts(at))
        .bind(error)
        .bind(m.id)
        .bind(m.claim)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }
}

fn col<'r, T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>>(
    row: &'r PgRow,
    name: &str,
) -> StoreResult<T> {
    row.try_get(name).map_err(map_err)
}

/// PostgreSQL has the types natively.
impl Columns for PgRow {
    fn text(&self, name: &str) -> StoreResult<String> {
        col(self, name)
    }
    fn opt_text(&self, name: &str) -> StoreResult<Option<String>> {
        col(self, name)
    }
    fn int(&self, name: &str) -> StoreResult<i64> {
        col(self, name)
    }
    fn opt_int(&self, name: &str) -> StoreResult<Option<i64>> {
        col(self, name)
    }
    fn bytes(&self, name: &str) -> StoreResult<Vec<u8>> {
        col(self, name)
    }
    fn time(&self, name: &str) -> StoreResult<DateTime<Utc>> {
        col(self, name)
    }
    fn opt_time(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        col(self, name)
    }
    fn uuid(&self, name: &str) -> StoreResult<Uuid> {
        col(self, name)
    }
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<Uuid>> {
        col(self, name)
    }
}

/// A time as stored: whole microseconds, rounded down like the SQLite text.
fn ts(t: DateTime<Utc>) -> DateTime<Utc> {
    rows::micros(t)
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_account(&self, a: &NewAccount) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO accounts (id, email, name, role, password_hash, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(a.id.0)
        .bind(a.email.as_str())
        .bind(&a.name)
        .bind(a.role.as_str())
        .bind(&a.password_hash)
        .bind(ts(a.created_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE email = $1")
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(account_from).transpose()
    }

    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = $1")
            .bind(id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(account_from).transpose()
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        // Byte order, as SQLite's BINARY collation, whatever the database's locale.
        let rows = sqlx::query(r#"SELECT * FROM accounts ORDER BY email COLLATE "C""#)
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(account_from).collect()
    }

    async fn increment_failures(&self, id: AccountId, guard: Guard) -> StoreResult<u32> {
        let (counter, _) = guard_columns(guard);
        let sql = format!(
            "UPDATE accounts SET {counter} = {counter} + 1 WHERE id = $1 RETURNING {counter}"
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(id.0)
            .fetch_one(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(count(n))
    }

    async fn set_lock(
        &self,
        id: AccountId,
        guard: Guard,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let (_, lock) = guard_columns(guard);
        sqlx::query(&format!("UPDATE accounts SET {lock} = $1 WHERE id = $2"))
            .bind(until.map(ts))
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn reset_failures(&self, id: AccountId, guard: Guard) -> StoreResult<()> {
        let (counter, lock) = guard_columns(guard);
        sqlx::query(&format!(
            "UPDATE accounts SET {counter} = 0, {lock} = NULL WHERE id = $1"
        ))
        .bind(id.0)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn insert_factor(&self, f: &Factor) -> StoreResult<()> {
        insert_factor_row(&self.pool, f).await?;
        Ok(())
    }

    async fn factors_of(&self, account: AccountId) -> StoreResult<Vec<Factor>> {
        let rows =
            sqlx::query("SELECT * FROM factors WHERE account_id = $1 ORDER BY created_at, id")
                .bind(account.0)
                .fetch_all(&self.pool)
                .await
                .map_err(map_err)?;
        rows.iter().map(factor_from).collect()
    }

    async fn confirm_factor(
        &self,
        id: FactorId,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let r = sqlx::query(
            "UPDATE factors SET confirmed_at = $1 WHERE id = $2 AND confirmed_at IS NULL",
        )
        .bind(ts(at))
        .bind(id.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(m) = notice {
            insert_mail_row(&mut *tx, m).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn remove_factor(
        &self,
        id: FactorId,
        forget_devices_of: Option<AccountId>,
        notice: Option<&NewMail>,
    ) -> StoreResult<bool> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let r = sqlx::query("DELETE FROM factors WHERE id = $1")
            .bind(id.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(account) = forget_devices_of {
            sqlx::query("DELETE FROM remembered_devices WHERE account_id = $1")
                .bind(account.0)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        if let Some(m) = notice {
            insert_mail_row(&mut *tx, m).await?;
        }
        tx.commit().await.map_err(map_err)?;
        Ok(true)
    }

    async fn delete_unconfirmed_factors(&self, account: AccountId) -> StoreResult<()> {
        sqlx::query("DELETE FROM factors WHERE account_id = $1 AND confirmed_at IS NULL")
            .bind(account.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn claim_totp_step(
        &self,
        id: FactorId,
        step: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // One conditional UPDATE: under READ COMMITTED a concurrent claim of the same
        // row waits for ours, then re-checks the condition against the committed
        // value, so two nodes can never both accept one step.
        let r = sqlx::query(
            "UPDATE factors SET last_step = $2, last_used_at = $3 WHERE id = $1 AND (last_step IS NULL OR last_step < $2)",
        )
        .bind(id.0)
        .bind(step)
        .bind(ts(at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, stage, created_at, last_seen_at, auth_time, amr, ip, user_agent)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&s.id_hash.0)
        .bind(s.account_id.0)
        .bind(s.stage.as_str())
        .bind(ts(s.created_at))
        .bind(ts(s.last_seen_at))
        .bind(ts(s.auth_time))
        .bind(&s.amr)
        .bind(&s.ip)
        .bind(&s.user_agent)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session(&self, id: &TokenHash) -> StoreResult<Option<Session>> {
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = $1")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(session_from).transpose()
    }

    async fn touch_session(&self, id: &TokenHash, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
            .bind(ts(at))
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, id: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_sessions_of(&self, account: AccountId) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(account.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1")
            .bind(ts(before))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected())
    }

    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        insert_audit_row(&self.pool, r).await?;
        Ok(())
    }

    async fn export_contents(&self) -> StoreResult<Contents> {
        // One read transaction: a consistent picture while the server keeps running.
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // REPEATABLE READ: all three tables as of one instant.
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let accounts = sqlx::query("SELECT * FROM accounts ORDER BY created_at, id")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let factors = sqlx::query("SELECT * FROM factors ORDER BY created_at, id")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let audit = sqlx::query("SELECT * FROM audit_log ORDER BY id")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let recovery =
            sqlx::query("SELECT * FROM recovery_codes ORDER BY account_id, created_at, code_mac")
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
        let keys = sqlx::query("SELECT * FROM oidc_signing_keys ORDER BY created_at, kid")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        let clients = sqlx::query("SELECT * FROM oidc_clients ORDER BY created_at, id")
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(Contents {
            signing_keys: keys
                .iter()
                .map(rows::signing_key_from)
                .collect::<StoreResult<_>>()?,
            clients: clients
                .iter()
                .map(rows::client_from)
                .collect::<StoreResult<_>>()?,
            accounts: accounts
                .iter()
                .map(account_from)
                .collect::<StoreResult<_>>()?,
            factors: factors
                .iter()
                .map(factor_from)
                .collect::<StoreResult<_>>()?,
            audit: audit.iter().map(audit_from).collect::<StoreResult<_>>()?,
            recovery_codes: recovery
                .iter()
                .map(rows::recovery_code_from)
                .collect::<StoreResult<_>>()?,
        })
    }

    async fn import_contents(&self, c: &Contents) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        // Two imports at once must not both see an empty database.
        sqlx::query("LOCK TABLE accounts IN EXCLUSIVE MODE")
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM accounts")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let (clients,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM oidc_clients")
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        if n > 0 || clients > 0 {
            return Err(StoreError::Conflict);
        }
        // The keys a first start generated here have signed nothing anyone kept (there
        // were no accounts); the exported ones have, so they take their place.
        if !c.signing_keys.is_empty() {
            sqlx::query("DELETE FROM oidc_signing_keys")
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        for k in &c.signing_keys {
            insert_signing_key_row(&mut *tx, k).await?;
        }
        for client in &c.clients {
            insert_client_row(&mut *tx, client).await?;
        }
        for a in &c.accounts {
            sqlx::query(
                "INSERT INTO accounts (id, email, name, role, password_hash, created_at, code_failures, code_locked_until, password_failures, password_locked_until, language)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            )
            .bind(a.id.0)
            .bind(a.email.as_str())
            .bind(&a.name)
            .bind(a.role.as_str())
            .bind(&a.password_hash)
            .bind(ts(a.created_at))
            .bind(i64::from(a.code_failures))
            .bind(a.code_locked_until.map(ts))
            .bind(i64::from(a.password_failures))
            .bind(a.password_locked_until.map(ts))
            .bind(a.language.code())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        for f in &c.factors {
            insert_factor_row(&mut *tx, f).await?;
        }
        for r in &c.audit {
            insert_audit_row(&mut *tx, r).await?;
        }
        for r in &c.recovery_codes {
            sqlx::query(
                "INSERT INTO recovery_codes (account_id, code_mac, created_at, used_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(r.account_id.0)
            .bind(&r.code_mac)
            .bind(ts(r.created_at))
            .bind(r.used_at.map(ts))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn list_audit(&self, limit: u32, email: Option<&str>) -> StoreResult<Vec<AuditRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM audit_log WHERE ($1::text IS NULL OR email = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(email.map(str::to_lowercase))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(audit_from).collect()
    }

    async fn set_language(&self, id: AccountId, language: Language) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET language = $1 WHERE id = $2")
            .bind(language.code())
            .bind(id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn enqueue_mail(&self, m: &NewMail) -> StoreResult<()> {
        insert_mail_row(&self.pool, m).await
    }

    async fn claim_mail(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        claim: Uuid,
        limit: u32,
    ) -> StoreResult<Vec<QueuedMail>> {
        // SKIP LOCKED: concurrent workers on other nodes pass over rows being
        // claimed right now instead of waiting for (and then re-taking) them; the
        // lease keeps claimed rows out of later claims until it runs out.
        let rows = sqlx::query(
            "UPDATE mail_queue SET locked_until = $1, claimed_by = $2, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM mail_queue
                 WHERE status = 'queued' AND next_attempt_at <= $3
                   AND (locked_until IS NULL OR locked_until <= $3)
                 ORDER BY next_attempt_at, id
                 LIMIT $4
                 FOR UPDATE SKIP LOCKED)
             RETURNING *",
        )
        .bind(ts(lease_until))
        .bind(claim)
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(mail_from).collect()
    }

    async fn mark_mail_sent(&self, m: &QueuedMail, at: DateTime<Utc>) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE mail_queue SET status = 'sent', sent_at = $1, locked_until = NULL, last_error = NULL
             WHERE id = $2 AND claimed_by = $3 AND status = 'queued'",
        )
        .bind(ts(at))
        .bind(m.id)
        .bind(m.claim)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn retry_mail(
        &self,
        m: &QueuedMail,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> StoreResult<bool> {
        self.release_mail(m, "queued", next_attempt_at, error).await
    }

    async fn fail_mail(&self, m: &QueuedMail, at: DateTime<Utc>, error: &str) -> StoreResult<bool> {
        self.release_mail(m, "failed", at, error).await
    }

    async fn mail_counts(&self) -> StoreResult<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT status, COUNT(*) FROM mail_queue GROUP BY status ORDER BY status",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(rows
            .into_iter()
            .map(|(s, n)| (s, n.try_into().unwrap_or(0)))
            .collect())
    }

    async fn mails_since(
        &self,
        account: AccountId,
        kind: &str,
        since: DateTime<Utc>,
    ) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM mail_queue WHERE account_id = $1 AND kind = $2 AND created_at >= $3",
        )
        .bind(account.0)
        .bind(kind)
        .bind(ts(since))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(count(n))
    }

    async fn insert_password_reset(&self, r: &NewPasswordReset) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE password_resets SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL",
        )
        .bind(ts(r.created_at))
        .bind(r.account_id.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO password_resets (token_hash, account_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.token_hash.0)
        .bind(r.account_id.0)
        .bind(ts(r.created_at))
        .bind(ts(r.expires_at))
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    }

    async fn password_reset_account(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "SELECT account_id FROM password_resets WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(&token_hash.0)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(id.map(AccountId))
    }

    async fn claim_password_reset(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>> {
        // One conditional UPDATE: a concurrent claim waits for ours and then finds
        // `used_at` set, so exactly one succeeds.
        let id: Option<Uuid> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
             RETURNING account_id",
        )
        .bind(ts(now))
        .bind(&token_hash.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(id.map(AccountId))
    }

    async fn change_password(
        &self,
        account: AccountId,
        password_hash: &str,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE accounts SET password_hash = $1, password_failures = 0, password_locked_until = NULL WHERE id = $2",
        )
        .bind(password_hash)
        .bind(account.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "UPDATE password_resets SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL",
        )
        .bind(ts(at))
        .bind(account.0)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("DELETE FROM sessions WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM remembered_devices WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        end_oidc_grants(&mut tx, account, at).await?;
        if let Some(m) = notice {
            insert_mail_row(&mut *tx, m).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    // ---- the set-up journeys --------------------------------------------------------

    async fn search_accounts(&self, query: &str, limit: u32) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(
            r#"SELECT * FROM accounts
             WHERE lower(email) LIKE $1 ESCAPE '\' OR lower(name) LIKE $1 ESCAPE '\'
             ORDER BY email COLLATE "C" LIMIT $2"#,
        )
        .bind(rows::contains_pattern(query))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(account_from).collect()
    }

    async fn change_email(&self, account: AccountId, email: &Email) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET email = $1 WHERE id = $2")
            .bind(email.as_str())
            .bind(account.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_enrollment_link(&self, l: &EnrollmentLink) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        insert_link(&mut tx, l).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn enrollment_link(&self, token_hash: &TokenHash) -> StoreResult<Option<EnrollmentLink>> {
        let row = sqlx::query("SELECT * FROM enrollment_links WHERE token_hash = $1")
            .bind(&token_hash.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::enrollment_link_from).transpose()
    }

    async fn claim_enrollment_link(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>> {
        let id: Option<Uuid> = sqlx::query_scalar(
            "UPDATE enrollment_links SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
             RETURNING account_id",
        )
        .bind(ts(now))
        .bind(&token_hash.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(id.map(AccountId))
    }

    async fn delete_spent(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut n = 0;
        for sql in [
            "DELETE FROM mail_queue WHERE status IN ('sent', 'failed') AND created_at < $1",
            "DELETE FROM password_resets WHERE created_at < $1",
            "DELETE FROM enrollment_links WHERE created_at < $1 AND (used_at IS NOT NULL OR expires_at < $1)",
            "DELETE FROM remembered_devices WHERE expires_at < $1",
            "DELETE FROM sms_sends WHERE at < $1",
            "DELETE FROM oidc_requests WHERE expires_at < $1",
            "DELETE FROM oidc_codes WHERE created_at < $1",
            "DELETE FROM oidc_tokens WHERE expires_at < $1",
        ] {
            let r = sqlx::query(sql)
                .bind(ts(before))
                .execute(&self.pool)
                .await
                .map_err(map_err)?;
            n += r.rows_affected();
        }
        Ok(n)
    }

    // ---- remembered devices and recovery codes ------------------------------------

    async fn insert_device(&self, d: &RememberedDevice) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO remembered_devices (id, token_hash, account_id, label, created_at, last_used_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(d.id)
        .bind(&d.token_hash.0)
        .bind(d.account_id.0)
        .bind(&d.label)
        .bind(ts(d.created_at))
        .bind(ts(d.last_used_at))
        .bind(ts(d.expires_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn device_by_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RememberedDevice>> {
        let row = sqlx::query("SELECT * FROM remembered_devices WHERE token_hash = $1")
            .bind(&token_hash.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::device_from).transpose()
    }

    async fn touch_device(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE remembered_devices SET last_used_at = $1 WHERE id = $2")
            .bind(ts(at))
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn devices_of(&self, account: AccountId) -> StoreResult<Vec<RememberedDevice>> {
        let rows = sqlx::query(
            "SELECT * FROM remembered_devices WHERE account_id = $1 ORDER BY last_used_at DESC",
        )
        .bind(account.0)
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::device_from).collect()
    }

    async fn delete_device(&self, account: AccountId, id: Uuid) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM remembered_devices WHERE account_id = $1 AND id = $2")
            .bind(account.0)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_devices_of(&self, account: AccountId) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM remembered_devices WHERE account_id = $1")
            .bind(account.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected())
    }

    async fn replace_recovery_codes(
        &self,
        account: AccountId,
        macs: &[String],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1")
            .bind(account.0)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for mac in macs {
            sqlx::query(
                "INSERT INTO recovery_codes (account_id, code_mac, created_at) VALUES ($1, $2, $3)",
            )
            .bind(account.0)
            .bind(mac)
            .bind(ts(at))
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        }
        tx.commit().await.map_err(map_err)
    }

    async fn use_recovery_code(
        &self,
        account: AccountId,
        mac: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND code_mac = $3 AND used_at IS NULL",
        )
        .bind(ts(at))
        .bind(account.0)
        .bind(mac)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, account: AccountId) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL",
        )
        .bind(account.0)
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(count(n))
    }

    async fn put_session_code(&self, c: &SessionCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO session_codes (session_hash, purpose, account_id, factor_id, code_mac, attempts, sends, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)
             ON CONFLICT (session_hash, purpose) DO UPDATE SET factor_id = $4, code_mac = $5, attempts = 0, sends = $6, created_at = $7, expires_at = $8",
        )
        .bind(&c.session_hash.0)
        .bind(c.purpose.as_str())
        .bind(c.account_id.0)
        .bind(c.factor_id.map(|f| f.0))
        .bind(&c.code_mac)
        .bind(i64::from(c.sends))
        .bind(ts(c.created_at))
        .bind(ts(c.expires_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<Option<SessionCode>> {
        let row =
            sqlx::query("SELECT * FROM session_codes WHERE session_hash = $1 AND purpose = $2")
                .bind(&session.0)
                .bind(purpose.as_str())
                .fetch_optional(&self.pool)
                .await
                .map_err(map_err)?;
        row.as_ref().map(rows::session_code_from).transpose()
    }

    async fn count_session_code_try(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<Option<u32>> {
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE session_codes SET attempts = attempts + 1
             WHERE session_hash = $1 AND purpose = $2 RETURNING attempts",
        )
        .bind(&session.0)
        .bind(purpose.as_str())
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(n.map(count))
    }

    async fn delete_session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<()> {
        sqlx::query("DELETE FROM session_codes WHERE session_hash = $1 AND purpose = $2")
            .bind(&session.0)
            .bind(purpose.as_str())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    // ---- SMS -------------------------------------------------------------------------

    async fn record_sms_send(&self, s: &tweestap_domain::sms::SmsSend) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sms_sends (at, account_id, number_mac, ip) VALUES ($1, $2, $3, $4)",
        )
        .bind(ts(s.at))
        .bind(s.account_id.map(|a| a.0))
        .bind(&s.number_mac)
        .bind(&s.ip)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn sms_sends_since(
        &self,
        account: AccountId,
        number_mac: &str,
        ip: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<tweestap_domain::sms::SentLastHour> {
        let (a, n, i, g): (i64, i64, i64, i64) = sqlx::query_as(
            "SELECT
                COUNT(*) FILTER (WHERE account_id = $1),
                COUNT(*) FILTER (WHERE number_mac = $2),
                COUNT(*) FILTER (WHERE ip = $3),
                COUNT(*)
             FROM sms_sends WHERE at >= $4",
        )
        .bind(account.0)
        .bind(number_mac)
        .bind(ip)
        .bind(ts(since))
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(tweestap_domain::sms::SentLastHour {
            account: count(a),
            number: count(n),
            ip: count(i),
            global: count(g),
        })
    }

    async fn reset_two_factor(
        &self,
        account: AccountId,
        link: &EnrollmentLink,
        notice: Option<&NewMail>,
    ) -> StoreResult<()> {
        let id = account.0;
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for sql in [
            "DELETE FROM factors WHERE account_id = $1",
            "DELETE FROM sessions WHERE account_id = $1",
            "DELETE FROM remembered_devices WHERE account_id = $1",
            "DELETE FROM recovery_codes WHERE account_id = $1",
            "UPDATE accounts SET code_failures = 0, code_locked_until = NULL WHERE id = $1",
        ] {
            sqlx::query(sql)
                .bind(id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        end_oidc_grants(&mut tx, account, link.created_at).await?;
        insert_link(&mut tx, link).await?;
        if let Some(m) = notice {
            insert_mail_row(&mut *tx, m).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    // ---- OpenID Connect ----------------------------------------------------------

    async fn insert_signing_key(&self, k: &SigningKey) -> StoreResult<()> {
        insert_signing_key_row(&self.pool, k).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let rows = sqlx::query("SELECT * FROM oidc_signing_keys ORDER BY created_at DESC, kid")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::signing_key_from).collect()
    }

    async fn rotate_signing_key(&self, k: &SigningKey, at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE oidc_signing_keys SET retired_at = $1 WHERE alg = $2 AND retired_at IS NULL",
        )
        .bind(ts(at))
        .bind(k.alg.as_str())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        insert_signing_key_row(&mut *tx, k).await?;
        tx.commit().await.map_err(map_err)
    }

    async fn delete_retired_signing_keys(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM oidc_signing_keys WHERE retired_at < $1")
            .bind(ts(before))
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected())
    }

    async fn insert_client(&self, c: &OidcClient) -> StoreResult<()> {
        insert_client_row(&self.pool, c).await
    }

    async fn client(&self, id: &str) -> StoreResult<Option<OidcClient>> {
        sqlx::query("SELECT * FROM oidc_clients WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?
            .as_ref()
            .map(rows::client_from)
            .transpose()
    }

    async fn list_clients(&self) -> StoreResult<Vec<OidcClient>> {
        let rows = sqlx::query("SELECT * FROM oidc_clients ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(rows::client_from).collect()
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM oidc_clients WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }
    // ---- the OpenID Connect code flow ----------------------------------------------

    async fn insert_oidc_request(&self, r: &StoredRequest) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oidc_requests (id_hash, request, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.id_hash.0)
        .bind(&r.request)
        .bind(ts(r.created_at))
        .bind(ts(r.expires_at))
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn oidc_request(
        &self,
        id: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT request FROM oidc_requests WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(&id.0)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)
    }

    async fn insert_oidc_code(&self, c: &StoredCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oidc_codes (code_hash, grant_json, created_at, expires_at, used_at, account_id)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&c.code_hash.0)
        .bind(&c.grant)
        .bind(ts(c.created_at))
        .bind(ts(c.expires_at))
        .bind(c.used_at.map(ts))
        .bind(c.account_id.0)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn claim_oidc_code(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<CodeClaim> {
        let fresh = sqlx::query(
            "UPDATE oidc_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL
             RETURNING *",
        )
        .bind(ts(now))
        .bind(&hash.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        if let Some(row) = fresh {
            return Ok(CodeClaim::Fresh(rows::oidc_code_from(&row)?));
        }
        let used = sqlx::query("SELECT * FROM oidc_codes WHERE code_hash = $1")
            .bind(&hash.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        match used {
            Some(row) => Ok(CodeClaim::Reused(rows::oidc_code_from(&row)?)),
            None => Ok(CodeClaim::Unknown),
        }
    }

    async fn insert_oidc_token(&self, t: &StoredToken) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO oidc_tokens
             (token_hash, kind, family, grant_json, created_at, expires_at, used_at, revoked_at, account_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&t.token_hash.0)
        .bind(t.kind.as_str())
        .bind(&t.family)
        .bind(&t.grant)
        .bind(ts(t.created_at))
        .bind(ts(t.expires_at))
        .bind(t.used_at.map(ts))
        .bind(t.revoked_at.map(ts))
        .bind(t.account_id.0)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn oidc_token(&self, hash: &TokenHash) -> StoreResult<Option<StoredToken>> {
        let row = sqlx::query("SELECT * FROM oidc_tokens WHERE token_hash = $1")
            .bind(&hash.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::oidc_token_from).transpose()
    }

    async fn use_refresh_token(&self, hash: &TokenHash, at: DateTime<Utc>) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE oidc_tokens SET used_at = $1
             WHERE token_hash = $2 AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(ts(at))
        .bind(&hash.0)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn revoke_oidc_family(&self, family: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        let r = sqlx::query(
            "UPDATE oidc_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
        )
        .bind(ts(at))
        .bind(family)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected())
    }
}

/// One signing key row; shared by `insert_signing_key` and rotations.
async fn insert_client_row<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    c: &OidcClient,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO oidc_clients (id, name, redirect_uris, client_type, secret_hash, created_at, id_token_alg)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(rows::redirect_uris_json(&c.redirect_uris))
    .bind(c.client_type())
    .bind(&c.secret_hash)
    .bind(ts(c.created_at.unwrap_or_else(Utc::now)))
    .bind(c.id_token_alg.as_str())
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Queues `m`, due at once, through `exec` (the pool or a transaction, so that a
/// change and its notice are written together).
async fn insert_mail_row<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    m: &NewMail,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO mail_queue (id, account_id, recipient, recipient_name, language, kind, payload, created_at, next_attempt_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
    )
    .bind(m.id)
    .bind(m.account_id.map(|a| a.0))
    .bind(&m.to)
    .bind(&m.to_name)
    .bind(m.language.code())
    .bind(m.notice.kind())
    .bind(m.notice.to_json())
    .bind(ts(m.created_at))
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_signing_key_row<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    k: &SigningKey,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO oidc_signing_keys (kid, alg, private_sealed, public_jwk, created_at, retired_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&k.kid)
    .bind(k.alg.as_str())
    .bind(&k.private_sealed)
    .bind(k.public_jwk.to_string())
    .bind(ts(k.created_at))
    .bind(k.retired_at.map(ts))
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// Ends what portals hold of the account, inside the caller's transaction: its
/// access and refresh tokens are revoked, its codes not yet exchanged deleted
/// (used ones stay, so a replay is still recognised).
async fn end_oidc_grants(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    account: AccountId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE oidc_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
    )
    .bind(ts(at))
    .bind(account.0)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    sqlx::query("DELETE FROM oidc_codes WHERE account_id = $1 AND used_at IS NULL")
        .bind(account.0)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Ends the account's open links and stores `l`, inside the caller's transaction.
async fn insert_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    l: &EnrollmentLink,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE enrollment_links SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL",
    )
    .bind(ts(l.created_at))
    .bind(l.account_id.0)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO enrollment_links (token_hash, account_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&l.token_hash.0)
    .bind(l.account_id.0)
    .bind(l.purpose.as_str())
    .bind(ts(l.created_at))
    .bind(ts(l.expires_at))
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// One factor row; shared by `insert_factor` and imports, on a pool or in a transaction.
async fn insert_factor_row<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    f: &Factor,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO factors (id, account_id, kind, label, secret_sealed, created_at, confirmed_at, last_used_at, last_step)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(f.id.0)
    .bind(f.account_id.0)
    .bind(f.kind.as_str())
    .bind(&f.label)
    .bind(&f.secret_sealed)
    .bind(ts(f.created_at))
    .bind(f.confirmed_at.map(ts))
    .bind(f.last_used_at.map(ts))
    .bind(f.last_step)
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(())
}

/// One audit row; shared by `append_audit` and imports.
async fn insert_audit_row<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Postgres>,
    r: &AuditRecord,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .bind(ts(r.at))
        .bind(&r.event)
        .bind(r.account_id.map(|a| a.0))
        .bind(&r.email)
        .bind(&r.ip)
        .bind(&r.user_agent)
        .bind(&r.detail)
        .execute(exec)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing;
    use tweestap_domain::store::StoreError;

    /// A connection PostgreSQL terminates under our feet reports `Unavailable`, and
    /// the pool replaces it by itself on the next call.
    #[tokio::test]
    async fn terminated_connections_are_unavailable_then_replaced() {
        let Some(url) = testing::fresh_postgres_database().await else {
            return;
        };
        let store = PostgresStore::connect(&url, &PoolSettings::default(), true)
            .await
            .unwrap();
        let mut victim = store.pool.acquire().await.unwrap();
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *victim)
            .await
            .unwrap();
        // With a timeout, PostgreSQL waits until the backend is really gone.
        let killed: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1, 5000)")
            .bind(pid)
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert!(killed);
        let err = sqlx::query("SELECT 1")
            .execute(&mut *victim)
            .await
            .unwrap_err();
        assert!(
            matches!(map_err(err), StoreError::Unavailable(_)),
            "a terminated connection must be Unavailable"
        );
        drop(victim);

        // Kill every other connection of the pool too; the store must carry on.
        sqlx::query(
            "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid()",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        store.ping().await.unwrap();
        assert!(store.list_accounts().await.unwrap().is_empty());

        store.pool.close().await;
        testing::drop_database(&url).await;
    }
}
