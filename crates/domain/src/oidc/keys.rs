//! Signing keys for ID tokens: RS256 (RSA 2048) and ES256 (P-256).
//!
//! ring signs with both and makes the P-256 keys; ring cannot generate RSA keys, so
//! the `rsa` crate does only that (its private-key operations, subject of
//! RUSTSEC-2023-0071, are never used). Private keys are PKCS#8 DER, stored sealed
//! with the [`SecretBox`](crate::secret_box::SecretBox) under the kid; the public
//! half is kept as the JWK the JWKS endpoint publishes.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use rand::RngCore;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};
use serde_json::{json, Value};

/// Bits of a new RSA key.
pub const RSA_BITS: usize = 2048;

/// The JWS algorithms ID tokens are signed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SigningAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: the algorithm every relying party supports,
    /// hence the default (OpenID Connect Core §3.1.3.7).
    #[default]
    Rs256,
    /// ECDSA P-256 with SHA-256, for clients that ask for it.
    Es256,
}

impl SigningAlg {
    pub const ALL: [SigningAlg; 2] = [SigningAlg::Rs256, SigningAlg::Es256];

    pub fn as_str(self) -> &'static str {
        match self {
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// What people type (configuration, command line): the name in any case.
impl std::str::FromStr for SigningAlg {
    type Err = UnknownAlg;

    fn from_str(s: &str) -> Result<Self, UnknownAlg> {
        Self::parse(&s.trim().to_ascii_uppercase()).ok_or_else(|| UnknownAlg(s.to_owned()))
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0:?} is not an ID token algorithm here: give RS256 or ES256")]
pub struct UnknownAlg(pub String);

impl std::fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A signing key as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKey {
    /// Random; names the key in JWS headers and the JWKS.
    pub kid: String,
    pub alg: SigningAlg,
    /// The PKCS#8 DER private key, sealed with the kid as associated data.
    pub private_sealed: Vec<u8>,
    /// The public key as a JWK (kty, kid, alg, use and n/e or crv/x/y).
    pub public_jwk: Value,
    pub created_at: DateTime<Utc>,
    /// When a newer key took over; the key is still published for a while.
    pub retired_at: Option<DateTime<Utc>>,
}

impl SigningKey {
    pub fn is_active(&self) -> bool {
        self.retired_at.is_none()
    }
}

/// A freshly generated key pair, before sealing.
pub struct GeneratedKey {
    pub kid: String,
    pub alg: SigningAlg,
    /// PKCS#8 DER. Never stored as is.
    pub pkcs8: Vec<u8>,
    pub public_jwk: Value,
}

impl std::fmt::Debug for GeneratedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratedKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("generating a {0} key failed")]
    Generate(SigningAlg),
    #[error("the stored {0} key is not usable: {1}")]
    Rejected(SigningAlg, String),
    #[error("signing failed")]
    Sign,
}

fn random_kid() -> String {
    let mut b = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut b);
    B64.encode(b)
}

/// Generates a key pair of `alg` with a new random kid. RSA generation takes a
/// while (tens of milliseconds to a second): call it off the async threads.
pub fn generate(alg: SigningAlg) -> Result<GeneratedKey, KeyError> {
    let kid = random_kid();
    match alg {
        SigningAlg::Rs256 => {
            use rsa::pkcs8::EncodePrivateKey;
            use rsa::traits::PublicKeyParts;
            let key = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, RSA_BITS)
                .map_err(|_| KeyError::Generate(alg))?;
            let der = key.to_pkcs8_der().map_err(|_| KeyError::Generate(alg))?;
            let public_jwk = json!({
                "kty": "RSA",
                "kid": kid,
                "alg": alg.as_str(),
                "use": "sig",
                "n": B64.encode(key.n().to_bytes_be()),
                "e": B64.encode(key.e().to_bytes_be()),
            });
            let pkcs8 = der.as_bytes().to_vec();
            // What ring cannot load would fail at the first sign-in: refuse it now.
            RsaKeyPair::from_pkcs8(&pkcs8).map_err(|_| KeyError::Generate(alg))?;
            Ok(GeneratedKey {
                kid,
                alg,
                pkcs8,
                public_jwk,
            })
        }
        SigningAlg::Es256 => {
            let rng = ring::rand::SystemRandom::new();
            let doc =
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| KeyError::Generate(alg))?;
            let pair = EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                doc.as_ref(),
                &rng,
            )
            .map_err(|_| KeyError::Generate(alg))?;
            // Uncompressed point: 0x04 || x || y, 32 bytes each.
            let point = pair.public_key().as_ref();
            if point.len() != 65 || point[0] != 4 {
                return Err(KeyError::Generate(alg));
            }
            let public_jwk = json!({
                "kty": "EC",
                "kid": kid,
                "alg": alg.as_str(),
                "use": "sig",
                "crv": "P-256",
                "x": B64.encode(&point[1..33]),
                "y": B64.encode(&point[33..65]),
            });
            Ok(GeneratedKey {
                kid,
                alg,
                pkcs8: doc.as_ref().to_vec(),
                public_jwk,
            })
        }
    }
}

/// Signs `claims` as a JWS in compact form, with `kid` in the header.
pub fn sign_jws(
    alg: SigningAlg,
    kid: &str,
    pkcs8: &[u8],
    claims: &Value,
) -> Result<String, KeyError> {
    sign_typed_jws(alg, kid, pkcs8, claims, "JWT")
}

/// [`sign_jws`] with the header's `typ` given (`logout+jwt` for logout tokens).
pub fn sign_typed_jws(
    alg: SigningAlg,
    kid: &str,
    pkcs8: &[u8],
    claims: &Value,
    typ: &str,
) -> Result<String, KeyError> {
    let header = json!({ "alg": alg.as_str(), "typ": typ, "kid": kid });
    let input = format!(
        "{}.{}",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    );
    let rng = ring::rand::SystemRandom::new();
    let signature = match alg {
        SigningAlg::Rs256 => {
            let pair = RsaKeyPair::from_pkcs8(pkcs8)
                .map_err(|e| KeyError::Rejected(alg, e.to_string()))?;
            let mut sig = vec![0u8; pair.public().modulus_len()];
            pair.sign(
                &signature::RSA_PKCS1_SHA256,
                &rng,
                input.as_bytes(),
                &mut sig,
            )
            .map_err(|_| KeyError::Sign)?;
            sig
        }
        SigningAlg::Es256 => {
            let pair =
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8, &rng)
                    .map_err(|e| KeyError::Rejected(alg, e.to_string()))?;
            pair.sign(&rng, input.as_bytes())
                .map_err(|_| KeyError::Sign)?
                .as_ref()
                .to_vec()
        }
    };
    Ok(format!("{input}.{}", B64.encode(signature)))
}

/// Verifies a compact JWS signed by one of `keys` (matched by the header's kid and
/// alg); its claims when the signature holds. Expiry is the caller's business.
pub fn verify_jws(token: &str, keys: &[SigningKey]) -> Option<Value> {
    let mut parts = token.split('.');
    let (h, c, s) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let header: Value = serde_json::from_slice(&B64.decode(h).ok()?).ok()?;
    let key = keys
        .iter()
        .find(|k| header["kid"].as_str() == Some(k.kid.as_str()))?;
    if header["alg"].as_str() != Some(key.alg.as_str()) {
        return None;
    }
    let sig = B64.decode(s).ok()?;
    let msg = format!("{h}.{c}");
    let jwk = &key.public_jwk;
    let part = |k: &str| B64.decode(jwk[k].as_str()?).ok();
    let ok = match key.alg {
        SigningAlg::Rs256 => signature::RsaPublicKeyComponents {
            n: part("n")?,
            e: part("e")?,
        }
        .verify(&signature::RSA_PKCS1_2048_8192_SHA256, msg.as_bytes(), &sig)
        .is_ok(),
        SigningAlg::Es256 => {
            let mut point = vec![4u8];
            point.extend(part("x")?);
            point.extend(part("y")?);
            signature::UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(msg.as_bytes(), &sig)
                .is_ok()
        }
    };
    if !ok {
        return None;
    }
    serde_json::from_slice(&B64.decode(c).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};

    /// Checks a token with jsonwebtoken, from the JWK's published parts only.
    pub(crate) fn verify_with_jwk(token: &str, jwk: &Value) -> Value {
        let s = |k: &str| jwk[k].as_str().expect(k).to_owned();
        let (key, alg) = match s("kty").as_str() {
            "RSA" => (
                DecodingKey::from_rsa_components(&s("n"), &s("e")).unwrap(),
                Algorithm::RS256,
            ),
            "EC" => (
                DecodingKey::from_ec_components(&s("x"), &s("y")).unwrap(),
                Algorithm::ES256,
            ),
            other => panic!("kty {other}"),
        };
        let mut v = Validation::new(alg);
        v.set_audience(&["portal"]);
        v.set_issuer(&["https://login.example"]);
        decode::<Value>(token, &key, &v).unwrap().claims
    }

    fn claims() -> Value {
        json!({
            "iss": "https://login.example",
            "aud": "portal",
            "sub": "abc",
            "exp": Utc::now().timestamp() + 600,
        })
    }

    #[test]
    fn both_algorithms_sign_what_their_published_jwk_verifies() {
        for alg in SigningAlg::ALL {
            let k = generate(alg).unwrap();
            assert_eq!(k.public_jwk["kid"], k.kid.as_str());
            assert_eq!(k.public_jwk["alg"], alg.as_str());
            assert_eq!(k.public_jwk["use"], "sig");
            let token = sign_jws(alg, &k.kid, &k.pkcs8, &claims()).unwrap();
            let header = decode_header(&token).unwrap();
            assert_eq!(header.kid.as_deref(), Some(k.kid.as_str()));
            assert_eq!(verify_with_jwk(&token, &k.public_jwk)["sub"], "abc");
            // Another key of the same algorithm does not verify it.
            let other = generate(alg).unwrap();
            let mut v = Validation::new(if alg == SigningAlg::Rs256 {
                Algorithm::RS256
            } else {
                Algorithm::ES256
            });
            v.set_audience(&["portal"]);
            let key = match alg {
                SigningAlg::Rs256 => DecodingKey::from_rsa_components(
                    other.public_jwk["n"].as_str().unwrap(),
                    other.public_jwk["e"].as_str().unwrap(),
                ),
                SigningAlg::Es256 => DecodingKey::from_ec_components(
                    other.public_jwk["x"].as_str().unwrap(),
                    other.public_jwk["y"].as_str().unwrap(),
                ),
            }
            .unwrap();
            assert!(decode::<Value>(&token, &key, &v).is_err());
        }
    }

    #[test]
    fn rsa_keys_have_the_promised_size_and_kids_differ() {
        let a = generate(SigningAlg::Rs256).unwrap();
        let n = B64.decode(a.public_jwk["n"].as_str().unwrap()).unwrap();
        assert_eq!(n.len() * 8, RSA_BITS);
        assert_eq!(a.public_jwk["e"], "AQAB");
        let b = generate(SigningAlg::Es256).unwrap();
        assert_ne!(a.kid, b.kid);
        assert_eq!(b.public_jwk["crv"], "P-256");
        assert!(sign_jws(SigningAlg::Rs256, "x", &b.pkcs8, &claims()).is_err());
    }

    #[test]
    fn algorithms_parse_back() {
        for a in SigningAlg::ALL {
            assert_eq!(SigningAlg::parse(a.as_str()), Some(a));
        }
        assert_eq!(SigningAlg::parse("none"), None);
        assert_eq!(SigningAlg::parse("HS256"), None);
        assert_eq!(" es256".parse::<SigningAlg>().ok(), Some(SigningAlg::Es256));
        assert!("HS256".parse::<SigningAlg>().is_err());
    }
}
