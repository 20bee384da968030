//! The roll-out console: the account list (keyset paging by address), roles,
//! deletion, step-up times, stored settings, roll-out counts, reminder claims and
//! the audit log's pages.

use super::{Backend, SqlStore};
use crate::rows::{account_from, audit_from, contains_pattern, Columns};
use crate::sql::{query, Exec, Query, Value};
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use tweestap_domain::account::{Account, AccountId, Role};
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::console::{
    AccountFilter, AccountListing, Cursor, RolloutCounts, RolloutDay, TwoFactorState,
};
use tweestap_domain::store::{AuditFilter, ConsoleStore, SentReminder, StoreError, StoreResult};
use tweestap_domain::token::TokenHash;

/// How many active factors of `kind` the account `alias` has (a number on both
/// databases). A scalar subquery, evaluated for the rows of one page only.
fn count_of(kind: &str, alias: &str) -> String {
    format!(
        "(SELECT COUNT(*) FROM factors f WHERE f.account_id = {alias}.id
            AND f.kind = '{kind}' AND f.confirmed_at IS NOT NULL)"
    )
}

/// Whether the account `a` has an active factor of `kind`, for a WHERE clause (the
/// planner may turn it into a semi-join).
fn exists(kind: &str) -> String {
    format!(
        "EXISTS (SELECT 1 FROM factors f WHERE f.account_id = a.id
            AND f.kind = '{kind}' AND f.confirmed_at IS NOT NULL)"
    )
}

/// A WHERE clause built up with its arguments in `$N` order.
struct Where {
    parts: Vec<String>,
    args: Vec<Value>,
}

impl Where {
    fn new() -> Self {
        Self {
            parts: Vec::new(),
            args: Vec::new(),
        }
    }

    /// The next argument's placeholder.
    fn arg(&mut self, v: impl Into<Value>) -> String {
        self.args.push(v.into());
        format!("${}", self.args.len())
    }

    fn and(&mut self, part: String) {
        self.parts.push(part);
    }

    fn sql(&self) -> String {
        if self.parts.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.parts.join(" AND "))
        }
    }

    fn query(self, sql: String) -> Query {
        self.args.into_iter().fold(query(sql), Query::bind)
    }
}

fn date_text(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

fn parse_date(s: &str) -> StoreResult<NaiveDate> {
    s.parse()
        .map_err(|e| StoreError::Corrupt(format!("date {s:?}: {e}")))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn stage(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

impl<B: Backend> SqlStore<B> {
    /// The accounts `w` selects, by address, at most `limit`: the page first (by
    /// the address index, stopping after `limit` rows), then the factors of just
    /// those accounts.
    async fn listings(&self, mut w: Where, limit: u32) -> StoreResult<Vec<AccountListing>> {
        let order = self.db().sql_byte_order();
        let p = w.arg(i64::from(limit));
        let sql = format!(
            "SELECT p.*, {} AS has_app, {} AS has_sms, {} AS has_passkey FROM
               (SELECT a.* FROM accounts a {} ORDER BY a.email {order} LIMIT {p}) p
             ORDER BY p.email {order}",
            count_of("totp", "p"),
            count_of("sms", "p"),
            count_of("passkey", "p"),
            w.sql()
        );
        let rows = self.db().fetch_all(w.query(sql)).await?;
        rows.iter()
            .map(|r| {
                Ok(AccountListing {
                    account: account_from(r)?,
                    two_factor: TwoFactorState::of(
                        r.int("has_app")? > 0,
                        r.int("has_sms")? > 0,
                        r.int("has_passkey")? > 0,
                    ),
                    last_sign_in_at: r.opt_time("last_sign_in_at")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl<B: Backend> ConsoleStore for SqlStore<B> {
    async fn list_accounts_page(
        &self,
        filter: &AccountFilter,
        shared: &[String],
        after: Option<&Cursor>,
        limit: u32,
    ) -> StoreResult<Vec<AccountListing>> {
        let order = self.db().sql_byte_order();
        let mut w = Where::new();
        if let Some(c) = after {
            let p = w.arg(c.0.as_str());
            w.and(format!("a.email {order} > {p}"));
        }
        if let Some(q) = filter.q.as_deref().filter(|q| !q.trim().is_empty()) {
            let p = w.arg(contains_pattern(q));
            w.and(format!(
                r"(lower(a.email) LIKE {p} ESCAPE '\' OR lower(a.name) LIKE {p} ESCAPE '\')"
            ));
        }
        if let Some(role) = filter.role {
            let p = w.arg(role.as_str());
            w.and(format!("a.role = {p}"));
        }
        if let Some(state) = filter.two_factor {
            let (app, sms, pk) = (exists("totp"), exists("sms"), exists("passkey"));
            w.and(match state {
                TwoFactorState::None => format!("NOT {app} AND NOT {sms} AND NOT {pk}"),
                TwoFactorState::Passkey => format!("NOT {app} AND NOT {sms} AND {pk}"),
                TwoFactorState::App => format!("{app} AND NOT {sms}"),
                TwoFactorState::Sms => format!("NOT {app} AND {sms}"),
                TwoFactorState::Both => format!("{app} AND {sms}"),
            });
        }
        if let Some(disabled) = filter.disabled {
            w.and(format!(
                "a.disabled_at IS {}NULL",
                if disabled { "NOT " } else { "" }
            ));
        }
        if let Some(since) = filter.inactive_since {
            let p = w.arg(since);
            w.and(format!(
                "(a.last_sign_in_at IS NULL OR a.last_sign_in_at < {p})"
            ));
        }
        if let Some(want) = filter.shared_mailbox {
            let mut any = Vec::new();
            for local in shared {
                let p = w.arg(format!("{}@%", local.to_lowercase()));
                any.push(format!("lower(a.email) LIKE {p}"));
            }
            let is_shared = if any.is_empty() {
                "1 = 0".to_owned()
            } else {
                format!("({})", any.join(" OR "))
            };
            w.and(if want {
                is_shared
            } else {
                format!("NOT {is_shared}")
            });
        }
        self.listings(w, limit).await
    }

    async fn account_listing(&self, id: AccountId) -> StoreResult<Option<AccountListing>> {
        let mut w = Where::new();
        let p = w.arg(id);
        w.and(format!("a.id = {p}"));
        Ok(self.listings(w, 1).await?.into_iter().next())
    }

    async fn set_role(&self, id: AccountId, role: Role) -> StoreResult<()> {
        let q = query("UPDATE accounts SET role = $1 WHERE id = $2")
            .bind(role.as_str())
            .bind(id);
        self.db().run(q).await
    }

    async fn delete_account(&self, id: AccountId) -> StoreResult<()> {
        // Sessions, factors, links, devices and tokens go with it (ON DELETE
        // CASCADE); the audit log names no foreign key, so it stays.
        self.db()
            .run(query("DELETE FROM accounts WHERE id = $1").bind(id))
            .await
    }

    async fn set_last_sign_in(&self, id: AccountId, at: DateTime<Utc>) -> StoreResult<()> {
        let q = query("UPDATE accounts SET last_sign_in_at = $1 WHERE id = $2")
            .bind(at)
            .bind(id);
        self.db().run(q).await
    }

    async fn session_code_at(&self, session: &TokenHash) -> StoreResult<Option<DateTime<Utc>>> {
        let q = query("SELECT code_at FROM sessions WHERE id_hash = $1").bind(session.0.as_str());
        Ok(match self.db().fetch_optional(q).await? {
            Some(r) => r.opt_time("code_at")?,
            None => None,
        })
    }

    async fn set_session_code_at(&self, session: &TokenHash, at: DateTime<Utc>) -> StoreResult<()> {
        let q = query("UPDATE sessions SET code_at = $1 WHERE id_hash = $2")
            .bind(at)
            .bind(session.0.as_str());
        self.db().run(q).await
    }

    async fn console_setting(&self, key: &str) -> StoreResult<Option<String>> {
        let q = query("SELECT value FROM console_settings WHERE key = $1").bind(key);
        Ok(match self.db().fetch_optional(q).await? {
            Some(r) => Some(r.text("value")?),
            None => None,
        })
    }

    async fn save_console_setting(
        &self,
        key: &str,
        value: &str,
        at: DateTime<Utc>,
    ) -> StoreResult<()> {
        let q = query(
            "INSERT INTO console_settings (key, value, updated_at) VALUES ($1, $2, $3)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
        )
        .bind(key)
        .bind(value)
        .bind(at);
        self.db().run(q).await
    }

    async fn rollout_counts(&self) -> StoreResult<Vec<(Role, RolloutCounts)>> {
        // One pass over the factors (grouped per account), joined to every account.
        let sql = "SELECT a.role AS role,
                    CAST(CASE WHEN k.app > 0 THEN 1 ELSE 0 END AS BIGINT) AS has_app,
                    CAST(CASE WHEN k.sms > 0 THEN 1 ELSE 0 END AS BIGINT) AS has_sms,
                    CAST(CASE WHEN k.pk > 0 THEN 1 ELSE 0 END AS BIGINT) AS has_passkey,
                    COUNT(*) AS n
             FROM accounts a LEFT JOIN
               (SELECT account_id,
                       SUM(CASE WHEN kind = 'totp' THEN 1 ELSE 0 END) AS app,
                       SUM(CASE WHEN kind = 'sms' THEN 1 ELSE 0 END) AS sms,
                       SUM(CASE WHEN kind = 'passkey' THEN 1 ELSE 0 END) AS pk
                  FROM factors WHERE confirmed_at IS NOT NULL GROUP BY account_id) k
               ON k.account_id = a.id
             WHERE a.disabled_at IS NULL
             GROUP BY a.role, has_app, has_sms, has_passkey"
            .to_owned();
        let rows = self.db().fetch_all(query(sql)).await?;
        let mut out: Vec<(Role, RolloutCounts)> = [Role::User, Role::Support, Role::Admin]
            .into_iter()
            .map(|r| (r, RolloutCounts::default()))
            .collect();
        for r in &rows {
            let role = r.parsed("role", |s| s.parse::<Role>().ok())?;
            let state = TwoFactorState::of(
                r.int("has_app")? == 1,
                r.int("has_sms")? == 1,
                r.int("has_passkey")? == 1,
            );
            if let Some((_, c)) = out.iter_mut().find(|(x, _)| *x == role) {
                c.add(state, count(r.int("n")?));
            }
        }
        Ok(out)
    }

    async fn save_rollout_day(&self, d: &RolloutDay) -> StoreResult<()> {
        let c = d.counts;
        let n = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let q = query(
            "INSERT INTO rollout_days (day, role, without, app_only, sms_only, app_sms, passkey_only)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (day, role) DO UPDATE SET without = excluded.without,
               app_only = excluded.app_only, sms_only = excluded.sms_only, app_sms = excluded.app_sms,
               passkey_only = excluded.passkey_only",
        )
        .bind(date_text(d.day))
        .bind(d.role.as_str())
        .bind(n(c.none))
        .bind(n(c.app))
        .bind(n(c.sms))
        .bind(n(c.both))
        .bind(n(c.passkey));
        self.db().run(q).await
    }

    async fn rollout_days(&self, since: NaiveDate) -> StoreResult<Vec<RolloutDay>> {
        let q = query("SELECT * FROM rollout_days WHERE day >= $1 ORDER BY day, role")
            .bind(date_text(since));
        let rows = self.db().fetch_all(q).await?;
        rows.iter()
            .map(|r| {
                Ok(RolloutDay {
                    day: parse_date(&r.text("day")?)?,
                    role: r.parsed("role", |s| s.parse::<Role>().ok())?,
                    counts: RolloutCounts {
                        none: count(r.int("without")?),
                        app: count(r.int("app_only")?),
                        sms: count(r.int("sms_only")?),
                        both: count(r.int("app_sms")?),
                        passkey: count(r.int("passkey_only")?),
                    },
                })
            })
            .collect()
    }

    async fn without_two_factor(&self, role: Role, limit: u32) -> StoreResult<Vec<Account>> {
        let order = self.db().sql_byte_order();
        let q = query(format!(
            "SELECT a.* FROM accounts a
             WHERE a.role = $1 AND a.disabled_at IS NULL AND NOT EXISTS
               (SELECT 1 FROM factors f WHERE f.account_id = a.id AND f.confirmed_at IS NOT NULL)
             ORDER BY a.email {order} LIMIT $2"
        ))
        .bind(role.as_str())
        .bind(i64::from(limit));
        self.db().all(q, account_from).await
    }

    async fn claim_reminder(
        &self,
        account: AccountId,
        deadline: NaiveDate,
        stage: u32,
        at: DateTime<Utc>,
    ) -> StoreResult<bool> {
        let q = query(
            "INSERT INTO reminders_sent (account_id, deadline, stage, sent_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (account_id, deadline, stage) DO NOTHING",
        )
        .bind(account)
        .bind(date_text(deadline))
        .bind(i64::from(stage))
        .bind(at);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn release_reminder(
        &self,
        account: AccountId,
        deadline: NaiveDate,
        stage: u32,
    ) -> StoreResult<()> {
        let q = query(
            "DELETE FROM reminders_sent WHERE account_id = $1 AND deadline = $2 AND stage = $3",
        )
        .bind(account)
        .bind(date_text(deadline))
        .bind(i64::from(stage));
        self.db().run(q).await
    }

    async fn sent_reminders(&self, limit: u32) -> StoreResult<Vec<SentReminder>> {
        let q = query(
            "SELECT r.account_id, a.email, r.deadline, r.stage, r.sent_at
               FROM reminders_sent r JOIN accounts a ON a.id = r.account_id
             ORDER BY r.sent_at DESC, a.email LIMIT $1",
        )
        .bind(i64::from(limit));
        let rows = self.db().fetch_all(q).await?;
        rows.iter()
            .map(|r| {
                Ok(SentReminder {
                    account_id: AccountId(r.uuid("account_id")?),
                    email: r.text("email")?,
                    deadline: parse_date(&r.text("deadline")?)?,
                    stage: stage(r.int("stage")?),
                    sent_at: r.time("sent_at")?,
                })
            })
            .collect()
    }

    async fn audit_page(
        &self,
        f: &AuditFilter,
        limit: u32,
    ) -> StoreResult<Vec<(i64, AuditRecord)>> {
        let mut w = Where::new();
        if let Some(a) = f.account {
            let p = w.arg(a);
            w.and(format!("account_id = {p}"));
        }
        if let Some(e) = f.event.as_deref() {
            let p = w.arg(e);
            w.and(format!("event = {p}"));
        }
        if let Some(ip) = f.ip.as_deref() {
            let p = w.arg(ip);
            w.and(format!("ip = {p}"));
        }
        if let Some(t) = f.from {
            let p = w.arg(t);
            w.and(format!("at >= {p}"));
        }
        if let Some(t) = f.until {
            let p = w.arg(t);
            w.and(format!("at < {p}"));
        }
        if let Some(id) = f.before_id {
            let p = w.arg(id);
            w.and(format!("id < {p}"));
        }
        let p = w.arg(i64::from(limit));
        let sql = format!(
            "SELECT * FROM audit_log {} ORDER BY id DESC LIMIT {p}",
            w.sql()
        );
        let rows = self.db().fetch_all(w.query(sql)).await?;
        rows.iter()
            .map(|r| Ok((r.int("id")?, audit_from(r)?)))
            .collect()
    }

    async fn prune_audit(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        self.db()
            .execute(query("DELETE FROM audit_log WHERE at < $1").bind(before))
            .await
    }
}
