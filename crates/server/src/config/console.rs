//! The roll-out console (`[console]`): how long a code keeps an administrator in,
//! how long audit records are kept, and the first values of the invitation lifetime
//! and reminder stages (the console edits those afterwards).

use serde::Deserialize;
use tweestap_domain::settings::ConsoleSettings;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Minutes a code (at sign-in or a step-up) keeps the console open.
    pub step_up_minutes: u32,
    /// Days audit records are kept; 0 keeps them forever.
    pub audit_retention_days: u32,
    /// Days an invitation link works.
    pub invite_days: u32,
    /// Days before a role's `required_from` the reminder mail goes out.
    pub reminder_days: Vec<u32>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        let d = ConsoleSettings::default();
        Self {
            step_up_minutes: 15,
            audit_retention_days: 0,
            invite_days: d.invite_days,
            reminder_days: d.reminder_days,
        }
    }
}

impl ConsoleConfig {
    pub fn settings(&self) -> ConsoleSettings {
        ConsoleSettings {
            step_up: chrono::Duration::minutes(i64::from(self.step_up_minutes.clamp(1, 24 * 60))),
            audit_retention: (self.audit_retention_days > 0)
                .then(|| chrono::Duration::days(i64::from(self.audit_retention_days))),
            invite_days: self.invite_days.clamp(1, 30),
            reminder_days: self
                .reminder_days
                .iter()
                .copied()
                .filter(|d| (1..=365).contains(d))
                .collect(),
        }
    }
}
