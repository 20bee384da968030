//! The administration commands, one module per group.

pub mod user;
