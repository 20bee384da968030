//! Entry points for the fuzz targets (`fuzz/` at the repository root): parsers of
//! outside input that are not public, exposed as they are, unchanged. Not an API:
//! nothing in the product calls these.

use crate::password::formats;

/// Whether `password` matches an imported `hash` (`formats::verify`, as a sign-in
/// checks it).
pub fn verify_imported_hash(password: &[u8], hash: &str) -> bool {
    formats::verify(password, hash)
}

/// Whether a hash that verified would be replaced at the first sign-in, under the
/// default Argon2id parameters (`formats::needs_rehash`).
pub fn imported_hash_needs_rehash(hash: &str) -> bool {
    let default = argon2::Params::new(19456, 2, 1, None).unwrap_or_default();
    formats::needs_rehash(hash, &default)
}
