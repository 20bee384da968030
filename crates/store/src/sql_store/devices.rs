//! Remembered devices and recovery codes: the ways around a second factor.

use super::{Backend, SqlStore};
use crate::rows::{count, device_from, factors_in, Columns, Prefixed, F_COLUMNS};
use crate::sql::{query, Exec, Tx};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::device::RememberedDevice;
use tweestap_domain::store::{DeviceStore, SecondSteps, StoreResult};
use tweestap_domain::token::TokenHash;
use uuid::Uuid;

#[async_trait]
impl<B: Backend> DeviceStore for SqlStore<B> {
    async fn insert_device(&self, d: &RememberedDevice) -> StoreResult<()> {
        let q = query(
            "INSERT INTO remembered_devices
             (id, token_hash, account_id, label, created_at, last_used_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(d.id)
        .bind(&d.token_hash.0)
        .bind(d.account_id)
        .bind(&d.label)
        .bind(d.created_at)
        .bind(d.last_used_at)
        .bind(d.expires_at);
        self.db().run(q).await
    }

    async fn device_by_token(
        &self,
        token_hash: &TokenHash,
    ) -> StoreResult<Option<RememberedDevice>> {
        let q = query("SELECT * FROM remembered_devices WHERE token_hash = $1").bind(&token_hash.0);
        self.db().optional(q, device_from).await
    }

    async fn touch_device(&self, id: Uuid, at: DateTime<Utc>) -> StoreResult<()> {
        let q = query("UPDATE remembered_devices SET last_used_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id);
        self.db().run(q).await
    }

    async fn devices_of(&self, account: AccountId) -> StoreResult<Vec<RememberedDevice>> {
        let q = query(
            "SELECT * FROM remembered_devices WHERE account_id = $1 ORDER BY last_used_at DESC",
        )
        .bind(account);
        self.db().all(q, device_from).await
    }

    async fn delete_device(&self, account: AccountId, id: Uuid) -> StoreResult<bool> {
        let q = query("DELETE FROM remembered_devices WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn delete_devices_of(&self, account: AccountId) -> StoreResult<u64> {
        let q = query("DELETE FROM remembered_devices WHERE account_id = $1").bind(account);
        self.db().execute(q).await
    }

    async fn replace_recovery_codes(
        &self,
        account: AccountId,
        macs: &[String],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        replace_codes(&mut tx, account, macs, at).await?;
        tx.commit().await
    }

    async fn use_recovery_code(
        &self,
        account: AccountId,
        mac: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let q = query(
            "UPDATE recovery_codes SET used_at = $1
             WHERE account_id = $2 AND code_mac = $3 AND used_at IS NULL",
        )
        .bind(at)
        .bind(account)
        .bind(mac);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn recovery_codes_left(&self, account: AccountId) -> StoreResult<u32> {
        let q = query(
            "SELECT COUNT(*) AS n FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL",
        )
        .bind(account);
        Ok(count(self.db().fetch_one(q).await?.int("n")?))
    }

    async fn second_steps_of(&self, account: AccountId) -> StoreResult<SecondSteps> {
        let q = query(format!(
            "SELECT {} FROM (SELECT 1 AS one) o {} ORDER BY {SECOND_STEPS_ORDER}",
            second_steps_columns("$1"),
            second_steps_joins("$1"),
        ))
        .bind(account);
        second_steps_from(&self.db().fetch_all(q).await?)
    }
}

/// The columns of a query for an account's second steps (see
/// [`second_steps_from`]), the account named by the SQL `account`: one row per
/// factor and device (a row of NULLs for none of either), with the counts of unused
/// recovery codes and of portal consents on each; a person has a few of each.
pub(super) fn second_steps_columns(account: &str) -> String {
    format!(
        "(SELECT COUNT(*) FROM recovery_codes
          WHERE account_id = {account} AND used_at IS NULL) AS recovery_left,
         (SELECT COUNT(*) FROM oidc_consents WHERE account_id = {account}) AS consents,
         {F_COLUMNS},
         d.id AS d_id, d.token_hash AS d_token_hash, d.account_id AS d_account_id,
         d.label AS d_label, d.created_at AS d_created_at,
         d.last_used_at AS d_last_used_at, d.expires_at AS d_expires_at"
    )
}

/// The joins that go with [`second_steps_columns`].
pub(super) fn second_steps_joins(account: &str) -> String {
    format!(
        "LEFT JOIN factors f ON f.account_id = {account}
         LEFT JOIN remembered_devices d ON d.account_id = {account}"
    )
}

/// The order [`second_steps_from`] reads the rows in.
pub(super) const SECOND_STEPS_ORDER: &str = "f.created_at, f.id, d.last_used_at DESC, d.id";

/// The second steps in the rows of a query with [`second_steps_columns`].
pub(super) fn second_steps_from<R: Columns>(rows: &[R]) -> StoreResult<SecondSteps> {
    let mut steps = SecondSteps {
        factors: factors_in(rows)?,
        ..SecondSteps::default()
    };
    for row in rows {
        steps.recovery_codes_left = count(row.int("recovery_left")?);
        steps.consents = count(row.int("consents")?);
        if let Some(id) = row.opt_uuid("d_id")? {
            // The devices repeat for each factor, in the same order.
            if !steps.devices.iter().any(|d| d.id == id) {
                steps.devices.push(device_from(&Prefixed(row, "d_"))?);
            }
        }
    }
    Ok(steps)
}

/// Replaces the account's recovery codes by `macs`, inside the caller's transaction
/// (also that of a factor's confirmation).
pub(super) async fn replace_codes(
    mut tx: &mut Tx,
    account: AccountId,
    macs: &[String],
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let q = query("DELETE FROM recovery_codes WHERE account_id = $1").bind(account);
    tx.execute(q).await?;
    for mac in macs {
        let q = query(
            "INSERT INTO recovery_codes (account_id, code_mac, created_at) VALUES ($1, $2, $3)",
        )
        .bind(account)
        .bind(mac)
        .bind(at);
        tx.execute(q).await?;
    }
    Ok(())
}
