//! The keys secrets are sealed with at rest, and the sealed format that names its
//! key, so that a node can hold two keys while `tweestap keys rotate-secret` moves
//! every secret from one to the other.
//!
//! A sealed value is `"TwS2" || key id (8) || nonce (24) || ciphertext`, the first
//! twelve bytes also authenticated as associated data. Values sealed before keys
//! had ids are `nonce || ciphertext` under the key derived from the master key
//! ([`AtRestKey::derived`]); they still open with it.

use super::{CryptoError, MasterKey, KEY_LEN};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::Mac;
use rand::RngCore;
use zeroize::Zeroizing;

const NONCE_LEN: usize = 24;
const KEY_ID_LEN: usize = 8;
/// "tweestap sealed, format 2".
const MAGIC: [u8; 4] = *b"TwS2";
const HEADER_LEN: usize = MAGIC.len() + KEY_ID_LEN;

/// Names an at-rest key without revealing it: the first 8 bytes of an HMAC of a
/// fixed text under the key, shown as 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; KEY_ID_LEN]);

impl std::fmt::Display for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&crate::token::hex(&self.0))
    }
}

impl std::fmt::Debug for KeyId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// The key a sealed value names; `None` for a value sealed before values named
/// their key.
pub fn key_id_of(sealed: &[u8]) -> Option<KeyId> {
    header(sealed).map(|(id, _)| id)
}

fn header(sealed: &[u8]) -> Option<(KeyId, &[u8])> {
    let rest = sealed.strip_prefix(&MAGIC)?;
    if rest.len() < KEY_ID_LEN + NONCE_LEN {
        return None;
    }
    let (id, rest) = rest.split_at(KEY_ID_LEN);
    Some((KeyId(id.try_into().ok()?), rest))
}

/// One key secrets are sealed with at rest. Wiped from memory when dropped.
#[derive(Clone)]
pub struct AtRestKey {
    bytes: Zeroizing<[u8; KEY_LEN]>,
    id: KeyId,
    /// Also opens values sealed before values named their key: the key derived
    /// from the master key, which sealed everything until a first rotation.
    legacy: bool,
}

impl std::fmt::Debug for AtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AtRestKey({})", self.id)
    }
}

impl AtRestKey {
    fn new(bytes: Zeroizing<[u8; KEY_LEN]>, legacy: bool) -> Self {
        let mut m = super::hmac_sha256(&bytes);
        m.update(b"tweestap at-rest key id v1");
        let mac = m.finalize().into_bytes();
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&mac[..KEY_ID_LEN]);
        Self {
            bytes,
            id: KeyId(id),
            legacy,
        }
    }

    /// The key every secret was sealed with before a first rotation: derived from
    /// the master key (which also keys the MACs of codes and the CSRF tokens, and so
    /// never changes).
    pub fn derived(master: &MasterKey) -> Self {
        Self::new(
            Zeroizing::new(master.derive("tweestap secret-box v1")),
            true,
        )
    }

    /// A new random key.
    pub fn generate() -> Self {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        rand::rngs::OsRng.fill_bytes(k.as_mut());
        Self::new(k, false)
    }

    pub fn from_bytes(b: &[u8]) -> Result<Self, CryptoError> {
        let mut k = Zeroizing::new([0u8; KEY_LEN]);
        if b.len() != KEY_LEN {
            return Err(CryptoError::BadKey);
        }
        k.copy_from_slice(b);
        Ok(Self::new(k, false))
    }

    pub fn as_bytes(&self) -> &[u8; KEY_LEN] {
        &self.bytes
    }

    pub fn id(&self) -> KeyId {
        self.id
    }
}

/// A key with its cipher (which wipes its copy of the key when dropped).
#[derive(Clone)]
struct Held {
    key: AtRestKey,
    cipher: XChaCha20Poly1305,
}

/// The at-rest keys a node holds: every one opens, one seals.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<Held>,
    sealing: usize,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("sealing", &self.sealing_id())
            .field("keys", &self.ids())
            .finish()
    }
}

impl Keyring {
    /// `current` alone, or during a rotation `current` and `next`, which seals.
    pub fn new(current: AtRestKey, next: Option<AtRestKey>) -> Self {
        let mut ring = Self {
            keys: Vec::new(),
            sealing: 0,
        };
        ring.add(current);
        if let Some(next) = next {
            ring.sealing = ring.add(next);
        }
        ring
    }

    /// Adds a key unless it is there; its index either way.
    fn add(&mut self, key: AtRestKey) -> usize {
        if let Some(i) = self.keys.iter().position(|h| h.key.id == key.id) {
            return i;
        }
        let cipher = XChaCha20Poly1305::new(key.as_bytes().into());
        self.keys.push(Held { key, cipher });
        self.keys.len() - 1
    }

    /// This ring, also holding (for opening only) the keys of `older` it lacks: a
    /// node that reloads its keys keeps those it had until it restarts.
    pub(super) fn keeping(mut self, older: &Keyring) -> Self {
        for h in &older.keys {
            self.add(h.key.clone());
        }
        self
    }

    /// The key new secrets are sealed with.
    pub fn sealing_id(&self) -> KeyId {
        self.sealing().key.id
    }

    /// Every key held, the sealing one among them.
    pub fn ids(&self) -> Vec<KeyId> {
        self.keys.iter().map(|h| h.key.id).collect()
    }

    pub fn holds(&self, id: KeyId) -> bool {
        self.keys.iter().any(|h| h.key.id == id)
    }

    fn sealing(&self) -> &Held {
        // An index add() returned; keys are only ever added.
        &self.keys[self.sealing]
    }

    pub(super) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
        let held = self.sealing();
        let mut out = Vec::with_capacity(HEADER_LEN + NONCE_LEN + plaintext.len() + 16);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&held.key.id.0);
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let bound = [&out[..HEADER_LEN], aad].concat();
        #[allow(
            clippy::expect_used,
            reason = "XChaCha20-Poly1305 only refuses messages over 256 GiB; ours are short"
        )]
        let ct = held
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &bound,
                },
            )
            .expect("XChaCha20-Poly1305 encryption cannot fail for in-memory buffers");
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        out
    }

    /// Opens a value with the key it names, or (a value from before key ids) with
    /// the key derived from the master key.
    pub(super) fn open(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if let Some((id, rest)) = header(sealed) {
            if let Some(h) = self.keys.iter().find(|h| h.key.id == id) {
                let bound = [sealed.get(..HEADER_LEN).unwrap_or_default(), aad].concat();
                return decrypt(&h.cipher, rest, &bound);
            }
            // An old value whose random nonce starts like a header (2^-32).
            return self
                .open_legacy(sealed, aad)
                .map_err(|_| CryptoError::UnknownKey(id.to_string()));
        }
        self.open_legacy(sealed, aad)
    }

    fn open_legacy(&self, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
        self.keys
            .iter()
            .filter(|h| h.key.legacy)
            .find_map(|h| decrypt(&h.cipher, sealed, aad).ok())
            .ok_or(CryptoError::Decrypt)
    }
}

fn decrypt(cipher: &XChaCha20Poly1305, sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, CryptoError> {
    if sealed.len() < NONCE_LEN {
        return Err(CryptoError::Decrypt);
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    cipher
        .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
        .map_err(|_| CryptoError::Decrypt)
}

/// How the first version sealed: `nonce || ciphertext` under the derived key. For
/// the tests of values stored before this format.
#[cfg(test)]
pub(super) fn seal_legacy(master: &MasterKey, plaintext: &[u8], aad: &[u8]) -> Vec<u8> {
    let key = Zeroizing::new(master.derive("tweestap secret-box v1"));
    let cipher = XChaCha20Poly1305::new(key.as_ref().into());
    let mut nonce = [0u8; NONCE_LEN];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .unwrap();
    [nonce.as_slice(), &ct].concat()
}
