//! A whole database as one JSON document, to move an organisation between backends
//! (`tweestap export` on SQLite, `tweestap import` on PostgreSQL) or keep a logical
//! backup.
//!
//! The format is explicit records, not the domain structs, so it stays stable when
//! the domain changes. Secrets stay sealed: the importing side needs the same master
//! key. Sessions, remembered devices and mailed links are not carried over
//! (everyone signs in again, with the code), which is both simpler and safer than
//! moving live bearer tokens around. Recovery codes are carried (as MACs, which the
//! same master key checks), so nobody loses their way back in. The OpenID Connect
//! signing keys (sealed) and the clients added with `tweestap client add` (secrets
//! as hashes) come along, so portals keep working and tokens already handed out
//! still verify; codes and tokens of the code flow do not (portals sign in again).

use crate::account::{Account, AccountId, Email, Role};
use crate::audit::AuditRecord;
use crate::factor::{Factor, FactorId, FactorKind};
use crate::oidc::{ClientSource, OidcClient, SigningAlg, SigningKey};
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub const FORMAT: &str = "tweestap-export";
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    pub format: String,
    pub version: u32,
    pub exported_at: DateTime<Utc>,
    pub accounts: Vec<AccountRecord>,
    pub factors: Vec<FactorRecord>,
    /// Oldest first.
    pub audit: Vec<AuditEntry>,
    /// Absent in exports made before recovery codes existed.
    #[serde(default)]
    pub recovery_codes: Vec<RecoveryCodeRecord>,
    /// Absent in exports made before the OpenID Connect provider existed.
    #[serde(default)]
    pub signing_keys: Vec<SigningKeyRecord>,
    /// Clients added with `tweestap client add` (not those of the configuration
    /// file, which the configuration carries). Absent in older exports.
    #[serde(default)]
    pub clients: Vec<ClientRecord>,
    /// What people allowed third-party clients. Absent in older exports.
    #[serde(default)]
    pub consents: Vec<ConsentRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ConsentRecord {
    pub account_id: Uuid,
    pub client_id: String,
    pub scope: String,
    pub granted_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub alg: String,
    /// Base64 of the sealed PKCS#8 private key (the kid is its associated data).
    pub private_sealed: String,
    pub public_jwk: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub retired_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClientRecord {
    pub id: String,
    pub name: String,
    pub redirect_uris: Vec<String>,
    /// SHA-256 (hex) of the secret; absent for a public client.
    pub secret_hash: Option<String>,
    pub created_at: DateTime<Utc>,
    pub id_token_alg: String,
    /// Absent in exports from before client options (none then).
    #[serde(default)]
    pub options: crate::oidc::ClientOptions,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RecoveryCodeRecord {
    pub account_id: Uuid,
    pub code_mac: String,
    pub created_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AccountRecord {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub created_at: DateTime<Utc>,
    pub code_failures: u32,
    pub code_locked_until: Option<DateTime<Utc>>,
    pub password_failures: u32,
    pub password_locked_until: Option<DateTime<Utc>>,
    /// Absent in exports of versions before mail (Dutch then).
    #[serde(default)]
    pub language: crate::language::Language,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FactorRecord {
    pub id: Uuid,
    pub account_id: Uuid,
    pub kind: String,
    pub label: String,
    /// Base64 of the sealed secret (the factor id is its associated data).
    pub secret_sealed: String,
    pub created_at: DateTime<Utc>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_step: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditEntry {
    pub at: DateTime<Utc>,
    pub event: String,
    pub account_id: Option<Uuid>,
    pub email: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a tweestap export (format {0:?})")]
    Format(String),
    #[error("export version {0} is newer than this tweestap understands ({VERSION})")]
    Version(u32),
    #[error("account {id}: {what}")]
    Account { id: Uuid, what: String },
    #[error("factor {id}: {what}")]
    Factor { id: Uuid, what: String },
    #[error("signing key {kid}: {what}")]
    SigningKey { kid: String, what: String },
    #[error("{0}")]
    Client(String),
}

/// The domain data of a snapshot, checked.
#[derive(Debug, Clone, Default)]
pub struct Contents {
    pub accounts: Vec<Account>,
    pub factors: Vec<Factor>,
    pub audit: Vec<AuditRecord>,
    pub recovery_codes: Vec<crate::recovery::StoredRecoveryCode>,
    pub signing_keys: Vec<SigningKey>,
    /// Only clients of the database.
    pub clients: Vec<OidcClient>,
    /// Whose (account), to which client, what (scope), since when.
    pub consents: Vec<(AccountId, crate::oidc::consent::Consent)>,
}

impl Snapshot {
    pub fn new(c: &Contents, at: DateTime<Utc>) -> Self {
        let b64 = base64::engine::general_purpose::STANDARD;
        Self {
            format: FORMAT.into(),
            version: VERSION,
            exported_at: at,
            accounts: c
                .accounts
                .iter()
                .map(|a| AccountRecord {
                    id: a.id.0,
                    email: a.email.as_str().to_owned(),
                    name: a.name.clone(),
                    role: a.role.as_str().to_owned(),
                    password_hash: a.password_hash.clone(),
                    created_at: a.created_at,
                    code_failures: a.code_failures,
                    code_locked_until: a.code_locked_until,
                    password_failures: a.password_failures,
                    password_locked_until: a.password_locked_until,
                    language: a.language,
                    disabled_at: a.disabled_at,
                })
                .collect(),
            factors: c
                .factors
                .iter()
                .map(|f| FactorRecord {
                    id: f.id.0,
                    account_id: f.account_id.0,
                    kind: f.kind.as_str().to_owned(),
                    label: f.label.clone(),
                    secret_sealed: b64.encode(&f.secret_sealed),
                    created_at: f.created_at,
                    confirmed_at: f.confirmed_at,
                    last_used_at: f.last_used_at,
                    last_step: f.last_step,
                })
                .collect(),
            audit: c
                .audit
                .iter()
                .map(|r| AuditEntry {
                    at: r.at,
                    event: r.event.clone(),
                    account_id: r.account_id.map(|a| a.0),
                    email: r.email.clone(),
                    ip: r.ip.clone(),
                    user_agent: r.user_agent.clone(),
                    detail: r.detail.clone(),
                })
                .collect(),
            recovery_codes: c
                .recovery_codes
                .iter()
                .map(|r| RecoveryCodeRecord {
                    account_id: r.account_id.0,
                    code_mac: r.code_mac.clone(),
                    created_at: r.created_at,
                    used_at: r.used_at,
                })
                .collect(),
            signing_keys: c
                .signing_keys
                .iter()
                .map(|k| SigningKeyRecord {
                    kid: k.kid.clone(),
                    alg: k.alg.as_str().to_owned(),
                    private_sealed: b64.encode(&k.private_sealed),
                    public_jwk: k.public_jwk.clone(),
                    created_at: k.created_at,
                    retired_at: k.retired_at,
                })
                .collect(),
            clients: c
                .clients
                .iter()
                .filter(|c| c.source == ClientSource::Database)
                .map(|c| ClientRecord {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    redirect_uris: c.redirect_uris.clone(),
                    secret_hash: c.secret_hash.clone(),
                    created_at: c.created_at.unwrap_or(at),
                    id_token_alg: c.id_token_alg.as_str().to_owned(),
                    options: c.options.clone(),
                })
                .collect(),
            consents: c
                .consents
                .iter()
                .map(|(a, x)| ConsentRecord {
                    account_id: a.0,
                    client_id: x.client_id.clone(),
                    scope: x.scope.clone(),
                    granted_at: x.granted_at,
                })
                .collect(),
        }
    }

    /// Checks everything before a single row is written.
    pub fn contents(&self) -> Result<Contents, SnapshotError> {
        if self.format != FORMAT {
            return Err(SnapshotError::Format(self.format.clone()));
        }
        if self.version > VERSION {
            return Err(SnapshotError::Version(self.version));
        }
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut accounts = Vec::with_capacity(self.accounts.len());
        for a in &self.accounts {
            let bad = |what: &str| SnapshotError::Account {
                id: a.id,
                what: what.into(),
            };
            accounts.push(Account {
                id: AccountId(a.id),
                email: Email::parse(&a.email).map_err(|_| bad("invalid e-mail address"))?,
                name: a.name.clone(),
                role: a.role.parse::<Role>().map_err(|_| bad("unknown role"))?,
                password_hash: a.password_hash.clone(),
                created_at: a.created_at,
                code_failures: a.code_failures,
                code_locked_until: a.code_locked_until,
                password_failures: a.password_failures,
                password_locked_until: a.password_locked_until,
                language: a.language,
                disabled_at: a.disabled_at,
            });
        }
        let known: std::collections::HashSet<Uuid> = self.accounts.iter().map(|a| a.id).collect();
        let mut factors = Vec::with_capacity(self.factors.len());
        for f in &self.factors {
            let bad = |what: &str| SnapshotError::Factor {
                id: f.id,
                what: what.into(),
            };
            if !known.contains(&f.account_id) {
                return Err(bad("belongs to no account in the export"));
            }
            factors.push(Factor {
                id: FactorId(f.id),
                account_id: AccountId(f.account_id),
                kind: FactorKind::parse(&f.kind).ok_or_else(|| bad("unknown kind"))?,
                label: f.label.clone(),
                secret_sealed: b64
                    .decode(&f.secret_sealed)
                    .map_err(|_| bad("secret is not base64"))?,
                created_at: f.created_at,
                confirmed_at: f.confirmed_at,
                last_used_at: f.last_used_at,
                last_step: f.last_step,
            });
        }
        let audit = self
            .audit
            .iter()
            .map(|r| AuditRecord {
                at: r.at,
                event: r.event.clone(),
                // Audit rows outlive accounts; keep the id only when it still exists.
                account_id: r.account_id.filter(|id| known.contains(id)).map(AccountId),
                email: r.email.clone(),
                ip: r.ip.clone(),
                user_agent: r.user_agent.clone(),
                detail: r.detail.clone(),
            })
            .collect();
        let mut recovery_codes = Vec::with_capacity(self.recovery_codes.len());
        for r in &self.recovery_codes {
            if !known.contains(&r.account_id) {
                return Err(SnapshotError::Account {
                    id: r.account_id,
                    what: "has recovery codes but is not in the export".into(),
                });
            }
            recovery_codes.push(crate::recovery::StoredRecoveryCode {
                account_id: AccountId(r.account_id),
                code_mac: r.code_mac.clone(),
                created_at: r.created_at,
                used_at: r.used_at,
            });
        }
        let mut signing_keys = Vec::with_capacity(self.signing_keys.len());
        for k in &self.signing_keys {
            let bad = |what: &str| SnapshotError::SigningKey {
                kid: k.kid.clone(),
                what: what.into(),
            };
            let alg = SigningAlg::parse(&k.alg).ok_or_else(|| bad("unknown algorithm"))?;
            let active = signing_keys
                .iter()
                .any(|o: &SigningKey| o.alg == alg && o.is_active());
            if active && k.retired_at.is_none() {
                return Err(bad("a second active key of its algorithm"));
            }
            signing_keys.push(SigningKey {
                kid: k.kid.clone(),
                alg,
                private_sealed: b64
                    .decode(&k.private_sealed)
                    .map_err(|_| bad("private key is not base64"))?,
                public_jwk: k.public_jwk.clone(),
                created_at: k.created_at,
                retired_at: k.retired_at,
            });
        }
        let mut clients = Vec::with_capacity(self.clients.len());
        for c in &self.clients {
            let client = OidcClient {
                id: c.id.clone(),
                name: c.name.clone(),
                redirect_uris: c.redirect_uris.clone(),
                secret_hash: c.secret_hash.clone(),
                created_at: Some(c.created_at),
                id_token_alg: SigningAlg::parse(&c.id_token_alg).ok_or_else(|| {
                    SnapshotError::Client(format!("client {}: unknown ID token algorithm", c.id))
                })?,
                source: ClientSource::Database,
                options: c.options.clone(),
            };
            client.validate().map_err(SnapshotError::Client)?;
            if clients.iter().any(|o: &OidcClient| o.id == client.id) {
                return Err(SnapshotError::Client(format!(
                    "client {} appears twice",
                    c.id
                )));
            }
            clients.push(client);
        }
        let mut consents = Vec::with_capacity(self.consents.len());
        for c in &self.consents {
            if !known.contains(&c.account_id) {
                return Err(SnapshotError::Account {
                    id: c.account_id,
                    what: "has a consent but is not in the export".into(),
                });
            }
            consents.push((
                AccountId(c.account_id),
                crate::oidc::consent::Consent {
                    client_id: c.client_id.clone(),
                    scope: c.scope.clone(),
                    granted_at: c.granted_at,
                },
            ));
        }
        Ok(Contents {
            accounts,
            factors,
            audit,
            recovery_codes,
            signing_keys,
            clients,
            consents,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn sample() -> Contents {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).single().unwrap();
        let id = AccountId(Uuid::new_v4());
        Contents {
            accounts: vec![Account {
                id,
                email: Email::parse("An@Example.be").unwrap(),
                name: "An".into(),
                role: Role::Support,
                password_hash: "$argon2id$...".into(),
                created_at: at,
                code_failures: 2,
                code_locked_until: None,
                password_failures: 0,
                password_locked_until: Some(at),
                language: crate::language::Language::En,
                disabled_at: Some(at),
            }],
            factors: vec![Factor {
                id: FactorId(Uuid::new_v4()),
                account_id: id,
                kind: FactorKind::Totp,
                label: "app".into(),
                secret_sealed: vec![1, 2, 3, 255],
                created_at: at,
                confirmed_at: Some(at),
                last_used_at: None,
                last_step: Some(42),
            }],
            audit: vec![AuditRecord {
                at,
                event: "login_succeeded".into(),
                account_id: Some(id),
                email: Some("an@example.be".into()),
                ip: Some("127.0.0.1".into()),
                user_agent: None,
                detail: None,
            }],
            recovery_codes: vec![crate::recovery::StoredRecoveryCode {
                account_id: id,
                code_mac: "ab12".into(),
                created_at: at,
                used_at: None,
            }],
            signing_keys: vec![SigningKey {
                kid: "es-1".into(),
                alg: SigningAlg::Es256,
                private_sealed: vec![9, 8, 7],
                public_jwk: serde_json::json!({ "kty": "EC", "kid": "es-1" }),
                created_at: at,
                retired_at: None,
            }],
            clients: vec![OidcClient {
                id: "portaal".into(),
                name: "Portaal".into(),
                redirect_uris: vec!["https://portaal.example/cb".into()],
                secret_hash: Some("ab".repeat(32)),
                created_at: Some(at),
                id_token_alg: SigningAlg::Es256,
                source: ClientSource::Database,
                options: crate::oidc::ClientOptions {
                    third_party: true,
                    backchannel_logout_uri: Some("https://portaal.example/bcl".into()),
                    ..Default::default()
                },
            }],
            consents: vec![(
                id,
                crate::oidc::consent::Consent {
                    client_id: "portaal".into(),
                    scope: "openid email".into(),
                    granted_at: at,
                },
            )],
        }
    }

    #[test]
    fn round_trips_through_json() {
        let c = sample();
        let json = serde_json::to_string(&Snapshot::new(&c, Utc::now())).unwrap();
        let back: Snapshot = serde_json::from_str(&json).unwrap();
        let d = back.contents().unwrap();
        assert_eq!(d.accounts[0].email, c.accounts[0].email);
        assert_eq!(d.accounts[0].role, Role::Support);
        assert_eq!(d.factors[0].secret_sealed, vec![1, 2, 3, 255]);
        assert_eq!(d.factors[0].last_step, Some(42));
        assert_eq!(d.audit[0].account_id, Some(c.accounts[0].id));
        assert_eq!(d.recovery_codes, c.recovery_codes);
        assert_eq!(d.signing_keys, c.signing_keys);
        assert_eq!(d.clients, c.clients);
        assert_eq!(d.consents, c.consents);
        assert_eq!(d.accounts[0].disabled_at, c.accounts[0].disabled_at);
        // Exports from before recovery codes and the OIDC provider still read.
        let mut old: serde_json::Value = serde_json::from_str(&json).unwrap();
        for field in ["recovery_codes", "signing_keys", "clients", "consents"] {
            old.as_object_mut().unwrap().remove(field);
        }
        let old: Snapshot = serde_json::from_value(old).unwrap();
        let old = old.contents().unwrap();
        assert!(old.recovery_codes.is_empty());
        assert!(old.signing_keys.is_empty() && old.clients.is_empty());
    }

    #[test]
    fn refuses_foreign_or_broken_documents() {
        let mut s = Snapshot::new(&sample(), Utc::now());
        s.format = "something-else".into();
        assert!(matches!(s.contents(), Err(SnapshotError::Format(_))));
        let mut s = Snapshot::new(&sample(), Utc::now());
        s.version = VERSION + 1;
        assert!(matches!(s.contents(), Err(SnapshotError::Version(_))));
        let mut s = Snapshot::new(&sample(), Utc::now());
        s.factors[0].account_id = Uuid::new_v4();
        assert!(matches!(s.contents(), Err(SnapshotError::Factor { .. })));
        let mut s = Snapshot::new(&sample(), Utc::now());
        s.accounts[0].role = "root".into();
        assert!(matches!(s.contents(), Err(SnapshotError::Account { .. })));
        let mut s = Snapshot::new(&sample(), Utc::now());
        s.signing_keys[0].alg = "HS256".into();
        assert!(matches!(
            s.contents(),
            Err(SnapshotError::SigningKey { .. })
        ));
        let mut s = Snapshot::new(&sample(), Utc::now());
        let twin = s.signing_keys[0].clone();
        s.signing_keys.push(twin);
        assert!(matches!(
            s.contents(),
            Err(SnapshotError::SigningKey { .. })
        ));
        let mut s = Snapshot::new(&sample(), Utc::now());
        s.clients[0].redirect_uris = vec!["http://portaal.example/cb".into()];
        assert!(matches!(s.contents(), Err(SnapshotError::Client(_))));
    }
}
