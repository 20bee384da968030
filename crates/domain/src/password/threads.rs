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

/// Up to `max` threads, one more with each hash until there are `max` (an idle
/// server has none), ending once the last handle is dropped.
pub(super) struct HashThreads {
    queue: mpsc::Sender<Job>,
    jobs: Arc<Mutex<mpsc::Receiver<Job>>>,
    counts: Arc<Counts>,
    max: usize,
}

#[derive(Default)]
struct Counts {
    /// Threads started and not ended (a thread that ends can be replaced).
    started: AtomicUsize,
    /// Threads running now, taking jobs.
    live: AtomicUsize,
}

impl HashThreads {
    /// As many threads as hashes may run at once: a hash is only sent holding
    /// one of `max` permits, so none waits long for a thread once they are there.
    pub(super) fn new(max: usize) -> Self {
        let (queue, jobs) = mpsc::channel();
        Self {
            queue,
            jobs: Arc::new(Mutex::new(jobs)),
            counts: Arc::default(),
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
        // for an idle hasher is spawned onto it.
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
        let more = self
            .counts
            .started
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < max).then_some(n + 1)
            });
        if more.is_err() {
            return Ok(());
        }
        let (jobs, counts) = (self.jobs.clone(), self.counts.clone());
        let spawned = std::thread::Builder::new()
            .name("hashing".into())
            .spawn(move || work_on(&jobs, &counts));
        match spawned {
            Ok(_) => Ok(()),
            Err(e) => {
                self.counts.started.fetch_sub(1, Ordering::SeqCst);
                tracing::warn!(error = %e, "no hashing thread could be started");
                // A running thread takes the job; with none, nothing would (one
                // starting now counts once it runs: refused meanwhile, safely).
                if self.counts.live.load(Ordering::SeqCst) > 0 {
                    Ok(())
                } else {
                    Err(format!("no hashing thread could be started: {e}"))
                }
            }
        }
    }
}

/// Counts a thread while it runs, and lets it be replaced when it ends.
struct Alive<'a>(&'a Counts);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::SeqCst);
        self.0.started.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Takes jobs until the queue is gone.
fn work_on(jobs: &Mutex<mpsc::Receiver<Job>>, counts: &Counts) {
    counts.live.fetch_add(1, Ordering::SeqCst);
    let _alive = Alive(counts);
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

    /// `f`'s output; a test that would otherwise hang fails instead.
    async fn within<T>(f: impl std::future::Future<Output = T>) -> T {
        let limit = std::time::Duration::from_secs(10);
        tokio::time::timeout(limit, f)
            .await
            .expect("answered in time")
    }

    /// None at first, one more per hash up to the bound, and a hash that
    /// panics costs its caller an error, not the thread: the next hashes still
    /// run, within the caller's runtime.
    #[tokio::test]
    async fn threads_start_as_needed_and_outlive_a_panic() {
        let threads = HashThreads::new(2);
        let started = || threads.counts.started.load(Ordering::SeqCst);
        assert_eq!(started(), 0);
        let lost = within(threads.run(|| -> u8 { panic!("a hash that fails") })).await;
        assert_eq!(lost, Err("the hash did not finish".to_owned()));
        assert_eq!(started(), 1);
        assert_eq!(within(threads.run(|| 7)).await, Ok(7));
        assert_eq!(started(), 2);
        let named = threads.run(|| std::thread::current().name().map(str::to_owned));
        assert_eq!(within(named).await, Ok(Some("hashing".to_owned())));
        assert_eq!(started(), 2, "no more than the bound");
        let runtime = threads.run(|| tokio::runtime::Handle::try_current().is_ok());
        let runtime = within(runtime).await;
        assert_eq!(runtime, Ok(true), "the memory's idle watch needs it");
    }
}
