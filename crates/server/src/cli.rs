//! The administration commands, one module per group.

pub mod reminders;
pub mod user;
