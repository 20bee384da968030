//! Throttles kept apart from the account: an attempt taken in one statement, which
//! locks at its threshold, caps a budget and starts a window over.

use super::*;
use tweestap_domain::store::{Attempt, Bucket, BucketTake, ThrottleState};

conformance!(
    a_throttle_counts_locks_at_its_threshold_and_waits_out_the_lock,
    a_budget_stops_at_its_cap_and_starts_over_with_its_window,
    an_attempt_given_back_lifts_the_lock_it_took,
    parallel_attempts_take_no_more_than_the_threshold,
    throttles_go_with_their_account_and_a_new_password,
    idle_throttles_are_purged,
    a_bucket_refills_one_at_a_time_not_at_a_window_s_end,
    parallel_takes_overfill_no_bucket,
    a_right_answer_clears_its_throttles_and_gives_its_bucket_back_at_once,
);

fn locking(key: &str, account: Option<AccountId>, now: DateTime<Utc>) -> Attempt<'_> {
    Attempt {
        key,
        account,
        now,
        lock_at: Some((3, now + Duration::seconds(30))),
        cap: None,
        restart_before: None,
    }
}

async fn a_throttle_counts_locks_at_its_threshold_and_waits_out_the_lock(s: Dyn) {
    let now = t0();
    assert_eq!(s.throttle_state("k").await.unwrap(), None);
    for n in 1..=2 {
        assert_eq!(
            s.take_attempt(&locking("k", None, now)).await.unwrap(),
            Some(n)
        );
    }
    let got = s.throttle_state("k").await.unwrap().unwrap();
    assert_eq!(
        got,
        ThrottleState {
            failures: 2,
            since: us(now),
            locked_until: None
        }
    );
    // The third locks at once, until its hold.
    assert_eq!(
        s.take_attempt(&locking("k", None, now)).await.unwrap(),
        Some(3)
    );
    let got = s.throttle_state("k").await.unwrap().unwrap();
    assert_eq!(got.locked_until, Some(us(now + Duration::seconds(30))));
    assert_eq!(
        s.take_attempt(&locking("k", None, now)).await.unwrap(),
        None
    );
    s.lock_throttle("k", now + Duration::seconds(90))
        .await
        .unwrap();
    let later = now + Duration::seconds(60);
    assert_eq!(
        s.take_attempt(&locking("k", None, later)).await.unwrap(),
        None,
        "the full lock stands"
    );
    // Once it ended, the next attempt counts on and locks again.
    let after = now + Duration::seconds(91);
    assert_eq!(
        s.take_attempt(&locking("k", None, after)).await.unwrap(),
        Some(4)
    );
    let got = s.throttle_state("k").await.unwrap().unwrap();
    assert_eq!(got.locked_until, Some(us(after + Duration::seconds(30))));
    assert_eq!(got.since, us(now), "the count began with the first");
    // Other keys are untouched; a cleared one starts again.
    assert_eq!(
        s.take_attempt(&locking("k2", None, after)).await.unwrap(),
        Some(1)
    );
    s.clear_throttle("k").await.unwrap();
    assert_eq!(s.throttle_state("k").await.unwrap(), None);
    assert_eq!(
        s.take_attempt(&locking("k", None, after)).await.unwrap(),
        Some(1)
    );
}

async fn a_budget_stops_at_its_cap_and_starts_over_with_its_window(s: Dyn) {
    let now = t0();
    let budget = |at: DateTime<Utc>| Attempt {
        key: "budget",
        account: None,
        now: at,
        lock_at: None,
        cap: Some(3),
        restart_before: Some(at - Duration::hours(1)),
    };
    for n in 1..=3 {
        assert_eq!(s.take_attempt(&budget(now)).await.unwrap(), Some(n));
    }
    assert_eq!(s.take_attempt(&budget(now)).await.unwrap(), None);
    let minutes = |m| now + Duration::minutes(m);
    assert_eq!(s.take_attempt(&budget(minutes(59))).await.unwrap(), None);
    // An attempt given back (a right answer) makes room for one more.
    s.give_back_attempt("budget", None).await.unwrap();
    assert_eq!(s.take_attempt(&budget(minutes(59))).await.unwrap(), Some(3));
    let got = s.throttle_state("budget").await.unwrap().unwrap();
    assert_eq!((got.failures, got.locked_until), (3, None));
    // An hour after the count began it starts over.
    assert_eq!(s.take_attempt(&budget(minutes(61))).await.unwrap(), Some(1));
    let got = s.throttle_state("budget").await.unwrap().unwrap();
    assert_eq!(got.since, us(minutes(61)));
    // Giving back never goes below nothing.
    for _ in 0..3 {
        s.give_back_attempt("budget", None).await.unwrap();
    }
    assert_eq!(
        s.throttle_state("budget").await.unwrap().unwrap().failures,
        0
    );
    s.give_back_attempt("nothing here", None).await.unwrap();
}

async fn an_attempt_given_back_lifts_the_lock_it_took(s: Dyn) {
    let now = t0();
    for _ in 0..3 {
        s.take_attempt(&locking("k", None, now)).await.unwrap();
    }
    assert!(s
        .throttle_state("k")
        .await
        .unwrap()
        .unwrap()
        .locked_until
        .is_some());
    s.give_back_attempt("k", Some(3)).await.unwrap();
    let got = s.throttle_state("k").await.unwrap().unwrap();
    assert_eq!((got.failures, got.locked_until), (2, None));
    // At or above the threshold a lock stays.
    let later = now + Duration::seconds(31);
    assert_eq!(
        s.take_attempt(&locking("k", None, later)).await.unwrap(),
        Some(3)
    );
    assert_eq!(
        s.take_attempt(&locking("k", None, later + Duration::hours(1)))
            .await
            .unwrap(),
        Some(4)
    );
    s.lock_throttle("k", now + Duration::hours(3))
        .await
        .unwrap();
    s.give_back_attempt("k", Some(3)).await.unwrap();
    let got = s.throttle_state("k").await.unwrap().unwrap();
    assert_eq!(
        (got.failures, got.locked_until),
        (3, Some(us(now + Duration::hours(3))))
    );
}

async fn parallel_attempts_take_no_more_than_the_threshold(s: Dyn) {
    let now = Utc::now();
    let mut tasks = Vec::new();
    for _ in 0..40 {
        let one = s.clone();
        tasks.push(tokio::spawn(async move {
            one.take_attempt(&locking("race", None, now)).await.unwrap()
        }));
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let budget = Attempt {
                key: "race budget",
                account: None,
                now,
                lock_at: None,
                cap: Some(7),
                restart_before: Some(now - Duration::hours(1)),
            };
            s.take_attempt(&budget).await.unwrap().map(|n| n + 1000)
        }));
    }
    let mut taken = Vec::new();
    for t in tasks {
        if let Some(n) = t.await.unwrap() {
            taken.push(n);
        }
    }
    taken.sort_unstable();
    assert_eq!(
        taken,
        vec![1, 2, 3, 1001, 1002, 1003, 1004, 1005, 1006, 1007]
    );
}

async fn throttles_go_with_their_account_and_a_new_password(s: Dyn) {
    let a = account(&s, "an@x.be").await;
    let b = account(&s, "bo@x.be").await;
    let now = t0();
    for key in ["password:account:a", "code:recovery:a"] {
        s.take_attempt(&locking(key, Some(a.id), now))
            .await
            .unwrap();
    }
    s.take_attempt(&locking("password:account:b", Some(b.id), now))
        .await
        .unwrap();
    s.take_attempt(&locking("password:address:x", None, now))
        .await
        .unwrap();
    s.change_password(a.id, "$argon2id$new", now, None)
        .await
        .unwrap();
    assert_eq!(
        s.throttle_state("password:account:a").await.unwrap(),
        None,
        "a new password clears the account's password throttles"
    );
    for kept in [
        "code:recovery:a",
        "password:account:b",
        "password:address:x",
    ] {
        assert!(s.throttle_state(kept).await.unwrap().is_some(), "{kept}");
    }
    s.delete_account(b.id).await.unwrap();
    assert_eq!(s.throttle_state("password:account:b").await.unwrap(), None);
}

async fn idle_throttles_are_purged(s: Dyn) {
    let now = t0();
    s.take_attempt(&locking("old", None, now)).await.unwrap();
    for _ in 0..3 {
        s.take_attempt(&locking("old locked", None, now))
            .await
            .unwrap();
    }
    s.lock_throttle("old locked", now + Duration::days(60))
        .await
        .unwrap();
    let later = now + Duration::days(31);
    s.take_attempt(&locking("recent", None, later))
        .await
        .unwrap();
    s.delete_spent(later - Duration::days(30)).await.unwrap();
    assert_eq!(s.throttle_state("old").await.unwrap(), None);
    assert!(s.throttle_state("old locked").await.unwrap().is_some());
    assert!(s.throttle_state("recent").await.unwrap().is_some());
}

/// A bucket of 4 draining one every 15 minutes (4 an hour).
fn bucket(key: &str, now: DateTime<Utc>) -> Bucket<'_> {
    Bucket {
        key,
        now,
        capacity: 4,
        interval: Duration::minutes(15),
    }
}

/// `t` to the millisecond, as a bucket keeps its times.
fn ms(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap()
}

async fn a_bucket_refills_one_at_a_time_not_at_a_window_s_end(s: Dyn) {
    let now = t0();
    let at = |m: i64| now + Duration::minutes(m);
    let take = |m: i64| {
        let s = s.clone();
        async move { s.take_from_bucket(&bucket("b", at(m))).await.unwrap() }
    };
    // One at the start of the hour, three at its end: full.
    assert_eq!(take(0).await, BucketTake::Taken(1));
    for n in 1..=3 {
        assert_eq!(take(59).await, BucketTake::Taken(n));
    }
    assert_eq!(take(59).await, BucketTake::Taken(4));
    assert_eq!(take(59).await, BucketTake::Full { until: ms(at(74)) });
    // Just past the hour a fixed window would start over with four; the bucket
    // has none to spare until one drains out, a quarter of an hour later.
    assert_eq!(take(61).await, BucketTake::Full { until: ms(at(74)) });
    assert_eq!(take(74).await, BucketTake::Taken(4));
    assert_eq!(take(75).await, BucketTake::Full { until: ms(at(89)) });
    // Given back (a right answer): room for one more at once.
    s.give_back_to_bucket(&bucket("b", at(75))).await.unwrap();
    assert_eq!(take(75).await, BucketTake::Taken(4));
    // Empty again after four intervals of quiet.
    assert_eq!(take(75 + 60).await, BucketTake::Taken(1));
}

async fn parallel_takes_overfill_no_bucket(s: Dyn) {
    let now = t0();
    let mut tasks = Vec::new();
    for _ in 0..30 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            s.take_from_bucket(&bucket("race bucket", now))
                .await
                .unwrap()
        }));
    }
    let mut taken = Vec::new();
    for t in tasks {
        if let BucketTake::Taken(n) = t.await.unwrap() {
            taken.push(n);
        }
    }
    taken.sort_unstable();
    assert_eq!(taken, vec![1, 2, 3, 4]);
}

/// A right answer's settlement: the throttles named start over, the bucket gets
/// one attempt back, and nothing else changes; with keys only, a bucket only,
/// or neither, as well.
async fn a_right_answer_clears_its_throttles_and_gives_its_bucket_back_at_once(s: Dyn) {
    let now = t0();
    for key in ["own", "backstop", "other"] {
        s.take_attempt(&locking(key, None, now)).await.unwrap();
    }
    for _ in 0..3 {
        s.take_from_bucket(&bucket("b", now)).await.unwrap();
    }
    let b = bucket("b", now);
    s.settle_right_answer(&["own", "backstop"], Some(&b))
        .await
        .unwrap();
    assert_eq!(s.throttle_state("own").await.unwrap(), None);
    assert_eq!(s.throttle_state("backstop").await.unwrap(), None);
    let other = s.throttle_state("other").await.unwrap().unwrap();
    assert_eq!(other.failures, 1, "a throttle not named is left alone");
    // Three in the bucket, one given back: two more fit, then it is full.
    for held in [3, 4] {
        assert_eq!(
            s.take_from_bucket(&b).await.unwrap(),
            BucketTake::Taken(held)
        );
    }
    assert!(matches!(
        s.take_from_bucket(&b).await.unwrap(),
        BucketTake::Full { .. }
    ));

    s.settle_right_answer(&["other"], None).await.unwrap();
    assert_eq!(s.throttle_state("other").await.unwrap(), None);
    s.settle_right_answer(&[], Some(&b)).await.unwrap();
    assert_eq!(
        s.take_from_bucket(&b).await.unwrap(),
        BucketTake::Taken(4),
        "a bucket alone gets its attempt back"
    );
    s.settle_right_answer(&[], None).await.unwrap();
    assert!(
        matches!(
            s.take_from_bucket(&b).await.unwrap(),
            BucketTake::Full { .. }
        ),
        "nothing named, nothing given back"
    );
}
