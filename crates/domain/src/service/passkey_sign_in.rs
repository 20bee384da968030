//! Signing in with a passkey: as the second factor of a half-finished sign-in, or
//! without a password (a discoverable passkey that verified the person). Security
//! keys only ever serve as the second factor.

use super::passkeys::credential_id_text;
use super::Tweestap;
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::factor::Factor;
use crate::passkey::{self, CeremonyState, KeyKind, PasskeyProblem, Pending, RegisteredKey};
use crate::session::SessionStage;
use crate::token::Token;
use webauthn_rs::prelude::{AuthenticationResult, Passkey, SecurityKey};

/// At most this many sign-ins without a password may wait for their browser at once
/// (each a small row for five minutes): a stranger cannot fill the database, and a
/// flood only delays sign-ins without a password, never the other ways in.
pub const MAX_OPEN_PASSWORDLESS: u64 = 10_000;

impl Tweestap {
    /// The options for `navigator.credentials.get()` (`{"publicKey": {...}}`). For a
    /// half-finished sign-in (`half`) whose account has passkeys they name its keys;
    /// otherwise they name none, for a sign-in without a password.
    pub async fn passkey_options(&self, half: Option<&Token>) -> Result<serde_json::Value> {
        let rp = self.relying_party()?;
        if let Some(token) = half {
            if let Some(info) = self.session(token).await? {
                if info.session.stage == SessionStage::SecondFactor {
                    let keys: Vec<RegisteredKey> = self
                        .passkeys_with_keys(&info.account)
                        .await?
                        .into_iter()
                        .map(|(_, k)| k)
                        .collect();
                    if keys.is_empty() {
                        return Err(Error::Passkey(PasskeyProblem::UnknownKey));
                    }
                    let (options, state) = second_factor_options(rp, &keys)?;
                    let pending = Pending {
                        factor: None,
                        state,
                    };
                    self.store_ceremony(&options, Some(&token.hash().0), &pending, None)
                        .await?;
                    return Ok(options);
                }
            }
        }
        let (rcr, state) = rp
            .webauthn()
            .start_discoverable_authentication()
            .map_err(|e| Error::Internal(format!("passkey options: {e}")))?;
        let mut options = to_json(&rcr)?;
        // The page asks with or without conditional mediation; the options are the
        // same either way.
        if let Some(o) = options.as_object_mut() {
            o.remove("mediation");
        }
        let pending = Pending {
            factor: None,
            state: CeremonyState::Passwordless(state),
        };
        let cap = Some(MAX_OPEN_PASSWORDLESS);
        self.store_ceremony(&options, None, &pending, cap).await?;
        Ok(options)
    }

    /// Signs in with the browser's `credential`: the second factor of the sign-in
    /// `browser` is half-way through, or (no such sign-in) a sign-in without a
    /// password, which replaces any session `browser` names. Returns the new session.
    pub async fn passkey_sign_in(
        &self,
        browser: Option<&Token>,
        credential: &serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<Token> {
        let rp = self.relying_party()?;
        let half = match browser {
            Some(t) => self
                .session(t)
                .await?
                .filter(|i| i.session.stage == SessionStage::SecondFactor)
                .map(|i| (t, i.account)),
            None => None,
        };
        let session_hash = half.as_ref().map(|(t, _)| t.hash().0);
        let pending = self
            .take_ceremony(credential, session_hash.as_deref())
            .await;
        let answer = passkey::assertion(credential);
        let credential_id = answer
            .as_ref()
            .map(|a| credential_id_text(a.get_credential_id()))
            .ok();
        // The key the answer names, which must be this account's (second factor) or
        // must carry this account's user handle (without a password).
        let factor = match &credential_id {
            Some(id) => self.store.passkey_by_credential(id).await?,
            None => None,
        };
        let account = match (&half, &factor) {
            (Some((_, a)), _) => Some(a.clone()),
            (None, Some(f)) => self.store.account_by_id(f.account_id).await?,
            (None, None) => None,
        };
        let checked = self
            .check_assertion(
                rp,
                pending,
                answer,
                factor.as_ref(),
                account.as_ref(),
                half.is_some(),
            )
            .await;
        let (account, factor, result) = match (checked, account) {
            (Ok((f, r)), Some(a)) => (a, f, r),
            (Err(problem), Some(a)) => return Err(self.passkey_refused(&a, problem, ctx).await),
            (_, None) => {
                let detail = Some("unknown passkey".to_owned());
                self.audit(AuditEvent::PasskeyFailed, None, None, ctx, detail)
                    .await?;
                return Err(Error::Passkey(PasskeyProblem::UnknownKey));
            }
        };
        let now = self.clock.now();
        let kind = self.record_use(&factor, &result).await?;
        let synced = result.backup_eligible();
        let verified = result.user_verified();
        match half {
            Some((token, _)) => {
                let amr = match kind {
                    KeyKind::Passkey => passkey::session_methods(true, synced, verified),
                    KeyKind::SecurityKey => passkey::security_key_methods(synced, verified),
                };
                // The factor kind, and which key: a security key's use is told apart.
                let key = match kind {
                    KeyKind::Passkey => "",
                    KeyKind::SecurityKey => " key=security_key",
                };
                let detail = format!("factor={} kind=passkey{key}", factor.id);
                self.pass_code_step(&account, token, &amr, now, ctx, Some(detail))
                    .await
            }
            None => {
                let sid = self.continued_sid(&account, browser).await?;
                let amr = passkey::session_methods(false, synced, verified);
                let token = self
                    .create_session(&account, &amr, now, sid.clone(), ctx)
                    .await?;
                self.replaced(sid.as_deref(), &token).await?;
                let detail = Some(format!("passkey factor={}", factor.id));
                self.audit(
                    AuditEvent::LoginSucceeded,
                    Some(&account),
                    None,
                    ctx,
                    detail,
                )
                .await?;
                Ok(token)
            }
        }
    }

    /// Checks a browser's answer against its ceremony and the key it names.
    async fn check_assertion(
        &self,
        rp: &crate::passkey::RelyingParty,
        pending: std::result::Result<Pending, PasskeyProblem>,
        answer: std::result::Result<webauthn_rs::prelude::PublicKeyCredential, PasskeyProblem>,
        factor: Option<&Factor>,
        account: Option<&Account>,
        second_factor: bool,
    ) -> std::result::Result<(Factor, AuthenticationResult), PasskeyProblem> {
        let pending = pending?;
        let answer = answer?;
        let (Some(factor), Some(account)) = (factor, account) else {
            return Err(PasskeyProblem::UnknownKey);
        };
        if factor.account_id != account.id || account.disabled_at.is_some() {
            return Err(PasskeyProblem::UnknownKey);
        }
        let key = self
            .open_passkey(factor)
            .map_err(|_| PasskeyProblem::Invalid)?;
        let result = match (pending.state, second_factor) {
            (CeremonyState::SecondFactor(state), true) => {
                rp.webauthn().finish_passkey_authentication(&answer, &state)
            }
            (CeremonyState::SecondFactorKeys(state), true) => rp
                .webauthn()
                .finish_securitykey_authentication(&answer, &state),
            (CeremonyState::Passwordless(state), false) => {
                // A security key is one factor: never a sign-in by itself, even if
                // it could verify the person.
                if !self.passwordless_allowed(account) || key.kind == KeyKind::SecurityKey {
                    return Err(PasskeyProblem::UnknownKey);
                }
                // The user handle must be this account's: a key registered for one
                // account never signs in another.
                let (user, _) = rp
                    .webauthn()
                    .identify_discoverable_authentication(&answer)
                    .map_err(|e| passkey::problem_of(&e))?;
                if user != account.id.0 {
                    return Err(PasskeyProblem::UnknownKey);
                }
                rp.webauthn().finish_discoverable_authentication_v2(
                    &answer,
                    state,
                    key.credential(),
                )
            }
            _ => return Err(PasskeyProblem::Expired),
        };
        let result = result.map_err(|e| passkey::problem_of(&e))?;
        Ok((factor.clone(), result))
    }

    /// Keeps the key's new counter and backup flags, and when it was used; returns
    /// the key's kind.
    async fn record_use(&self, factor: &Factor, result: &AuthenticationResult) -> Result<KeyKind> {
        let mut key = self.open_passkey(factor)?;
        key.update(result);
        let sealed = self.seal_passkey(factor.id, &key)?;
        self.store
            .passkey_used(factor.id, &sealed, self.clock.now())
            .await?;
        Ok(key.kind)
    }

    /// Whether the policy lets people of this account's role sign in with a passkey
    /// alone.
    fn passwordless_allowed(&self, account: &Account) -> bool {
        self.method_allowed(account.role, crate::policy::document::Method::Passkey)
            && self.policy().role(account.role).passwordless
    }
}

/// The options (and state) of a second factor with the account's `keys`. Passkeys
/// alone: the passkey API (user verification required), as ever. With a security key
/// among them, webauthn-rs's security-key API takes them all in one ceremony (its
/// credentials are the same): each key is still held to the verification it was
/// registered with, so a passkey must still verify the person and a PIN-less
/// security key need not. (That API refuses a key that became backup eligible
/// after registration: a device-bound passkey turned synced must be added again.)
fn second_factor_options(
    rp: &crate::passkey::RelyingParty,
    keys: &[RegisteredKey],
) -> Result<(serde_json::Value, CeremonyState)> {
    let failed = |e| Error::Internal(format!("passkey options: {e}"));
    if keys.iter().all(|k| k.kind == KeyKind::Passkey) {
        let keys: Vec<Passkey> = keys.iter().map(RegisteredKey::as_passkey).collect();
        let (rcr, state) = rp
            .webauthn()
            .start_passkey_authentication(&keys)
            .map_err(failed)?;
        return Ok((to_json(&rcr)?, CeremonyState::SecondFactor(state)));
    }
    let all: Vec<SecurityKey> = keys.iter().map(RegisteredKey::as_security_key).collect();
    let (rcr, state) = rp
        .webauthn()
        .start_securitykey_authentication(&all)
        .map_err(failed)?;
    let mut options = to_json(&rcr)?;
    if keys.iter().any(|k| k.kind == KeyKind::Passkey) {
        // The passkeys must verify the person, so ask for it (a PIN-less key just
        // skips it), and do not steer the browser to USB keys only.
        if let Some(pk) = options.get_mut("publicKey").and_then(|p| p.as_object_mut()) {
            pk.insert("userVerification".into(), "preferred".into());
            pk.remove("hints");
        }
    }
    Ok((options, CeremonyState::SecondFactorKeys(state)))
}

fn to_json(v: &impl serde::Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| Error::Internal(format!("passkey options: {e}")))
}
