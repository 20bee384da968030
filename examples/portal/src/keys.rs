//! The provider's signing keys (its JWKS, from discovery's `jwks_uri`), shared by
//! the ID token and logout token checks. A token naming a key Loket does not know
//! makes it fetch the set again (tweestap rotated its keys), at most every 10 s so
//! that forged tokens cannot make Loket hammer tweestap.

use openidconnect::core::{CoreJsonWebKey, CoreJsonWebKeySet, CoreProviderMetadata};
use openidconnect::{JsonWebKey, JsonWebKeyId, JsonWebKeySetUrl};
use std::sync::{Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

/// Unknown keys fetch the JWKS again at most this often.
const REFETCH_EVERY: Duration = Duration::from_secs(10);

pub(crate) struct Keys {
    uri: JsonWebKeySetUrl,
    set: RwLock<CoreJsonWebKeySet>,
    fetched: Mutex<Option<Instant>>,
}

impl Keys {
    /// The keys discovery fetched.
    pub(crate) fn new(metadata: &CoreProviderMetadata) -> Self {
        Self {
            uri: metadata.jwks_uri().clone(),
            set: RwLock::new(metadata.jwks().clone()),
            fetched: Mutex::new(None),
        }
    }

    /// The whole set as it stands.
    pub(crate) fn current(&self) -> CoreJsonWebKeySet {
        self.set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The keys with this `kid` (all without one); `verify_signature` checks each
    /// key's type and use against the token's `alg`.
    pub(crate) fn with_id(&self, kid: Option<&JsonWebKeyId>) -> Vec<CoreJsonWebKey> {
        self.set
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .iter()
            .filter(|k| kid.is_none() || k.key_id() == kid)
            .cloned()
            .collect()
    }

    /// Fetches the JWKS again, unless that was done a moment ago.
    pub(crate) async fn refetch(&self, http: &openidconnect::reqwest::Client) {
        {
            let mut fetched = self.fetched.lock().unwrap_or_else(PoisonError::into_inner);
            if fetched.is_some_and(|t| t.elapsed() < REFETCH_EVERY) {
                return;
            }
            *fetched = Some(Instant::now());
        }
        match CoreJsonWebKeySet::fetch_async(&self.uri, http).await {
            Ok(set) => *self.set.write().unwrap_or_else(PoisonError::into_inner) = set,
            Err(e) => eprintln!(
                "loket: fetching the JWKS failed: {}",
                crate::error_chain(&e)
            ),
        }
    }
}
