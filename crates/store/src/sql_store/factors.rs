//! Second factors: TOTP apps and SMS numbers.

use super::devices::replace_codes;
use super::mail_queue::insert_mail;
use super::{Backend, SqlStore};
use crate::rows::{factor_from, Columns};
use crate::sql::{query, Exec};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::factor::{Factor, FactorId};
use tweestap_domain::mail::NewMail;
use tweestap_domain::store::{FactorStore, StoreResult};

#[async_trait]
impl<B: Backend> FactorStore for SqlStore<B> {
    async fn insert_factor(&self, f: &Factor) -> StoreResult<()> {
        insert_factor(self.db(), f).await
    }

    async fn factors_of(&self, account: AccountId) -> StoreResult<Vec<Factor>> {
        let q = query("SELECT * FROM factors WHERE account_id = $1 ORDER BY created_at, id")
            .bind(account);
        self.db().all(q, factor_from).await
    }

    async fn confirm_factor(
        &self,
        id: FactorId,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
        recovery_code_macs: Option<&[String]>,
    ) -> StoreResult<bool> {
        let mut tx = self.db().begin().await?;
        let q = query(
            "UPDATE factors SET confirmed_at = $1 WHERE id = $2 AND confirmed_at IS NULL
             RETURNING account_id",
        )
        .bind(at)
        .bind(id.0);
        let Some(row) = (&mut tx).fetch_optional(q).await? else {
            return Ok(false);
        };
        if let Some(m) = notice {
            insert_mail(&mut tx, m).await?;
        }
        if let Some(macs) = recovery_code_macs {
            let account = AccountId(row.uuid("account_id")?);
            replace_codes(&mut tx, account, macs, at).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn remove_factor(
        &self,
        id: FactorId,
        forget_devices_of: Option<AccountId>,
        notice: Option<&NewMail>,
    ) -> StoreResult<bool> {
        let mut tx = self.db().begin().await?;
        let q = query("DELETE FROM factors WHERE id = $1").bind(id.0);
        if (&mut tx).execute(q).await? != 1 {
            return Ok(false);
        }
        if let Some(account) = forget_devices_of {
            let q = query("DELETE FROM remembered_devices WHERE account_id = $1").bind(account);
            (&mut tx).execute(q).await?;
        }
        if let Some(m) = notice {
            insert_mail(&mut tx, m).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn delete_unconfirmed_factors(&self, account: AccountId) -> StoreResult<()> {
        let q = query("DELETE FROM factors WHERE account_id = $1 AND confirmed_at IS NULL")
            .bind(account);
        self.db().run(q).await
    }

    async fn claim_totp_step(
        &self,
        id: FactorId,
        step: i64,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // One conditional UPDATE: two nodes can never both accept one step.
        let q = query(
            "UPDATE factors SET last_step = $1, last_used_at = $2
             WHERE id = $3 AND (last_step IS NULL OR last_step < $1)",
        )
        .bind(step)
        .bind(at)
        .bind(id.0);
        Ok(self.db().execute(q).await? == 1)
    }
}

/// One factor row; shared by `insert_factor` and imports.
pub(super) async fn insert_factor(mut db: impl Exec, f: &Factor) -> StoreResult<()> {
    let q = query(
        "INSERT INTO factors
         (id, account_id, kind, label, secret_sealed, created_at, confirmed_at, last_used_at, last_step)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(f.id.0)
    .bind(f.account_id)
    .bind(f.kind.as_str())
    .bind(&f.label)
    .bind(&f.secret_sealed)
    .bind(f.created_at)
    .bind(f.confirmed_at)
    .bind(f.last_used_at)
    .bind(f.last_step);
    db.run(q).await
}
