//! Recovery codes: ten single-use codes for when the phone is lost, shown once.
//! The database keeps only an HMAC of each under a server key.

use rand::Rng;

/// A recovery code as stored: only its MAC (for export and import).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRecoveryCode {
    pub account_id: crate::account::AccountId,
    pub code_mac: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub used_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Codes per set.
pub const RECOVERY_CODES: usize = 10;

/// A new set of codes: the codes, to be shown once, and their MACs, to be stored.
#[derive(Debug, Clone)]
pub struct NewRecoveryCodes {
    pub codes: Vec<String>,
    pub macs: Vec<String>,
}

/// Lower-case letters and digits without the look-alikes (0/o, 1/l/i).
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A new code: ten characters (about 49 bits) written as `xxxxx-xxxxx`.
pub fn new_recovery_code() -> String {
    let mut rng = rand::rngs::OsRng;
    let chars: String = (0..10)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}", &chars[..5], &chars[5..])
}

/// A code as typed ("ABCDE FGHJK", "abcde-fghjk") in the form it was made in.
pub fn normalise_recovery_code(typed: &str) -> String {
    let chars: String = typed
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if chars.len() == 10 {
        format!("{}-{}", &chars[..5], &chars[5..])
    } else {
        chars
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_random_readable_and_normalised_as_typed() {
        let codes: std::collections::HashSet<String> =
            (0..100).map(|_| new_recovery_code()).collect();
        assert_eq!(codes.len(), 100);
        for c in &codes {
            assert_eq!(c.len(), 11);
            assert_eq!(
                normalise_recovery_code(&c.to_uppercase().replace('-', " ")),
                *c
            );
        }
        assert_eq!(normalise_recovery_code("abc"), "abc");
    }
}
