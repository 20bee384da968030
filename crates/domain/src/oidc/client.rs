//! The portals (relying parties) that may send people here to sign in.
//!
//! A client is registered in the configuration file or with `tweestap client add`.
//! Its redirect URIs are checked when registered (absolute https, or http to a
//! loopback host only; no fragment) and later matched exactly, byte for byte, so
//! nothing can turn tweestap into an open redirect. A confidential client's secret
//! is kept only as its SHA-256 and compared in constant time.

use super::keys::SigningAlg;
use crate::token::{hex, Token};
use chrono::{DateTime, Utc};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Where a client was registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    /// `[[oidc.clients]]` in the configuration file.
    Config,
    /// `tweestap client add`.
    Database,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcClient {
    /// The `client_id`.
    pub id: String,
    /// Shown to people ("Sign in to <name>").
    pub name: String,
    /// Where authorization responses may go, each matched exactly.
    pub redirect_uris: Vec<String>,
    /// SHA-256 (hex) of the client secret; `None` for a public client (a browser or
    /// native app that cannot keep a secret, and must use PKCE).
    pub secret_hash: Option<String>,
    /// When it was added (`None` for clients from the configuration file).
    pub created_at: Option<DateTime<Utc>>,
    /// What its ID tokens are signed with (`id_token_signed_response_alg`).
    pub id_token_alg: SigningAlg,
    pub source: ClientSource,
    /// Everything else a registration may say (stored as one JSON document).
    pub options: ClientOptions,
}

/// What a client may be registered with beyond its redirect URIs and secret.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientOptions {
    /// Not the organisation's own portal: people are asked to consent to the scopes
    /// it wants (once, revocable in My Profile).
    pub third_party: bool,
    /// OIDC Back-Channel Logout 1.0: where logout tokens are POSTed when a session
    /// that signed in here ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<String>,
    /// Authorization requests only through Pushed Authorization Requests (RFC 9126).
    pub require_par: bool,
    /// A machine (no people): the `client_credentials` grant only.
    pub service: bool,
    /// A service's scopes: what its access tokens carry.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<String>,
    /// A service's audience: who its access tokens are for (the client id when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub audience: Vec<String>,
}

impl OidcClient {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    /// `public` or `confidential` (OAuth 2.0's client types), as shown and stored.
    pub fn client_type(&self) -> &'static str {
        if self.is_public() {
            "public"
        } else {
            "confidential"
        }
    }

    /// Whether `origin` (as a browser's `Origin` header gives it) is the origin of
    /// one of the redirect URIs: a browser app served from there may call the
    /// token and userinfo endpoints (CORS).
    pub fn has_origin(&self, origin: &str) -> bool {
        self.redirect_uris.iter().any(|u| {
            url::Url::parse(u).is_ok_and(|u| {
                let o = u.origin();
                o.is_tuple() && o.ascii_serialization() == origin
            })
        })
    }

    /// Whether `uri` is one of the registered redirect URIs, exactly.
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u == uri)
    }

    /// Whether `secret` is this client's secret, in constant time. Always false for
    /// public clients.
    pub fn verify_secret(&self, secret: &str) -> bool {
        let Some(stored) = &self.secret_hash else {
            return false;
        };
        let presented = secret_hash(secret);
        // Both are 64 lowercase hex digits; the length is no secret.
        presented.as_bytes().ct_eq(stored.as_bytes()).into()
    }

    /// Checks what a registration must satisfy; the reason in words otherwise.
    pub fn validate(&self) -> Result<(), String> {
        validate_client_id(&self.id)?;
        if self.name.trim().is_empty() {
            return Err(format!("client {}: give it a name", self.id));
        }
        self.validate_options()?;
        if self.options.service {
            return Ok(());
        }
        if self.redirect_uris.is_empty() {
            return Err(format!(
                "client {}: give at least one redirect URI",
                self.id
            ));
        }
        for u in &self.redirect_uris {
            validate_redirect_uri(u).map_err(|why| format!("client {}: {why}", self.id))?;
        }
        if let Some(h) = &self.secret_hash {
            if !is_sha256_hex(h) {
                return Err(format!(
                    "client {}: secret_hash must be the SHA-256 of the secret as 64 hex digits",
                    self.id
                ));
            }
        }
        Ok(())
    }
}

impl OidcClient {
    fn validate_options(&self) -> Result<(), String> {
        let o = &self.options;
        let id = &self.id;
        if let Some(u) = &o.backchannel_logout_uri {
            validate_redirect_uri(u)
                .map_err(|why| format!("client {id}: backchannel_logout_uri: {why}"))?;
        }
        if o.service {
            if self.is_public() {
                return Err(format!(
                    "client {id}: a service must be confidential (have a secret)"
                ));
            }
            if !self.redirect_uris.is_empty() || o.require_par || o.third_party {
                return Err(format!(
                    "client {id}: a service signs no people in: no redirect URIs, PAR or consent"
                ));
            }
            if o.backchannel_logout_uri.is_some() {
                return Err(format!(
                    "client {id}: a service has no sessions to log out of"
                ));
            }
        } else if !o.scopes.is_empty() || !o.audience.is_empty() {
            return Err(format!(
                "client {id}: scopes and audience are for services (service = true)"
            ));
        }
        for s in o.scopes.iter().chain(&o.audience) {
            let ok = !s.is_empty()
                && s.len() <= 200
                && s.bytes()
                    .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\');
            if !ok {
                return Err(format!(
                    "client {id}: {s:?} is not a valid scope or audience"
                ));
            }
        }
        Ok(())
    }

    /// The audience of a service's access tokens.
    pub fn service_audience(&self) -> Vec<String> {
        if self.options.audience.is_empty() {
            vec![self.id.clone()]
        } else {
            self.options.audience.clone()
        }
    }
}

/// The SHA-256 (lowercase hex) of a client secret: what is stored of it.
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A new random client id: 32 hex digits.
pub fn generate_client_id() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    hex(&b)
}

/// A new random client secret (256 bits, base64url), shown once.
pub fn generate_client_secret() -> String {
    Token::generate().as_str().to_owned()
}

/// Client ids are 1 to 128 URL-unreserved characters, so they travel unescaped in
/// query strings and HTTP Basic credentials.
pub fn validate_client_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "client id {id:?}: use 1 to 128 letters, digits, '-', '.', '_' or '~'"
        ))
    }
}

/// A redirect URI a client may register: an absolute `https` URL, or `http` to a
/// loopback host (127.0.0.0/8, [::1], localhost) for development and native apps;
/// no fragment and no user name or password in it.
pub fn validate_redirect_uri(uri: &str) -> Result<(), String> {
    // The URL parser drops tabs and line breaks; what is stored (and matched) is
    // the string as given, so it must hold none of them, nor spaces.
    if uri.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "redirect URI {uri:?} must not hold spaces, tabs, line breaks or other control characters"
        ));
    }
    let u = url::Url::parse(uri)
        .map_err(|e| format!("redirect URI {uri:?} is not an absolute URL: {e}"))?;
    if uri.contains('#') {
        return Err(format!("redirect URI {uri:?} must not have a fragment"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(format!(
            "redirect URI {uri:?} must not hold a user name or password"
        ));
    }
    let loopback = match u.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err(format!("redirect URI {uri:?} has no host")),
    };
    match u.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err(format!(
            "redirect URI {uri:?}: plain http is allowed only to localhost; use https"
        )),
        other => Err(format!(
            "redirect URI {uri:?}: the scheme {other:?} is not allowed; use https"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(secret: Option<&str>) -> OidcClient {
        OidcClient {
            id: "portal".into(),
            name: "Portaal".into(),
            redirect_uris: vec!["https://portal.example/cb".into()],
            secret_hash: secret.map(secret_hash),
            created_at: None,
            id_token_alg: SigningAlg::Rs256,
            source: ClientSource::Config,
            options: ClientOptions::default(),
        }
    }

    #[test]
    fn origins_are_those_of_the_redirect_uris() {
        let mut c = client(None);
        c.redirect_uris = vec![
            "https://portal.example/cb".into(),
            "http://127.0.0.1:3000/app/cb?x=1".into(),
            "https://portal.example:443/other".into(),
        ];
        assert!(c.has_origin("https://portal.example"));
        assert!(c.has_origin("http://127.0.0.1:3000"));
        for no in [
            "https://portal.example:8443",
            "http://portal.example",
            "https://evil.example",
            "http://127.0.0.1",
            "null",
            "",
            "https://portal.example/",
        ] {
            assert!(!c.has_origin(no), "{no}");
        }
    }

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        for ok in [
            "https://portal.example/cb",
            "https://portal.example:8443/oidc/callback?x=1",
            "http://127.0.0.1:9000/cb",
            "http://localhost/cb",
            "http://[::1]:8080/cb",
        ] {
            assert_eq!(validate_redirect_uri(ok), Ok(()), "{ok}");
        }
        for bad in [
            "http://portal.example/cb",
            "https://portal.example/cb#frag",
            "https://portal.example/cb#",
            "/cb",
            "portal.example/cb",
            "javascript:alert(1)",
            "ftp://portal.example/cb",
            "https://user:pw@portal.example/cb",
            "https://portal.example/c\tb",
            "https://portal.example/cb\n",
            "https://portal.example/c b",
            "https://portal.example/cb\u{85}",
            "http://127.0.0.1.evil.example/cb",
            "",
        ] {
            assert!(validate_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redirects_match_exactly() {
        let c = client(None);
        assert!(c.allows_redirect("https://portal.example/cb"));
        for other in [
            "https://portal.example/cb/",
            "https://portal.example/cb?x=1",
            "https://PORTAL.example/cb",
            "https://portal.example/c",
            "https://portal.example/cb#x",
        ] {
            assert!(!c.allows_redirect(other), "{other}");
        }
    }

    #[test]
    fn secrets_verify_by_hash_and_public_clients_have_none() {
        let secret = generate_client_secret();
        let c = client(Some(&secret));
        assert!(!c.is_public());
        assert!(c.verify_secret(&secret));
        assert!(!c.verify_secret(&format!("{secret}x")));
        assert!(!c.verify_secret(""));
        let p = client(None);
        assert!(p.is_public());
        assert!(!p.verify_secret(""));
        assert_ne!(generate_client_secret(), secret);
    }

    #[test]
    fn registrations_are_validated() {
        assert_eq!(client(Some("s")).validate(), Ok(()));
        let mut c = client(None);
        c.secret_hash = Some("ABC".into());
        assert!(c.validate().is_err());
        let mut c = client(None);
        c.redirect_uris.clear();
        assert!(c.validate().is_err());
        let mut c = client(None);
        c.name = " ".into();
        assert!(c.validate().is_err());
        for bad in ["", "a b", "a:b", "a/b", &"x".repeat(129)] {
            assert!(validate_client_id(bad).is_err(), "{bad}");
        }
        assert!(validate_client_id(&generate_client_id()).is_ok());
    }
}
