//! Spending one address's password budget twice across the hour: the budget of
//! wrong passwords per client address (over every account) was a fixed window,
//! which starts over an hour after its first attempt, so an address could spend it
//! just before that moment and again just after — twice the budget within
//! seconds. It is a leaky bucket now: the budget at once, then one attempt back
//! every window / budget (here 8 an hour: one every 7.5 minutes).

use super::threat_kit::fresh_client;
use crate::kit::{stored_texts, Backend, Client, TestApp};
use chrono::Duration;

crate::on_both_backends!(spending_the_address_budget_twice_across_the_hour);

const BUDGET: u32 = 8;

/// Wrong passwords checked so far, and refused unchecked by the address budget.
async fn checked_and_refused(app: &TestApp) -> (usize, usize) {
    let events = stored_texts(
        app,
        "SELECT event || ' ' || COALESCE(detail, '') FROM audit_log \
         WHERE event IN ('login_failed', 'login_throttled')",
    )
    .await;
    let checked = events
        .iter()
        .filter(|e| e.starts_with("login_failed"))
        .count();
    let refused = events
        .iter()
        .filter(|e| e.starts_with("login_throttled") && e.ends_with("scope=address"))
        .count();
    (checked, refused)
}

/// `n` guesses, each at an address without an account (so no other throttle
/// counts them twice): how many were checked.
async fn guesses(app: &TestApp, c: &Client, n: usize, next: &mut usize) -> usize {
    let (before, _) = checked_and_refused(app).await;
    for _ in 0..n {
        *next += 1;
        let r = c
            .login(&format!("niemand{next}@tweestad.example"), "Zomer2026!")
            .await;
        assert_eq!(r.status, 401, "{:?}", r.body);
    }
    checked_and_refused(app).await.0 - before
}

async fn spending_the_address_budget_twice_across_the_hour(backend: Backend) {
    let app = TestApp::start_configured(backend, |c| {
        c.lockout.password_address_max_failures = BUDGET;
    })
    .await;
    let c = fresh_client(&app);
    let mut next = 0;
    let budget = BUDGET as usize;
    // One guess as the hour starts (it has long drained out by its end), the
    // whole budget as it ends.
    assert_eq!(guesses(&app, &c, 1, &mut next).await, 1);
    app.clock.advance(Duration::minutes(59));
    assert_eq!(guesses(&app, &c, budget, &mut next).await, budget);
    // Two minutes later (past the hour since the first guess, where a fixed
    // window starts over with the whole budget): nothing to spare.
    app.clock.advance(Duration::minutes(2));
    assert_eq!(guesses(&app, &c, budget, &mut next).await, 0);
    // One attempt comes back every 7.5 minutes, not all at once.
    app.clock.advance(Duration::seconds(330));
    assert_eq!(guesses(&app, &c, budget, &mut next).await, 1);
    app.clock.advance(Duration::seconds(450));
    assert_eq!(guesses(&app, &c, budget, &mut next).await, 1);
    // From minute 59 to 74 the budget and what drained out meanwhile: 8 + 2 (a
    // fixed window allowed 7 + 8 between minutes 59 and 61).
    let (checked, refused) = checked_and_refused(&app).await;
    assert_eq!(checked, 1 + budget + 2, "checked");
    assert_eq!(refused, budget + 2 * (budget - 1), "refused unchecked");
    // An hour of quiet empties the bucket: the whole budget again.
    app.clock.advance(Duration::hours(1));
    assert_eq!(guesses(&app, &c, budget + 2, &mut next).await, budget);
}
