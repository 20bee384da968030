//! The engine driven directly, without HTTP: each journey on a fresh SQLite store
//! with a clock the test moves.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a broken expectation is a failed test"
)]

mod devices;
mod harness;
mod password_reset;
mod policy;
mod portals;
mod secure_account;
mod sign_in;
mod support_reset;
