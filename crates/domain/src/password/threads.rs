//! Threads that run hashes and nothing else, each at the hashing priority (see
//! [`super::priority`]).
//!
//! tokio's blocking pool would run them as well, but a thread there that had
//! lowered its priority would keep it for whatever the pool ran on it next
//! (outbox files, DNS lookups for the mail relay and the SMS gateway): an
//! unprivileged process cannot raise a thread's priority again.

use super::priority;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send>;

/// Up to `max` threads, started as hashes first need them (an idle server has
/// none), ending once the last handle is dropped.
pub(super) struct HashThreads {
    queue: mpsc::Sender<Job>,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    started: AtomicUsize,
    max: usize,
}

impl HashThreads {
    /// As many threads as hashes may run at once: a hash is only sent holding
    /// one of `max` permits, so none waits for a thread once they are there.
    pub(super) fn new(max: usize) -> Self {
        let (queue, jobs) = mpsc::channel();
        Self {
            queue,
            jobs: Arc::new(Mutex::new(jobs)),
            started: AtomicUsize::new(0),
            max: max.max(1),
        }
    }

    /// Runs `work` on one of the threads: its result, or why it did not run.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, String> {
        self.grow()?;
        let (answer, answered) = oneshot::channel();
        // The caller's runtime, entered for the work: the kept memory's watch
        // for an idle hasher starts there (without it the memory was never given
        // back, 69 MB resident after a flood instead of 31).
        let runtime = tokio::runtime::Handle::try_current().ok();
        let job: Job = Box::new(move || {
            let _entered = runtime.as_ref().map(tokio::runtime::Handle::enter);
            // A caller that gave up no longer listens.
            let _ = answer.send(work());
        });
        self.queue
            .send(job)
            .map_err(|_| "the hashing threads have stopped".to_owned())?;
        answered
            .await
            .map_err(|_| "the hash did not finish".to_owned())
    }

    /// One thread more while there are fewer than `max`.
    fn grow(&self) -> Result<(), String> {
        let max = self.max;
        let Ok(had) = self
            .started
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            })
        else {
            return Ok(());
        };
        let jobs = self.jobs.clone();
        let spawned = std::thread::Builder::new()
            .name("hashing".into())
            .spawn(move || work_on(&jobs));
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                self.started.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(error = %e, "no hashing thread could be started");
                // The others run it; with none, nothing would.
                if had == 0 {
                    Err(format!("no hashing thread could be started: {e}"))
                } else {
                    Ok(())
                }
            }
        }
    }
}

/// Takes jobs until the queue is gone.
fn work_on(jobs: &Mutex<mpsc::Receiver<Job>>) {
    priority::lower_this_thread();
    loop {
        // One thread waits in the queue, the others for the lock; a job runs
        // after the lock is let go.
        let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(job) = next else {
            return;
        };
        // A panic costs its caller (who hears that the hash did not finish),
        // not the thread.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// None at first, one more per hash while fewer than the bound, and a hash
    /// that panics costs its caller an error, not the thread: the next hash
    /// still runs, on the one thread there is, within the caller's runtime.
    #[tokio::test]
    async fn threads_start_as_needed_and_outlive_a_panic() {
        let threads = HashThreads::new(1);
        assert_eq!(threads.started.load(Ordering::SeqCst), 0);
        let lost = threads.run(|| -> u8 { panic!("a hash that fails") }).await;
        assert_eq!(lost, Err("the hash did not finish".to_owned()));
        assert_eq!(threads.run(|| 7).await, Ok(7));
        assert_eq!(threads.started.load(Ordering::SeqCst), 1);
        let named = threads.run(|| std::thread::current().name().map(str::to_owned));
        assert_eq!(named.await, Ok(Some("hashing".to_owned())));
        let runtime = threads.run(|| tokio::runtime::Handle::try_current().is_ok());
        assert_eq!(runtime.await, Ok(true), "the memory's idle watch needs it");
    }
}
