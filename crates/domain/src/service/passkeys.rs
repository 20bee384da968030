//! Registering passkeys, and what My Profile shows of them. Signing in with one is
//! in `passkey_sign_in`.

use super::{SessionInfo, Tweestap};
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::factor::{Factor, FactorId, FactorKind};
use crate::passkey::{
    self, CeremonyState, KeyKind, KeyTraits, PasskeyProblem, Pending, RegisteredKey, RelyingParty,
};
use crate::policy::document::Method;
use crate::session::SessionStage;
use crate::store::{Ceremony, StoreError};
use chrono::{DateTime, Utc};
use uuid::Uuid;
use webauthn_rs::prelude::CredentialID;

/// The longest name a person may give a passkey.
pub const MAX_NAME: usize = 60;

/// A registration started: the factor it will confirm and the options for
/// `navigator.credentials.create()` (`{"publicKey": {...}}`).
#[derive(Debug, Clone)]
pub struct PasskeyStart {
    pub factor_id: FactorId,
    pub options: serde_json::Value,
}

/// A passkey as My Profile lists it.
#[derive(Debug, Clone)]
pub struct PasskeySummary {
    pub id: FactorId,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    /// Synced between devices (backup eligible), or bound to one device.
    pub synced: bool,
    /// A passkey, or a security key (a second factor only).
    pub kind: KeyKind,
}

impl Tweestap {
    /// Makes passkeys work for the server people reach at `public_url` (its host is
    /// the relying party id). An address that cannot be one (an IP address other
    /// than loopback) leaves passkeys off, with the reason returned.
    pub fn serve_passkeys_at(&self, public_url: &str) -> std::result::Result<(), PasskeyProblem> {
        let rp = RelyingParty::for_public_url(public_url, &self.settings.issuer)?;
        // Set once per process; a second call keeps the first.
        let _ = self.passkeys.set(rp);
        Ok(())
    }

    /// Whether passkeys can be used here at all.
    pub fn passkeys_available(&self) -> bool {
        self.passkeys.get().is_some()
    }

    pub(super) fn relying_party(&self) -> Result<&RelyingParty> {
        self.passkeys
            .get()
            .ok_or(Error::Passkey(PasskeyProblem::Unavailable))
    }

    /// Starts registering a passkey (or a security key: `kind`) named `name`, after
    /// the password (not asked in a session that may only set up two-step
    /// verification: it was just proven).
    pub async fn begin_passkey(
        &self,
        info: &SessionInfo,
        password: Option<&str>,
        name: &str,
        kind: KeyKind,
        ctx: &RequestContext,
    ) -> Result<PasskeyStart> {
        let account = &info.account;
        if info.session.stage != SessionStage::Enrollment {
            let password = password.ok_or(Error::WrongPassword)?;
            self.confirm_password(account, password, ctx).await?;
        }
        if self.settings.refuse_shared_mailboxes && self.is_shared_mailbox(&account.email) {
            return Err(Error::SharedMailbox);
        }
        if !self.method_allowed(account.role, Method::Passkey) {
            return Err(Error::Forbidden);
        }
        let name = passkey_name(name)?;
        let rp = self.relying_party()?;
        // The account's keys are excluded, so one authenticator is registered once.
        let existing: Vec<CredentialID> = self
            .passkeys_with_keys(account)
            .await?
            .iter()
            .map(|(_, k)| k.cred_id().clone())
            .collect();
        let (options, state) = match kind {
            KeyKind::Passkey => {
                let (ccr, state) = rp
                    .webauthn()
                    .start_passkey_registration(
                        account.id.0,
                        account.email.as_str(),
                        account.email.as_str(),
                        Some(existing),
                    )
                    .map_err(|e| Error::Internal(format!("passkey registration: {e}")))?;
                let mut options = serde_json::to_value(&ccr)
                    .map_err(|e| Error::Internal(format!("passkey options: {e}")))?;
                // Ask for a discoverable credential where the authenticator can make
                // one, so the same passkey also signs in without a password.
                if let Some(sel) = options
                    .get_mut("publicKey")
                    .and_then(|p| p.get_mut("authenticatorSelection"))
                    .and_then(|s| s.as_object_mut())
                {
                    sel.insert("residentKey".into(), "preferred".into());
                }
                (options, CeremonyState::Register(state))
            }
            // A touch is enough and nothing is stored on the key: it only ever
            // follows the password (attestation none: no list of trusted makers).
            KeyKind::SecurityKey => {
                let (ccr, state) = rp
                    .webauthn()
                    .start_securitykey_registration(
                        account.id.0,
                        account.email.as_str(),
                        account.email.as_str(),
                        Some(existing),
                        None,
                        None,
                    )
                    .map_err(|e| Error::Internal(format!("security key registration: {e}")))?;
                let options = serde_json::to_value(&ccr)
                    .map_err(|e| Error::Internal(format!("passkey options: {e}")))?;
                (options, CeremonyState::RegisterSecurityKey(state))
            }
        };
        self.store.delete_unconfirmed_factors(account.id).await?;
        let id = FactorId(Uuid::new_v4());
        let now = self.clock.now();
        let factor = Factor {
            id,
            account_id: account.id,
            kind: FactorKind::Passkey,
            label: name,
            // Nothing yet: the credential comes with the browser's answer.
            secret_sealed: self.secrets.seal(b"", id.0.as_bytes()),
            created_at: now,
            confirmed_at: None,
            last_used_at: None,
            last_step: None,
        };
        self.store.insert_factor(&factor).await?;
        let pending = Pending {
            factor: Some(id.0),
            state,
        };
        self.store_ceremony(&options, Some(&info.session.id_hash.0), &pending, None)
            .await?;
        Ok(PasskeyStart {
            factor_id: id,
            options,
        })
    }

    /// Stores a passkey registered with the browser's `credential` answer. With the
    /// account's first factor come its recovery codes, returned to be shown once.
    pub async fn confirm_passkey(
        &self,
        info: &SessionInfo,
        id: FactorId,
        credential: &serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<Option<Vec<String>>> {
        let account = &info.account;
        let rp = self.relying_party()?;
        let pending = self
            .store
            .factors_of(account.id)
            .await?
            .into_iter()
            .find(|f| f.id == id && !f.is_active() && f.kind == FactorKind::Passkey)
            .ok_or(Error::NotFound)?;
        let outcome = async {
            let ceremony = self
                .take_ceremony(credential, Some(&info.session.id_hash.0))
                .await?;
            if ceremony.factor != Some(id.0) {
                return Err(PasskeyProblem::Expired);
            }
            let answer = passkey::registration(credential)?;
            match ceremony.state {
                CeremonyState::Register(state) => rp
                    .webauthn()
                    .finish_passkey_registration(&answer, &state)
                    .map(RegisteredKey::from_passkey),
                CeremonyState::RegisterSecurityKey(state) => rp
                    .webauthn()
                    .finish_securitykey_registration(&answer, &state)
                    .map(RegisteredKey::from_security_key),
                _ => return Err(PasskeyProblem::Expired),
            }
            .map_err(|e| passkey::problem_of(&e))
        }
        .await;
        let key = match outcome {
            Ok(key) => key,
            Err(problem) => return Err(self.passkey_refused(account, problem, ctx).await),
        };
        let sealed = self.seal_passkey(id, &key)?;
        let credential_id = credential_id_text(key.cred_id());
        let notice = self.factor_added_notice(account, &pending, ctx).await?;
        let codes = self.codes_with_factor(account).await?;
        let macs = codes.as_ref().map(|c| c.macs.as_slice());
        let now = self.clock.now();
        match self
            .store
            .confirm_passkey(id, &sealed, &credential_id, now, Some(&notice), macs)
            .await
        {
            Ok(true) => {}
            Ok(false) => return Err(Error::NotFound),
            Err(StoreError::Conflict) => {
                let problem = PasskeyProblem::AlreadyRegistered;
                return Err(self.passkey_refused(account, problem, ctx).await);
            }
            Err(e) => return Err(e.into()),
        }
        self.factor_confirmed(account, &pending, &notice, codes, ctx)
            .await
    }

    /// The account's passkeys, for My Profile.
    pub async fn passkeys_of(&self, account: &Account) -> Result<Vec<PasskeySummary>> {
        let factors = self.active_factors(account.id).await?;
        self.passkeys_among(&factors)
    }

    /// [`passkeys_of`](Self::passkeys_of) for factors already read.
    pub fn passkeys_among(&self, factors: &[Factor]) -> Result<Vec<PasskeySummary>> {
        Ok(self
            .keys_among(factors)?
            .into_iter()
            .map(|(f, key)| PasskeySummary {
                id: f.id,
                name: f.label.clone(),
                created_at: f.created_at,
                last_used_at: f.last_used_at,
                synced: KeyTraits::of(&key).synced,
                kind: key.kind,
            })
            .collect())
    }

    /// The account's active passkeys and security keys with their credentials.
    pub(super) async fn passkeys_with_keys(
        &self,
        account: &Account,
    ) -> Result<Vec<(Factor, RegisteredKey)>> {
        let factors = self.active_factors(account.id).await?;
        Ok(self
            .keys_among(&factors)?
            .into_iter()
            .map(|(f, key)| (f.clone(), key))
            .collect())
    }

    fn keys_among<'f>(&self, factors: &'f [Factor]) -> Result<Vec<(&'f Factor, RegisteredKey)>> {
        factors
            .iter()
            .filter(|f| f.kind == FactorKind::Passkey)
            .map(|f| Ok((f, self.open_passkey(f)?)))
            .collect()
    }

    pub(super) fn open_passkey(&self, f: &Factor) -> Result<RegisteredKey> {
        let raw = self.secrets.open(&f.secret_sealed, f.id.0.as_bytes())?;
        RegisteredKey::from_json(&raw)
            .map_err(|e| Error::Internal(format!("stored passkey {}: {e}", f.id)))
    }

    pub(super) fn seal_passkey(&self, id: FactorId, key: &RegisteredKey) -> Result<Vec<u8>> {
        let raw = key
            .to_json()
            .map_err(|e| Error::Internal(format!("passkey {id}: {e}")))?;
        Ok(self.secrets.seal(&raw, id.0.as_bytes()))
    }

    /// Keeps a ceremony until the browser answers (`cap`: at most that many
    /// ceremonies without a session at once).
    pub(super) async fn store_ceremony(
        &self,
        options: &serde_json::Value,
        session_hash: Option<&str>,
        pending: &Pending,
        cap: Option<u64>,
    ) -> Result<()> {
        let challenge = passkey::challenge_in(options)
            .ok_or_else(|| Error::Internal("passkey options without a challenge".into()))?;
        let state = serde_json::to_string(pending)
            .map_err(|e| Error::Internal(format!("passkey state: {e}")))?;
        let now = self.clock.now();
        let c = Ceremony {
            challenge_hash: passkey::challenge_hash(&challenge),
            session_hash: session_hash.map(str::to_owned),
            state,
            expires_at: now + chrono::Duration::seconds(passkey::CEREMONY_SECONDS),
        };
        if !self.store.insert_ceremony(&c, cap, now).await? {
            return Err(Error::TooManyRequests);
        }
        Ok(())
    }

    /// Takes the ceremony the browser's `credential` answers; it must belong to the
    /// session `session_hash` (None: to no session) and not have expired.
    pub(super) async fn take_ceremony(
        &self,
        credential: &serde_json::Value,
        session_hash: Option<&str>,
    ) -> std::result::Result<Pending, PasskeyProblem> {
        let challenge = passkey::challenge_of(credential).ok_or(PasskeyProblem::Invalid)?;
        let taken = self
            .store
            .take_ceremony(&passkey::challenge_hash(&challenge))
            .await
            .map_err(|_| PasskeyProblem::Expired)?;
        let Some(c) = taken else {
            return Err(PasskeyProblem::Expired);
        };
        if c.expires_at < self.clock.now() || c.session_hash.as_deref() != session_hash {
            return Err(PasskeyProblem::Expired);
        }
        serde_json::from_str(&c.state).map_err(|_| PasskeyProblem::Expired)
    }

    /// Audits a refused passkey (a possible clone as such) and returns its error.
    pub(super) async fn passkey_refused(
        &self,
        account: &Account,
        problem: PasskeyProblem,
        ctx: &RequestContext,
    ) -> Error {
        let event = match problem {
            PasskeyProblem::PossibleClone => AuditEvent::PasskeyCloneSuspected,
            _ => AuditEvent::PasskeyFailed,
        };
        let detail = Some(problem.to_string());
        if let Err(e) = self.audit(event, Some(account), None, ctx, detail).await {
            return e;
        }
        Error::Passkey(problem)
    }
}

/// A passkey's name as given: trimmed, control characters out, not empty, short.
fn passkey_name(name: &str) -> Result<String> {
    let name: String = name.trim().chars().filter(|c| !c.is_control()).collect();
    if name.is_empty() || name.chars().count() > MAX_NAME {
        return Err(Error::InvalidName);
    }
    Ok(name)
}

/// A credential id as the database keeps it (base64url, no padding).
pub(super) fn credential_id_text(id: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id)
}
