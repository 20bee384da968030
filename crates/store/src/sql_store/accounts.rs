//! Accounts: who they are, their passwords, languages and lock-out counters.

use super::attempts::{bind_reserve, reserve_sql, write_one, Failure};
use super::audit::bind_audit;
use super::mail_queue::insert_mail;
use super::oidc::end_oidc_grants;
use super::{Backend, SqlStore};
use crate::rows::{
    account_from, contains_pattern, count, factors_in, guard_columns, Columns, F_COLUMNS,
};
use crate::sql::{placeholders, query, Db, Exec, Tx};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::{Account, AccountId, Email};
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::lockout::Guard;
use tweestap_domain::mail::{Language, NewMail};
use tweestap_domain::store::{AccountStore, NewAccount, SignInAccount, StoreResult};

#[async_trait]
impl<B: Backend> AccountStore for SqlStore<B> {
    async fn insert_account(&self, a: &NewAccount) -> StoreResult<()> {
        let q = query(
            "INSERT INTO accounts (id, email, name, role, password_hash, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(a.id)
        .bind(a.email.as_str())
        .bind(&a.name)
        .bind(a.role.as_str())
        .bind(&a.password_hash)
        .bind(a.created_at);
        self.db().run(q).await
    }

    async fn account_by_email(&self, email: &Email) -> StoreResult<Option<Account>> {
        let q = query("SELECT * FROM accounts WHERE email = $1").bind(email.as_str());
        self.db().optional(q, account_from).await
    }

    async fn account_for_sign_in(&self, email: &Email) -> StoreResult<Option<SignInAccount>> {
        let q = query(format!(
            "SELECT a.*, {F_COLUMNS},
                    (SELECT COUNT(*) FROM recovery_codes r
                     WHERE r.account_id = a.id AND r.used_at IS NULL) AS recovery_left
             FROM accounts a LEFT JOIN factors f ON f.account_id = a.id
             WHERE a.email = $1
             ORDER BY f.created_at, f.id"
        ))
        .bind(email.as_str());
        let rows = self.db().fetch_all(q).await?;
        let Some(first) = rows.first() else {
            return Ok(None);
        };
        Ok(Some(SignInAccount {
            account: account_from(first)?,
            factors: factors_in(&rows)?,
            recovery_codes_left: count(first.int("recovery_left")?),
        }))
    }

    async fn account_by_id(&self, id: AccountId) -> StoreResult<Option<Account>> {
        let q = query("SELECT * FROM accounts WHERE id = $1").bind(id);
        self.db().optional(q, account_from).await
    }

    async fn list_accounts(&self) -> StoreResult<Vec<Account>> {
        let order = self.db().sql_byte_order();
        let q = query(format!("SELECT * FROM accounts ORDER BY email {order}"));
        self.db().all(q, account_from).await
    }

    async fn search_accounts(&self, search: &str, limit: u32) -> StoreResult<Vec<Account>> {
        let order = self.db().sql_byte_order();
        let q = query(format!(
            r"SELECT * FROM accounts
             WHERE lower(email) LIKE $1 ESCAPE '\' OR lower(name) LIKE $1 ESCAPE '\'
             ORDER BY email {order} LIMIT $2"
        ))
        .bind(contains_pattern(search))
        .bind(i64::from(limit));
        self.db().all(q, account_from).await
    }

    async fn change_email(&self, account: AccountId, email: &Email) -> StoreResult<()> {
        let q = query("UPDATE accounts SET email = $1 WHERE id = $2")
            .bind(email.as_str())
            .bind(account);
        self.db().run(q).await
    }

    async fn set_language(&self, id: AccountId, language: Language) -> StoreResult<()> {
        let q = query("UPDATE accounts SET language = $1 WHERE id = $2")
            .bind(language.code())
            .bind(id);
        self.db().run(q).await
    }

    async fn accounts_by_emails(&self, emails: &[Email]) -> StoreResult<Vec<Account>> {
        let mut found = Vec::new();
        for chunk in emails.chunks(self.db().rows_per_statement(1)) {
            // One row of as many parameters: `($1, $2, …)`.
            let list = placeholders(1, chunk.len());
            let q = chunk.iter().fold(
                query(format!("SELECT * FROM accounts WHERE email IN {list}")),
                |q, e| q.bind(e.as_str()),
            );
            found.extend(self.db().all(q, account_from).await?);
        }
        Ok(found)
    }

    async fn import_accounts(
        &self,
        accounts: &[NewAccount],
        audit: &[AuditRecord],
    ) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        for chunk in accounts.chunks(self.db().rows_per_statement(6)) {
            // The values given are the final ones (the engine merged what the row
            // left out), so a conflict takes them as they are.
            let q = query(format!(
                "INSERT INTO accounts (id, email, name, role, password_hash, created_at)
                 VALUES {}
                 ON CONFLICT (email) DO UPDATE SET name = excluded.name, role = excluded.role,
                 password_hash = excluded.password_hash",
                placeholders(chunk.len(), 6)
            ));
            let q = chunk.iter().fold(q, |q, a| {
                q.bind(a.id)
                    .bind(a.email.as_str())
                    .bind(&a.name)
                    .bind(a.role.as_str())
                    .bind(&a.password_hash)
                    .bind(a.created_at)
            });
            (&mut tx).execute(q).await?;
        }
        for chunk in audit.chunks(self.db().rows_per_statement(7)) {
            let q = query(format!(
                "INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail)
                 VALUES {}",
                placeholders(chunk.len(), 7)
            ));
            let q = chunk.iter().fold(q, bind_audit);
            (&mut tx).execute(q).await?;
        }
        tx.commit().await
    }

    async fn upgrade_password_hash(
        &self,
        id: AccountId,
        old_hash: &str,
        new_hash: &str,
    ) -> StoreResult<bool> {
        let q =
            query("UPDATE accounts SET password_hash = $1 WHERE id = $2 AND password_hash = $3")
                .bind(new_hash)
                .bind(id)
                .bind(old_hash);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn increment_failures(&self, id: AccountId, guard: Guard) -> StoreResult<u32> {
        let (counter, _) = guard_columns(guard);
        let q = query(format!(
            "UPDATE accounts SET {counter} = {counter} + 1 WHERE id = $1 RETURNING {counter}"
        ))
        .bind(id);
        Ok(count(self.db().fetch_one(q).await?.int(counter)?))
    }

    async fn reserve_attempt(
        &self,
        id: AccountId,
        guard: Guard,
        max_failures: u32,
        hold: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<u32>> {
        let (counter, _) = guard_columns(guard);
        let q = bind_reserve(query(reserve_sql(guard)), max_failures, hold, id, now);
        match self.db().fetch_optional(q).await? {
            Some(r) => Ok(Some(count(r.int(counter)?))),
            None => Ok(None),
        }
    }

    async fn reserve_failed_attempt(
        &self,
        id: AccountId,
        guard: Guard,
        max_failures: u32,
        hold: DateTime<Utc>,
        now: DateTime<Utc>,
        failed: &AuditRecord,
        locked_detail: Option<&str>,
    ) -> StoreResult<Option<u32>> {
        let (counter, _) = guard_columns(guard);
        // The same conditional UPDATE as reserve_attempt: the lock check and the
        // increment stay one atomic statement.
        let reserve = reserve_sql(guard);
        let reserved = |row: Option<crate::sql::Row>| -> StoreResult<Option<u32>> {
            row.map(|r| r.int(counter).map(count)).transpose()
        };
        let Db::Sqlite(pools) = self.db() else {
            // With the failures of other requests (`failure_groups`), or alone.
            let failure = Failure {
                account: id,
                guard,
                max_failures,
                hold,
                now,
                audit: failed.clone(),
                locked_detail: locked_detail.map(str::to_owned),
            };
            return match &self.failures {
                Some(groups) => groups.record(failure).await,
                None => write_one(self.db(), &failure).await,
            };
        };
        // SQLite has no writes in WITH: two statements, one after the other on the
        // writing connection, all or none; the audit row reads whether the attempt
        // was taken from changes() (the rows the UPDATE just changed).
        let take = bind_reserve(query(reserve), max_failures, hold, id, now);
        let audit = query(
            "INSERT INTO audit_log (at, event, account_id, email, ip, user_agent, detail)
             VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN changes() > 0 THEN $7 ELSE $8 END)",
        );
        let audit = bind_audit(audit, failed).bind(locked_detail);
        let mut rows = pools.writer.together(vec![take, audit]).await?;
        let row = rows
            .swap_remove(0)
            .into_iter()
            .next()
            .map(crate::sql::Row::from);
        reserved(row)
    }

    async fn set_lock(
        &self,
        id: AccountId,
        guard: Guard,
        until: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let (_, lock) = guard_columns(guard);
        let q = query(format!("UPDATE accounts SET {lock} = $1 WHERE id = $2"))
            .bind(until)
            .bind(id);
        self.db().run(q).await
    }

    async fn reset_failures(&self, id: AccountId, guard: Guard) -> StoreResult<()> {
        let (counter, lock) = guard_columns(guard);
        let q = query(format!(
            "UPDATE accounts SET {counter} = 0, {lock} = NULL WHERE id = $1"
        ))
        .bind(id);
        self.db().run(q).await
    }

    async fn set_disabled(
        &self,
        account: AccountId,
        disabled_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        let q = query("UPDATE accounts SET disabled_at = $1 WHERE id = $2")
            .bind(disabled_at)
            .bind(account);
        (&mut tx).execute(q).await?;
        if let Some(at) = disabled_at {
            for sql in [
                "DELETE FROM sessions WHERE account_id = $1",
                "DELETE FROM remembered_devices WHERE account_id = $1",
            ] {
                (&mut tx).execute(query(sql).bind(account)).await?;
            }
            end_oidc_grants(&mut tx, account, at).await?;
        }
        tx.commit().await
    }

    async fn change_password(
        &self,
        account: AccountId,
        password_hash: &str,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
    ) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        set_password(&mut tx, account, password_hash, at, notice).await?;
        tx.commit().await
    }
}

/// [`AccountStore::change_password`] inside the caller's transaction.
pub(super) async fn set_password(
    mut tx: &mut Tx,
    account: AccountId,
    password_hash: &str,
    at: DateTime<Utc>,
    notice: Option<&NewMail>,
) -> StoreResult<()> {
    let q = query(
        "UPDATE accounts SET password_hash = $1, password_failures = 0, password_locked_until = NULL
         WHERE id = $2",
    )
    .bind(password_hash)
    .bind(account);
    tx.execute(q).await?;
    let q =
        query("UPDATE password_resets SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL")
            .bind(at)
            .bind(account);
    tx.execute(q).await?;
    for sql in [
        "DELETE FROM sessions WHERE account_id = $1",
        "DELETE FROM remembered_devices WHERE account_id = $1",
        "DELETE FROM throttles WHERE account_id = $1 AND key LIKE 'password:%'",
    ] {
        tx.execute(query(sql).bind(account)).await?;
    }
    end_oidc_grants(tx, account, at).await?;
    if let Some(m) = notice {
        insert_mail(tx, m).await?;
    }
    Ok(())
}
