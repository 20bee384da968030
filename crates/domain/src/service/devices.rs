//! Remembered devices ("skip the code on this browser for 7 days") and recovery
//! codes (for when the phone is lost).

use super::password_check::{locking_attempt, seconds_until};
use super::Tweestap;
use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::device::{label_from_user_agent, RememberedDevice};
use crate::error::{Error, Result};
use crate::factor::Factor;
use crate::lockout::throttle::ThrottleKey;
use crate::mail::Notice;
use crate::recovery::{
    new_recovery_code, normalise_recovery_code, NewRecoveryCodes, RECOVERY_CODES,
};
use crate::session::SessionStage;
use crate::store::SecondSteps;
use crate::token::Token;
use uuid::Uuid;

/// What a recovery code's MAC is bound to, so a MAC is worthless for another account.
fn recovery_context(account: AccountId) -> Vec<u8> {
    format!("tweestap recovery code v1 {account}").into_bytes()
}

impl Tweestap {
    /// The device behind `token` if it is `account`'s and still valid.
    pub(super) async fn remembered(
        &self,
        account: &Account,
        token: Option<&str>,
    ) -> Result<Option<RememberedDevice>> {
        let Some(token) = token.and_then(Token::from_client) else {
            return Ok(None);
        };
        let found = self.store.device_by_token(&token.hash()).await?;
        Ok(found.filter(|d| d.account_id == account.id && d.expires_at > self.clock.now()))
    }

    /// "Remember this device": for a session that just passed the code step, a new
    /// device token for the browser's cookie.
    pub async fn remember_device(&self, session: &Token, ctx: &RequestContext) -> Result<Token> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        // Only right after a second factor (not after a remembered browser stood in).
        if info.session.stage != SessionStage::Authenticated
            || crate::oidc::acr::SignInProof::of(&info.session.amr).level
                != crate::oidc::acr::AuthLevel::TwoFactor
        {
            return Err(Error::Unauthenticated);
        }
        let token = Token::generate();
        let now = self.clock.now();
        let device = RememberedDevice {
            id: Uuid::new_v4(),
            token_hash: token.hash(),
            account_id: info.account.id,
            label: label_from_user_agent(ctx.user_agent.as_deref()),
            created_at: now,
            last_used_at: now,
            expires_at: now + chrono::Duration::days(i64::from(self.policy().remember_device_days)),
        };
        self.store.insert_device(&device).await?;
        let detail = format!("device={} label={}", device.id, device.label);
        self.audit(
            AuditEvent::DeviceRemembered,
            Some(&info.account),
            None,
            ctx,
            Some(detail),
        )
        .await?;
        Ok(token)
    }

    /// The account's remembered devices that still count, most recently used first.
    pub async fn devices(&self, account: AccountId) -> Result<Vec<RememberedDevice>> {
        let now = self.clock.now();
        let mut v = self.store.devices_of(account).await?;
        v.retain(|d| d.expires_at > now);
        Ok(v)
    }

    pub async fn forget_device(
        &self,
        account: &Account,
        id: Uuid,
        ctx: &RequestContext,
    ) -> Result<()> {
        if !self.store.delete_device(account.id, id).await? {
            return Err(Error::NotFound);
        }
        let detail = Some(format!("device={id}"));
        self.audit(
            AuditEvent::DevicesForgotten,
            Some(account),
            None,
            ctx,
            detail,
        )
        .await
    }

    pub async fn forget_devices(&self, account: &Account, ctx: &RequestContext) -> Result<u64> {
        let n = self.store.delete_devices_of(account.id).await?;
        let detail = Some(format!("all; count={n}"));
        self.audit(
            AuditEvent::DevicesForgotten,
            Some(account),
            None,
            ctx,
            detail,
        )
        .await?;
        Ok(n)
    }

    // ---- recovery codes ---------------------------------------------------------------

    /// A new set of codes for the account (the old ones die); returns them to be
    /// shown once.
    pub(super) async fn issue_recovery_codes(
        &self,
        account: &Account,
        ctx: &RequestContext,
    ) -> Result<Vec<String>> {
        let new = self.fresh_recovery_codes(account);
        self.store
            .replace_recovery_codes(account.id, &new.macs, self.clock.now())
            .await?;
        self.recovery_codes_issued(account, new, ctx).await
    }

    /// A new set of codes for `account`, not stored yet.
    pub(super) fn fresh_recovery_codes(&self, account: &Account) -> NewRecoveryCodes {
        let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
        let context = recovery_context(account.id);
        let macs = codes
            .iter()
            .map(|c| self.secrets.code_mac(&context, c.as_bytes()))
            .collect();
        NewRecoveryCodes { codes, macs }
    }

    /// After `new` was stored: audited, and its codes returned to be shown once.
    pub(super) async fn recovery_codes_issued(
        &self,
        account: &Account,
        new: NewRecoveryCodes,
        ctx: &RequestContext,
    ) -> Result<Vec<String>> {
        self.audit(
            AuditEvent::RecoveryCodesIssued,
            Some(account),
            None,
            ctx,
            None,
        )
        .await?;
        Ok(new.codes)
    }

    /// New recovery codes, after the password (the old ones die).
    pub async fn new_recovery_codes(
        &self,
        account: &Account,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<Vec<String>> {
        self.confirm_password(account, password, ctx).await?;
        if self.active_factors(account.id).await?.is_empty() {
            return Err(Error::NotFound);
        }
        self.issue_recovery_codes(account, ctx).await
    }

    pub async fn recovery_codes_left(&self, account: AccountId) -> Result<u32> {
        Ok(self.store.recovery_codes_left(account).await?)
    }

    /// The account's active factors, the remembered devices that still count, the
    /// recovery codes left and its number of portal consents, in one read.
    pub async fn second_steps(&self, account: AccountId) -> Result<SecondSteps> {
        let s = self.store.second_steps_of(account).await?;
        Ok(self.current_steps(s))
    }

    /// Of the second steps as stored, those that count now.
    pub(super) fn current_steps(&self, mut s: SecondSteps) -> SecondSteps {
        let now = self.clock.now();
        s.factors.retain(Factor::is_active);
        s.devices.retain(|d| d.expires_at > now);
        s
    }

    /// The code step with a recovery code instead of the app: wrong ones count
    /// towards a lock-out of their own (an attempt taken before the code is checked,
    /// so parallel requests check no more than it allows), so a right one works even
    /// while the app's code step is locked; the code is used once; a notice is
    /// mailed.
    pub async fn verify_recovery_code(
        &self,
        token: &Token,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Token> {
        let now = self.clock.now();
        let account = self.code_step_account(token).await?;
        let failures = self.take_recovery_attempt(&account, ctx).await?;
        let mac = self.secrets.code_mac(
            &recovery_context(account.id),
            normalise_recovery_code(code).as_bytes(),
        );
        if !self.store.use_recovery_code(account.id, &mac, now).await? {
            let detail = Some("recovery code".to_owned());
            self.audit(AuditEvent::CodeFailed, Some(&account), None, ctx, detail)
                .await?;
            self.recovery_code_wrong(&account, failures, ctx).await?;
            return Err(Error::InvalidCode);
        }
        self.recovery_code_right(&account).await?;
        let new = self
            .pass_code_step(&account, token, "pwd mfa", now, ctx, None)
            .await?;
        let remaining = self.store.recovery_codes_left(account.id).await?;
        let detail = Some(format!("left={remaining}"));
        self.audit(
            AuditEvent::RecoveryCodeUsed,
            Some(&account),
            None,
            ctx,
            detail,
        )
        .await?;
        self.send_notice(&account, Notice::RecoveryCodeUsed { remaining }, ctx)
            .await?;
        Ok(new)
    }

    // ---- their throttle -----------------------------------------------------------

    /// Takes one recovery-code attempt of `account` before its code is checked: the
    /// count, or `TooManyAttempts` while they are locked. Recovery codes have a
    /// count of their own, so they still work while the app's code step is locked.
    async fn take_recovery_attempt(&self, account: &Account, ctx: &RequestContext) -> Result<u32> {
        let now = self.clock.now();
        let policy = &self.settings.lockout;
        let key = ThrottleKey::recovery(account.id);
        let attempt = locking_attempt(&key, Some(account.id), now, policy);
        if let Some(count) = self.store.take_attempt(&attempt).await? {
            return Ok(count);
        }
        let until = self.store.throttle_state(key.as_str()).await?;
        let detail = Some("recovery code: locked".to_owned());
        self.audit(AuditEvent::CodeFailed, Some(account), None, ctx, detail)
            .await?;
        let until = until.and_then(|s| s.locked_until);
        Err(Error::TooManyAttempts {
            retry_after: seconds_until(until, now),
        })
    }

    /// A wrong recovery code: at the threshold its count locks for the full length.
    async fn recovery_code_wrong(
        &self,
        account: &Account,
        failures: u32,
        ctx: &RequestContext,
    ) -> Result<()> {
        let Some(until) = self.settings.lockout.lock_until(failures, self.clock.now()) else {
            return Ok(());
        };
        let key = ThrottleKey::recovery(account.id);
        self.store.lock_throttle(key.as_str(), until).await?;
        let detail = format!(
            "scope=recovery failures={failures} until={}",
            until.to_rfc3339()
        );
        self.audit(
            AuditEvent::CodeLockedOut,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await
    }

    /// A right recovery code: its count starts again.
    async fn recovery_code_right(&self, account: &Account) -> Result<()> {
        let key = ThrottleKey::recovery(account.id);
        Ok(self.store.clear_throttle(key.as_str()).await?)
    }
}
