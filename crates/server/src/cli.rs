//! The administration commands, one module per group.

pub mod reminders;
pub mod secret_rotation;
pub mod user;
