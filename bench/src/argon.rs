//! The raw Argon2id rate of this machine: as many threads as the server hashes on
//! by default (one per core), each verifying the seeded password against a hash
//! made with the server's parameters, back to back, with no HTTP in between. Each
//! thread keeps its memory block between verifications, as the server's hashing
//! places do, so the comparison is hash for hash.

use argon2::password_hash::{Output, PasswordHash};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Verifications per second over all threads, in `secs` seconds, and the CPU
/// seconds each took.
pub async fn rate(hash: String, password: &'static str, secs: f64) -> Result<(f64, f64), String> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    tokio::task::spawn_blocking(move || measure(&hash, password, threads, secs))
        .await
        .map_err(|e| e.to_string())?
}

fn measure(hash: &str, password: &str, threads: usize, secs: f64) -> Result<(f64, f64), String> {
    let parsed = PasswordHash::new(hash).map_err(|e| e.to_string())?;
    if !verify(password.as_bytes(), &parsed, &mut Vec::new()) {
        return Err("the seeded hash does not verify".into());
    }
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let cpu_before = crate::server::cpu_seconds(std::process::id());
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (done, stop, parsed) = (done.clone(), stop.clone(), parsed.clone());
            s.spawn(move || {
                let mut memory = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if verify(password.as_bytes(), &parsed, &mut memory) {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }
        std::thread::sleep(Duration::from_secs_f64(secs));
        stop.store(true, Ordering::Relaxed);
    });
    let elapsed = started.elapsed().as_secs_f64();
    let cpu = crate::server::cpu_seconds(std::process::id()) - cpu_before;
    let n = done.load(Ordering::Relaxed) as f64;
    Ok((n / elapsed, cpu / n.max(1.0)))
}

/// One verification with the parameters, salt and version the hash names.
fn verify(password: &[u8], phc: &PasswordHash<'_>, memory: &mut Vec<argon2::Block>) -> bool {
    let (Ok(algorithm), Ok(params), Some(salt), Some(expected)) = (
        argon2::Algorithm::try_from(phc.algorithm),
        argon2::Params::try_from(phc),
        phc.salt,
        phc.hash,
    ) else {
        return false;
    };
    let version = phc
        .version
        .and_then(|v| argon2::Version::try_from(v).ok())
        .unwrap_or_default();
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    if memory.len() < params.block_count() {
        memory.resize(params.block_count(), argon2::Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    argon2::Argon2::new(algorithm, version, params)
        .hash_password_into_with_memory(password, salt, &mut out, &mut memory[..])
        .is_ok()
        && Output::new(&out).is_ok_and(|computed| computed == expected)
}
