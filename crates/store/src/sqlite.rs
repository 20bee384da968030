//! The embedded default: one SQLite file in the data directory.

use crate::rows::{
    self, account_from, audit_from, count, factor_from, guard_columns, mail_from, session_from,
    Columns,
};
use crate::{map_err, map_migrate_err, PoolSettings};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, SqlitePool};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

#[derive(Clone, Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// The pool [`open`](Self::open) and [`open_url`](Self::open_url) use: eight
    /// connections (SQLite has one writer at a time anyway), otherwise the defaults.
    pub fn default_pool_settings() -> PoolSettings {
        PoolSettings {
            max_connections: 8,
            ..PoolSettings::default()
        }
    }

    /// Opens (creating if needed) the database file and applies pending migrations
    /// when `migrate` is set.
    pub async fn open(path: &Path, migrate: bool) -> StoreResult<Self> {
        Self::open_with(path, &Self::default_pool_settings(), migrate).await
    }

    /// [`open`](Self::open) with the caller's pool settings.
    pub async fn open_with(path: &Path, pool: &PoolSettings, migrate: bool) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(opts, pool, migrate).await
    }

    pub async fn open_url(url: &str, migrate: bool) -> StoreResult<Self> {
        Self::open_url_with(url, &Self::default_pool_settings(), migrate).await
    }

    /// [`open_url`](Self::open_url) with the caller's pool settings.
    pub async fn open_url_with(url: &str, pool: &PoolSettings, migrate: bool) -> StoreResult<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(map_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        Self::connect(opts, pool, migrate).await
    }

    async fn connect(
        opts: SqliteConnectOptions,
        pool: &PoolSettings,
        migrate: bool,
    ) -> StoreResult<Self> {
        let pool = pool
            .apply(SqlitePoolOptions::new())
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
            "UPDATE mail_queue SET status = ?, next_attempt_at = ?, locked_until = NULL, last_error = ?
             WHERE id = ? AND claimed_by = ? AND status = 'queued'",
        )
        .bind(status)
        .bind(ts(at))
        .bind(error)
        .bind(m.id.to_string())
        .bind(m.claim.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }
}

/// Times are RFC 3339 text in UTC with exactly six fractional digits (so that text
/// order is time order); the digits beyond are dropped, as [`rows::micros`] does.
fn ts(t: DateTime<Utc>) -> String {
    rows::micros(t).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> StoreResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

fn parse_uuid(s: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("id {s:?}: {e}")))
}

fn col<'r, T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>>(
    row: &'r SqliteRow,
    name: &str,
) -> StoreResult<T> {
    row.try_get(name).map_err(map_err)
}

/// SQLite keeps times and ids as text; they are parsed here.
impl Columns for SqliteRow {
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
        parse_ts(&col::<String>(self, name)?)
    }
    fn opt_time(&self, name: &str) -> StoreResult<Option<DateTime<Utc>>> {
        col::<Option<String>>(self, name)?
            .as_deref()
            .map(parse_ts)
            .transpose()
    }
    fn uuid(&self, name: &str) -> StoreResult<Uuid> {
        parse_uuid(&col::<String>(self, name)?)
    }
    fn opt_uuid(&self, name: &str) -> StoreResult<Option<Uuid>> {
        col::<Option<String>>(self, name)?
            .as_deref()
            .map(parse_uuid)
            .transpose()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn insert_account(&self, a: &NewAccount) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO accounts (id, email, name, role, password_hash, created_at) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(a.id.0.to_string())
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
        let row = sqlx::query("SELECT * FROM accounts WHERE email = ?")
            .bind(email.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(account_from).transpose()
    }

    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let row = sqlx::query("SELECT * FROM accounts WHERE id = ?")
            .bind(id.0.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(account_from).transpose()
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query("SELECT * FROM accounts ORDER BY email")
            .fetch_all(&self.pool)
            .await
            .map_err(map_err)?;
        rows.iter().map(account_from).collect()
    }

    async fn increment_failures(&self, id: AccountId, guard: Guard) -> StoreResult<u32> {
        let (counter, _) = guard_columns(guard);
        let sql = format!(
            "UPDATE accounts SET {counter} = {counter} + 1 WHERE id = ? RETURNING {counter}"
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(id.0.to_string())
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
        sqlx::query(&format!("UPDATE accounts SET {lock} = ? WHERE id = ?"))
            .bind(until.map(ts))
            .bind(id.0.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn reset_failures(&self, id: AccountId, guard: Guard) -> StoreResult<()> {
        let (counter, lock) = guard_columns(guard);
        sqlx::query(&format!(
            "UPDATE accounts SET {counter} = 0, {lock} = NULL WHERE id = ?"
        ))
        .bind(id.0.to_string())
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
            sqlx::query("SELECT * FROM factors WHERE account_id = ? ORDER BY created_at, id")
                .bind(account.0.to_string())
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
            "UPDATE factors SET confirmed_at = ? WHERE id = ? AND confirmed_at IS NULL",
        )
        .bind(ts(at))
        .bind(id.0.to_string())
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
        let r = sqlx::query("DELETE FROM factors WHERE id = ?")
            .bind(id.0.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(account) = forget_devices_of {
            sqlx::query("DELETE FROM remembered_devices WHERE account_id = ?")
                .bind(account.0.to_string())
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
        sqlx::query("DELETE FROM factors WHERE account_id = ? AND confirmed_at IS NULL")
            .bind(account.0.to_string())
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
        let r = sqlx::query(
            "UPDATE factors SET last_step = ?, last_used_at = ? WHERE id = ? AND (last_step IS NULL OR last_step < ?)",
        )
        .bind(step)
        .bind(ts(at))
        .bind(id.0.to_string())
        .bind(step)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sessions (id_hash, account_id, stage, created_at, last_seen_at, auth_time, amr, ip, user_agent)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id_hash.0)
        .bind(s.account_id.0.to_string())
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
        let row = sqlx::query("SELECT * FROM sessions WHERE id_hash = ?")
            .bind(&id.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(session_from).transpose()
    }

    async fn touch_session(&self, id: &TokenHash, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?")
            .bind(ts(at))
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_session(&self, id: &TokenHash) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = ?")
            .bind(&id.0)
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_sessions_of(&self, account: AccountId) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE account_id = ?")
            .bind(account.0.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn delete_expired_sessions(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM sessions WHERE last_seen_at < ?")
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
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(a.id.0.to_string())
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
                "INSERT INTO recovery_codes (account_id, code_mac, created_at, used_at) VALUES (?, ?, ?, ?)",
            )
            .bind(r.account_id.0.to_string())
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
            "SELECT * FROM audit_log WHERE (?1 IS NULL OR email = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(email.map(str::to_lowercase))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(audit_from).collect()
    }

    async fn set_language(&self, id: AccountId, language: Language) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET language = ? WHERE id = ?")
            .bind(language.code())
            .bind(id.0.to_string())
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
        // One statement: SQLite runs it under its single write lock, so the rows
        // chosen by the subquery are claimed before any other writer looks.
        let rows = sqlx::query(
            "UPDATE mail_queue SET locked_until = ?1, claimed_by = ?2, attempts = attempts + 1
             WHERE id IN (
                 SELECT id FROM mail_queue
                 WHERE status = 'queued' AND next_attempt_at <= ?3
                   AND (locked_until IS NULL OR locked_until <= ?3)
                 ORDER BY next_attempt_at, id
                 LIMIT ?4)
             RETURNING *",
        )
        .bind(ts(lease_until))
        .bind(claim.to_string())
        .bind(ts(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(mail_from).collect()
    }

    async fn mark_mail_sent(&self, m: &QueuedMail, at: DateTime<Utc>) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE mail_queue SET status = 'sent', sent_at = ?, locked_until = NULL, last_error = NULL
             WHERE id = ? AND claimed_by = ? AND status = 'queued'",
        )
        .bind(ts(at))
        .bind(m.id.to_string())
        .bind(m.claim.to_string())
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
            "SELECT COUNT(*) FROM mail_queue WHERE account_id = ?1 AND kind = ?2 AND created_at >= ?3",
        )
        .bind(account.0.to_string())
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
            "UPDATE password_resets SET used_at = ? WHERE account_id = ? AND used_at IS NULL",
        )
        .bind(ts(r.created_at))
        .bind(r.account_id.0.to_string())
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "INSERT INTO password_resets (token_hash, account_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        )
        .bind(&r.token_hash.0)
        .bind(r.account_id.0.to_string())
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
        let id: Option<String> = sqlx::query_scalar(
            "SELECT account_id FROM password_resets WHERE token_hash = ? AND used_at IS NULL AND expires_at > ?",
        )
        .bind(&token_hash.0)
        .bind(ts(now))
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        id.map(|s| parse_uuid(&s).map(AccountId)).transpose()
    }

    async fn claim_password_reset(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>> {
        let id: Option<String> = sqlx::query_scalar(
            "UPDATE password_resets SET used_at = ?1
             WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1
             RETURNING account_id",
        )
        .bind(ts(now))
        .bind(&token_hash.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        id.map(|s| parse_uuid(&s).map(AccountId)).transpose()
    }

    async fn change_password(
        &self,
        account: AccountId,
        password_hash: &str,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
    ) -> StoreResult<()> {
        let id = account.0.to_string();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        sqlx::query(
            "UPDATE accounts SET password_hash = ?, password_failures = 0, password_locked_until = NULL WHERE id = ?",
        )
        .bind(password_hash)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query(
            "UPDATE password_resets SET used_at = ? WHERE account_id = ? AND used_at IS NULL",
        )
        .bind(ts(at))
        .bind(&id)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        sqlx::query("DELETE FROM sessions WHERE account_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query("DELETE FROM remembered_devices WHERE account_id = ?")
            .bind(&id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        end_oidc_grants(&mut tx, &id, at).await?;
        if let Some(m) = notice {
            insert_mail_row(&mut *tx, m).await?;
        }
        tx.commit().await.map_err(map_err)
    }

    // ---- the set-up journeys --------------------------------------------------------

    async fn search_accounts(&self, query: &str, limit: u32) -> StoreResult<Vec<Account>> {
        let rows = sqlx::query(
            "SELECT * FROM accounts
             WHERE lower(email) LIKE ?1 ESCAPE '\\' OR lower(name) LIKE ?1 ESCAPE '\\'
             ORDER BY email LIMIT ?2",
        )
        .bind(rows::contains_pattern(query))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(account_from).collect()
    }

    async fn change_email(&self, account: AccountId, email: &Email) -> StoreResult<()> {
        sqlx::query("UPDATE accounts SET email = ? WHERE id = ?")
            .bind(email.as_str())
            .bind(account.0.to_string())
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
        let row = sqlx::query("SELECT * FROM enrollment_links WHERE token_hash = ?")
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
        let id: Option<String> = sqlx::query_scalar(
            "UPDATE enrollment_links SET used_at = ?1
             WHERE token_hash = ?2 AND used_at IS NULL AND expires_at > ?1
             RETURNING account_id",
        )
        .bind(ts(now))
        .bind(&token_hash.0)
        .fetch_optional(&self.pool)
        .await
        .map_err(map_err)?;
        id.map(|s| parse_uuid(&s).map(AccountId)).transpose()
    }

    async fn delete_spent(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let mut n = 0;
        for sql in [
            "DELETE FROM mail_queue WHERE status IN ('sent', 'failed') AND created_at < ?1",
            "DELETE FROM password_resets WHERE created_at < ?1",
            "DELETE FROM enrollment_links WHERE created_at < ?1 AND (used_at IS NOT NULL OR expires_at < ?1)",
            "DELETE FROM remembered_devices WHERE expires_at < ?1",
            "DELETE FROM sms_sends WHERE at < ?1",
            "DELETE FROM oidc_requests WHERE expires_at < ?1",
            "DELETE FROM oidc_codes WHERE created_at < ?1",
            "DELETE FROM oidc_tokens WHERE expires_at < ?1",
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )
        .bind(d.id.to_string())
        .bind(&d.token_hash.0)
        .bind(d.account_id.0.to_string())
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
        let row = sqlx::query("SELECT * FROM remembered_devices WHERE token_hash = ?1")
            .bind(&token_hash.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::device_from).transpose()
    }

    async fn touch_device(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        sqlx::query("UPDATE remembered_devices SET last_used_at = ?1 WHERE id = ?2")
            .bind(ts(at))
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(())
    }

    async fn devices_of(&self, account: AccountId) -> StoreResult<Vec<RememberedDevice>> {
        let rows = sqlx::query(
            "SELECT * FROM remembered_devices WHERE account_id = ?1 ORDER BY last_used_at DESC",
        )
        .bind(account.0.to_string())
        .fetch_all(&self.pool)
        .await
        .map_err(map_err)?;
        rows.iter().map(rows::device_from).collect()
    }

    async fn delete_device(&self, account: AccountId, id: Uuid) -> StoreResult<bool> {
        let r = sqlx::query("DELETE FROM remembered_devices WHERE account_id = ?1 AND id = ?2")
            .bind(account.0.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await
            .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_devices_of(&self, account: AccountId) -> StoreResult<u64> {
        let r = sqlx::query("DELETE FROM remembered_devices WHERE account_id = ?1")
            .bind(account.0.to_string())
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
        sqlx::query("DELETE FROM recovery_codes WHERE account_id = ?1")
            .bind(account.0.to_string())
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        for mac in macs {
            sqlx::query(
                "INSERT INTO recovery_codes (account_id, code_mac, created_at) VALUES (?1, ?2, ?3)",
            )
            .bind(account.0.to_string())
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
            "UPDATE recovery_codes SET used_at = ?1 WHERE account_id = ?2 AND code_mac = ?3 AND used_at IS NULL",
        )
        .bind(ts(at))
        .bind(account.0.to_string())
        .bind(mac)
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(r.rows_affected() == 1)
    }

    async fn recovery_codes_left(&self, account: AccountId) -> StoreResult<u32> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM recovery_codes WHERE account_id = ?1 AND used_at IS NULL",
        )
        .bind(account.0.to_string())
        .fetch_one(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(count(n))
    }

    async fn put_session_code(&self, c: &SessionCode) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO session_codes (session_hash, purpose, account_id, factor_id, code_mac, attempts, sends, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?7, ?8)
             ON CONFLICT (session_hash, purpose) DO UPDATE SET factor_id = ?4, code_mac = ?5, attempts = 0, sends = ?6, created_at = ?7, expires_at = ?8",
        )
        .bind(&c.session_hash.0)
        .bind(c.purpose.as_str())
        .bind(c.account_id.0.to_string())
        .bind(c.factor_id.map(|f| f.0.to_string()))
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
            sqlx::query("SELECT * FROM session_codes WHERE session_hash = ?1 AND purpose = ?2")
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
             WHERE session_hash = ?1 AND purpose = ?2 RETURNING attempts",
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
        sqlx::query("DELETE FROM session_codes WHERE session_hash = ?1 AND purpose = ?2")
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
            "INSERT INTO sms_sends (at, account_id, number_mac, ip) VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(ts(s.at))
        .bind(s.account_id.map(|a| a.0.to_string()))
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
                COUNT(*) FILTER (WHERE account_id = ?1),
                COUNT(*) FILTER (WHERE number_mac = ?2),
                COUNT(*) FILTER (WHERE ip = ?3),
                COUNT(*)
             FROM sms_sends WHERE at >= ?4",
        )
        .bind(account.0.to_string())
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
        let id = account.0.to_string();
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        for sql in [
            "DELETE FROM factors WHERE account_id = ?",
            "DELETE FROM sessions WHERE account_id = ?",
            "DELETE FROM remembered_devices WHERE account_id = ?",
            "DELETE FROM recovery_codes WHERE account_id = ?",
            "UPDATE accounts SET code_failures = 0, code_locked_until = NULL WHERE id = ?",
        ] {
            sqlx::query(sql)
                .bind(&id)
                .execute(&mut *tx)
                .await
                .map_err(map_err)?;
        }
        end_oidc_grants(&mut tx, &id, link.created_at).await?;
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
            "UPDATE oidc_signing_keys SET retired_at = ?1 WHERE alg = ?2 AND retired_at IS NULL",
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
        let r = sqlx::query("DELETE FROM oidc_signing_keys WHERE retired_at < ?1")
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
        sqlx::query("SELECT * FROM oidc_clients WHERE id = ?1")
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
        let r = sqlx::query("DELETE FROM oidc_clients WHERE id = ?1")
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
             VALUES (?1, ?2, ?3, ?4)",
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
            "SELECT request FROM oidc_requests WHERE id_hash = ?1 AND expires_at > ?2",
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )
        .bind(&c.code_hash.0)
        .bind(&c.grant)
        .bind(ts(c.created_at))
        .bind(ts(c.expires_at))
        .bind(c.used_at.map(ts))
        .bind(c.account_id.0.to_string())
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
            "UPDATE oidc_codes SET used_at = ?1 WHERE code_hash = ?2 AND used_at IS NULL
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
        let used = sqlx::query("SELECT * FROM oidc_codes WHERE code_hash = ?1")
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
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .bind(&t.token_hash.0)
        .bind(t.kind.as_str())
        .bind(&t.family)
        .bind(&t.grant)
        .bind(ts(t.created_at))
        .bind(ts(t.expires_at))
        .bind(t.used_at.map(ts))
        .bind(t.revoked_at.map(ts))
        .bind(t.account_id.0.to_string())
        .execute(&self.pool)
        .await
        .map_err(map_err)?;
        Ok(())
    }

    async fn oidc_token(&self, hash: &TokenHash) -> StoreResult<Option<StoredToken>> {
        let row = sqlx::query("SELECT * FROM oidc_tokens WHERE token_hash = ?1")
            .bind(&hash.0)
            .fetch_optional(&self.pool)
            .await
            .map_err(map_err)?;
        row.as_ref().map(rows::oidc_token_from).transpose()
    }

    async fn use_refresh_token(&self, hash: &TokenHash, at: DateTime<Utc>) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE oidc_tokens SET used_at = ?1
             WHERE token_hash = ?2 AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL",
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
            "UPDATE oidc_tokens SET revoked_at = ?1 WHERE family = ?2 AND revoked_at IS NULL",
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
    exec: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    c: &OidcClient,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO oidc_clients (id, name, redirect_uris, client_type, secret_hash, created_at, id_token_alg)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
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
    exec: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    m: &NewMail,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO mail_queue (id, account_id, recipient, recipient_name, language, kind, payload, created_at, next_attempt_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(m.id.to_string())
    .bind(m.account_id.map(|a| a.0.to_string()))
    .bind(&m.to)
    .bind(&m.to_name)
    .bind(m.language.code())
    .bind(m.notice.kind())
    .bind(m.notice.to_json())
    .bind(ts(m.created_at))
    .bind(ts(m.created_at))
    .execute(exec)
    .await
    .map_err(map_err)?;
    Ok(())
}

async fn insert_signing_key_row<'e>(
    exec: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    k: &SigningKey,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO oidc_signing_keys (kid, alg, private_sealed, public_jwk, created_at, retired_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
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
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    account: &str,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE oidc_tokens SET revoked_at = ? WHERE account_id = ? AND revoked_at IS NULL",
    )
    .bind(ts(at))
    .bind(account)
    .execute(&mut **tx)
    .await
    .map_err(map_err)?;
    sqlx::query("DELETE FROM oidc_codes WHERE account_id = ? AND used_at IS NULL")
        .bind(account)
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

/// Ends the account's open links and stores `l`, inside the caller's transaction.
async fn insert_link(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    l: &EnrollmentLink,
) -> StoreResult<()> {
    sqlx::query("UPDATE enrollment_links SET used_at = ? WHERE account_id = ? AND used_at IS NULL")
        .bind(ts(l.created_at))
        .bind(l.account_id.0.to_string())
        .execute(&mut **tx)
        .await
        .map_err(map_err)?;
    sqlx::query(
        "INSERT INTO enrollment_links (token_hash, account_id, purpose, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(&l.token_hash.0)
    .bind(l.account_id.0.to_string())
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
    exec: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    f: &Factor,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO factors (id, account_id, kind, label, secret_sealed, created_at, confirmed_at, last_used_at, last_step)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )
    .bind(f.id.0.to_string())
    .bind(f.account_id.0.to_string())
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
    exec: impl sqlx::Executor<'e, Database = sqlx::Sqlite>,
    r: &AuditRecord,
) -> StoreResult<()> {
    sqlx::query("INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail) VALUES (?, ?, ?, ?, ?, ?, ?)")
        .bind(ts(r.at))
        .bind(&r.event)
        .bind(r.account_id.map(|a| a.0.to_string()))
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
    use tweestap_domain::account::Role;
    use tweestap_domain::factor::FactorKind;

    async fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), true)
            .await
            .unwrap();
        (dir, s)
    }

    fn new_account(email: &str) -> NewAccount {
        NewAccount {
            id: AccountId::random(),
            email: Email::parse(email).unwrap(),
            name: "An".into(),
            role: Role::User,
            password_hash: "h".into(),
            created_at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn email_unique_and_counters_atomic() {
        let (_d, s) = store().await;
        let a = new_account("an@x.be");
        s.insert_account(&a).await.unwrap();
        assert!(matches!(
            s.insert_account(&new_account("AN@x.be")).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(s.increment_failures(a.id, Guard::Code).await.unwrap(), 1);
        assert_eq!(s.increment_failures(a.id, Guard::Code).await.unwrap(), 2);
        s.reset_failures(a.id, Guard::Code).await.unwrap();
        assert_eq!(
            s.increment_failures(a.id, Guard::Password).await.unwrap(),
            1
        );
        assert_eq!(
            s.account_by_id(a.id)
                .await
                .unwrap()
                .unwrap()
                .password_failures,
            1
        );
        assert_eq!(
            s.account_by_id(a.id).await.unwrap().unwrap().code_failures,
            0
        );
    }

    #[tokio::test]
    async fn totp_steps_claim_once() {
        let (_d, s) = store().await;
        let a = new_account("an@x.be");
        s.insert_account(&a).await.unwrap();
        let f = Factor {
            id: FactorId(Uuid::new_v4()),
            account_id: a.id,
            kind: FactorKind::Totp,
            label: "app".into(),
            secret_sealed: vec![1, 2, 3],
            created_at: Utc::now(),
            confirmed_at: None,
            last_used_at: None,
            last_step: None,
        };
        s.insert_factor(&f).await.unwrap();
        assert!(s.claim_totp_step(f.id, 10, Utc::now()).await.unwrap());
        assert!(!s.claim_totp_step(f.id, 10, Utc::now()).await.unwrap());
        assert!(!s.claim_totp_step(f.id, 9, Utc::now()).await.unwrap());
        assert!(s.claim_totp_step(f.id, 11, Utc::now()).await.unwrap());
        assert_eq!(
            s.factors_of(a.id).await.unwrap()[0].secret_sealed,
            vec![1, 2, 3]
        );
    }
}
