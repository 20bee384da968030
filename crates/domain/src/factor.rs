//! Second factors: an authenticator app (TOTP), a phone that receives SMS codes, or a
//! passkey.

use crate::account::AccountId;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct FactorId(pub Uuid);

impl std::fmt::Display for FactorId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorKind {
    Totp,
    /// Codes sent by SMS; the sealed secret is the phone number (E.164).
    Sms,
    /// A passkey or security key (WebAuthn); the sealed secret is its credential
    /// (public key, counter, backup flags) as webauthn-rs keeps it.
    Passkey,
}

impl FactorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorKind::Totp => "totp",
            FactorKind::Sms => "sms",
            FactorKind::Passkey => "passkey",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "totp" => Some(FactorKind::Totp),
            "sms" => Some(FactorKind::Sms),
            "passkey" => Some(FactorKind::Passkey),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Factor {
    pub id: FactorId,
    pub account_id: AccountId,
    pub kind: FactorKind,
    pub label: String,
    /// The secret, sealed with [`crate::secret_box::SecretBox`].
    pub secret_sealed: Vec<u8>,
    pub created_at: DateTime<Utc>,
    /// `None` until the user proved the set-up with a correct code.
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// The last TOTP step accepted; codes of this step or earlier are refused.
    pub last_step: Option<i64>,
}

impl Factor {
    pub fn is_active(&self) -> bool {
        self.confirmed_at.is_some()
    }
}

/// The kinds of the active factors among `factors`, each once, in `FactorKind`'s
/// order.
pub fn active_kinds(factors: &[Factor]) -> Vec<FactorKind> {
    let mut kinds: Vec<FactorKind> = factors
        .iter()
        .filter(|f| f.is_active())
        .map(|f| f.kind)
        .collect();
    kinds.sort();
    kinds.dedup();
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::account::AccountId;
    use chrono::{TimeZone, Utc};

    fn factor(kind: FactorKind, confirmed: bool) -> Factor {
        let at = Utc.timestamp_opt(1_750_000_000, 0).unwrap();
        Factor {
            id: FactorId(uuid::Uuid::new_v4()),
            account_id: AccountId(uuid::Uuid::new_v4()),
            kind,
            label: String::new(),
            secret_sealed: Vec::new(),
            created_at: at,
            confirmed_at: confirmed.then_some(at),
            last_used_at: None,
            last_step: None,
        }
    }

    #[test]
    fn active_kinds_are_the_confirmed_ones_each_once_in_order() {
        let factors = [
            factor(FactorKind::Sms, true),
            factor(FactorKind::Passkey, false),
            factor(FactorKind::Totp, true),
            factor(FactorKind::Sms, true),
            factor(FactorKind::Totp, false),
        ];
        assert_eq!(
            active_kinds(&factors),
            vec![FactorKind::Totp, FactorKind::Sms]
        );
        assert!(active_kinds(&factors[1..2]).is_empty());
        assert!(active_kinds(&[]).is_empty());
    }
}
