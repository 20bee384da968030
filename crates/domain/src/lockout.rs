//! Brute-force protection for the code step: after `max_failures` consecutive wrong
//! codes the account's code step locks, for longer each time. The password step's
//! throttles, kept per account and client address, are in [`throttle`].

pub mod throttle;

use chrono::{DateTime, Duration, Utc};

/// What a lock-out kept with the account guards: the code step, or the password step
/// (the old throttle, one for everyone: the engine now uses [`throttle`] instead).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    Code,
    Password,
}

#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub base: Duration,
    pub max: Duration,
}

impl Default for LockoutPolicy {
    fn default() -> Self {
        Self {
            max_failures: 5,
            base: Duration::seconds(60),
            max: Duration::hours(1),
        }
    }
}

impl LockoutPolicy {
    /// The password step: 10 wrong passwords in a row, then 30 s, doubling to 15 min.
    pub fn password_default() -> Self {
        Self {
            max_failures: 10,
            base: Duration::seconds(30),
            max: Duration::minutes(15),
        }
    }

    /// When the lock ends after the `failures`-th consecutive failure, if it locks at all.
    /// The 5th failure locks for `base`, the 6th for twice that, and so on up to `max`.
    pub fn lock_until(&self, failures: u32, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if failures < self.max_failures {
            return None;
        }
        let doublings = (failures - self.max_failures).min(20);
        let secs = self.base.num_seconds().saturating_mul(1i64 << doublings);
        Some(now + Duration::seconds(secs).min(self.max))
    }

    /// Attempts left before the guard locks, after `failures` consecutive failures
    /// while it is not locked: the last of them locks when it fails too. Once a lock
    /// has ended the next failure locks again, so at least one is left.
    pub fn tries_left(&self, failures: u32) -> u32 {
        self.max_failures.saturating_sub(failures).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let p = LockoutPolicy::default();
        let now = Utc::now();
        assert_eq!(p.lock_until(4, now), None);
        assert_eq!(p.lock_until(5, now), Some(now + Duration::seconds(60)));
        assert_eq!(p.lock_until(6, now), Some(now + Duration::seconds(120)));
        assert_eq!(p.lock_until(7, now), Some(now + Duration::seconds(240)));
        assert_eq!(p.lock_until(60, now), Some(now + Duration::hours(1)));
    }

    #[test]
    fn tries_left_counts_down_to_the_locking_one() {
        let p = LockoutPolicy::default();
        assert_eq!(p.tries_left(0), 5);
        assert_eq!(p.tries_left(3), 2);
        assert_eq!(p.tries_left(4), 1);
        // After a lock has ended, one more wrong code locks again.
        assert_eq!(p.tries_left(5), 1);
        assert_eq!(p.tries_left(9), 1);
    }
}
