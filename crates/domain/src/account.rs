//! Accounts: who can sign in, and with which role.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AccountId(pub Uuid);

impl AccountId {
    pub fn random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An e-mail address, trimmed and lower-cased so uniqueness is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Email(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a valid e-mail address")]
pub struct InvalidEmail;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, InvalidEmail> {
        let e = raw.trim().to_lowercase();
        let (local, domain) = e.rsplit_once('@').ok_or(InvalidEmail)?;
        let ok = !local.is_empty()
            && local.len() <= 64
            && e.len() <= 254
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !e.chars().any(|c| c.is_whitespace() || c.is_control())
            && !local.contains('@');
        if ok {
            Ok(Self(e))
        } else {
            Err(InvalidEmail)
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map(|(l, _)| l).unwrap_or(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Support,
    Admin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Support => "support",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be user, support or admin")]
pub struct InvalidRole;

impl FromStr for Role {
    type Err = InvalidRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "user" => Ok(Role::User),
            "support" => Ok(Role::Support),
            "admin" => Ok(Role::Admin),
            _ => Err(InvalidRole),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: AccountId,
    pub email: Email,
    pub name: String,
    pub role: Role,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    /// Consecutive wrong second-factor codes; reset by a correct one.
    pub code_failures: u32,
    pub code_locked_until: Option<DateTime<Utc>>,
    /// The account's old password throttle, one for everyone; no longer used since
    /// the throttles are kept per account and client address (`lockout::throttle`).
    pub password_failures: u32,
    pub password_locked_until: Option<DateTime<Utc>>,
    /// The language mail to this account is written in: the language of the
    /// latest request that sent it mail (Dutch until then).
    pub language: crate::language::Language,
    /// Disabled by an operator: cannot sign in, holds no sessions or tokens.
    pub disabled_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_validated() {
        assert_eq!(
            Email::parse("  An@Example.BE ").unwrap().as_str(),
            "an@example.be"
        );
        for bad in [
            "", "an", "an@", "@x.be", "an@be", "a n@x.be", "an@x.be.", "a@b@x.be",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad} accepted");
        }
        assert_eq!(Email::parse("info@x.be").unwrap().local_part(), "info");
    }

    #[test]
    fn roles_round_trip() {
        for r in [Role::User, Role::Support, Role::Admin] {
            assert_eq!(r.as_str().parse::<Role>().unwrap(), r);
        }
        assert!("root".parse::<Role>().is_err());
    }
}
