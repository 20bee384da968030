//! The hashing threads yield to everything else (issue 19).
//!
//! A flood of passwords keeps every hashing place busy, each a core's worth of
//! Argon2id; the code steps and pages beside it (and a database in the same
//! scheduling group) then waited behind the hashes for the scheduler's turn. A
//! thread that hashes runs at a lower priority (nice [`HASHING_NICE`]): when
//! nothing else wants the core, a hash runs as fast as before; when something
//! does, that goes first.
//!
//! Linux keeps a nice value per thread, and an unprivileged process cannot
//! raise it again: so the hashes run on threads of their own (see
//! `threads.rs`), each lowered once, when it starts. A flood of cheap
//! requests now slows the hashes more than before; their queue is bounded, so
//! sign-ins then get a quick 503 with `Retry-After` rather than a long wait.

/// How far below the others a hashing thread runs (0 is the default, 19 the
/// lowest): at 10 it gets about a tenth of a core another thread also wants.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
pub(super) const HASHING_NICE: i32 = 10;

/// Lowers the calling thread's priority to [`HASHING_NICE`] (never raises it: a
/// server started at a lower one keeps that). A failure (a sandbox that forbids
/// it) leaves the priority as it was.
pub(super) fn lower_this_thread() {
    #[cfg(target_os = "linux")]
    {
        // On Linux a thread id names that thread alone.
        let me = Some(rustix::thread::gettid());
        let done = rustix::process::getpriority_process(me).and_then(|now| {
            if now < HASHING_NICE {
                rustix::process::setpriority_process(me, HASHING_NICE)
            } else {
                Ok(())
            }
        });
        if let Err(e) = done {
            tracing::debug!(error = %e, "the hashing thread keeps its priority");
        }
    }
}
