//! The policy as the console edits it: one document, per role the two-step rule and
//! the methods allowed, and the installation's lifetimes and SMS limits. Stored in
//! the database so every node applies the same; the configuration file gives the
//! first values. A change is a JSON merge patch (RFC 7396) of the document, checked
//! as a whole; a bad value is refused naming its field.

use super::{RoleOverride, TwoFactorMode, TwoFactorPolicy, TwoFactorRule};
use crate::account::Role;
use crate::sms::SmsPolicy;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A second-factor method the policy can allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    App,
    Sms,
    /// A passkey or security key (WebAuthn).
    Passkey,
}

/// One role's rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolePolicy {
    /// `off`, `optional` or `required`.
    pub two_factor: TwoFactorMode,
    /// From this day (midnight UTC) on, two-step verification is required.
    pub required_from: Option<NaiveDate>,
    /// The methods people of this role may set up (at least one).
    pub methods: Vec<Method>,
    /// Whether people of this role may sign in with a passkey alone (no password):
    /// the passkey then proves possession and, with its PIN or biometric, the person.
    #[serde(default = "allowed")]
    pub passwordless: bool,
}

fn allowed() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Roles {
    pub user: RolePolicy,
    pub support: RolePolicy,
    pub admin: RolePolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmsLimits {
    /// Country calling codes numbers may have (32 Belgium, 31 the Netherlands).
    pub calling_codes: Vec<u16>,
    pub per_account_per_hour: u32,
    pub per_number_per_hour: u32,
    pub per_ip_per_hour: u32,
    pub global_per_hour: u32,
}

/// The whole policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyDocument {
    pub roles: Roles,
    /// How long a remembered browser may skip the code step.
    pub remember_device_days: u32,
    /// How long a mailed link to the personal QR page works.
    pub enrollment_link_days: u32,
    /// How long an invitation works.
    pub invite_days: u32,
    /// Days before a role's `required_from` on which the reminder mail goes out.
    pub reminder_days: Vec<u32>,
    pub sms: SmsLimits,
}

/// A refused policy: the field, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct PolicyProblem {
    pub field: String,
    pub problem: String,
}

fn problem(field: &str, problem: &str) -> PolicyProblem {
    PolicyProblem {
        field: field.to_owned(),
        problem: problem.to_owned(),
    }
}

impl PolicyDocument {
    /// The document the configuration describes.
    pub fn from_settings(
        two_factor: &TwoFactorPolicy,
        sms: &SmsPolicy,
        remember_device: chrono::Duration,
        enrollment_link: chrono::Duration,
    ) -> Self {
        let role = |r: Role| {
            let rule = two_factor.rule_for(r);
            RolePolicy {
                two_factor: rule.mode,
                required_from: rule.required_from,
                methods: vec![Method::App, Method::Sms, Method::Passkey],
                passwordless: true,
            }
        };
        Self {
            roles: Roles {
                user: role(Role::User),
                support: role(Role::Support),
                admin: role(Role::Admin),
            },
            remember_device_days: days(remember_device),
            enrollment_link_days: days(enrollment_link),
            invite_days: 5,
            reminder_days: vec![30, 14, 7, 1],
            sms: SmsLimits {
                calling_codes: sms.allowed_calling_codes.clone(),
                per_account_per_hour: sms.per_account_per_hour,
                per_number_per_hour: sms.per_number_per_hour,
                per_ip_per_hour: sms.per_ip_per_hour,
                global_per_hour: sms.global_per_hour,
            },
        }
    }

    pub fn role(&self, role: Role) -> &RolePolicy {
        match role {
            Role::User => &self.roles.user,
            Role::Support => &self.roles.support,
            Role::Admin => &self.roles.admin,
        }
    }

    /// The two-step rules of the document.
    pub fn two_factor(&self) -> TwoFactorPolicy {
        let o = |r: &RolePolicy| RoleOverride {
            mode: Some(r.two_factor),
            required_from: r.required_from,
        };
        TwoFactorPolicy {
            general: TwoFactorRule::default(),
            user: o(&self.roles.user),
            support: o(&self.roles.support),
            admin: o(&self.roles.admin),
        }
    }

    /// The SMS policy with the document's limits (the region stays configured).
    pub fn sms_policy(&self, configured: &SmsPolicy) -> SmsPolicy {
        SmsPolicy {
            allowed_calling_codes: self.sms.calling_codes.clone(),
            per_account_per_hour: self.sms.per_account_per_hour,
            per_number_per_hour: self.sms.per_number_per_hour,
            per_ip_per_hour: self.sms.per_ip_per_hour,
            global_per_hour: self.sms.global_per_hour,
            default_region: configured.default_region.clone(),
        }
    }

    /// Applies a merge patch (only what changes) and checks the result.
    pub fn patched(&self, patch: &Value) -> Result<Self, PolicyProblem> {
        if !patch.is_object() {
            return Err(problem("", "the body must be a JSON object"));
        }
        let mut doc = serde_json::to_value(self).map_err(|e| problem("", &e.to_string()))?;
        merge(&mut doc, patch);
        let parsed: Self = serde_path_to_error::deserialize(doc).map_err(|e| {
            let field = e.path().to_string();
            problem(
                if field == "." { "" } else { &field },
                &e.inner().to_string(),
            )
        })?;
        parsed.check()?;
        Ok(parsed)
    }

    /// Values that parse but make no sense.
    pub fn check(&self) -> Result<(), PolicyProblem> {
        for (name, r) in [
            ("user", &self.roles.user),
            ("support", &self.roles.support),
            ("admin", &self.roles.admin),
        ] {
            if r.methods.is_empty() {
                return Err(problem(
                    &format!("roles.{name}.methods"),
                    "at least one method must be allowed",
                ));
            }
            // Anywhere in the list, not only side by side (`dedup` would miss
            // `["app", "sms", "app"]`).
            let twice = (1..r.methods.len()).any(|i| r.methods[..i].contains(&r.methods[i]));
            if twice {
                return Err(problem(
                    &format!("roles.{name}.methods"),
                    "a method is listed twice",
                ));
            }
        }
        let ranges = [
            ("remember_device_days", self.remember_device_days, 0, 90),
            ("enrollment_link_days", self.enrollment_link_days, 1, 30),
            ("invite_days", self.invite_days, 1, 30),
            (
                "sms.per_account_per_hour",
                self.sms.per_account_per_hour,
                0,
                100,
            ),
            (
                "sms.per_number_per_hour",
                self.sms.per_number_per_hour,
                0,
                100,
            ),
            ("sms.per_ip_per_hour", self.sms.per_ip_per_hour, 0, 1000),
            (
                "sms.global_per_hour",
                self.sms.global_per_hour,
                0,
                1_000_000,
            ),
        ];
        for (field, v, lo, hi) in ranges {
            if v < lo || v > hi {
                return Err(problem(field, &format!("must be from {lo} to {hi}")));
            }
        }
        if self.reminder_days.iter().any(|&d| d == 0 || d > 365) {
            return Err(problem("reminder_days", "each must be from 1 to 365"));
        }
        if self.sms.calling_codes.iter().any(|&c| c == 0 || c > 999) {
            return Err(problem(
                "sms.calling_codes",
                "a calling code has 1 to 3 digits",
            ));
        }
        Ok(())
    }
}

fn days(d: chrono::Duration) -> u32 {
    u32::try_from(d.num_days().max(0)).unwrap_or(u32::MAX)
}

/// RFC 7396: objects merge key by key, `null` removes, anything else replaces.
fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                // Optional fields (`required_from`) become null rather than vanish, so
                // the document still has every field.
                if let Some(slot) = t.get_mut(k) {
                    *slot = Value::Null;
                }
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> PolicyDocument {
        PolicyDocument::from_settings(
            &TwoFactorPolicy::default(),
            &SmsPolicy::default(),
            chrono::Duration::days(7),
            chrono::Duration::days(5),
        )
    }

    #[test]
    fn a_patch_changes_only_what_it_names() {
        let p = base()
            .patched(&json!({"roles": {"user": {"two_factor": "required", "required_from": "2027-01-01"}}}))
            .expect("valid");
        assert_eq!(p.roles.user.two_factor, TwoFactorMode::Required);
        assert_eq!(p.roles.user.required_from, "2027-01-01".parse().ok());
        assert_eq!(p.roles.support, base().roles.support);
        let back = p
            .patched(&json!({"roles": {"user": {"required_from": null}}}))
            .expect("valid");
        assert_eq!(back.roles.user.required_from, None);
    }

    #[test]
    fn bad_values_name_their_field() {
        let cases = [
            (
                json!({"roles": {"user": {"two_factor": "sometimes"}}}),
                "roles.user.two_factor",
            ),
            (
                json!({"roles": {"user": {"required_from": "1 januari"}}}),
                "roles.user.required_from",
            ),
            (
                json!({"roles": {"admin": {"methods": []}}}),
                "roles.admin.methods",
            ),
            (
                json!({"roles": {"admin": {"methods": ["fax"]}}}),
                "roles.admin.methods[0]",
            ),
            (json!({"remember_device_days": 400}), "remember_device_days"),
            (
                json!({"sms": {"global_per_hour": -1}}),
                "sms.global_per_hour",
            ),
            (json!({"colour": "blue"}), "colour"),
            (json!({"roles": {"root": {}}}), "roles.root"),
        ];
        for (patch, field) in cases {
            let e = base().patched(&patch).expect_err("refused");
            assert_eq!(e.field, field, "{patch}: {e}");
        }
        assert!(base().patched(&json!([1])).is_err());
    }

    /// Found by fuzzing (fuzz target policy): a method listed twice but not side by
    /// side was taken.
    #[test]
    fn a_method_listed_twice_anywhere_is_refused() {
        for methods in [json!(["app", "app"]), json!(["app", "sms", "app"])] {
            let e = base()
                .patched(&json!({"roles": {"admin": {"methods": methods}}}))
                .expect_err("refused");
            assert_eq!(e.field, "roles.admin.methods", "{e}");
        }
    }
}
