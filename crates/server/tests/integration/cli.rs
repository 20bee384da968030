//! Black-box tests of the `tweestap` binary: the administration commands, `serve`,
//! and configuration errors. Every test gets its own data directory; every child
//! process is killed when its guard drops, also when an assertion fails.

mod configuration;
mod migrate;
mod secret_rotation;
mod serve;
mod users;
