//! Authenticated encryption of secrets at rest (TOTP keys, phone numbers, signing
//! keys, links in queued mail): XChaCha20-Poly1305 under an at-rest key, with the
//! owning row's id as associated data so a ciphertext cannot be moved to another
//! row. Sealed values name their key ([`at_rest`]), so a node can hold two while
//! `tweestap keys rotate-secret` re-seals everything under a new one.

mod at_rest;

pub use at_rest::{key_id_of, AtRestKey, KeyId, Keyring};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::sync::{Arc, RwLock};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

pub const KEY_LEN: usize = 32;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("the secret key must be {KEY_LEN} bytes")]
    BadKey,
    #[error("a stored secret could not be decrypted (wrong key or tampered data)")]
    Decrypt,
    #[error("a stored secret is sealed under at-rest key {0}, which this node does not hold (is at-rest.key.next missing from its data directory?)")]
    UnknownKey(String),
}

/// The server's master key. Sub-keys for other purposes are derived from it, so
/// operators have one secret to keep equal on every node. Wiped from memory when
/// dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
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
        let mut k = Self([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(&mut k.0);
        k
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.0
    }

    /// A purpose-bound sub-key: HMAC-SHA256(master, purpose). Callers that keep it
    /// wrap it in [`Zeroizing`].
    pub fn derive(&self, purpose: &str) -> [u8; KEY_LEN] {
        let mut m = hmac_sha256(&self.0);
        m.update(purpose.as_bytes());
        m.finalize().into_bytes().into()
    }
}

/// Reads a node's at-rest keys again (from its key files), for a rotation that
/// another process started.
pub type KeyReload = Arc<dyn Fn() -> Result<Keyring, String> + Send + Sync>;

/// Seals and opens secrets at rest, and keys the MACs of short codes. Clones share
/// their keys: a reload seen by one is seen by all.
#[derive(Clone)]
pub struct SecretBox {
    keys: Arc<RwLock<Arc<Keyring>>>,
    reload: Option<KeyReload>,
    /// Keys the MACs of short codes, which a plain hash would not protect. Derived
    /// from the master key, and never rotated: only the MACs of recovery codes are
    /// stored, so they could not be computed again under another key.
    mac_key: Arc<Zeroizing<[u8; KEY_LEN]>>,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretBox")
            .field("keys", &self.keyring())
            .finish_non_exhaustive()
    }
}

impl SecretBox {
    /// Sealing with the key derived from `master`: before any rotation.
    pub fn new(master: &MasterKey) -> Self {
        Self::with_keys(master, Keyring::new(AtRestKey::derived(master), None))
    }

    /// Sealing with `keys` (see `tweestap keys rotate-secret`); the MACs of codes
    /// stay keyed by `master`.
    pub fn with_keys(master: &MasterKey, keys: Keyring) -> Self {
        Self {
            keys: Arc::new(RwLock::new(Arc::new(keys))),
            reload: None,
            mac_key: Arc::new(Zeroizing::new(master.derive("tweestap code-mac v1"))),
        }
    }

    /// Reads the keys again with `reload` when a value names a key this box lacks
    /// (and whenever [`SecretBox::reload`] is called).
    pub fn reloading(mut self, reload: KeyReload) -> Self {
        self.reload = Some(reload);
        self
    }

    /// The keys now held.
    pub fn keyring(&self) -> Arc<Keyring> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The key new secrets are sealed with.
    pub fn sealing_key(&self) -> KeyId {
        self.keyring().sealing_id()
    }

    /// Reads the keys again (nothing without a reload function). Keys held before
    /// stay held, for opening, until the process ends; the sealing key is the one
    /// read. Whether the sealing key changed.
    pub fn reload(&self) -> Result<bool, String> {
        let Some(reload) = &self.reload else {
            return Ok(false);
        };
        let read = reload()?;
        let mut held = self.keys.write().unwrap_or_else(|e| e.into_inner());
        let before = held.sealing_id();
        let now = read.keeping(&held);
        let changed = now.sealing_id() != before;
        *held = Arc::new(now);
        if changed {
            tracing::info!(key = %held.sealing_id(), "new secrets are sealed under another at-rest key");
        }
        Ok(changed)
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

    /// Seals under the sealing key, naming it.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        self.keyring().seal(plaintext, aad)
    }

    /// Opens with the key the value names (reading the keys again once when it is
    /// not held, as when another process has just started a rotation). The
    /// plaintext is wiped from memory when dropped.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        match self.keyring().open(sealed, aad) {
            Err(CryptoError::UnknownKey(id)) if self.reload.is_some() => {
                if let Err(e) = self.reload() {
                    tracing::warn!(error = %e, "reading the at-rest keys again failed");
                    return Err(CryptoError::UnknownKey(id));
                }
                self.keyring().open(sealed, aad).map(Zeroizing::new)
            }
            r => r.map(Zeroizing::new),
        }
    }

    /// Whether `sealed` is sealed under the sealing key already.
    pub fn is_current(&self, sealed: &[u8]) -> bool {
        key_id_of(sealed) == Some(self.sealing_key())
    }

    /// `sealed` opened and sealed again under the sealing key; `None` when it is
    /// sealed under it already.
    pub fn reseal(&self, sealed: &[u8], aad: &[u8]) -> Result<Option<Vec<u8>>, CryptoError> {
        if self.is_current(sealed) {
            return Ok(None);
        }
        let plain = self.open(sealed, aad)?;
        Ok(Some(self.seal(&plain, aad)))
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
        assert_eq!(b.open(&sealed, b"factor-1").unwrap().as_slice(), b"secret");
        assert_eq!(b.open(&sealed, b"factor-2"), Err(CryptoError::Decrypt));
        let mut bad = sealed.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert_eq!(b.open(&bad, b"factor-1"), Err(CryptoError::Decrypt));
        // The key id is authenticated too.
        let mut renamed = sealed.clone();
        renamed[5] ^= 1;
        assert!(b.open(&renamed, b"factor-1").is_err());
        let other = SecretBox::new(&MasterKey::generate());
        assert_eq!(
            other.open(&sealed, b"factor-1"),
            Err(CryptoError::UnknownKey(b.sealing_key().to_string()))
        );
        assert_eq!(b.open(b"short", b""), Err(CryptoError::Decrypt));
    }

    #[test]
    fn values_name_their_key_and_old_values_still_open() {
        let master = MasterKey::generate();
        let b = SecretBox::new(&master);
        let sealed = b.seal(b"secret", b"factor-1");
        assert_eq!(key_id_of(&sealed), Some(AtRestKey::derived(&master).id()));
        assert!(b.is_current(&sealed));
        // Sealed by the first version: nonce || ciphertext, no key id.
        let old = at_rest::seal_legacy(&master, b"old secret", b"factor-2");
        assert_eq!(key_id_of(&old), None);
        assert!(!b.is_current(&old));
        assert_eq!(b.open(&old, b"factor-2").unwrap().as_slice(), b"old secret");
        assert_eq!(b.open(&old, b"factor-1"), Err(CryptoError::Decrypt));
        // A random key never opens an old value: only the derived key does.
        let random = SecretBox::with_keys(&master, Keyring::new(AtRestKey::generate(), None));
        assert_eq!(random.open(&old, b"factor-2"), Err(CryptoError::Decrypt));
    }

    #[test]
    fn during_a_rotation_both_keys_open_and_the_next_one_seals() {
        let master = MasterKey::generate();
        let next = AtRestKey::generate();
        let before = SecretBox::new(&master);
        let old_new = before.seal(b"made before", b"a");
        let old_legacy = at_rest::seal_legacy(&master, b"made long before", b"b");
        let both = SecretBox::with_keys(
            &master,
            Keyring::new(AtRestKey::derived(&master), Some(next.clone())),
        );
        assert_eq!(both.sealing_key(), next.id());
        let made_now = both.seal(b"made now", b"c");
        assert_eq!(key_id_of(&made_now), Some(next.id()));
        assert_eq!(both.reseal(&made_now, b"c").unwrap(), None);
        for (sealed, aad, plain) in [
            (&old_new, b"a", &b"made before"[..]),
            (&old_legacy, b"b", b"made long before"),
        ] {
            assert_eq!(both.open(sealed, aad).unwrap().as_slice(), plain);
            let moved = both.reseal(sealed, aad).unwrap().expect("re-sealed");
            assert_eq!(key_id_of(&moved), Some(next.id()));
            // Afterwards only the new key opens it.
            let only_next = SecretBox::with_keys(&master, Keyring::new(next.clone(), None));
            assert_eq!(only_next.open(&moved, aad).unwrap().as_slice(), plain);
            assert!(before.open(&moved, aad).is_err());
        }
        // The MACs of codes do not change with the at-rest key.
        assert_eq!(
            both.code_mac(b"x", b"123456"),
            before.code_mac(b"x", b"123456")
        );
    }

    #[test]
    fn a_node_reads_its_keys_again_for_a_value_it_cannot_open() {
        let master = MasterKey::generate();
        let next = AtRestKey::generate();
        let on_disk = Arc::new(std::sync::Mutex::new(Keyring::new(
            AtRestKey::derived(&master),
            None,
        )));
        let read = on_disk.clone();
        let node =
            SecretBox::new(&master).reloading(Arc::new(move || Ok(read.lock().unwrap().clone())));
        let old = node.seal(b"old", b"a");
        // Another process starts a rotation: its key file appears, it re-seals.
        *on_disk.lock().unwrap() = Keyring::new(AtRestKey::derived(&master), Some(next.clone()));
        let rotator = SecretBox::with_keys(&master, on_disk.lock().unwrap().clone());
        let moved = rotator.reseal(&old, b"a").unwrap().unwrap();
        assert_eq!(node.open(&moved, b"a").unwrap().as_slice(), b"old");
        assert_eq!(node.sealing_key(), next.id());
        // The rotation ends: only the new key on disk. The node keeps the old one
        // until it restarts, and seals under the new one.
        *on_disk.lock().unwrap() = Keyring::new(next.clone(), None);
        assert_eq!(node.reload(), Ok(false));
        assert_eq!(node.open(&old, b"a").unwrap().as_slice(), b"old");
        assert_eq!(key_id_of(&node.seal(b"x", b"y")), Some(next.id()));
        // A clone shares the keys.
        assert!(node.clone().keyring().holds(next.id()));
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
