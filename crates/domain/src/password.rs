//! Passwords: Argon2id hashing off the async runtime, and the NIST SP 800-63B rules.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::Arc;
use tokio::sync::Semaphore;

pub mod formats;

#[derive(Debug, Clone, Copy)]
pub struct Argon2Settings {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Settings {
    /// OWASP's recommendation for Argon2id: m=19 MiB, t=2, p=1.
    fn default() -> Self {
        Self {
            memory_kib: 19456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid Argon2 parameters: {0}")]
    Params(String),
    #[error("hashing failed: {0}")]
    Hash(String),
}

/// Hashes and verifies passwords on the blocking pool, at most `max_concurrent` at a
/// time, so a burst of sign-ins cannot starve the runtime or exhaust memory.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// A hash of a random password, verified for unknown accounts so that the
    /// answer takes as long as for a known one.
    dummy_hash: Arc<String>,
}

impl PasswordHasher {
    pub fn new(s: Argon2Settings, max_concurrent: usize) -> Result<Self, HashError> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let dummy = hash_with(&argon, crate::token::Token::generate().as_str())?;
        Ok(Self {
            argon,
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            dummy_hash: Arc::new(dummy),
        })
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| HashError::Hash(e.to_string()))?;
        let argon = self.argon.clone();
        let pw = password.to_owned();
        tokio::task::spawn_blocking(move || hash_with(&argon, &pw))
            .await
            .map_err(|e| HashError::Hash(e.to_string()))?
    }

    /// True when `password` matches `hash`, in any format of [`formats`] (imported
    /// accounts keep their old hash until they sign in). `None`, and a hash that is no
    /// password at all ([`formats::NO_PASSWORD`] or anything unrecognised), verify
    /// against the dummy hash and answer false, taking the same time.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> bool {
        let Ok(_permit) = self.permits.acquire().await else {
            return false;
        };
        let pw = password.to_owned();
        let usable = hash.filter(|h| formats::recognise(h).is_ok());
        let known = usable.is_some();
        let h = usable
            .map(str::to_owned)
            .unwrap_or_else(|| self.dummy_hash.to_string());
        let ok = tokio::task::spawn_blocking(move || formats::verify(pw.as_bytes(), &h))
            .await
            .unwrap_or(false);
        ok && known
    }

    /// Whether a hash that just verified should be replaced by a new one with the
    /// configured Argon2id: another format, or weaker parameters.
    pub fn needs_rehash(&self, hash: &str) -> bool {
        formats::needs_rehash(hash, self.argon.params())
    }
}

fn hash_with(argon: &Argon2<'_>, pw: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon
        .hash_password(pw.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hash(e.to_string()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordProblem {
    #[error("the password is too short")]
    TooShort { min: usize },
    #[error("the password is too long")]
    TooLong { max: usize },
    #[error("the password is too common")]
    Common,
    #[error("the password must not contain the e-mail address or the product name")]
    ContextSpecific,
}

impl PasswordProblem {
    pub fn code(self) -> &'static str {
        match self {
            PasswordProblem::TooShort { .. } => "password_too_short",
            PasswordProblem::TooLong { .. } => "password_too_long",
            PasswordProblem::Common => "password_too_common",
            PasswordProblem::ContextSpecific => "password_context_specific",
        }
    }
}

/// NIST SP 800-63B §3.1.1.2: a minimum length, a generous maximum, no composition
/// rules, and a check against commonly used and context-specific passwords.
#[derive(Debug, Clone, Copy)]
pub struct PasswordRules {
    pub min_length: usize,
    pub max_length: usize,
}

impl Default for PasswordRules {
    fn default() -> Self {
        Self {
            min_length: 8,
            max_length: 256,
        }
    }
}

const COMMON: &str = include_str!("common_passwords.txt");

impl PasswordRules {
    pub fn check(&self, password: &str, email: &str) -> Result<(), PasswordProblem> {
        let len = password.chars().count();
        if len < self.min_length {
            return Err(PasswordProblem::TooShort {
                min: self.min_length,
            });
        }
        if len > self.max_length {
            return Err(PasswordProblem::TooLong {
                max: self.max_length,
            });
        }
        let lower = password.to_lowercase();
        if COMMON.lines().any(|c| c == lower) {
            return Err(PasswordProblem::Common);
        }
        let local = email.split('@').next().unwrap_or_default().to_lowercase();
        if lower.contains("tweestap") || (local.len() >= 4 && lower.contains(&local)) {
            return Err(PasswordProblem::ContextSpecific);
        }
        if lower
            .chars()
            .collect::<std::collections::HashSet<_>>()
            .len()
            < 3
        {
            return Err(PasswordProblem::Common);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nist_rules() {
        let r = PasswordRules::default();
        assert_eq!(
            r.check("kort", "a@x.be"),
            Err(PasswordProblem::TooShort { min: 8 })
        );
        assert_eq!(r.check("password", "a@x.be"), Err(PasswordProblem::Common));
        assert_eq!(
            r.check("Wachtwoord", "a@x.be"),
            Err(PasswordProblem::Common)
        );
        assert_eq!(
            r.check("aaaaaaaaaaaa", "a@x.be"),
            Err(PasswordProblem::Common)
        );
        assert_eq!(
            r.check("marieke-2024!", "marieke@x.be"),
            Err(PasswordProblem::ContextSpecific)
        );
        assert!(r.check(&"x".repeat(300), "a@x.be").is_err());
        assert_eq!(r.check("correct horse battery", "a@x.be"), Ok(()));
        assert_eq!(r.check("ünïcødé-pass", "a@x.be"), Ok(()));
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(Argon2Settings::default(), 2).unwrap();
        let hash = h.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h.verify("correct horse battery", Some(&hash)).await);
        assert!(!h.verify("wrong horse battery", Some(&hash)).await);
        assert!(!h.verify("correct horse battery", None).await);
        assert!(!h.verify("x", Some("not a hash")).await);
        assert!(!h.verify("", Some(formats::NO_PASSWORD)).await);
        assert!(!h.needs_rehash(&hash));
        let bcrypt = bcrypt::hash("correct horse battery", 4).unwrap();
        assert!(h.verify("correct horse battery", Some(&bcrypt)).await);
        assert!(h.needs_rehash(&bcrypt));
    }
}
