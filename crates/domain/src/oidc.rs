//! OpenID Connect provider: the keys ID tokens are signed with ([`keys`]), the
//! portals allowed to ask for them ([`client`]), the discovery document
//! ([`discovery`]), how a request is decided ([`authorize`]) and how strongly a
//! sign-in proved who it was ([`acr`]), codes and tokens ([`flow`]) and telling the
//! portals when a session ends ([`backchannel`]).

pub mod acr;
pub mod authorize;
pub mod backchannel;
pub mod client;
pub mod consent;
pub mod discovery;
pub mod flow;
pub mod keys;

pub use client::{ClientOptions, ClientSource, OidcClient};
pub use keys::{SigningAlg, SigningKey};

/// OIDC settings, filled from `[oidc]` by the binary.
#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// How long a retired signing key stays in the JWKS: longer than any ID token
    /// signed with it lives.
    pub key_retention: chrono::Duration,
    /// Clients registered in the configuration file (next to those in the database).
    pub clients: Vec<OidcClient>,
}

impl Default for OidcSettings {
    fn default() -> Self {
        Self {
            key_retention: chrono::Duration::hours(48),
            clients: Vec::new(),
        }
    }
}
