//! The audit log, and moving a whole database out and in (`tweestap export` and
//! `import`).

use super::factors::insert_factor;
use super::oidc::{insert_client, insert_signing_key};
use super::{Backend, SqlStore};
use crate::rows::{self, account_from, audit_from, factor_from, Columns};
use crate::sql::{query, Exec, Query};
use async_trait::async_trait;
use tweestap_domain::audit::AuditRecord;
use tweestap_domain::snapshot::Contents;
use tweestap_domain::store::{AuditStore, StoreError, StoreResult};

#[async_trait]
impl<B: Backend> AuditStore for SqlStore<B> {
    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()> {
        insert_audit(self.db(), r).await
    }

    async fn list_audit(&self, limit: u32, email: Option<&str>) -> StoreResult<Vec<AuditRecord>> {
        let q = query(
            "SELECT * FROM audit_log WHERE (CAST($1 AS TEXT) IS NULL OR email = $1)
             ORDER BY id DESC LIMIT $2",
        )
        .bind(email.map(str::to_lowercase).as_deref())
        .bind(i64::from(limit));
        self.db().all(q, audit_from).await
    }

    async fn export_contents(&self) -> StoreResult<Contents> {
        // One read transaction: a consistent picture while the server keeps running.
        let mut tx = self.db().begin_read().await?;
        if let Some(sql) = self.db().sql_snapshot() {
            (&mut tx).execute(query(sql)).await?;
        }
        let sql = "SELECT * FROM oidc_signing_keys ORDER BY created_at, kid";
        let signing_keys = (&mut tx).all(query(sql), rows::signing_key_from).await?;
        let sql = "SELECT * FROM oidc_clients ORDER BY created_at, id";
        let clients = (&mut tx).all(query(sql), rows::client_from).await?;
        let sql = "SELECT * FROM accounts ORDER BY created_at, id";
        let accounts = (&mut tx).all(query(sql), account_from).await?;
        let sql = "SELECT * FROM factors ORDER BY created_at, id";
        let factors = (&mut tx).all(query(sql), factor_from).await?;
        let sql = "SELECT * FROM audit_log ORDER BY id";
        let audit = (&mut tx).all(query(sql), audit_from).await?;
        let sql = "SELECT * FROM recovery_codes ORDER BY account_id, created_at, code_mac";
        let recovery_codes = (&mut tx).all(query(sql), rows::recovery_code_from).await?;
        let sql = "SELECT * FROM oidc_consents ORDER BY account_id, client_id";
        let consents = (&mut tx)
            .all(query(sql), |r| {
                Ok((
                    tweestap_domain::account::AccountId(r.uuid("account_id")?),
                    rows::consent_from(r)?,
                ))
            })
            .await?;
        tx.commit().await?;
        Ok(Contents {
            signing_keys,
            clients,
            accounts,
            factors,
            audit,
            recovery_codes,
            consents,
        })
    }

    async fn import_contents(&self, c: &Contents) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        if let Some(sql) = self.db().sql_import_lock() {
            (&mut tx).execute(query(sql)).await?;
        }
        for table in ["accounts", "oidc_clients"] {
            let q = query(format!("SELECT COUNT(*) AS n FROM {table}"));
            if (&mut tx).fetch_one(q).await?.int("n")? > 0 {
                return Err(StoreError::Conflict);
            }
        }
        // The keys a first start generated here have signed nothing anyone kept (there
        // were no accounts); the exported ones have, so they take their place.
        if !c.signing_keys.is_empty() {
            (&mut tx)
                .execute(query("DELETE FROM oidc_signing_keys"))
                .await?;
        }
        for k in &c.signing_keys {
            insert_signing_key(&mut tx, k).await?;
        }
        for client in &c.clients {
            insert_client(&mut tx, client).await?;
        }
        for a in &c.accounts {
            let q = query(
                "INSERT INTO accounts (id, email, name, role, password_hash, created_at,
                 code_failures, code_locked_until, password_failures, password_locked_until, language,
                 disabled_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(a.id)
            .bind(a.email.as_str())
            .bind(&a.name)
            .bind(a.role.as_str())
            .bind(&a.password_hash)
            .bind(a.created_at)
            .bind(i64::from(a.code_failures))
            .bind(a.code_locked_until)
            .bind(i64::from(a.password_failures))
            .bind(a.password_locked_until)
            .bind(a.language.code())
            .bind(a.disabled_at);
            (&mut tx).execute(q).await?;
        }
        for f in &c.factors {
            insert_factor(&mut tx, f).await?;
        }
        for r in &c.audit {
            insert_audit(&mut tx, r).await?;
        }
        for r in &c.recovery_codes {
            let q = query(
                "INSERT INTO recovery_codes (account_id, code_mac, created_at, used_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(r.account_id)
            .bind(&r.code_mac)
            .bind(r.created_at)
            .bind(r.used_at);
            (&mut tx).execute(q).await?;
        }
        for (account, c) in &c.consents {
            let q = query(
                "INSERT INTO oidc_consents (account_id, client_id, scope, granted_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(*account)
            .bind(&c.client_id)
            .bind(&c.scope)
            .bind(c.granted_at);
            (&mut tx).execute(q).await?;
        }
        tx.commit().await
    }
}

/// One audit row; shared by `append_audit` and imports.
pub(super) async fn insert_audit(mut db: impl Exec, r: &AuditRecord) -> StoreResult<()> {
    db.run(audit_insert(r)).await
}

/// The statement that writes the audit row `r` alone.
pub(super) fn audit_insert(r: &AuditRecord) -> Query {
    let q = format!("INSERT INTO audit_log ({AUDIT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)");
    bind_audit(query(q), r)
}

/// The audit log's columns a new row names, in [`bind_audit`]'s order.
pub(super) const AUDIT_COLUMNS: &str = "at, event, account_id, email, ip, user_agent, detail";

/// Binds an audit row's seven values, in [`AUDIT_COLUMNS`]' order.
pub(super) fn bind_audit(q: Query, r: &AuditRecord) -> Query {
    q.bind(r.at)
        .bind(&r.event)
        .bind(r.account_id)
        .bind(r.email.as_deref())
        .bind(r.ip.as_deref())
        .bind(r.user_agent.as_deref())
        .bind(r.detail.as_deref())
}
