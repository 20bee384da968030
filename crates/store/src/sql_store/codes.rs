//! One-time codes of half-finished sessions (mailed and SMS) and the SMS sends
//! that the hourly limits count.

use super::{Backend, SqlStore};
use crate::rows::{count, session_code_from, Columns};
use crate::sql::{query, Exec};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::session_code::{CodePurpose, SessionCode};
use tweestap_domain::sms::{SentLastHour, SmsSend};
use tweestap_domain::store::{CodeStore, SmsSendsOf, StoreResult};
use tweestap_domain::token::TokenHash;

#[async_trait]
impl<B: Backend> CodeStore for SqlStore<B> {
    async fn put_session_code(&self, c: &SessionCode) -> StoreResult<()> {
        let q = query(
            "INSERT INTO session_codes
             (session_hash, purpose, account_id, factor_id, code_mac, attempts, sends, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, 0, $6, $7, $8)
             ON CONFLICT (session_hash, purpose) DO UPDATE SET
             factor_id = $4, code_mac = $5, attempts = 0, sends = $6, created_at = $7, expires_at = $8",
        )
        .bind(&c.session_hash.0)
        .bind(c.purpose.as_str())
        .bind(c.account_id)
        .bind(c.factor_id.map(|f| f.0))
        .bind(&c.code_mac)
        .bind(i64::from(c.sends))
        .bind(c.created_at)
        .bind(c.expires_at);
        self.db().run(q).await
    }

    async fn session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<Option<SessionCode>> {
        let q = query("SELECT * FROM session_codes WHERE session_hash = $1 AND purpose = $2")
            .bind(&session.0)
            .bind(purpose.as_str());
        self.db().optional(q, session_code_from).await
    }

    async fn count_session_code_try(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<Option<u32>> {
        let q = query(
            "UPDATE session_codes SET attempts = attempts + 1
             WHERE session_hash = $1 AND purpose = $2 RETURNING attempts",
        )
        .bind(&session.0)
        .bind(purpose.as_str());
        let row = self.db().fetch_optional(q).await?;
        Ok(row.map(|r| r.int("attempts")).transpose()?.map(count))
    }

    async fn delete_session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
    ) -> StoreResult<bool> {
        let q = query("DELETE FROM session_codes WHERE session_hash = $1 AND purpose = $2")
            .bind(&session.0)
            .bind(purpose.as_str());
        Ok(self.db().execute(q).await? == 1)
    }

    async fn record_sms_send(&self, s: &SmsSend) -> StoreResult<()> {
        let q =
            query("INSERT INTO sms_sends (at, account_id, number_mac, ip) VALUES ($1, $2, $3, $4)")
                .bind(s.at)
                .bind(s.account_id)
                .bind(&s.number_mac)
                .bind(s.ip.as_deref());
        self.db().run(q).await
    }

    async fn sms_sends_since(
        &self,
        account: AccountId,
        number_mac: &str,
        ip: Option<&str>,
        since: DateTime<Utc>,
    ) -> StoreResult<SentLastHour> {
        let q = query(
            "SELECT
                COUNT(*) FILTER (WHERE account_id = $1) AS by_account,
                COUNT(*) FILTER (WHERE number_mac = $2) AS by_number,
                COUNT(*) FILTER (WHERE ip = $3) AS by_ip,
                COUNT(*) AS global
             FROM sms_sends WHERE at >= $4",
        )
        .bind(account)
        .bind(number_mac)
        .bind(ip)
        .bind(since);
        let row = self.db().fetch_one(q).await?;
        Ok(SentLastHour {
            account: count(row.int("by_account")?),
            number: count(row.int("by_number")?),
            ip: count(row.int("by_ip")?),
            global: count(row.int("global")?),
        })
    }

    async fn sms_send_at(
        &self,
        of: SmsSendsOf<'_>,
        since: DateTime<Utc>,
        skip: u32,
    ) -> StoreResult<Option<DateTime<Utc>>> {
        let column = match of {
            SmsSendsOf::Account(_) => "account_id",
            SmsSendsOf::Number(_) => "number_mac",
            SmsSendsOf::Ip(_) => "ip",
        };
        let q = query(format!(
            "SELECT at FROM sms_sends WHERE {column} = $1 AND at >= $2
             ORDER BY at ASC LIMIT 1 OFFSET $3"
        ));
        let q = match of {
            SmsSendsOf::Account(a) => q.bind(a),
            SmsSendsOf::Number(n) => q.bind(n),
            SmsSendsOf::Ip(ip) => q.bind(ip),
        }
        .bind(since)
        .bind(i64::from(skip));
        let row = self.db().fetch_optional(q).await?;
        row.map(|r| r.time("at")).transpose()
    }
}
