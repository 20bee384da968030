//! The integration tests: one binary, since each links the whole server. Every test
//! runs a real tweestap — in this process on a loopback port ([`kit::TestApp`]) or as
//! the `tweestap` binary — and the kit is shared by all of them.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failed test with its location"
)]

mod api;
mod browser;
mod cli;
mod cluster;
mod crash_safety;
mod kit;
mod metrics;
mod moving;
mod nginx;
mod security;
mod sms_gateways;
