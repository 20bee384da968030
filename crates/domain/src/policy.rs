//! Who must use two-step verification, and from when.

use crate::account::Role;
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

pub mod document;

/// The `two_factor` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TwoFactorMode {
    /// Set-up is allowed, but never asked for.
    Off,
    /// Asked for from `required_from` on, if a date is given.
    #[default]
    Optional,
    /// Required (from `required_from` on, if a date is given; otherwise now).
    Required,
}

/// One rule: a mode and an optional date (midnight UTC) from which it is required.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TwoFactorRule {
    pub mode: TwoFactorMode,
    pub required_from: Option<NaiveDate>,
}

/// Fields a role may override; unset fields fall back to the general rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RoleOverride {
    pub mode: Option<TwoFactorMode>,
    pub required_from: Option<NaiveDate>,
}

#[derive(Debug, Clone, Default)]
pub struct TwoFactorPolicy {
    pub general: TwoFactorRule,
    pub user: RoleOverride,
    pub support: RoleOverride,
    pub admin: RoleOverride,
}

/// What the policy asks of one account at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Requirement {
    NotRequired,
    Optional {
        required_from: Option<NaiveDate>,
        days_left: Option<i64>,
    },
    Required,
}

impl TwoFactorPolicy {
    /// The rule that applies to a role.
    pub fn rule_for(&self, role: Role) -> TwoFactorRule {
        let o = match role {
            Role::User => self.user,
            Role::Support => self.support,
            Role::Admin => self.admin,
        };
        TwoFactorRule {
            mode: o.mode.unwrap_or(self.general.mode),
            required_from: o.required_from.or(self.general.required_from),
        }
    }

    pub fn requirement(&self, role: Role, now: DateTime<Utc>) -> Requirement {
        let rule = self.rule_for(role);
        let today = now.date_naive();
        match (rule.mode, rule.required_from) {
            (TwoFactorMode::Off, _) => Requirement::NotRequired,
            (TwoFactorMode::Required, None) => Requirement::Required,
            (TwoFactorMode::Optional, None) => Requirement::Optional {
                required_from: None,
                days_left: None,
            },
            (_, Some(date)) if today >= date => Requirement::Required,
            (_, Some(date)) => Requirement::Optional {
                required_from: Some(date),
                days_left: Some((date - today).num_days()),
            },
        }
    }
}

impl Requirement {
    pub fn is_required(self) -> bool {
        self == Requirement::Required
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn at(y: i32, m: u32, day: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, day, h, 0, 0).unwrap()
    }

    #[test]
    fn default_is_optional_without_date() {
        let p = TwoFactorPolicy::default();
        assert_eq!(
            p.requirement(Role::User, at(2026, 1, 1, 0)),
            Requirement::Optional {
                required_from: None,
                days_left: None
            }
        );
    }

    #[test]
    fn optional_with_date_counts_down_then_requires_from_midnight_utc() {
        let p = TwoFactorPolicy {
            general: TwoFactorRule {
                mode: TwoFactorMode::Optional,
                required_from: Some(d("2026-03-01")),
            },
            ..Default::default()
        };
        assert_eq!(
            p.requirement(Role::User, at(2026, 2, 20, 23)),
            Requirement::Optional {
                required_from: Some(d("2026-03-01")),
                days_left: Some(9)
            }
        );
        assert!(!p.requirement(Role::User, at(2026, 2, 28, 23)).is_required());
        assert!(p.requirement(Role::User, at(2026, 3, 1, 0)).is_required());
    }

    #[test]
    fn required_without_date_is_required_now_and_off_never() {
        let mut p = TwoFactorPolicy::default();
        p.general.mode = TwoFactorMode::Required;
        assert!(p.requirement(Role::User, at(2000, 1, 1, 0)).is_required());
        p.general.mode = TwoFactorMode::Off;
        p.general.required_from = Some(d("2000-01-01"));
        assert_eq!(
            p.requirement(Role::Admin, at(2030, 1, 1, 0)),
            Requirement::NotRequired
        );
    }

    #[test]
    fn roles_override_the_general_rule() {
        let p = TwoFactorPolicy {
            general: TwoFactorRule {
                mode: TwoFactorMode::Optional,
                required_from: Some(d("2026-06-01")),
            },
            admin: RoleOverride {
                mode: None,
                required_from: Some(d("2026-01-01")),
            },
            support: RoleOverride {
                mode: Some(TwoFactorMode::Off),
                required_from: None,
            },
            ..Default::default()
        };
        let now = at(2026, 2, 1, 12);
        assert!(p.requirement(Role::Admin, now).is_required());
        assert!(!p.requirement(Role::User, now).is_required());
        assert_eq!(p.requirement(Role::Support, now), Requirement::NotRequired);
    }
}
