//! Throttles kept apart from the account: counted attempts named by a key (see
//! `lockout::throttle`), shared by every node on the database and kept across
//! restarts.

use crate::account::AccountId;
use crate::error::StoreResult;
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};

/// One attempt to take of a throttle (see [`ThrottleStore::take_attempt`]).
#[derive(Debug, Clone, Copy)]
pub struct Attempt<'a> {
    pub key: &'a str,
    /// The account the throttle belongs to: its row goes with the account.
    pub account: Option<AccountId>,
    pub now: DateTime<Utc>,
    /// The count at which this attempt locks the throttle at once, until `hold`
    /// (so that requests in parallel wait while its answer is checked).
    pub lock_at: Option<(u32, DateTime<Utc>)>,
    /// At most this many attempts are counted (a budget); more are refused.
    pub cap: Option<u32>,
    /// A count that began at or before this starts over (a budget's window).
    pub restart_before: Option<DateTime<Utc>>,
}

/// A leaky bucket (a budget that refills continuously, see
/// [`ThrottleStore::take_from_bucket`]): it holds `capacity` attempts and lets one
/// drain out every `interval`.
#[derive(Debug, Clone, Copy)]
pub struct Bucket<'a> {
    pub key: &'a str,
    pub now: DateTime<Utc>,
    pub capacity: u32,
    pub interval: Duration,
}

/// What taking from a bucket came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BucketTake {
    /// Taken: the attempts now in the bucket, this one included (1 to capacity).
    Taken(u32),
    /// Full: refused; one drains out at `until`.
    Full { until: DateTime<Utc> },
}

/// Where a throttle stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThrottleState {
    pub failures: u32,
    /// When the count began.
    pub since: DateTime<Utc>,
    pub locked_until: Option<DateTime<Utc>>,
}

/// `take_attempt`, `give_back_attempt`, `clear_throttle`, `take_from_bucket`,
/// `give_back_to_bucket` and `settle_right_answer` may commit without waiting
/// for the disk (on PostgreSQL `synchronous_commit = off`): a password step
/// would otherwise wait for it three to five times, holding the address
/// budget's row locked meanwhile.
/// Parallel requests see such a write at once; only a crash of the database or
/// of its machine, or a fail-over, in the fraction of a second before its log
/// reaches the disk, can lose it. The callers' rule: **an answer that a taken
/// attempt stands for (a wrong password or code, a lock-out) is given only after
/// a write that does wait, its audit row**; the log reaches the disk in order, so
/// that wait makes the attempt durable too. Other losses are on the safe side:
/// an attempt given back or a throttle forgotten after a right answer (then
/// counted once more). What this gives up: when the database crashes between
/// an attempt and its audit row, and that row is written after its restart, the
/// answer is given and the attempt is not counted (one attempt per crash of the
/// database, not one an attacker can bring about). `lock_throttle` always waits.
#[async_trait]
pub trait ThrottleStore: Send + Sync + 'static {
    /// Takes one attempt, in one statement: unless the throttle is locked at `now`
    /// or its count reached `cap`, adds one to its count (made at 1 when there is no
    /// row, or when its count began at or before `restart_before`) and, when that
    /// reaches `lock_at`, locks it at once. The new count, or None when refused.
    async fn take_attempt(&self, a: &Attempt<'_>) -> StoreResult<Option<u32>>;
    async fn throttle_state(&self, key: &str) -> StoreResult<Option<ThrottleState>>;
    async fn lock_throttle(&self, key: &str, until: DateTime<Utc>) -> StoreResult<()>;
    /// Gives back an attempt taken but not spent on a wrong answer: one less, and
    /// no lock while that is below `lock_at`.
    async fn give_back_attempt(&self, key: &str, lock_at: Option<u32>) -> StoreResult<()>;
    /// Forgets a throttle (after a right answer).
    async fn clear_throttle(&self, key: &str) -> StoreResult<()>;
    /// Puts one attempt into a leaky bucket, in one statement (parallel attempts
    /// are counted one after the other), unless it is full at `now`. A bucket
    /// never refills all at once, as a fixed window does at its end: at most
    /// `capacity` attempts at a time, then one per `interval`.
    async fn take_from_bucket(&self, b: &Bucket<'_>) -> StoreResult<BucketTake>;
    /// Takes an attempt out of a bucket again (one not spent on a wrong answer).
    async fn give_back_to_bucket(&self, b: &Bucket<'_>) -> StoreResult<()>;
    /// A right answer's settlement in one write: forgets the throttles `keys` (as
    /// `clear_throttle`) and gives `bucket`'s attempt back (as
    /// `give_back_to_bucket`). The bucket's key is none of `keys`.
    async fn settle_right_answer(
        &self,
        keys: &[&str],
        bucket: Option<&Bucket<'_>>,
    ) -> StoreResult<()>;
}
