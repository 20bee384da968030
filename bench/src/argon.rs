//! The raw Argon2id rate of this machine: as many threads as the server hashes on
//! by default (one per core), each verifying the seeded password against a hash
//! made with the server's parameters, back to back, with no HTTP in between. Each
//! thread keeps its memory block between verifications, as the server's hashing
//! places do, so the comparison is hash for hash.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tweestap_domain::password::formats::verify_in;

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
    if !verify_in(password.as_bytes(), hash, &mut Vec::new()) {
        return Err("the seeded hash does not verify".into());
    }
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let cpu_before = crate::server::cpu_seconds(std::process::id());
    std::thread::scope(|s| {
        for _ in 0..threads {
            let (done, stop) = (done.clone(), stop.clone());
            s.spawn(move || {
                let mut memory = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    if verify_in(password.as_bytes(), hash, &mut memory) {
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
