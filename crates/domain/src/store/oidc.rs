//! OpenID Connect: signing keys, registered clients and the code flow.

use crate::error::StoreResult;
use crate::oidc::flow::{CodeClaim, StoredCode, StoredRequest, StoredToken, TokenFacts};
use crate::oidc::{OidcClient, SigningKey};
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[async_trait]
pub trait OidcStore: Send + Sync + 'static {
    /// Adds a signing key; `Conflict` when its algorithm already has an active key
    /// (a unique index decides, so nodes starting at once add one between them).
    async fn insert_signing_key(&self, k: &SigningKey) -> StoreResult<()>;
    /// Every signing key, active and retired, newest first.
    async fn signing_keys(&self) -> StoreResult<Vec<SigningKey>>;
    /// In one transaction: the active key of `k.alg` is retired at `at` and `k`
    /// becomes the active one. `Conflict` when a concurrent rotation won.
    async fn rotate_signing_key(&self, k: &SigningKey, at: DateTime<Utc>) -> StoreResult<()>;
    /// Deletes the keys retired before `before`.
    async fn delete_retired_signing_keys(&self, before: DateTime<Utc>) -> StoreResult<u64>;

    /// Registers a client; `Conflict` when the id is taken.
    async fn insert_client(&self, c: &OidcClient) -> StoreResult<()>;
    async fn client(&self, id: &str) -> StoreResult<Option<OidcClient>>;
    /// Every client in the database, oldest first.
    async fn list_clients(&self) -> StoreResult<Vec<OidcClient>>;
    async fn delete_client(&self, id: &str) -> StoreResult<bool>;

    /// Keeps a validated authorization request while the person signs in.
    async fn insert_oidc_request(&self, r: &StoredRequest) -> StoreResult<()>;
    /// The request (JSON) when it exists and `expires_at > now`.
    async fn oidc_request(&self, id: &TokenHash, now: DateTime<Utc>)
        -> StoreResult<Option<String>>;
    async fn insert_oidc_code(&self, c: &StoredCode) -> StoreResult<()>;
    /// Uses a code, atomically (one conditional `UPDATE`): of two concurrent claims
    /// exactly one is `Fresh`; a used code is `Reused`. Expiry is the caller's.
    async fn claim_oidc_code(&self, hash: &TokenHash, now: DateTime<Utc>)
        -> StoreResult<CodeClaim>;
    /// Whether a replay of the code was seen (its first use checks this after
    /// storing what it issued).
    async fn oidc_code_replayed(&self, hash: &TokenHash) -> StoreResult<bool>;
    async fn insert_oidc_token(&self, t: &StoredToken) -> StoreResult<()>;
    async fn oidc_token(&self, hash: &TokenHash) -> StoreResult<Option<StoredToken>>;
    /// The token with what decides whether it counts, in one query (asked on every
    /// use of a token). A session of its sid counts as live when signed in, seen
    /// since `seen_since` and made since `made_since`.
    async fn oidc_token_facts(
        &self,
        hash: &TokenHash,
        seen_since: DateTime<Utc>,
        made_since: DateTime<Utc>,
    ) -> StoreResult<Option<TokenFacts>>;
    /// Marks an unused, unrevoked refresh token used (rotation), atomically; false
    /// when it was used or revoked already.
    async fn use_refresh_token(&self, hash: &TokenHash, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Revokes every token of a family (issued from one code); returns how many.
    async fn revoke_oidc_family(&self, family: &str, at: DateTime<Utc>) -> StoreResult<u64>;
    /// Revokes one token; false when it was revoked already or is unknown.
    async fn revoke_oidc_token(&self, hash: &TokenHash, at: DateTime<Utc>) -> StoreResult<bool>;
    /// Uses a pushed authorization request once: deletes and returns it (JSON)
    /// when it exists and `expires_at > now`.
    async fn take_oidc_request(
        &self,
        id: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<String>>;
}
