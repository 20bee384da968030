//! TOTP codes as an authenticator app computes them, and the clock tests move.

use chrono::{TimeZone, Utc};
use tweestap_domain::clock::{Clock, ManualClock};
use tweestap_domain::totp::TotpParams;

/// A manual clock at 2026-03-01 09:00:10 UTC: mid-step, so a test's "current code"
/// is not about to roll over.
pub fn test_clock() -> ManualClock {
    ManualClock::new(
        Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 10)
            .single()
            .expect("a valid time"),
    )
}

/// The code of the base32 key `secret_b32` (spaces allowed, as a page groups it) at
/// `unix_seconds`.
pub fn code_at(secret_b32: &str, unix_seconds: i64) -> String {
    let key = data_encoding::BASE32_NOPAD
        .decode(secret_b32.replace(' ', "").as_bytes())
        .expect("the key is base32");
    TotpParams::default().code_at(&key, unix_seconds)
}

/// The code of `secret_b32` at `clock`'s time.
pub fn code_now(secret_b32: &str, clock: &ManualClock) -> String {
    code_at(secret_b32, clock.now().timestamp())
}

/// Moves `clock` on one 30-second step, so the next code is a new one.
pub fn next_step(clock: &ManualClock) {
    clock.advance(chrono::Duration::seconds(30));
}
