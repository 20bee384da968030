//! Accounts: who they are, their passwords, languages and lock-out counters.

use super::mail_queue::insert_mail;
use super::oidc::end_oidc_grants;
use super::{Backend, SqlStore};
use crate::rows::{account_from, contains_pattern, count, guard_columns, Columns};
use crate::sql::{query, Exec};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::{Account, AccountId, Email};
use tweestap_domain::lockout::Guard;
use tweestap_domain::mail::{Language, NewMail};
use tweestap_domain::store::{AccountStore, NewAccount, StoreResult};

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

    async fn increment_failures(&self, id: AccountId, guard: Guard) -> StoreResult<u32> {
        let (counter, _) = guard_columns(guard);
        let q = query(format!(
            "UPDATE accounts SET {counter} = {counter} + 1 WHERE id = $1 RETURNING {counter}"
        ))
        .bind(id);
        Ok(count(self.db().fetch_one(q).await?.int(counter)?))
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
        let q = query(
            "UPDATE accounts SET password_hash = $1, password_failures = 0, password_locked_until = NULL
             WHERE id = $2",
        )
        .bind(password_hash)
        .bind(account);
        (&mut tx).execute(q).await?;
        let q = query(
            "UPDATE password_resets SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL",
        )
        .bind(at)
        .bind(account);
        (&mut tx).execute(q).await?;
        for sql in [
            "DELETE FROM sessions WHERE account_id = $1",
            "DELETE FROM remembered_devices WHERE account_id = $1",
        ] {
            (&mut tx).execute(query(sql).bind(account)).await?;
        }
        end_oidc_grants(&mut tx, account, at).await?;
        if let Some(m) = notice {
            insert_mail(&mut tx, m).await?;
        }
        tx.commit().await
    }
}
