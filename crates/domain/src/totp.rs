//! HOTP (RFC 4226) and TOTP (RFC 6238).
//!
//! Written against RustCrypto's HMAC so we control the one thing libraries hide:
//! *which* time step matched, which the replay protection stores.

use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use subtle::ConstantTimeEq;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
    Sha512,
}

impl Algorithm {
    pub fn uri_name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "SHA1",
            Algorithm::Sha256 => "SHA256",
            Algorithm::Sha512 => "SHA512",
        }
    }
}

fn mac(alg: Algorithm, key: &[u8], msg: &[u8]) -> Vec<u8> {
    match alg {
        Algorithm::Sha1 => hmac::<Hmac<sha1::Sha1>>(key, msg),
        Algorithm::Sha256 => hmac::<Hmac<sha2::Sha256>>(key, msg),
        Algorithm::Sha512 => hmac::<Hmac<sha2::Sha512>>(key, msg),
    }
}

fn hmac<M: Mac + KeyInit>(key: &[u8], msg: &[u8]) -> Vec<u8> {
    #[allow(
        clippy::expect_used,
        reason = "new_from_slice only fails for fixed-size-key MACs; HMAC takes keys of any length"
    )]
    let mut m = <M as Mac>::new_from_slice(key).expect("HMAC accepts keys of any length");
    m.update(msg);
    m.finalize().into_bytes().to_vec()
}

/// The HOTP value for `counter`, as a zero-padded string of `digits` digits.
pub fn hotp(alg: Algorithm, key: &[u8], counter: u64, digits: u32) -> String {
    let h = mac(alg, key, &counter.to_be_bytes());
    let offset = (h[h.len() - 1] & 0x0f) as usize;
    let bin = u32::from_be_bytes([
        h[offset] & 0x7f,
        h[offset + 1],
        h[offset + 2],
        h[offset + 3],
    ]);
    let value = u64::from(bin) % 10u64.pow(digits);
    format!("{value:0width$}", width = digits as usize)
}

/// TOTP parameters. tweestap issues SHA1 / 6 digits / 30 s, which every app supports.
#[derive(Debug, Clone, Copy)]
pub struct TotpParams {
    pub algorithm: Algorithm,
    pub digits: u32,
    pub period: u64,
    /// How many steps either side of the current one are accepted (clock drift).
    pub skew: u64,
}

impl Default for TotpParams {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

impl TotpParams {
    pub fn step_at(&self, unix_seconds: i64) -> u64 {
        (unix_seconds.max(0) as u64) / self.period
    }

    pub fn code_at(&self, key: &[u8], unix_seconds: i64) -> String {
        hotp(self.algorithm, key, self.step_at(unix_seconds), self.digits)
    }

    /// The step whose code equals `code`, searching the window around `unix_seconds`.
    /// Every candidate is compared in constant time and none stops the loop early.
    pub fn matching_step(&self, key: &[u8], code: &str, unix_seconds: i64) -> Option<u64> {
        if code.len() != self.digits as usize || !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let now = self.step_at(unix_seconds);
        let mut found = None;
        for step in now.saturating_sub(self.skew)..=now + self.skew {
            let candidate = hotp(self.algorithm, key, step, self.digits);
            if bool::from(candidate.as_bytes().ct_eq(code.as_bytes())) {
                found = Some(step);
            }
        }
        found
    }
}

/// A fresh 160-bit secret (RFC 4226 recommends 160 bits), wiped from memory when
/// dropped.
pub fn new_secret() -> zeroize::Zeroizing<Vec<u8>> {
    use rand::RngCore;
    let mut s = zeroize::Zeroizing::new(vec![0u8; 20]);
    rand::rngs::OsRng.fill_bytes(&mut s);
    s
}

pub fn base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// The key as people type it: groups of four, e.g. `JBSW Y3DP EHPK 3PXP`.
pub fn grouped(b32: &str) -> String {
    b32.as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The `otpauth://` URI apps read from the QR code.
pub fn otpauth_uri(issuer: &str, account: &str, b32: &str, p: &TotpParams) -> String {
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('+', "%20")
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&period={}",
        enc(issuer),
        enc(account),
        b32,
        enc(issuer),
        p.algorithm.uri_name(),
        p.digits,
        p.period
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4226_appendix_d() {
        let key = b"12345678901234567890";
        let expected = [
            "755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583",
            "399871", "520489",
        ];
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(
                hotp(Algorithm::Sha1, key, i as u64, 6),
                *want,
                "counter {i}"
            );
        }
    }

    #[test]
    fn rfc6238_appendix_b() {
        let k1 = b"12345678901234567890".to_vec();
        let k256 = b"12345678901234567890123456789012".to_vec();
        let k512 = b"1234567890123456789012345678901234567890123456789012345678901234".to_vec();
        let rows: [(i64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (t, s1, s256, s512) in rows {
            for (alg, key, want) in [
                (Algorithm::Sha1, &k1, s1),
                (Algorithm::Sha256, &k256, s256),
                (Algorithm::Sha512, &k512, s512),
            ] {
                let p = TotpParams {
                    algorithm: alg,
                    digits: 8,
                    period: 30,
                    skew: 1,
                };
                assert_eq!(p.code_at(key, t), want, "{alg:?} at {t}");
            }
        }
    }

    #[test]
    fn window_accepts_one_step_either_side_only() {
        let p = TotpParams::default();
        let key = new_secret();
        let t = 1_700_000_000;
        let now = p.step_at(t);
        for (offset, ok) in [(-2i64, false), (-1, true), (0, true), (1, true), (2, false)] {
            let code = p.code_at(&key, t + offset * 30);
            let got = p.matching_step(&key, &code, t);
            if ok {
                assert_eq!(got, Some((now as i64 + offset) as u64));
            } else {
                assert_ne!(got, Some((now as i64 + offset) as u64));
            }
        }
        assert_eq!(p.matching_step(&key, "12345", t), None);
        assert_eq!(p.matching_step(&key, "12345a", t), None);
    }

    #[test]
    fn uri_and_grouping() {
        let uri = otpauth_uri(
            "tweestap",
            "an@x.be",
            "JBSWY3DPEHPK3PXP",
            &TotpParams::default(),
        );
        assert_eq!(
            uri,
            "otpauth://totp/tweestap:an%40x.be?secret=JBSWY3DPEHPK3PXP&issuer=tweestap&algorithm=SHA1&digits=6&period=30"
        );
        assert_eq!(grouped("JBSWY3DPEHPK3PXPAB"), "JBSW Y3DP EHPK 3PXP AB");
        assert_eq!(base32(&new_secret()).len(), 32);
    }
}
