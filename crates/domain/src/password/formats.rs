//! The password hash formats tweestap accepts from other systems (an account
//! import): PHC strings of Argon2, PBKDF2-SHA256 and scrypt, and bcrypt. Such a hash
//! is checked when it is imported (so that no account is created that nobody can
//! enter), verified as it is until its first sign-in, and then replaced by the
//! configured Argon2id (see [`needs_rehash`]).

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use argon2::Argon2;
use base64::Engine as _;
use pbkdf2::Pbkdf2;
use scrypt::Scrypt;

/// What an account created without a password stores: no format matches it, so no
/// password verifies until one is set ("forgot password", an invitation).
pub const NO_PASSWORD: &str = "!no-password";

/// A recognised hash format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    Argon2id,
    Argon2i,
    Argon2d,
    Pbkdf2Sha256,
    Scrypt,
    /// `$2a$`, `$2b$` and `$2y$` (the variants differ only in old bugs of other
    /// implementations; one verifier serves all three).
    Bcrypt,
}

impl HashFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            HashFormat::Argon2id => "argon2id",
            HashFormat::Argon2i => "argon2i",
            HashFormat::Argon2d => "argon2d",
            HashFormat::Pbkdf2Sha256 => "pbkdf2-sha256",
            HashFormat::Scrypt => "scrypt",
            HashFormat::Bcrypt => "bcrypt",
        }
    }
}

/// Why a hash cannot be imported; the text names what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashFormatError {
    #[error("unknown password hash format (accepted: $argon2id$, $argon2i$, $argon2d$, $pbkdf2-sha256$, $scrypt$, bcrypt $2a$/$2b$/$2y$)")]
    Unknown,
    #[error("malformed {0} password hash: {1}")]
    Malformed(&'static str, String),
    /// Verifying it would take a sign-in too long (and too much memory): a hash
    /// that costly is a broken export rather than a real one.
    #[error("{0} password hash is too costly to verify ({1})")]
    TooCostly(&'static str, String),
}

// Ceilings well above what portals use (Argon2 at 1 GiB, libsodium's "sensitive";
// PBKDF2 at 16 times OWASP's 600,000 rounds; scrypt at 1 GiB; bcrypt at cost 18).
const ARGON2_MAX_MEMORY_KIB: u32 = 1024 * 1024;
const ARGON2_MAX_ITERATIONS: u32 = 20;
const ARGON2_MAX_LANES: u32 = 64;
const PBKDF2_MAX_ROUNDS: u32 = 10_000_000;
const SCRYPT_MAX_BYTES: u64 = 1 << 30;
const BCRYPT_COSTS: std::ops::RangeInclusive<u32> = 4..=18;

/// The format of `hash` when it is one tweestap can verify, with parameters it can
/// afford; the reason otherwise. Nothing is hashed: this only reads the string.
pub fn recognise(hash: &str) -> Result<HashFormat, HashFormatError> {
    if is_bcrypt(hash) {
        return check_bcrypt(hash);
    }
    let Some(ident) = hash.strip_prefix('$').and_then(|h| h.split('$').next()) else {
        return Err(HashFormatError::Unknown);
    };
    let format = match ident {
        "argon2id" => HashFormat::Argon2id,
        "argon2i" => HashFormat::Argon2i,
        "argon2d" => HashFormat::Argon2d,
        "pbkdf2-sha256" => HashFormat::Pbkdf2Sha256,
        "scrypt" => HashFormat::Scrypt,
        _ => return Err(HashFormatError::Unknown),
    };
    let name = format.as_str();
    let malformed = |e: &dyn std::fmt::Display| HashFormatError::Malformed(name, e.to_string());
    let phc = PasswordHash::new(hash).map_err(|e| malformed(&e))?;
    let (Some(salt), Some(_)) = (phc.salt, phc.hash) else {
        return Err(malformed(&"the salt or the hash is missing"));
    };
    // Every verifier decodes the salt into 64 bytes; one that does not fit would
    // fail every sign-in.
    let salt_len = salt
        .decode_b64(&mut [0u8; 64])
        .map_err(|e| malformed(&e))?
        .len();
    match format {
        HashFormat::Argon2id | HashFormat::Argon2i | HashFormat::Argon2d => {
            // Argon2 refuses to verify with a salt under 8 bytes.
            if salt_len < argon2::MIN_SALT_LEN {
                return Err(malformed(&format!(
                    "the salt has {salt_len} bytes, Argon2 needs at least {}",
                    argon2::MIN_SALT_LEN
                )));
            }
            let p = argon2::Params::try_from(&phc).map_err(|e| malformed(&e))?;
            if let Some(v) = phc.version {
                argon2::Version::try_from(v).map_err(|e| malformed(&e))?;
            }
            if p.m_cost() > ARGON2_MAX_MEMORY_KIB
                || p.t_cost() > ARGON2_MAX_ITERATIONS
                || p.p_cost() > ARGON2_MAX_LANES
            {
                let what = format!("m={},t={},p={}", p.m_cost(), p.t_cost(), p.p_cost());
                return Err(HashFormatError::TooCostly(name, what));
            }
        }
        HashFormat::Pbkdf2Sha256 => {
            let p = pbkdf2::Params::try_from(&phc).map_err(|e| malformed(&e))?;
            if p.rounds == 0 {
                return Err(malformed(&"zero rounds"));
            }
            if p.rounds > PBKDF2_MAX_ROUNDS {
                return Err(HashFormatError::TooCostly(name, format!("i={}", p.rounds)));
            }
        }
        HashFormat::Scrypt => {
            let p = scrypt::Params::try_from(&phc).map_err(|e| malformed(&e))?;
            // scrypt needs 128·r·N bytes; p runs that many times over.
            let bytes = 128u64
                .saturating_mul(u64::from(p.r()))
                .saturating_mul(1u64 << p.log_n().min(63))
                .saturating_mul(u64::from(p.p()));
            if bytes > SCRYPT_MAX_BYTES {
                let what = format!("ln={},r={},p={}", p.log_n(), p.r(), p.p());
                return Err(HashFormatError::TooCostly(name, what));
            }
        }
        HashFormat::Bcrypt => {}
    }
    Ok(format)
}

fn is_bcrypt(hash: &str) -> bool {
    ["$2a$", "$2b$", "$2y$"].iter().any(|p| hash.starts_with(p))
}

fn check_bcrypt(hash: &str) -> Result<HashFormat, HashFormatError> {
    let name = HashFormat::Bcrypt.as_str();
    let parts: bcrypt::HashParts = hash
        .parse()
        .map_err(|e: bcrypt::BcryptError| HashFormatError::Malformed(name, e.to_string()))?;
    // The salt and the hash must read as bcrypt's base64 (16 and 23 bytes), or every
    // verification fails; the parser above only counts their characters.
    let salt_and_hash = hash.rsplit('$').next().unwrap_or_default();
    let (salt, digest) = salt_and_hash.split_at_checked(22).unwrap_or_default();
    let decoded = |s: &str| bcrypt::BASE_64.decode(s).map_or(0, |b| b.len());
    if decoded(salt) != 16 || decoded(digest) != 23 {
        return Err(HashFormatError::Malformed(
            name,
            "the salt or the hash is not bcrypt's base64".into(),
        ));
    }
    let cost = parts.get_cost();
    if cost < *BCRYPT_COSTS.start() {
        return Err(HashFormatError::Malformed(name, format!("cost {cost}")));
    }
    if cost > *BCRYPT_COSTS.end() {
        return Err(HashFormatError::TooCostly(name, format!("cost {cost}")));
    }
    Ok(HashFormat::Bcrypt)
}

/// Whether `password` matches `hash`, in whichever recognised format it is; false for
/// anything else. Slow on purpose: call it on the blocking pool.
pub(crate) fn verify(password: &[u8], hash: &str) -> bool {
    verify_in(password, hash, &mut Vec::new())
}

/// [`verify`], an Argon2 hash computed in `memory` (grown when too small): the
/// hasher hands each hash a block kept from the previous one, so that a flood of
/// passwords neither asks the allocator for 19 MiB per check nor leaves the heap
/// fragmented by it. Public for the load generator's raw Argon2 rate, which
/// measures this same path.
pub fn verify_in(password: &[u8], hash: &str, memory: &mut Vec<argon2::Block>) -> bool {
    let Ok(format) = recognise(hash) else {
        return false;
    };
    if matches!(
        format,
        HashFormat::Argon2id | HashFormat::Argon2i | HashFormat::Argon2d
    ) {
        return PasswordHash::new(hash).is_ok_and(|phc| verify_argon2(password, &phc, memory));
    }
    if format == HashFormat::Bcrypt {
        return bcrypt::verify(password, hash).unwrap_or(false);
    }
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    match format {
        // Algorithm, version and costs all come from the hash itself.
        HashFormat::Argon2id | HashFormat::Argon2i | HashFormat::Argon2d => {
            Argon2::default().verify_password(password, &phc).is_ok()
        }
        HashFormat::Pbkdf2Sha256 => Pbkdf2.verify_password(password, &phc).is_ok(),
        HashFormat::Scrypt => Scrypt.verify_password(password, &phc).is_ok(),
        HashFormat::Bcrypt => false,
    }
}

/// What argon2's own verifier does (algorithm, version, costs and salt from the
/// hash; the outputs compared in constant time), with the caller's memory.
fn verify_argon2(password: &[u8], phc: &PasswordHash<'_>, memory: &mut Vec<argon2::Block>) -> bool {
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        argon2::Algorithm::try_from(phc.algorithm),
        argon2::Params::try_from(phc),
        phc.salt,
        phc.hash,
    ) else {
        return false;
    };
    let version = match phc.version.map(argon2::Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
        .is_ok()
        && argon2::password_hash::Output::new(&out).is_ok_and(|computed| computed == expected)
}

/// Whether a hash that just verified should be replaced by one made with
/// `configured`: any format but Argon2id, an older Argon2 version, or any cost below
/// the configured one. Never for a hash that is no password at all.
pub(crate) fn needs_rehash(hash: &str, configured: &argon2::Params) -> bool {
    match recognise(hash) {
        Ok(HashFormat::Argon2id) => {}
        Ok(_) => return true,
        Err(_) => return false,
    }
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    let Ok(p) = argon2::Params::try_from(&phc) else {
        return false;
    };
    let current = phc
        .version
        .and_then(|v| argon2::Version::try_from(v).ok())
        .unwrap_or(argon2::Version::V0x10);
    current != argon2::Version::V0x13
        || p.m_cost() < configured.m_cost()
        || p.t_cost() < configured.t_cost()
        || p.p_cost() < configured.p_cost()
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{rand_core::OsRng, PasswordHasher as _, SaltString};
    use argon2::{Algorithm, Version};

    const PW: &str = "correct horse battery";

    fn argon(alg: Algorithm, m: u32, t: u32) -> String {
        let params = argon2::Params::new(m, t, 1, None).unwrap();
        Argon2::new(alg, Version::V0x13, params)
            .hash_password(PW.as_bytes(), &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string()
    }

    fn pbkdf2_sha256(rounds: u32) -> String {
        let params = pbkdf2::Params {
            rounds,
            output_length: 32,
        };
        Pbkdf2
            .hash_password_customized(
                PW.as_bytes(),
                Some(pbkdf2::Algorithm::Pbkdf2Sha256.ident()),
                None,
                params,
                &SaltString::generate(&mut OsRng),
            )
            .unwrap()
            .to_string()
    }

    fn scrypt_hash() -> String {
        let params = scrypt::Params::new(10, 8, 1, 32).unwrap();
        Scrypt
            .hash_password_customized(
                PW.as_bytes(),
                None,
                None,
                params,
                &SaltString::generate(&mut OsRng),
            )
            .unwrap()
            .to_string()
    }

    fn bcrypt_hash(version: bcrypt::Version) -> String {
        bcrypt::hash_with_result(PW, 4)
            .unwrap()
            .format_for_version(version)
    }

    fn configured() -> argon2::Params {
        argon2::Params::new(19456, 2, 1, None).unwrap()
    }

    #[test]
    fn every_accepted_format_is_recognised_and_verifies() {
        let cases = [
            (argon(Algorithm::Argon2id, 19456, 2), HashFormat::Argon2id),
            (argon(Algorithm::Argon2i, 8192, 3), HashFormat::Argon2i),
            (argon(Algorithm::Argon2d, 8192, 3), HashFormat::Argon2d),
            (pbkdf2_sha256(1000), HashFormat::Pbkdf2Sha256),
            (scrypt_hash(), HashFormat::Scrypt),
            (bcrypt_hash(bcrypt::Version::TwoA), HashFormat::Bcrypt),
            (bcrypt_hash(bcrypt::Version::TwoB), HashFormat::Bcrypt),
            (bcrypt_hash(bcrypt::Version::TwoY), HashFormat::Bcrypt),
        ];
        for (hash, format) in cases {
            assert_eq!(recognise(&hash), Ok(format), "{hash}");
            assert!(verify(PW.as_bytes(), &hash), "{hash}");
            assert!(!verify(b"wrong horse battery", &hash), "{hash}");
        }
    }

    #[test]
    fn a_known_bcrypt_vector_verifies_under_each_prefix() {
        // OpenBSD's test vector for "U*U", as PHP ($2y$) and others ($2b$) write it too.
        let hash = "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW";
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            let h = hash.replacen("$2a$", prefix, 1);
            assert_eq!(recognise(&h), Ok(HashFormat::Bcrypt));
            assert!(verify(b"U*U", &h), "{h}");
            assert!(!verify(b"U*U*", &h), "{h}");
        }
    }

    #[test]
    fn unknown_and_malformed_hashes_are_refused_with_a_reason() {
        for unknown in [
            "",
            "plaintext",
            "5f4dcc3b5aa765d61d8327deb882cf99",
            "$1$abc$def",
            "$6$rounds=5000$salt$hash",
            "$2x$10$abcdefghijklmnopqrstuu0123456789012345678901234567890",
            "pbkdf2_sha256$260000$salt$hash",
            "$pbkdf2-sha512$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            NO_PASSWORD,
        ] {
            assert_eq!(
                recognise(unknown),
                Err(HashFormatError::Unknown),
                "{unknown}"
            );
            assert!(!verify(PW.as_bytes(), unknown));
        }
        for malformed in [
            "$argon2id$v=19$m=8192,t=1,p=1$",
            "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHQ",
            "$argon2id$v=7$m=8192,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$x=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$pbkdf2-sha256$6400$0ZrzXitFSGltTQnBWOsdAw$Y11AchqV4b0sUisdZd0Xr97KWoymNE0LNNrnEgY4H9M",
            "$scrypt$ln=abc,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$2b$10$tooshort",
            "$2b$03$SoZF7K4FDhIzs5AxWHnPnesoCdpB5pLiBE2nIo3ZzDZqqRh2JyZRe",
        ] {
            let r = recognise(malformed);
            assert!(
                matches!(r, Err(HashFormatError::Malformed(..))),
                "{malformed}: {r:?}"
            );
        }
        for costly in [
            "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$pbkdf2-sha256$i=99999999,l=16$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$scrypt$ln=24,r=8,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
            "$2b$25$SoZF7K4FDhIzs5AxWHnPnesoCdpB5pLiBE2nIo3ZzDZqqRh2JyZRe",
        ] {
            let r = recognise(costly);
            assert!(
                matches!(r, Err(HashFormatError::TooCostly(..))),
                "{costly}: {r:?}"
            );
        }
    }

    /// Found by fuzzing (fuzz target password_hash): an Argon2 hash with a salt under
    /// 8 bytes was taken, and then no password could ever verify.
    #[test]
    fn an_argon2_hash_with_a_short_salt_is_refused() {
        let short = "$argon2i$v=19$m=92,t=2,p=1$c2FsHbQ$hNHdaGFzaGhhc2hoYXNoaGFzaA";
        let phc = PasswordHash::new(short).unwrap();
        assert!(Argon2::default()
            .verify_password(PW.as_bytes(), &phc)
            .is_err());
        assert!(
            matches!(recognise(short), Err(HashFormatError::Malformed(..))),
            "{:?}",
            recognise(short)
        );
        let eight = "$argon2i$v=19$m=92,t=2,p=1$c2FsdHNhbHQ$hNHdaGFzaGhhc2hoYXNoaGFzaA";
        assert_eq!(recognise(eight), Ok(HashFormat::Argon2i));
    }

    /// Found by fuzzing (fuzz target password_hash): a bcrypt hash with a character
    /// outside bcrypt's base64 was taken, and then no password could ever verify.
    #[test]
    fn a_bcrypt_hash_that_cannot_verify_is_refused() {
        let good = "$2y$04$SoZF7K4FDhIzs5AxWHnPnesoCdpB5pLiBE2nIo3ZzDZqqRh2JyZRe";
        assert_eq!(recognise(good), Ok(HashFormat::Bcrypt));
        for bad in [
            "$2y$04$SoZF7K4FDhIzs5AxWHnPnesoCdpB5pLiBE2nIo3ZzD[qqRh2JyZRe",
            "$2y$04$SoZF7K4FDhIzs5AxWHnP!esoCdpB5pLiBE2nIo3ZzDZqqRh2JyZRe",
            "$2y$04$SoZF7K4FDhIzs5AxWHnPnesoCdpB5pLiBE2nIo3ZzDZqqRh2JyZR+",
        ] {
            assert!(bcrypt::verify(PW, bad).is_err(), "{bad}");
            assert!(
                matches!(recognise(bad), Err(HashFormatError::Malformed(..))),
                "{bad}"
            );
        }
    }

    #[test]
    fn anything_weaker_than_the_configured_argon2id_is_rehashed() {
        let c = configured();
        assert!(!needs_rehash(&argon(Algorithm::Argon2id, 19456, 2), &c));
        assert!(!needs_rehash(&argon(Algorithm::Argon2id, 65536, 3), &c));
        assert!(needs_rehash(&argon(Algorithm::Argon2id, 8192, 2), &c));
        assert!(needs_rehash(&argon(Algorithm::Argon2id, 19456, 1), &c));
        assert!(needs_rehash(&argon(Algorithm::Argon2i, 65536, 3), &c));
        assert!(needs_rehash(&argon(Algorithm::Argon2d, 65536, 3), &c));
        assert!(needs_rehash(&pbkdf2_sha256(1000), &c));
        assert!(needs_rehash(&scrypt_hash(), &c));
        assert!(needs_rehash(&bcrypt_hash(bcrypt::Version::TwoY), &c));
        assert!(!needs_rehash(NO_PASSWORD, &c));
        assert!(!needs_rehash("garbage", &c));
    }

    /// One memory block, reused dirty from hash to hash (other algorithms, versions
    /// and sizes in turn), gives the answers of argon2's own verifier.
    #[test]
    fn reused_memory_verifies_as_the_library_does() {
        let mut memory = Vec::new();
        let v10 = {
            let params = argon2::Params::new(256, 2, 2, Some(16)).unwrap();
            Argon2::new(Algorithm::Argon2id, Version::V0x10, params)
                .hash_password(PW.as_bytes(), &SaltString::generate(&mut OsRng))
                .unwrap()
                .to_string()
        };
        for hash in [
            argon(Algorithm::Argon2id, 1024, 2),
            argon(Algorithm::Argon2i, 512, 3),
            argon(Algorithm::Argon2d, 2048, 1),
            v10,
            argon(Algorithm::Argon2id, 256, 1),
        ] {
            for (password, right) in [(PW, true), ("wrong horse battery", false)] {
                let phc = PasswordHash::new(&hash).unwrap();
                let library = Argon2::default()
                    .verify_password(password.as_bytes(), &phc)
                    .is_ok();
                assert_eq!(library, right, "{hash}");
                assert_eq!(
                    verify_in(password.as_bytes(), &hash, &mut memory),
                    right,
                    "{hash}"
                );
            }
        }
        assert_eq!(memory.len(), 2048, "grown to the largest, never shrunk");
    }
}
