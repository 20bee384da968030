//! The Argon2 memory the hasher keeps between checks, given back when idle.
//!
//! Each check needs its whole memory block (19 MiB at OWASP's parameters) at once.
//! Reusing a block per hashing place costs nothing per check under load; keeping
//! them for good would hold `max_concurrent_hashes` × that memory resident after a
//! single burst of sign-ins. So the blocks go back to the system once no check has
//! run for a while (the binary's mmap threshold makes a freed block leave the
//! process at once).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long the hasher stays unused before its memory is freed.
pub const KEPT_WHILE_IDLE: Duration = Duration::from_secs(5);

pub type Block = Vec<argon2::Block>;

pub struct ArgonMemory {
    blocks: Mutex<Vec<Block>>,
    /// At most this many blocks are kept: one per hashing place.
    max_kept: usize,
    /// The size of a block for the configured parameters; larger ones (an
    /// imported hash with more memory) are not kept.
    block_len: usize,
    kept_while_idle: Duration,
    /// Checks so far: memory is freed once a whole idle period passes without one.
    uses: AtomicU64,
    /// Whether a task is watching for the idle period (at most one is).
    watching: AtomicBool,
}

impl ArgonMemory {
    pub fn new(max_kept: usize, block_len: usize, kept_while_idle: Duration) -> Self {
        Self {
            blocks: Mutex::default(),
            max_kept,
            block_len,
            kept_while_idle,
            uses: AtomicU64::new(0),
            watching: AtomicBool::new(false),
        }
    }

    /// A kept block, or an empty one that the check grows to its size.
    pub fn take(&self) -> Block {
        lock(&self.blocks).pop().unwrap_or_default()
    }

    /// Keeps `block` for the next check (when there is room and it is of the
    /// configured size), and makes sure it is freed once the hasher is idle. Called
    /// on a hashing thread, within the caller's runtime.
    pub fn give_back(self: &Arc<Self>, block: Block) {
        if block.len() <= self.block_len {
            let mut blocks = lock(&self.blocks);
            if blocks.len() < self.max_kept {
                blocks.push(block);
            }
        }
        self.uses.fetch_add(1, Ordering::SeqCst);
        self.watch();
    }

    /// Blocks kept now.
    #[cfg(test)]
    fn kept(&self) -> usize {
        lock(&self.blocks).len()
    }

    fn watch(self: &Arc<Self>) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(free_when_idle(Watching(Some(self.clone()))));
            }
            // No runtime to wait on: keep the memory, as before idle release.
            Err(_) => self.watching.store(false, Ordering::SeqCst),
        }
    }
}

/// The watch's hold on `watching`: let go if the task is dropped unfinished (its
/// runtime shut down, before or while it waited), so that a later check can
/// watch again; without it the memory would be kept for good.
struct Watching(Option<Arc<ArgonMemory>>);

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(memory) = self.0.take() {
            memory.watching.store(false, Ordering::SeqCst);
        }
    }
}

async fn free_when_idle(mut watching: Watching) {
    let Some(memory) = watching.0.clone() else {
        return;
    };
    let mut seen = memory.uses.load(Ordering::SeqCst);
    loop {
        tokio::time::sleep(memory.kept_while_idle).await;
        let now = memory.uses.load(Ordering::SeqCst);
        if now != seen {
            seen = now;
            continue;
        }
        lock(&memory.blocks).clear();
        // Finished: the flag is let go here, not by the hold.
        watching.0 = None;
        memory.watching.store(false, Ordering::SeqCst);
        // A check that gave a block back between the look and the stop did not
        // start a watcher (this one was still on): watch on for it, unless it or a
        // later check already started one.
        let after = memory.uses.load(Ordering::SeqCst);
        if after == now || memory.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        // Watching on: held again.
        watching.0 = Some(memory.clone());
        seen = after;
    }
}

/// The kept blocks; a panic while they were held leaves nothing half-done.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block() -> Block {
        vec![argon2::Block::default(); 8]
    }

    /// A watch spawned onto a runtime that is gone never runs; the next check
    /// can still watch.
    #[test]
    fn a_watch_lost_with_its_runtime_lets_the_next_check_watch() {
        let m = Arc::new(ArgonMemory::new(2, 8, Duration::from_secs(10)));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let handle = runtime.handle().clone();
        drop(runtime);
        let _entered = handle.enter();
        m.give_back(block());
        assert!(!m.watching.load(Ordering::SeqCst));
    }

    #[tokio::test(start_paused = true)]
    async fn blocks_are_freed_after_an_idle_period_and_kept_while_in_use() {
        let m = Arc::new(ArgonMemory::new(2, 8, Duration::from_secs(10)));
        m.give_back(block());
        m.give_back(block());
        m.give_back(block());
        assert_eq!(m.kept(), 2, "one block per hashing place at most");
        // Used again within the period: kept.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let b = m.take();
        m.give_back(b);
        tokio::time::sleep(Duration::from_secs(6)).await;
        assert_eq!(m.kept(), 2, "in use less than the idle period ago");
        tokio::time::sleep(Duration::from_secs(15)).await;
        assert_eq!(m.kept(), 0, "idle for a whole period");
        // The next check watches again.
        m.give_back(block());
        assert_eq!(m.kept(), 1);
        tokio::time::sleep(Duration::from_secs(21)).await;
        assert_eq!(m.kept(), 0);
    }

    #[tokio::test]
    async fn a_block_larger_than_configured_is_not_kept() {
        let m = Arc::new(ArgonMemory::new(2, 4, KEPT_WHILE_IDLE));
        m.give_back(block());
        assert_eq!(m.kept(), 0);
    }
}
