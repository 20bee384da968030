//! The OpenID Connect provider's keys and clients, as the engine sees them.

use super::Tweestap;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::oidc::client::{self, ClientOptions, ClientSource, OidcClient};
use crate::oidc::keys::{self, SigningAlg, SigningKey};
use crate::store::StoreError;
use serde_json::{json, Value};

/// A newly registered client and, for a confidential one, its secret: shown once,
/// never stored.
#[derive(Debug)]
pub struct NewClient {
    pub client: OidcClient,
    pub secret: Option<String>,
}

impl Tweestap {
    /// Audits what the server or its operator did to the provider itself (keys,
    /// clients): no account, no request.
    async fn audit_operation(&self, event: AuditEvent, detail: String) -> Result<()> {
        self.audit(event, None, None, &RequestContext::default(), Some(detail))
            .await
    }

    /// Generates a key pair off the async threads and seals its private half.
    async fn new_signing_key(&self, alg: SigningAlg) -> Result<SigningKey> {
        let generated = tokio::task::spawn_blocking(move || keys::generate(alg))
            .await
            .map_err(|e| Error::Signing(format!("key generation stopped: {e}")))?
            .map_err(|e| Error::Signing(e.to_string()))?;
        Ok(SigningKey {
            private_sealed: self
                .secrets
                .seal(&generated.pkcs8, generated.kid.as_bytes()),
            kid: generated.kid,
            alg,
            public_jwk: generated.public_jwk,
            created_at: self.clock.now(),
            retired_at: None,
        })
    }

    /// Makes sure there is an active signing key of every algorithm, generating the
    /// missing ones (on first start). Safe when several nodes start at once: the
    /// database refuses a second active key of an algorithm, and the loser simply
    /// uses the winner's.
    pub async fn ensure_signing_keys(&self) -> Result<()> {
        let existing = self.store.signing_keys().await?;
        for alg in SigningAlg::ALL {
            if existing.iter().any(|k| k.alg == alg && k.is_active()) {
                continue;
            }
            let key = self.new_signing_key(alg).await?;
            match self.store.insert_signing_key(&key).await {
                Ok(()) => {
                    tracing::info!(kid = %key.kid, %alg, "generated an ID token signing key");
                    self.audit_operation(
                        AuditEvent::SigningKeyGenerated,
                        format!("{alg} key {}", key.kid),
                    )
                    .await?;
                }
                Err(StoreError::Conflict) => {
                    tracing::debug!(%alg, "another node generated the signing key first")
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    /// A new active key per algorithm; the previous ones are retired now and stay
    /// published for `key_retention`. Returns the new keys.
    pub async fn rotate_signing_keys(&self) -> Result<Vec<SigningKey>> {
        let mut new = Vec::new();
        for alg in SigningAlg::ALL {
            let key = self.new_signing_key(alg).await?;
            match self.store.rotate_signing_key(&key, self.clock.now()).await {
                Err(StoreError::Conflict) => {
                    return Err(Error::Signing(format!(
                        "another rotation of the {alg} key ran at the same time; run it again if needed"
                    )))
                }
                r => r?,
            }
            tracing::info!(kid = %key.kid, %alg, "rotated the ID token signing key");
            new.push(key);
        }
        let kids: Vec<String> = new
            .iter()
            .map(|k| format!("{} key {}", k.alg, k.kid))
            .collect();
        self.audit_operation(
            AuditEvent::SigningKeysRotated,
            format!("by the command line; new: {}", kids.join(", ")),
        )
        .await?;
        Ok(new)
    }

    /// Every stored signing key (active and retired), newest first.
    pub async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        Ok(self.store.signing_keys().await?)
    }

    /// The keys relying parties may still see: the active ones and those retired
    /// less than `key_retention` ago.
    pub async fn published_keys(&self) -> Result<Vec<SigningKey>> {
        let cutoff = self.clock.now() - self.settings.oidc.key_retention;
        Ok(self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .filter(|k| k.retired_at.is_none_or(|r| r > cutoff))
            .collect())
    }

    /// The JWK Set (RFC 7517) of the published keys.
    pub async fn jwks(&self) -> Result<Value> {
        let keys: Vec<Value> = self
            .published_keys()
            .await?
            .into_iter()
            .map(|k| k.public_jwk)
            .collect();
        Ok(json!({ "keys": keys }))
    }

    /// Deletes keys retired longer than `key_retention` ago; safe on every node.
    pub async fn purge_retired_signing_keys(&self) -> Result<u64> {
        let before = self.clock.now() - self.settings.oidc.key_retention;
        Ok(self.store.delete_retired_signing_keys(before).await?)
    }

    /// Signs `claims` as a JWS (compact) with the active key of `alg`; the header
    /// names the key's kid.
    pub async fn sign_id_token(&self, claims: &Value, alg: SigningAlg) -> Result<String> {
        self.sign_jwt(claims, alg, "JWT").await
    }

    /// Signs `claims` with the active key of `alg`, the header's `typ` given.
    pub async fn sign_jwt(&self, claims: &Value, alg: SigningAlg, typ: &str) -> Result<String> {
        let key = self
            .store
            .signing_keys()
            .await?
            .into_iter()
            .find(|k| k.alg == alg && k.is_active())
            .ok_or_else(|| Error::Signing(format!("there is no active {alg} key")))?;
        let pkcs8 = self.secrets.open(&key.private_sealed, key.kid.as_bytes())?;
        keys::sign_typed_jws(alg, &key.kid, &pkcs8, claims, typ)
            .map_err(|e| Error::Signing(e.to_string()))
    }

    // ---- clients ----------------------------------------------------------------

    /// The client with this id, from the configuration file or the database.
    pub async fn client(&self, id: &str) -> Result<Option<OidcClient>> {
        if let Some(c) = self.settings.oidc.clients.iter().find(|c| c.id == id) {
            return Ok(Some(c.clone()));
        }
        if client::validate_client_id(id).is_err() {
            return Ok(None);
        }
        Ok(self.store.client(id).await?)
    }

    /// Every client: those of the configuration file first, then the database's.
    pub async fn clients(&self) -> Result<Vec<OidcClient>> {
        let mut all = self.settings.oidc.clients.clone();
        all.extend(self.store.list_clients().await?);
        Ok(all)
    }

    /// Registers a client in the database. A confidential client gets a random
    /// secret, returned here once; only its SHA-256 is stored.
    pub async fn add_client(
        &self,
        name: &str,
        redirect_uris: &[String],
        public: bool,
        id_token_alg: SigningAlg,
        options: ClientOptions,
    ) -> Result<NewClient> {
        let secret = (!public).then(client::generate_client_secret);
        let c = OidcClient {
            id: client::generate_client_id(),
            name: name.trim().to_owned(),
            redirect_uris: redirect_uris.iter().map(|u| u.trim().to_owned()).collect(),
            secret_hash: secret.as_deref().map(client::secret_hash),
            created_at: Some(self.clock.now()),
            id_token_alg,
            source: ClientSource::Database,
            options,
        };
        c.validate().map_err(Error::InvalidClient)?;
        self.store.insert_client(&c).await?;
        self.audit_operation(
            AuditEvent::OidcClientAdded,
            format!(
                "by the command line: {} {:?} ({}, {}), redirect URIs {}, options {}",
                c.id,
                c.name,
                c.client_type(),
                c.id_token_alg,
                c.redirect_uris.join(" "),
                serde_json::to_string(&c.options).unwrap_or_default()
            ),
        )
        .await?;
        Ok(NewClient { client: c, secret })
    }

    /// Removes a client added with [`Self::add_client`]; those of the configuration
    /// file are removed there.
    pub async fn remove_client(&self, id: &str) -> Result<()> {
        if self.settings.oidc.clients.iter().any(|c| c.id == id) {
            return Err(Error::ClientInConfig(id.to_owned()));
        }
        if !self.store.delete_client(id).await? {
            return Err(Error::NotFound);
        }
        self.audit_operation(
            AuditEvent::OidcClientRemoved,
            format!("by the command line: {id}"),
        )
        .await?;
        Ok(())
    }

    /// Whether a browser app at `origin` may call the token and userinfo endpoints:
    /// when some client has a redirect URI there.
    pub async fn is_client_origin(&self, origin: &str) -> Result<bool> {
        Ok(self.clients().await?.iter().any(|c| c.has_origin(origin)))
    }

    /// Whether `secret` is the secret of `client`, compared in constant time.
    pub fn verify_client_secret(&self, client: &OidcClient, secret: &str) -> bool {
        client.verify_secret(secret)
    }
}
