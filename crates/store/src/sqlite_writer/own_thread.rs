//! The writer's own connection on a thread of its own (issue 19).
//!
//! On the runtime, each turn was three hand-offs between threads: a caller's
//! job woke the writer's task, the task handed the group to a blocking thread
//! (`spawn_blocking`), and that thread's end woke the task again, while the
//! group's callers waited. Here one thread owns the connection and the queue: it
//! sleeps in the queue until a job comes, takes the turn, runs the group and
//! those that queued meanwhile ([`Direct::commit_following`]), answers, and
//! sleeps again. A caller's job wakes it directly; nothing goes back to the
//! runtime but the answers. The writer's task keeps the checkpoints.

use super::{commit_group, direct::Direct, wait_turn, Job, MAX_GROUP};
use sqlx::SqlitePool;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot, Mutex, OwnedMutexGuard};
use tweestap_domain::store::StoreError;

/// What the thread works with.
struct OwnThread {
    direct: Direct,
    jobs: mpsc::Receiver<Job>,
    pool: SqlitePool,
    turn: Arc<Mutex<()>>,
    /// Set at each turn: the log needs checkpointing.
    wrote: Arc<AtomicBool>,
    /// The runtime, for what must wait on it: a turn held by a caller's
    /// transaction, and groups for sqlx's connection.
    runtime: Handle,
}

/// Starts the thread, writing the `jobs` on `direct` in the writer's `turn`
/// (and on `pool`, sqlx's connection, what `direct` does not take), telling
/// `wrote` at each turn; the receiver hears when it has ended (when the last
/// handle of the writer is dropped, or the runtime is gone). The queue back if
/// no thread could be had. Called on the runtime the callers are on.
///
/// The process does not wait for the thread at exit: a group under way then is
/// rolled back whole (its callers were not answered, as none is before COMMIT),
/// as when the process is killed.
pub(super) fn start(
    direct: Direct,
    jobs: mpsc::Receiver<Job>,
    pool: SqlitePool,
    turn: Arc<Mutex<()>>,
    wrote: Arc<AtomicBool>,
) -> Result<oneshot::Receiver<()>, (mpsc::Receiver<Job>, std::io::Error)> {
    let work = Box::new(OwnThread {
        direct,
        jobs,
        pool,
        turn,
        wrote,
        runtime: Handle::current(),
    });
    let (ended, ended_heard) = oneshot::channel();
    // The work goes over once the thread is there, so that it is not lost with
    // the closure when none can be had.
    let (hand, handed) = std::sync::mpsc::channel::<Box<OwnThread>>();
    let spawned = std::thread::Builder::new()
        .name("sqlite-writer".into())
        .spawn(move || {
            if let Ok(work) = handed.recv() {
                work.run();
            }
            drop(ended);
        });
    match spawned {
        Ok(_) => {
            // The thread holds the other end until it has the work.
            if let Err(back) = hand.send(work) {
                let e = std::io::Error::other("the writer's thread ended");
                return Err((back.0.jobs, e));
            }
            Ok(ended_heard)
        }
        Err(e) => Err((work.jobs, e)),
    }
}

impl OwnThread {
    /// Writes until the queue closes (every handle dropped).
    fn run(self) {
        let OwnThread {
            direct,
            mut jobs,
            pool,
            turn,
            wrote,
            runtime,
        } = self;
        // None after a group panicked: writes go on on sqlx's connection.
        let mut direct = Some(direct);
        loop {
            let mut group = Vec::new();
            if jobs.blocking_recv_many(&mut group, MAX_GROUP) == 0 {
                return;
            }
            let rest = match direct.as_mut() {
                Some(d) if Direct::takes(&group) => {
                    let held = match take_turn(&turn, &pool, &runtime) {
                        Ok(held) => held,
                        Err(Some(e)) => {
                            for job in group {
                                job.fail(e.clone());
                            }
                            continue;
                        }
                        Err(None) => {
                            tracing::error!(
                                "the SQLite writer's thread could not wait for its turn; it stops"
                            );
                            return;
                        }
                    };
                    // Told before the callers are answered, so that the next
                    // checkpoint is known due by then.
                    wrote.store(true, Ordering::SeqCst);
                    let done =
                        catch_unwind(AssertUnwindSafe(|| d.commit_following(group, &mut jobs)));
                    drop(held);
                    match done {
                        Ok(rest) => rest,
                        // Its callers heard that the writer stopped (their
                        // answers were dropped).
                        Err(_) => {
                            tracing::error!(
                                "a SQLite write group panicked; writes go on on sqlx's connection"
                            );
                            direct = None;
                            None
                        }
                    }
                }
                _ => Some(group),
            };
            // Its own connection did not open, or the jobs need sqlx's.
            if let Some(group) = rest {
                wrote.store(true, Ordering::SeqCst);
                let on_sqlx = catch_unwind(AssertUnwindSafe(|| {
                    runtime.block_on(commit_group(&pool, group));
                }));
                // The runtime is gone (shutting down), or the group panicked
                // there: the writer stops.
                if on_sqlx.is_err() {
                    tracing::error!(
                        "a SQLite write group on sqlx's connection panicked; the writer stops"
                    );
                    return;
                }
            }
        }
    }
}

/// The writer's turn: at once when no caller's transaction holds or waits for
/// it, else waited for on the runtime as a caller waits. `Err(Some)`: not had in
/// time; `Err(None)`: the runtime is gone (shutting down), or the wait panicked.
fn take_turn(
    turn: &Arc<Mutex<()>>,
    pool: &SqlitePool,
    runtime: &Handle,
) -> Result<OwnedMutexGuard<()>, Option<StoreError>> {
    if let Ok(held) = turn.clone().try_lock_owned() {
        return Ok(held);
    }
    match catch_unwind(AssertUnwindSafe(|| runtime.block_on(wait_turn(turn, pool)))) {
        Ok(waited) => waited.map_err(Some),
        Err(_) => Err(None),
    }
}
