//! OpenID Connect: signing keys, registered clients and the code flow.

use super::portals::queue_logouts;
use super::{Backend, SqlStore};
use crate::rows::{
    self, client_from, oidc_code_from, oidc_token_from, signing_key_from, Columns, Prefixed,
};
use crate::sql::{query, Exec, Tx};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tweestap_domain::account::AccountId;
use tweestap_domain::oidc::flow::{CodeClaim, StoredCode, StoredRequest, StoredToken, TokenFacts};
use tweestap_domain::oidc::{OidcClient, SigningKey};
use tweestap_domain::store::{OidcStore, StoreResult};
use tweestap_domain::token::TokenHash;

#[async_trait]
impl<B: Backend> OidcStore for SqlStore<B> {
    async fn insert_signing_key(&self, k: &SigningKey) -> StoreResult<()> {
        insert_signing_key(self.db(), k).await
    }

    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>> {
        let q = query("SELECT * FROM oidc_signing_keys ORDER BY created_at DESC, kid");
        self.db().all(q, signing_key_from).await
    }

    async fn rotate_signing_key(&self, k: &SigningKey, at: DateTime<Utc>) -> StoreResult<()> {
        let mut tx = self.db().begin().await?;
        let q = query(
            "UPDATE oidc_signing_keys SET retired_at = $1 WHERE alg = $2 AND retired_at IS NULL",
        )
        .bind(at)
        .bind(k.alg.as_str());
        (&mut tx).execute(q).await?;
        insert_signing_key(&mut tx, k).await?;
        tx.commit().await
    }

    async fn delete_retired_signing_keys(&self, before: DateTime<Utc>) -> StoreResult<u64> {
        let q = query("DELETE FROM oidc_signing_keys WHERE retired_at < $1").bind(before);
        self.db().execute(q).await
    }

    async fn insert_client(&self, c: &OidcClient) -> StoreResult<()> {
        insert_client(self.db(), c).await
    }

    async fn client(&self, id: &str) -> StoreResult<Option<OidcClient>> {
        let q = query("SELECT * FROM oidc_clients WHERE id = $1").bind(id);
        self.db().optional(q, client_from).await
    }

    async fn list_clients(&self) -> StoreResult<Vec<OidcClient>> {
        let q = query("SELECT * FROM oidc_clients ORDER BY created_at, id");
        self.db().all(q, client_from).await
    }

    async fn delete_client(&self, id: &str) -> StoreResult<bool> {
        let q = query("DELETE FROM oidc_clients WHERE id = $1").bind(id);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn insert_oidc_request(&self, r: &StoredRequest) -> StoreResult<()> {
        let q = query(
            "INSERT INTO oidc_requests (id_hash, request, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&r.id_hash.0)
        .bind(&r.request)
        .bind(r.created_at)
        .bind(r.expires_at);
        self.db().run(q).await
    }

    async fn oidc_request(
        &self,
        id: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        let q = query("SELECT request FROM oidc_requests WHERE id_hash = $1 AND expires_at > $2")
            .bind(&id.0)
            .bind(now);
        let row = self.db().fetch_optional(q).await?;
        row.map(|r| r.text("request")).transpose()
    }

    async fn insert_oidc_code(&self, c: &StoredCode) -> StoreResult<()> {
        let q = query(
            "INSERT INTO oidc_codes
             (code_hash, grant_json, created_at, expires_at, used_at, account_id, sid, client_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&c.code_hash.0)
        .bind(&c.grant)
        .bind(c.created_at)
        .bind(c.expires_at)
        .bind(c.used_at)
        .bind(c.account_id)
        .bind(c.sid.as_deref())
        .bind(&c.client_id);
        self.db().run(q).await
    }

    async fn claim_oidc_code(
        &self,
        hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<CodeClaim> {
        let q = query(
            "UPDATE oidc_codes SET used_at = $1 WHERE code_hash = $2 AND used_at IS NULL
             RETURNING *",
        )
        .bind(now)
        .bind(&hash.0);
        if let Some(row) = self.db().fetch_optional(q).await? {
            return Ok(CodeClaim::Fresh(oidc_code_from(&row)?));
        }
        // A replay: noted on the row, so the first use, should it still be storing
        // its tokens, revokes them once stored (`oidc_code_replayed`).
        let q = query(
            "UPDATE oidc_codes SET replayed_at = COALESCE(replayed_at, $1) WHERE code_hash = $2
             RETURNING *",
        )
        .bind(now)
        .bind(&hash.0);
        match self.db().fetch_optional(q).await? {
            Some(row) => Ok(CodeClaim::Reused(oidc_code_from(&row)?)),
            None => Ok(CodeClaim::Unknown),
        }
    }

    async fn oidc_code_replayed(&self, hash: &TokenHash) -> StoreResult<bool> {
        let q = query("SELECT replayed_at FROM oidc_codes WHERE code_hash = $1").bind(&hash.0);
        let row = self.db().fetch_optional(q).await?;
        Ok(match row {
            Some(r) => r.opt_time("replayed_at")?.is_some(),
            None => false,
        })
    }

    async fn insert_oidc_token(&self, t: &StoredToken) -> StoreResult<()> {
        let q = query(
            "INSERT INTO oidc_tokens
             (token_hash, kind, family, grant_json, created_at, expires_at, used_at, revoked_at,
              account_id, client_id, sid)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&t.token_hash.0)
        .bind(t.kind.as_str())
        .bind(&t.family)
        .bind(&t.grant)
        .bind(t.created_at)
        .bind(t.expires_at)
        .bind(t.used_at)
        .bind(t.revoked_at)
        .bind(t.account_id)
        .bind(&t.client_id)
        .bind(t.sid.as_deref());
        self.db().run(q).await
    }

    async fn oidc_token(&self, hash: &TokenHash) -> StoreResult<Option<StoredToken>> {
        let q = query("SELECT * FROM oidc_tokens WHERE token_hash = $1").bind(&hash.0);
        self.db().optional(q, oidc_token_from).await
    }

    async fn oidc_token_facts(
        &self,
        hash: &TokenHash,
        seen_since: DateTime<Utc>,
        made_since: DateTime<Utc>,
    ) -> StoreResult<Option<TokenFacts>> {
        let Some(cache) = self.db().session_cache() else {
            return self.read_token_facts(hash, seen_since, made_since).await;
        };
        if let Some(facts) = cache.token(&hash.0) {
            return Ok(Some(facts));
        }
        let ticket = cache.ticket();
        // Whether the token's sign-in is still live depends on the time, not
        // only on writes: read as of the end of the entry's life, a sign-in live
        // then is live whenever the entry is served. One that ends sooner (or
        // has ended) is read as of now, and not kept.
        let ttl = chrono::Duration::from_std(cache.ttl()).ok();
        let Some((seen_later, made_later)) = ttl.and_then(|ttl| {
            Some((
                seen_since.checked_add_signed(ttl)?,
                made_since.checked_add_signed(ttl)?,
            ))
        }) else {
            return self.read_token_facts(hash, seen_since, made_since).await;
        };
        let later = self.read_token_facts(hash, seen_later, made_later).await?;
        match later {
            Some(f) if f.sid_live || f.token.sid.is_none() => {
                if let Some(t) = ticket {
                    cache.keep_token(&hash.0, t, f.clone());
                }
                Ok(Some(f))
            }
            None => Ok(None),
            Some(_) => self.read_token_facts(hash, seen_since, made_since).await,
        }
    }

    async fn use_refresh_token(&self, hash: &TokenHash, at: DateTime<Utc>) -> StoreResult<bool> {
        let q = query(
            "UPDATE oidc_tokens SET used_at = $1
             WHERE token_hash = $2 AND kind = 'refresh' AND used_at IS NULL AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(&hash.0);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn revoke_oidc_family(&self, family: &str, at: DateTime<Utc>) -> StoreResult<u64> {
        let q = query(
            "UPDATE oidc_tokens SET revoked_at = $1 WHERE family = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(family);
        self.db().execute(q).await
    }

    async fn revoke_oidc_token(&self, hash: &TokenHash, at: DateTime<Utc>) -> StoreResult<bool> {
        let q = query(
            "UPDATE oidc_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(&hash.0);
        Ok(self.db().execute(q).await? == 1)
    }

    async fn take_oidc_request(
        &self,
        id: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>> {
        // One statement: of two concurrent uses, one gets it.
        let q = query(
            "DELETE FROM oidc_requests WHERE id_hash = $1 AND expires_at > $2 RETURNING request",
        )
        .bind(&id.0)
        .bind(now);
        let row = self.db().fetch_optional(q).await?;
        row.map(|r| r.text("request")).transpose()
    }
}

/// One signing key row; shared by `insert_signing_key`, rotations and imports.
pub(super) async fn insert_signing_key(mut db: impl Exec, k: &SigningKey) -> StoreResult<()> {
    let q = query(
        "INSERT INTO oidc_signing_keys (kid, alg, private_sealed, public_jwk, created_at, retired_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&k.kid)
    .bind(k.alg.as_str())
    .bind(&k.private_sealed)
    .bind(k.public_jwk.to_string())
    .bind(k.created_at)
    .bind(k.retired_at);
    db.run(q).await
}

/// One client row; shared by `insert_client` and imports.
pub(super) async fn insert_client(mut db: impl Exec, c: &OidcClient) -> StoreResult<()> {
    let q = query(
        "INSERT INTO oidc_clients
         (id, name, redirect_uris, client_type, secret_hash, created_at, id_token_alg, options)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&c.id)
    .bind(&c.name)
    .bind(rows::redirect_uris_json(&c.redirect_uris))
    .bind(c.client_type())
    .bind(c.secret_hash.as_deref())
    .bind(c.created_at.unwrap_or_else(Utc::now))
    .bind(c.id_token_alg.as_str())
    .bind(serde_json::to_string(&c.options).unwrap_or_else(|_| "{}".to_owned()));
    db.run(q).await
}

/// Ends what portals hold of the account, inside the caller's transaction: its
/// access and refresh tokens are revoked, its codes not yet exchanged deleted
/// (used ones stay, so a replay is still recognised), and the portals its sessions
/// reached get a logout token queued.
pub(super) async fn end_oidc_grants(
    mut tx: &mut Tx,
    account: AccountId,
    at: DateTime<Utc>,
) -> StoreResult<()> {
    let q = query(
        "UPDATE oidc_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
    )
    .bind(at)
    .bind(account);
    tx.execute(q).await?;
    let q = query("DELETE FROM oidc_codes WHERE account_id = $1 AND used_at IS NULL").bind(account);
    tx.execute(q).await?;
    queue_logouts(tx, "account_id = $1", account.into(), at).await?;
    Ok(())
}

/// The token lookup as the database answers it (the session cache's misses).
impl<B: Backend> SqlStore<B> {
    async fn read_token_facts(
        &self,
        hash: &TokenHash,
        seen_since: DateTime<Utc>,
        made_since: DateTime<Utc>,
    ) -> StoreResult<Option<TokenFacts>> {
        // The account's columns under `a_` names: both tables have `created_at`.
        // COUNT, not EXISTS: an integer on both databases. The idle check goes
        // through an expression so that no index serves it: PostgreSQL's generic
        // plan, before statistics exist, joined the lookup by sid with a range over
        // last_seen_at's index (every recent session), and userinfo slowed with each
        // session stored (9,986, then 3,815, then 2,343/s in three bench runs).
        let q = query(
            "SELECT t.*,
                (SELECT COUNT(*) FROM oidc_clients c WHERE c.id = t.client_id) AS client_stored,
                (SELECT COUNT(*) FROM sessions s WHERE s.sid = t.sid AND s.stage = 'authenticated'
                 AND COALESCE(s.last_seen_at, s.created_at) >= $2
                 AND s.created_at >= $3) AS sid_live,
                a.id AS a_id, a.email AS a_email, a.name AS a_name, a.role AS a_role,
                a.password_hash AS a_password_hash, a.created_at AS a_created_at,
                a.code_failures AS a_code_failures, a.password_failures AS a_password_failures,
                a.password_locked_until AS a_password_locked_until,
                a.code_locked_until AS a_code_locked_until, a.language AS a_language,
                a.disabled_at AS a_disabled_at
             FROM oidc_tokens t LEFT JOIN accounts a ON a.id = t.account_id
             WHERE t.token_hash = $1",
        )
        .bind(&hash.0)
        .bind(seen_since)
        .bind(made_since);
        self.db()
            .optional(q, |row| {
                let account = match row.opt_uuid("a_id")? {
                    Some(_) => Some(rows::account_from(&Prefixed(row, "a_"))?),
                    None => None,
                };
                Ok(TokenFacts {
                    token: oidc_token_from(row)?,
                    client_stored: row.int("client_stored")? != 0,
                    sid_live: row.int("sid_live")? != 0,
                    account,
                })
            })
            .await
    }
}
