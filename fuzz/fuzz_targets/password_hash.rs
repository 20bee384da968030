//! The password hashes an account import takes over (bcrypt, PBKDF2, scrypt, Argon2).
//!
//! Properties: a hash is only accepted when it can verify: its own verifier reads it
//! and answers "wrong password" to a wrong one rather than "this hash is broken"
//! (the promise that no account is created that nobody can enter); accepted hashes of
//! affordable cost verify (or not) without failing, whatever the password; a hash not
//! accepted never verifies; anything but the configured Argon2id is rehashed at the
//! first sign-in.

#![no_main]

use argon2::password_hash::{PasswordHash, PasswordVerifier};
use libfuzzer_sys::fuzz_target;
use tweestap_domain::fuzzing::{imported_hash_needs_rehash, verify_imported_hash};
use tweestap_domain::password::formats::{recognise, HashFormat};

/// Input: the hash, then the password, separated by 0x1f.
struct Input<'a> {
    hash: &'a str,
    password: &'a [u8],
}

/// What verifying with a hash costs, small enough to try on every input.
fn affordable(hash: &str, format: HashFormat) -> bool {
    let number = |key: &str| -> u64 {
        hash.split(['$', ','])
            .find_map(|p| p.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or(u64::MAX)
    };
    match format {
        HashFormat::Argon2id | HashFormat::Argon2i | HashFormat::Argon2d => {
            number("m=") <= 256 && number("t=") <= 3 && number("p=") <= 4
        }
        HashFormat::Pbkdf2Sha256 => number("i=") <= 2000,
        HashFormat::Scrypt => number("ln=") <= 8 && number("r=") <= 8 && number("p=") <= 2,
        HashFormat::Bcrypt => hash
            .get(4..6)
            .and_then(|c| c.parse::<u32>().ok())
            .is_some_and(|c| c <= 6),
    }
}

/// The verifier's answer to a wrong password: Ok(()) when it says "wrong
/// password" (or "right"), the error when the hash itself is the problem.
fn verifiable(hash: &str, format: HashFormat) -> Result<(), String> {
    let wrong = b"not the password \xff";
    if format == HashFormat::Bcrypt {
        return bcrypt::verify(wrong, hash)
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    let phc = PasswordHash::new(hash).map_err(|e| e.to_string())?;
    let r = match format {
        HashFormat::Pbkdf2Sha256 => pbkdf2::Pbkdf2.verify_password(wrong, &phc),
        HashFormat::Scrypt => scrypt::Scrypt.verify_password(wrong, &phc),
        _ => argon2::Argon2::default().verify_password(wrong, &phc),
    };
    match r {
        Ok(()) | Err(argon2::password_hash::Error::Password) => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

fuzz_target!(|data: &[u8]| {
    let [hash, password] = tweestap_fuzz::fields(data);
    let Some(hash) = tweestap_fuzz::text(hash) else {
        return;
    };
    let input = Input { hash, password };
    match recognise(input.hash) {
        Ok(format) => {
            let ident = match format {
                HashFormat::Bcrypt => None,
                f => Some(format!("${}$", f.as_str())),
            };
            if let Some(ident) = ident {
                assert!(
                    input.hash.starts_with(&ident),
                    "{:?} is {format:?}",
                    input.hash
                );
            }
            assert!(format == HashFormat::Argon2id || imported_hash_needs_rehash(input.hash));
            if affordable(input.hash, format) {
                if let Err(e) = verifiable(input.hash, format) {
                    panic!(
                        "{:?} was accepted as {format:?} but cannot verify: {e}",
                        input.hash
                    );
                }
                let _ = verify_imported_hash(input.password, input.hash);
            }
        }
        Err(_) => {
            assert!(!verify_imported_hash(input.password, input.hash));
            assert!(!imported_hash_needs_rehash(input.hash));
        }
    }
});
