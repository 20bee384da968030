//! Passkeys: credential ids beside their factors, and ceremonies waiting for the
//! browser.

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
use tweestap_domain::store::{Ceremony, PasskeyStore, StoreResult};

#[async_trait]
impl<B: Backend> PasskeyStore for SqlStore<B> {
    async fn insert_ceremony(
        &self,
        c: &Ceremony,
        cap: Option<u64>,
        now: DateTime<Utc>,
    ) -> StoreResult<bool> {
        // The cap is checked in the INSERT itself; under a race a few more may pass,
        // which only matters for the bound, not for any one sign-in.
        let q = query(
            "INSERT INTO passkey_ceremonies (challenge_hash, session_hash, state, expires_at)
             SELECT $1, $2, $3, $4
             WHERE $5 < 0 OR (SELECT COUNT(*) FROM passkey_ceremonies
                              WHERE session_hash IS NULL AND expires_at > $6) < $5",
        )
        .bind(&c.challenge_hash)
        .bind(c.session_hash.as_deref())
        .bind(&c.state)
        .bind(c.expires_at)
        .bind(cap.map_or(-1, |n| i64::try_from(n).unwrap_or(i64::MAX)))
        .bind(now);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn take_ceremony(&self, challenge_hash: &str) -> StoreResult<Option<Ceremony>> {
        // One DELETE … RETURNING: of two answers with one challenge, one finds it.
        let q = query(
            "DELETE FROM passkey_ceremonies WHERE challenge_hash = $1
             RETURNING challenge_hash, session_hash, state, expires_at",
        )
        .bind(challenge_hash);
        self.db()
            .optional(q, |r| {
                Ok(Ceremony {
                    challenge_hash: r.text("challenge_hash")?,
                    session_hash: r.opt_text("session_hash")?,
                    state: r.text("state")?,
                    expires_at: r.time("expires_at")?,
                })
            })
            .await
    }

    async fn prune_ceremonies(&self, now: DateTime<Utc>) -> StoreResult<u64> {
        let q = query("DELETE FROM passkey_ceremonies WHERE expires_at < $1").bind(now);
        self.db().execute(q).await
    }

    async fn confirm_passkey(
        &self,
        id: FactorId,
        sealed: &[u8],
        credential_id: &str,
        at: DateTime<Utc>,
        notice: Option<&NewMail>,
        recovery_code_macs: Option<&[String]>,
    ) -> StoreResult<bool> {
        let mut tx = self.db().begin().await?;
        let q = query(
            "UPDATE factors SET secret_sealed = $1, credential_id = $2, confirmed_at = $3
             WHERE id = $4 AND kind = 'passkey' AND confirmed_at IS NULL
             RETURNING account_id",
        )
        .bind(&sealed.to_vec())
        .bind(credential_id)
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

    async fn passkey_by_credential(&self, credential_id: &str) -> StoreResult<Option<Factor>> {
        let q = query(
            "SELECT * FROM factors
             WHERE credential_id = $1 AND kind = 'passkey' AND confirmed_at IS NOT NULL",
        )
        .bind(credential_id);
        self.db().optional(q, factor_from).await
    }

    async fn passkey_used(
        &self,
        id: FactorId,
        sealed: &[u8],
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let q = query("UPDATE factors SET secret_sealed = $1, last_used_at = $2 WHERE id = $3")
            .bind(&sealed.to_vec())
            .bind(at)
            .bind(id.0);
        self.db().run(q).await
    }
}
