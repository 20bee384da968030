//! The hashing threads yield to everything else (issue 19).
//!
//! A flood of passwords keeps every hashing place busy, each a core's worth of
//! Argon2id; the code steps, pages and database processes beside it then waited
//! behind the hashes for the scheduler's turn (PostgreSQL's code step alongside a
//! flood: p99 18 to 60 ms). A thread that hashes runs at a lower priority (nice
//! [`HASHING_NICE`]): when nothing else wants the core, a hash runs as fast as
//! before; when something does, that goes first.
//!
//! Linux keeps a nice value per thread. An unprivileged process cannot raise a
//! thread's priority again, so the blocking thread keeps it for whatever it
//! runs next: here only hashes and key generation, both work that can wait.

/// How far below the others a hashing thread runs (0 is the default, 19 the
/// lowest): at 10 it gets about a tenth of a core another thread also wants.
pub const HASHING_NICE: i32 = 10;

#[cfg(target_os = "linux")]
thread_local! {
    static LOWERED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Lowers the calling thread's priority to [`HASHING_NICE`] (never raises it: a
/// server started at a lower one keeps that), once per thread. A failure (a
/// sandbox that forbids it) leaves the priority as it was.
pub fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    LOWERED.with(|lowered| {
        if lowered.get() {
            return;
        }
        lowered.set(true);
        // On Linux a thread id names that thread alone.
        let me = Some(rustix::thread::gettid());
        let lowered = rustix::process::getpriority_process(me).and_then(|now| {
            if now < HASHING_NICE {
                rustix::process::setpriority_process(me, HASHING_NICE)
            } else {
                Ok(())
            }
        });
        if let Err(e) = lowered {
            tracing::debug!(error = %e, "the hashing thread keeps its priority");
        }
    });
}
