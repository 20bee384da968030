//! Passwords: Argon2id hashing off the async runtime, and the NIST SP 800-63B rules.

use argon2::password_hash::{rand_core::OsRng, PasswordHasher as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};

pub mod formats;
mod memory;
mod priority;
mod threads;

use memory::ArgonMemory;
use threads::HashThreads;

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
    /// Every permit is taken and the queue for one is full: try again shortly.
    #[error("too many passwords are being checked; try again in a moment")]
    Busy,
}

/// Hashes and verifies passwords on threads of their own, at most `max_concurrent` at a
/// time, so a burst of sign-ins cannot starve the runtime or exhaust memory.
///
/// The permit travels into the hashing thread and is given back only when the hash
/// is done, also when the request that asked for it is gone (a client that hangs up
/// cannot make room for one more Argon2 computation). At most `max_waiting` calls
/// wait for a permit; beyond that a call is refused at once with
/// [`HashError::Busy`] (the web layer answers 503 with `Retry-After`), so a flood
/// of passwords queues neither without bound nor for long.
#[derive(Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    permits: Arc<Semaphore>,
    /// Places in the queue for a permit.
    waiting: Arc<Semaphore>,
    max_waiting: usize,
    load: Arc<Load>,
    /// Argon2 memory kept between checks, one block per hashing place at most: a
    /// check takes one (or makes it) and puts it back. Nothing is allocated per
    /// check under load, the memory stays bounded by the places (see
    /// `formats::verify_in`), and it is freed when the hasher is idle.
    memory: Arc<ArgonMemory>,
    /// A hash of a random password, verified for unknown accounts so that the
    /// answer takes as long as for a known one. Made by the first check after
    /// start, whatever its account (under that check's permit, so the first check
    /// takes one hash longer whether the account exists or not), rather than at
    /// start: a hash's time and Argon2's code kept off every start.
    dummy_hash: Arc<OnceLock<Result<String, String>>>,
    /// Where the hashes run.
    threads: Arc<HashThreads>,
}

/// Calls waiting by default for a hashing permit, per permit.
pub const DEFAULT_WAITING_PER_PERMIT: usize = 8;

#[derive(Default)]
struct Load {
    running: AtomicUsize,
    peak_running: AtomicUsize,
    refused: AtomicU64,
}

/// How busy the hasher is: hashes running now, the most ever running at once, and
/// the calls refused because the queue was full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashingLoad {
    pub running: usize,
    pub peak_running: usize,
    pub waiting: usize,
    pub refused: u64,
}

/// Holds a permit for as long as one hash runs (on its thread).
struct Running {
    load: Arc<Load>,
    _permit: OwnedSemaphorePermit,
}

impl Running {
    fn start(load: Arc<Load>, permit: OwnedSemaphorePermit) -> Self {
        let now = load.running.fetch_add(1, Ordering::SeqCst) + 1;
        load.peak_running.fetch_max(now, Ordering::SeqCst);
        Self {
            load,
            _permit: permit,
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.load.running.fetch_sub(1, Ordering::SeqCst);
    }
}

impl PasswordHasher {
    pub fn new(s: Argon2Settings, max_concurrent: usize) -> Result<Self, HashError> {
        let params = Params::new(s.memory_kib, s.iterations, s.parallelism, None)
            .map_err(|e| HashError::Params(e.to_string()))?;
        let params_blocks = params.block_count();
        let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let max_concurrent = max_concurrent.max(1);
        let max_waiting = max_concurrent.saturating_mul(DEFAULT_WAITING_PER_PERMIT);
        Ok(Self {
            argon,
            permits: Arc::new(Semaphore::new(max_concurrent)),
            waiting: Arc::new(Semaphore::new(max_waiting)),
            max_waiting,
            load: Arc::default(),
            memory: Arc::new(ArgonMemory::new(
                max_concurrent,
                params_blocks,
                memory::KEPT_WHILE_IDLE,
            )),
            dummy_hash: Arc::default(),
            threads: Arc::new(HashThreads::new(max_concurrent)),
        })
    }

    /// At most `max_waiting` calls wait for a permit (0: none wait; a call finding
    /// every permit taken is refused at once).
    pub fn with_max_waiting(mut self, max_waiting: usize) -> Self {
        self.waiting = Arc::new(Semaphore::new(max_waiting));
        self.max_waiting = max_waiting;
        self
    }

    pub fn load(&self) -> HashingLoad {
        HashingLoad {
            running: self.load.running.load(Ordering::SeqCst),
            peak_running: self.load.peak_running.load(Ordering::SeqCst),
            waiting: self.max_waiting - self.waiting.available_permits(),
            refused: self.load.refused.load(Ordering::SeqCst),
        }
    }

    /// A permit at once, or after waiting in the bounded queue; `Busy` when the
    /// queue is full.
    async fn permit(&self) -> Result<OwnedSemaphorePermit, HashError> {
        match self.permits.clone().try_acquire_owned() {
            Ok(p) => return Ok(p),
            Err(TryAcquireError::Closed) => return Err(HashError::Hash("closed".into())),
            Err(TryAcquireError::NoPermits) => {}
        }
        let Ok(_place) = self.waiting.clone().try_acquire_owned() else {
            self.load.refused.fetch_add(1, Ordering::SeqCst);
            return Err(HashError::Busy);
        };
        self.permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| HashError::Hash(e.to_string()))
    }

    /// Runs `work` on a hashing thread holding a permit until it is done, whether
    /// or not the caller still waits for the result.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let permit = self.permit().await?;
        let load = self.load.clone();
        self.threads
            .run(move || {
                let _running = Running::start(load, permit);
                work()
            })
            .await
            .map_err(HashError::Hash)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let argon = self.argon.clone();
        // The copy the hashing thread takes is wiped when it is done.
        let pw = zeroize::Zeroizing::new(password.to_owned());
        self.run(move || hash_with(&argon, &pw)).await?
    }

    /// True when `password` matches `hash`, in any format of [`formats`] (imported
    /// accounts keep their old hash until they sign in). `None`, and a hash that is no
    /// password at all ([`formats::NO_PASSWORD`] or anything unrecognised), verify
    /// against the dummy hash and answer false, taking the same time. `Busy` when the
    /// queue for hashing is full: nothing was checked.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, HashError> {
        let pw = zeroize::Zeroizing::new(password.to_owned());
        let usable = hash
            .filter(|h| formats::recognise(h).is_ok())
            .map(str::to_owned);
        let known = usable.is_some();
        let (memory, dummy, argon) = (
            self.memory.clone(),
            self.dummy_hash.clone(),
            self.argon.clone(),
        );
        let ok = self
            .run(move || {
                let dummy = dummy.get_or_init(|| {
                    hash_with(&argon, crate::token::Token::generate().as_str())
                        .map_err(|e| e.to_string())
                });
                // Without a dummy no check runs, known account or not: an error
                // for unknown ones only would tell them apart.
                let dummy = match dummy {
                    Ok(d) => d,
                    Err(e) => return Err(HashError::Hash(e.clone())),
                };
                let h = usable.as_deref().unwrap_or(dummy);
                let mut block = memory.take();
                let ok = formats::verify_in(pw.as_bytes(), h, &mut block);
                memory.give_back(block);
                Ok(ok)
            })
            .await??;
        Ok(ok && known)
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

    /// A hash runs on a thread at the hashing priority, or lower when the
    /// process already was; the caller's thread keeps its own.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn hashes_run_at_a_lower_priority_than_the_rest() {
        let nice = || rustix::process::getpriority_process(Some(rustix::thread::gettid()));
        let caller = nice().unwrap();
        let h = PasswordHasher::new(Argon2Settings::default(), 2).unwrap();
        let (a, b) = tokio::join!(h.run(nice), h.run(nice));
        for hashing in [a, b] {
            assert_eq!(
                hashing.unwrap().unwrap(),
                caller.max(priority::HASHING_NICE)
            );
        }
        assert_eq!(nice().unwrap(), caller);
        // The blocking pool, which runs file writes and DNS lookups, keeps its own.
        let pool = tokio::task::spawn_blocking(nice).await.unwrap().unwrap();
        assert_eq!(pool, caller);
    }

    #[tokio::test]
    async fn hash_and_verify() {
        let h = PasswordHasher::new(Argon2Settings::default(), 2).unwrap();
        let hash = h.hash("correct horse battery").await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(h
            .verify("correct horse battery", Some(&hash))
            .await
            .unwrap());
        assert!(!h.verify("wrong horse battery", Some(&hash)).await.unwrap());
        assert!(!h.verify("correct horse battery", None).await.unwrap());
        assert!(!h.verify("x", Some("not a hash")).await.unwrap());
        assert!(!h.verify("", Some(formats::NO_PASSWORD)).await.unwrap());
        assert!(!h.needs_rehash(&hash));
        let bcrypt = bcrypt::hash("correct horse battery", 4).unwrap();
        assert!(h
            .verify("correct horse battery", Some(&bcrypt))
            .await
            .unwrap());
        assert!(h.needs_rehash(&bcrypt));
    }

    /// The dummy hash is not made at start but by the first check, also one of a
    /// known account (so the first check costs the same either way), once, with the
    /// configured parameters.
    #[tokio::test]
    async fn the_first_check_makes_the_dummy_hash_whatever_its_account() {
        let h = PasswordHasher::new(Argon2Settings::default(), 2).unwrap();
        let hash = h.hash("correct horse battery").await.unwrap();
        assert!(h.dummy_hash.get().is_none(), "made at start");
        assert!(h
            .verify("correct horse battery", Some(&hash))
            .await
            .unwrap());
        let made = h
            .dummy_hash
            .get()
            .cloned()
            .expect("made by a known account's check");
        let dummy = made.expect("a hash");
        assert!(dummy.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
        assert!(!h.verify("correct horse battery", None).await.unwrap());
        assert_eq!(h.dummy_hash.get(), Some(&Ok(dummy)), "made once");
    }

    /// Parameters that take a while even optimised, so a call can be dropped mid-hash.
    fn slow() -> Argon2Settings {
        Argon2Settings {
            memory_kib: 32768,
            iterations: 16,
            parallelism: 1,
        }
    }

    /// A caller that gives up (a client hanging up) does not free the permit: the
    /// next hash starts only when the abandoned one is done.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_caller_keeps_its_permit_until_the_hash_is_done() {
        let h = PasswordHasher::new(slow(), 1).unwrap();
        let stored = h.hash("correct horse battery").await.unwrap();
        for _ in 0..4 {
            let gave_up = tokio::time::timeout(
                std::time::Duration::from_millis(5),
                h.verify("wrong horse battery", Some(&stored)),
            )
            .await;
            assert!(gave_up.is_err(), "the hash should take longer than 5 ms");
        }
        assert!(!h
            .verify("wrong horse battery", Some(&stored))
            .await
            .unwrap());
        let load = h.load();
        assert_eq!(load.peak_running, 1, "{load:?}");
        assert_eq!(load.running, 0, "{load:?}");
    }

    /// With every permit taken and the queue full, a call is refused at once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_queue_refuses_at_once() {
        let h = PasswordHasher::new(slow(), 1).unwrap().with_max_waiting(1);
        let stored = h.hash("correct horse battery").await.unwrap();
        let running = tokio::spawn({
            let (h, s) = (h.clone(), stored.clone());
            async move { h.verify("a", Some(&s)).await }
        });
        while h.load().running == 0 {
            tokio::task::yield_now().await;
        }
        let queued = tokio::spawn({
            let (h, s) = (h.clone(), stored.clone());
            async move { h.verify("b", Some(&s)).await }
        });
        while h.load().waiting == 0 {
            tokio::task::yield_now().await;
        }
        let started = std::time::Instant::now();
        assert!(matches!(
            h.verify("c", Some(&stored)).await,
            Err(HashError::Busy)
        ));
        assert!(started.elapsed() < std::time::Duration::from_millis(50));
        assert_eq!(h.load().refused, 1);
        assert!(!running.await.unwrap().unwrap());
        assert!(!queued.await.unwrap().unwrap());
        assert_eq!(h.load().waiting, 0);
    }
}
