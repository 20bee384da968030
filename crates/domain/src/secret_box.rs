//! Authenticated encryption of secrets at rest (TOTP keys): XChaCha20-Poly1305,
//! stored as `nonce || ciphertext`, with the owning row's id as associated data so a
//! ciphertext cannot be moved to another factor.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

const NONCE_LEN: usize = 24;
pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the secret key must be {KEY_LEN} bytes")]
    BadKey,
    #[error("a stored secret could not be decrypted (wrong key or tampered data)")]
    Decrypt,
}

/// The server's master key. Sub-keys for other purposes are derived from it, so
/// operators have one secret to keep equal on every node.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(..)")
    }
}

impl MasterKey {
    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        let arr: [u8; KEY_LEN] = b.try_into().map_err(|_| CryptoError::BadKey)?;
        Ok(Self(arr))
    }

    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        rand::rngs::OsRng.fill_bytes(&mut k);
        Self(k)
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A purpose-bound sub-key: HMAC-SHA256(master, purpose).
    pub fn derive(&self, purpose: &str) -> [u8; KEY_LEN] {
        let mut m = hmac_sha256(&self.0);
        m.update(purpose.as_bytes());
        m.finalize().into_bytes().into()
    }
}

#[derive(Clone)]
pub struct SecretBox {
    cipher: XChaCha20Poly1305,
    /// Keys the MACs of short codes, which a plain hash would not protect.
    mac_key: [u8; KEY_LEN],
}

impl SecretBox {
    pub fn new(master: &MasterKey) -> Self {
        let key = master.derive("tweestap secret-box v1");
        Self {
            cipher: XChaCha20Poly1305::new((&key).into()),
            mac_key: master.derive("tweestap code-mac v1"),
        }
    }

    fn mac_of(&self, context: &[u8], code: &[u8]) -> Hmac<Sha256> {
        let mut m = hmac_sha256(&self.mac_key);
        // Length-prefixed, so (context, code) pairs cannot run into each other.
        m.update(&(context.len() as u64).to_be_bytes());
        m.update(context);
        m.update(code);
        m
    }

    /// HMAC-SHA256 (hex) of a short code bound to `context`: what the database
    /// keeps of a mailed code, useless without the server key.
    pub fn code_mac(&self, context: &[u8], code: &[u8]) -> String {
        crate::token::hex(&self.mac_of(context, code).finalize().into_bytes())
    }

    /// Whether `code` has the stored MAC, compared in constant time.
    pub fn code_matches(&self, context: &[u8], code: &[u8], stored_hex: &str) -> bool {
        let Some(stored) = unhex(stored_hex) else {
            return false;
        };
        self.mac_of(context, code).verify_slice(&stored).is_ok()
    }

    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let payload = Payload {
            msg: plaintext,
            aad,
        };
        #[allow(
            clippy::expect_used,
            reason = "XChaCha20-Poly1305 only refuses messages over 256 GiB; ours are short"
        )]
        let ct = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), payload)
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ct);
        out
    }

    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if sealed.len() < NONCE_LEN {
            return Err(CryptoError::Decrypt);
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .map_err(|_| CryptoError::Decrypt)
    }
}

/// An HMAC-SHA256 keyed with one of our 32-byte keys.
#[allow(
    clippy::expect_used,
    reason = "new_from_slice only fails for fixed-size-key MACs; HMAC takes keys of any length"
)]
pub fn hmac_sha256(key: &[u8; KEY_LEN]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length")
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_tamper_detection() {
        let b = SecretBox::new(&MasterKey::generate());
        let sealed = b.seal(b"secret", b"factor-1");
        assert_eq!(b.open(&sealed, b"factor-1").unwrap(), b"secret");
        assert_eq!(b.open(&sealed, b"factor-2"), Err(CryptoError::Decrypt));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(b.open(&bad, b"factor-1"), Err(CryptoError::Decrypt));
        let other = SecretBox::new(&MasterKey::generate());
        assert_eq!(other.open(&sealed, b"factor-1"), Err(CryptoError::Decrypt));
        assert_eq!(b.open(b"short", b""), Err(CryptoError::Decrypt));
    }

    #[test]
    fn code_macs_bind_the_context_and_need_the_key() {
        let b = SecretBox::new(&MasterKey::generate());
        let mac = b.code_mac(b"session-1", b"123456");
        assert!(b.code_matches(b"session-1", b"123456", &mac));
        assert!(!b.code_matches(b"session-1", b"123457", &mac));
        assert!(!b.code_matches(b"session-2", b"123456", &mac));
        assert!(!b.code_matches(b"session-1", b"123456", "zz"));
        let other = SecretBox::new(&MasterKey::generate());
        assert!(!other.code_matches(b"session-1", b"123456", &mac));
    }

    #[test]
    fn derived_keys_differ_by_purpose() {
        let m = MasterKey::generate();
        assert_ne!(m.derive("a"), m.derive("b"));
        assert_eq!(m.derive("a"), m.derive("a"));
        assert!(MasterKey::from_bytes(&[0u8; 31]).is_err());
    }
}
