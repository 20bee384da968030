//! Mailed links: forgotten-password links and set-up (QR) links, and the support
//! reset that issues one.

use super::accounts::set_password;
use super::mail_queue::insert_mail;
use super::oidc::end_oidc_grants;
use super::{Backend, SqlStore};
use crate::rows::{enrollment_link_from, Columns};
use crate::sql::{query, Exec, Tx};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::enrollment::EnrollmentLink;
use tweestap_domain::mail::NewMail;
use tweestap_domain::store::{LinkStore, NewPasswordReset, StoreResult};
use tweestap_domain::token::TokenHash;

#[async_trait]
impl<B: Backend> LinkStore for SqlStore<B> {
    async fn insert_password_reset(&self, r: &NewPasswordReset) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        let q = query(
            "UPDATE password_resets SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL",
        )
        .bind(r.created_at)
        .bind(r.account_id);
        (&mut tx).execute(q).await?;
        let q = query(
            "INSERT INTO password_resets (token_hash, account_id, created_at, expires_at, purpose)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.token_hash.0)
        .bind(r.account_id)
        .bind(r.created_at)
        .bind(r.expires_at)
        .bind(if r.invite { "invite" } else { "reset" });
        (&mut tx).execute(q).await?;
        tx.commit().await
    }

    async fn password_reset_account(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>> {
        let q = query(
            "SELECT account_id FROM password_resets
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(&token_hash.0)
        .bind(now);
        let row = self.db().fetch_optional(q).await?;
        row.map(|r| r.uuid("account_id").map(AccountId)).transpose()
    }

    async fn password_reset_is_invite(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let q = query(
            "SELECT purpose FROM password_resets
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
        )
        .bind(&token_hash.0)
        .bind(now);
        Ok(match self.db().fetch_optional(q).await? {
            Some(r) => r.text("purpose")? == "invite",
            None => false,
        })
    }

    async fn claim_password_reset(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>> {
        self.claim_link("password_resets", token_hash, now).await
    }

    async fn use_password_reset(
        &self,
        token_hash: &TokenHash,
        account: AccountId,
        password_hash: &str,
        now: DateTime<Utc>,
        notice: Option<&NewMail>,
    ) -> StoreResult<bool> {
        let mut tx = self.db().begin().await?;
        let q = query(
            "UPDATE password_resets SET used_at = $1
             WHERE token_hash = $2 AND account_id = $3 AND used_at IS NULL AND expires_at > $1",
        )
        .bind(now)
        .bind(&token_hash.0)
        .bind(account);
        if (&mut tx).execute(q).await? != 1 {
            return Ok(false);
        }
        set_password(&mut tx, account, password_hash, now, notice).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn insert_enrollment_link(&self, l: &EnrollmentLink) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        insert_link(&mut tx, l).await?;
        tx.commit().await
    }

    async fn enrollment_link(&self, token_hash: &TokenHash) -> StoreResult<Option<EnrollmentLink>> {
        let q = query("SELECT * FROM enrollment_links WHERE token_hash = $1").bind(&token_hash.0);
        self.db().optional(q, enrollment_link_from).await
    }

    async fn claim_enrollment_link(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>> {
        self.claim_link("enrollment_links", token_hash, now).await
    }

    async fn reset_two_factor(
        &self,
        account: AccountId,
        link: &EnrollmentLink,
        notice: Option<&NewMail>,
    ) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        // The account's row first, as in every transaction that changes it with
        // its sessions or factors (the code step's too): two of them then queue on
        // that row instead of each holding what the other waits for (a deadlock on
        // PostgreSQL).
        for sql in [
            "UPDATE accounts SET code_failures = 0, code_locked_until = NULL WHERE id = $1",
            "DELETE FROM factors WHERE account_id = $1",
            "DELETE FROM sessions WHERE account_id = $1",
            "DELETE FROM remembered_devices WHERE account_id = $1",
            "DELETE FROM recovery_codes WHERE account_id = $1",
            "DELETE FROM throttles WHERE account_id = $1 AND key LIKE 'code:%'",
        ] {
            (&mut tx).execute(query(sql).bind(account)).await?;
        }
        end_oidc_grants(&mut tx, account, link.created_at).await?;
        insert_link(&mut tx, link).await?;
        if let Some(m) = notice {
            insert_mail(&mut tx, m).await?;
        }
        tx.commit().await
    }
}

impl<B: Backend> SqlStore<B> {
    /// Uses an open link of `table` (a fixed name, never input), atomically: one
    /// conditional UPDATE; a concurrent claim waits for ours and then finds
    /// `used_at` set, so exactly one succeeds.
    async fn claim_link(
        &self,
        table: &str,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>> {
        let q = query(format!(
            "UPDATE {table} SET used_at = $1
             WHERE token_hash = $2 AND used_at IS NULL AND expires_at > $1
             RETURNING account_id"
        ))
        .bind(now)
        .bind(&token_hash.0);
        let row = self.db().fetch_optional(q).await?;
        row.map(|r| r.uuid("account_id").map(AccountId)).transpose()
    }
}

/// Ends the account's open links and stores `l`, inside the caller's transaction.
async fn insert_link(mut tx: &mut Tx, l: &EnrollmentLink) -> StoreResult<()> {
    let q =
        query("UPDATE enrollment_links SET used_at = $1 WHERE account_id = $2 AND used_at IS NULL")
            .bind(l.created_at)
            .bind(l.account_id);
    tx.execute(q).await?;
    let q = query(
        "INSERT INTO enrollment_links (token_hash, account_id, purpose, created_at, expires_at)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&l.token_hash.0)
    .bind(l.account_id)
    .bind(l.purpose.as_str())
    .bind(l.created_at)
    .bind(l.expires_at);
    tx.execute(q).await?;
    Ok(())
}
