//! The journeys in a real headless Chromium: setting up an authenticator app (from
//! My Profile, "Beveilig nu je account" with a mailed code, the mailed link), a
//! support reset followed by a new app, remembered devices, recovery codes, SMS, and
//! signing in at the example portal; each time signing in again (or being signed
//! in) afterwards.
//!
//! Needs Debian's `chromium` and `chromium-driver`. Locally it skips (loudly) when
//! they are missing; with TWEESTAP_REQUIRE_ALL=1 (CI) a missing browser fails.

mod axe;
mod console;
mod devices;
mod driver;
mod journey;
mod looks;
mod manuals;
mod messages;
mod more_pages;
mod passkeys;
mod portal;
mod portal_sessions;
mod seen;
mod set_up;
mod sms;
