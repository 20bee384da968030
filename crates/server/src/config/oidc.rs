//! `[oidc]`: the OpenID Connect provider's key retention and the clients
//! registered in the configuration file.

use serde::Deserialize;
use tweestap_domain::oidc::client::{secret_hash, OidcClient};
use tweestap_domain::oidc::keys::UnknownAlg;
use tweestap_domain::oidc::{ClientOptions, ClientSource, OidcSettings, SigningAlg};

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OidcConfig {
    /// Hours a retired signing key stays in the JWKS after `tweestap keys rotate`;
    /// longer than any ID token lives.
    pub key_retention_hours: u32,
    /// `[[oidc.clients]]`.
    pub clients: Vec<ClientConfig>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        Self {
            key_retention_hours: 48,
            clients: Vec::new(),
        }
    }
}

/// A client in the configuration file. A confidential client names its secret by
/// `secret_hash` (the SHA-256 of the secret, hex) or `secret_env` (an environment
/// variable holding the secret itself), so the file never holds it in the clear.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientConfig {
    pub id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    pub public: bool,
    pub secret_hash: Option<String>,
    pub secret_env: Option<String>,
    /// What the client's ID tokens are signed with: "RS256" (the default) or
    /// "ES256" (`id_token_signed_response_alg`).
    pub id_token_signed_response_alg: Option<String>,
    /// Not the organisation's own: people consent to its scopes first.
    pub third_party: bool,
    /// Where logout tokens go when a session that signed in here ends.
    pub backchannel_logout_uri: Option<String>,
    /// Only Pushed Authorization Requests (RFC 9126) are accepted from it.
    pub require_par: bool,
    /// A machine client: the client_credentials grant, with these scopes and audience.
    pub service: bool,
    pub scopes: Vec<String>,
    pub audience: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("[oidc]: {0}")]
pub struct OidcConfigError(pub String);

impl ClientConfig {
    fn client(&self) -> Result<OidcClient, OidcConfigError> {
        let e = |m: String| OidcConfigError(m);
        let hash = match (self.public, &self.secret_hash, &self.secret_env) {
            (true, None, None) => None,
            (true, _, _) => {
                return Err(e(format!(
                    "client {}: a public client has no secret; remove secret_hash and secret_env",
                    self.id
                )))
            }
            (false, Some(h), None) => Some(h.trim().to_ascii_lowercase()),
            (false, None, Some(var)) => {
                let secret = std::env::var(var)
                    .ok()
                    .filter(|s| !s.is_empty())
                    .ok_or_else(|| {
                        e(format!(
                            "client {}: the environment variable {var} (secret_env) is not set",
                            self.id
                        ))
                    })?;
                Some(secret_hash(&secret))
            }
            (false, None, None) => {
                return Err(e(format!(
                    "client {}: give secret_hash or secret_env, or set public = true",
                    self.id
                )))
            }
            (false, Some(_), Some(_)) => {
                return Err(e(format!(
                    "client {}: give secret_hash or secret_env, not both",
                    self.id
                )))
            }
        };
        let id_token_alg = match &self.id_token_signed_response_alg {
            None => SigningAlg::default(),
            Some(a) => a.parse().map_err(|why: UnknownAlg| {
                e(format!(
                    "client {}: id_token_signed_response_alg: {why}",
                    self.id
                ))
            })?,
        };
        let c = OidcClient {
            id: self.id.trim().to_owned(),
            name: self.name.trim().to_owned(),
            redirect_uris: self
                .redirect_uris
                .iter()
                .map(|u| u.trim().to_owned())
                .collect(),
            secret_hash: hash,
            created_at: None,
            id_token_alg,
            source: ClientSource::Config,
            options: ClientOptions {
                third_party: self.third_party,
                backchannel_logout_uri: self
                    .backchannel_logout_uri
                    .as_deref()
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(str::to_owned),
                require_par: self.require_par,
                service: self.service,
                scopes: self.scopes.iter().map(|s| s.trim().to_owned()).collect(),
                audience: self.audience.iter().map(|s| s.trim().to_owned()).collect(),
            },
        };
        c.validate().map_err(e)?;
        Ok(c)
    }
}

impl OidcConfig {
    /// The domain's settings; reads `secret_env` variables and checks every client.
    pub fn settings(&self) -> Result<OidcSettings, OidcConfigError> {
        let mut clients: Vec<OidcClient> = Vec::new();
        for c in &self.clients {
            let client = c.client()?;
            if clients.iter().any(|o| o.id == client.id) {
                return Err(OidcConfigError(format!(
                    "client id {} is registered twice",
                    client.id
                )));
            }
            clients.push(client);
        }
        Ok(OidcSettings {
            key_retention: chrono::Duration::hours(i64::from(self.key_retention_hours)),
            clients,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<OidcSettings, OidcConfigError> {
        toml::from_str::<crate::config::Config>(toml)
            .unwrap()
            .oidc
            .settings()
    }

    #[test]
    fn clients_from_the_file() {
        let hash = secret_hash("geheim");
        let s = parse(&format!(
            "[oidc]\nkey_retention_hours = 72\n\
             [[oidc.clients]]\nid = \"portaal\"\nname = \"Portaal\"\n\
             redirect_uris = [\"https://portaal.example/cb\"]\nsecret_hash = \"{}\"\n\
             [[oidc.clients]]\nid = \"spa\"\nname = \"App\"\n\
             redirect_uris = [\"http://localhost:3000/cb\"]\npublic = true\n\
             id_token_signed_response_alg = \"ES256\"\n",
            hash.to_uppercase()
        ))
        .unwrap();
        assert_eq!(s.key_retention, chrono::Duration::hours(72));
        assert_eq!(s.clients.len(), 2);
        assert!(s.clients[0].verify_secret("geheim"));
        assert_eq!(s.clients[0].id_token_alg, SigningAlg::Rs256);
        assert!(s.clients[1].is_public());
        assert_eq!(s.clients[1].id_token_alg, SigningAlg::Es256);
    }

    #[test]
    fn secrets_from_the_environment() {
        std::env::set_var("TWEESTAP_TEST_OIDC_SECRET_A", "uit-de-omgeving");
        let s = parse(
            "[[oidc.clients]]\nid = \"p\"\nname = \"P\"\n\
             redirect_uris = [\"https://p.example/cb\"]\nsecret_env = \"TWEESTAP_TEST_OIDC_SECRET_A\"\n",
        )
        .unwrap();
        assert!(s.clients[0].verify_secret("uit-de-omgeving"));
        let err = parse(
            "[[oidc.clients]]\nid = \"p\"\nname = \"P\"\n\
             redirect_uris = [\"https://p.example/cb\"]\nsecret_env = \"TWEESTAP_TEST_OIDC_UNSET\"\n",
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("TWEESTAP_TEST_OIDC_UNSET"),
            "{err}"
        );
    }

    #[test]
    fn bad_clients_stop_the_start_with_a_reason() {
        let base = "[[oidc.clients]]\nid = \"p\"\nname = \"P\"\n";
        for (rest, says) in [
            (
                "redirect_uris = [\"http://p.example/cb\"]\npublic = true\n",
                "http",
            ),
            (
                "redirect_uris = [\"https://p.example/cb#x\"]\npublic = true\n",
                "fragment",
            ),
            (
                "redirect_uris = [\"https://p.example/cb\"]\n",
                "secret_hash",
            ),
            (
                "redirect_uris = [\"https://p.example/cb\"]\npublic = true\nsecret_hash = \"ab\"\n",
                "public",
            ),
            (
                "redirect_uris = [\"https://p.example/cb\"]\npublic = true\nid_token_signed_response_alg = \"HS256\"\n",
                "RS256 or ES256",
            ),
            (
                "redirect_uris = [\"https://p.example/cb\"]\nsecret_hash = \"ab\"\n",
                "64 hex",
            ),
            ("redirect_uris = []\npublic = true\n", "redirect URI"),
        ] {
            let err = parse(&format!("{base}{rest}")).unwrap_err().to_string();
            assert!(err.contains(says), "{rest}: {err}");
        }
        let twice = format!(
            "{base}redirect_uris = [\"https://p.example/cb\"]\npublic = true\n\
             {base}redirect_uris = [\"https://p.example/cb\"]\npublic = true\n"
        );
        assert!(parse(&twice).unwrap_err().to_string().contains("twice"));
    }
}
