//! Random bearer tokens (session ids, later links): the client holds the token, the
//! database only its SHA-256, so a leaked table cannot be replayed.

use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A token as handed to the client. Never stored.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token(..)")
    }
}

impl Token {
    pub fn generate() -> Self {
        let mut b = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut b);
        Self(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
    }

    pub fn from_client(s: &str) -> Option<Self> {
        // 32 bytes in unpadded base64url are 43 characters; anything else is not ours.
        (s.len() == 43
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        .then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn hash(&self) -> TokenHash {
        TokenHash(hex(&Sha256::digest(self.0.as_bytes())))
    }
}

/// What the database keeps of a token.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

pub fn hex(bytes: &[u8]) -> String {
    // One allocation; a `format!` per byte was most of a CSRF token's cost.
    data_encoding::HEXLOWER.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_is_lower_case_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn tokens_are_random_and_hash_stably() {
        let a = Token::generate();
        let b = Token::generate();
        assert_ne!(a, b);
        assert_eq!(a.hash(), Token::from_client(a.as_str()).unwrap().hash());
        assert_ne!(a.hash().0, a.as_str());
        assert!(Token::from_client("short").is_none());
        assert!(Token::from_client(&"a".repeat(42)).is_none());
        assert!(Token::from_client(&format!("{}!", "a".repeat(42))).is_none());
    }
}
