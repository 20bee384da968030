//! The roll-out console's operations on accounts and the policy. Only
//! administrators, with a recent second factor (a step-up), may call them; every
//! change is audited with the acting administrator and, where a value changes, its
//! value before and after.

use super::{SessionInfo, Tweestap};
use crate::account::{Account, AccountId, Email, Role};
use crate::audit::{AuditEvent, RequestContext};
use crate::console::{AccountFilter, AccountListing, Cursor};
use crate::error::{Error, Result};
use crate::factor::FactorKind;
use crate::lockout::Guard;
use crate::password::formats::NO_PASSWORD;
use crate::policy::document::{Method, PolicyDocument};
use crate::session::SessionStage;
use crate::store::{NewAccount, StoreError};
use chrono::{DateTime, Utc};

/// The policy's key among the console's stored settings.
const POLICY_KEY: &str = "policy";
/// The most accounts one page of the list holds.
pub const MAX_PAGE: u32 = 500;

/// A page of the account list, and where the next one starts.
#[derive(Debug, Clone)]
pub struct AccountPage {
    pub accounts: Vec<AccountListing>,
    pub next: Option<Cursor>,
}

/// An account an administrator makes.
#[derive(Debug, Clone)]
pub struct NewConsoleAccount<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    /// Mail an invitation to choose a password.
    pub invite: bool,
}

/// Whether an amr (`pwd otp`, `pwd sms mfa`, `hwk user pin pk`) includes a code
/// or a passkey.
fn amr_has_code(amr: &str) -> bool {
    amr.split_whitespace()
        .any(|m| matches!(m, "otp" | "sms" | "pk"))
}

impl Tweestap {
    /// When this session last proved a second factor: its sign-in with a code, or
    /// a later step-up. None when it never did (a remembered browser, no factor).
    pub async fn last_code_at(&self, info: &SessionInfo) -> Result<Option<DateTime<Utc>>> {
        let at_sign_in = amr_has_code(&info.session.amr).then_some(info.session.auth_time);
        let stepped = self.store.session_code_at(&info.session.id_hash).await?;
        Ok(at_sign_in.max(stepped))
    }

    /// Lets an administrator in, or says why not: `Forbidden` for anyone else
    /// (audited), `StepUpRequired` when the last code is older than the console's
    /// step-up window.
    pub async fn console_gate(&self, info: &SessionInfo, ctx: &RequestContext) -> Result<()> {
        if info.account.role != Role::Admin || info.session.stage != SessionStage::Authenticated {
            self.audit(
                AuditEvent::AdminRefused,
                Some(&info.account),
                None,
                ctx,
                None,
            )
            .await?;
            return Err(Error::Forbidden);
        }
        let fresh = self
            .last_code_at(info)
            .await?
            .is_some_and(|t| self.clock.now() - t <= self.settings.console.step_up);
        if fresh {
            Ok(())
        } else {
            Err(Error::StepUpRequired)
        }
    }

    /// A step-up: a current code from the administrator's app renews the window.
    /// The code counts towards the code lock-out and is never accepted twice.
    pub async fn step_up(
        &self,
        info: &SessionInfo,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let account = &info.account;
        let now = self.clock.now();
        let Some(failures) = self.reserve_code_attempt(account, now).await? else {
            let retry_after = self.code_locked_for_now(account.id, now).await?;
            return Err(Error::TooManyAttempts { retry_after });
        };
        let code: String = code.chars().filter(char::is_ascii_digit).collect();
        for f in self
            .active_factors(account.id)
            .await?
            .iter()
            .filter(|f| f.kind == FactorKind::Totp)
        {
            let key = self.secrets.open(&f.secret_sealed, f.id.0.as_bytes())?;
            let Some(step) = self
                .settings
                .totp
                .matching_step(&key, &code, now.timestamp())
            else {
                continue;
            };
            if self.store.claim_totp_step(f.id, step as i64, now).await? {
                self.store.reset_failures(account.id, Guard::Code).await?;
                self.store
                    .set_session_code_at(&info.session.id_hash, now)
                    .await?;
                let detail = Some(format!("factor={}", f.id));
                return self
                    .audit(
                        AuditEvent::StepUpSucceeded,
                        Some(account),
                        None,
                        ctx,
                        detail,
                    )
                    .await;
            }
        }
        self.audit(AuditEvent::StepUpFailed, Some(account), None, ctx, None)
            .await?;
        self.settle_failed_attempt(account, failures, ctx).await?;
        Err(Error::InvalidCode)
    }

    /// One page of accounts by address (at most [`MAX_PAGE`]).
    pub async fn console_accounts(
        &self,
        filter: &AccountFilter,
        after: Option<&Cursor>,
        limit: u32,
    ) -> Result<AccountPage> {
        let limit = limit.clamp(1, MAX_PAGE);
        let shared = self.settings.shared_mailboxes.local_parts().to_vec();
        let mut accounts = self
            .store
            .list_accounts_page(filter, &shared, after, limit + 1)
            .await?;
        let next = if accounts.len() > limit as usize {
            accounts.truncate(limit as usize);
            accounts
                .last()
                .map(|a| Cursor(a.account.email.as_str().to_owned()))
        } else {
            None
        };
        Ok(AccountPage { accounts, next })
    }

    /// One account with its second factors and last sign-in, as the list shows it.
    pub async fn console_listing(&self, id: AccountId) -> Result<AccountListing> {
        self.store.account_listing(id).await?.ok_or(Error::NotFound)
    }

    pub async fn console_account(&self, id: AccountId) -> Result<Account> {
        self.store.account_by_id(id).await?.ok_or(Error::NotFound)
    }

    /// A new account made by an administrator, without a password: with `invite`,
    /// a mail with a link to choose one (and then set up two-step verification).
    pub async fn create_account_by(
        &self,
        admin: &Account,
        n: &NewConsoleAccount<'_>,
        base_url: &str,
        ctx: &RequestContext,
    ) -> Result<Account> {
        let (role, invite) = (n.role, n.invite);
        let email = Email::parse(n.email).map_err(|_| Error::InvalidEmail)?;
        let new = NewAccount {
            id: AccountId::random(),
            email,
            name: n.name.trim().to_owned(),
            role,
            password_hash: NO_PASSWORD.to_owned(),
            created_at: self.clock.now(),
        };
        match self.store.insert_account(&new).await {
            Err(StoreError::Conflict) => return Err(Error::EmailTaken),
            other => other?,
        }
        let account = self.console_account(new.id).await?;
        let detail = Some(format!("by={} role={role}", admin.email));
        self.audit(
            AuditEvent::AccountCreated,
            Some(&account),
            None,
            ctx,
            detail,
        )
        .await?;
        if invite {
            self.invite_by(admin, &account, base_url, ctx).await?;
        }
        Ok(account)
    }

    pub async fn change_role_by(
        &self,
        admin: &Account,
        id: AccountId,
        role: Role,
        ctx: &RequestContext,
    ) -> Result<Account> {
        let account = self.console_account(id).await?;
        if account.id == admin.id && role != Role::Admin {
            // The last way back into the console must not lock itself out.
            return Err(Error::Forbidden);
        }
        if account.role != role {
            self.store.set_role(id, role).await?;
            let detail = Some(format!(
                "by={} before={} after={role}",
                admin.email, account.role
            ));
            self.audit(
                AuditEvent::AccountRoleChanged,
                Some(&account),
                None,
                ctx,
                detail,
            )
            .await?;
        }
        self.console_account(id).await
    }

    /// Disables (sessions, remembered browsers and portal tokens end at once) or
    /// enables an account.
    pub async fn set_disabled_by(
        &self,
        admin: &Account,
        id: AccountId,
        disabled: bool,
        ctx: &RequestContext,
    ) -> Result<Account> {
        let account = self.console_account(id).await?;
        if account.id == admin.id && disabled {
            return Err(Error::Forbidden);
        }
        if account.disabled_at.is_some() != disabled {
            let at = disabled.then(|| self.clock.now());
            self.store.set_disabled(id, at).await?;
            let event = if disabled {
                self.logout_wakeup.notify_one();
                AuditEvent::AccountDisabled
            } else {
                AuditEvent::AccountEnabled
            };
            let detail = Some(format!("by={}", admin.email));
            self.audit(event, Some(&account), None, ctx, detail).await?;
        }
        self.console_account(id).await
    }

    /// Deletes an account and everything of it but its audit records; the reason
    /// is audited with it.
    pub async fn delete_account_by(
        &self,
        admin: &Account,
        id: AccountId,
        reason: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        if reason.trim().is_empty() {
            return Err(Error::ReasonRequired);
        }
        let account = self.console_account(id).await?;
        if account.id == admin.id {
            return Err(Error::Forbidden);
        }
        // Disabling first ends its sessions and portal tokens (and tells the
        // portals), as for any disabled account.
        self.store.set_disabled(id, Some(self.clock.now())).await?;
        self.logout_wakeup.notify_one();
        self.store.delete_account(id).await?;
        let detail = Some(format!(
            "by={} reason={}",
            admin.email,
            reason.trim().replace('\n', " ")
        ));
        self.audit(
            AuditEvent::AccountDeleted,
            Some(&account),
            None,
            ctx,
            detail,
        )
        .await
    }

    /// The policy every node applies now.
    pub fn policy(&self) -> PolicyDocument {
        match self.policy.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The SMS limits and countries of the policy (the region stays configured).
    pub fn sms_policy(&self) -> crate::sms::SmsPolicy {
        self.policy().sms_policy(&self.settings.sms)
    }

    /// Whether people of `role` may set up `method` (SMS also needs a gateway).
    pub fn method_allowed(&self, role: Role, method: Method) -> bool {
        self.policy().role(role).methods.contains(&method)
            && (method != Method::Sms || self.sms_offered())
    }

    fn set_policy(&self, doc: PolicyDocument) {
        match self.policy.write() {
            Ok(mut p) => *p = doc,
            Err(poisoned) => *poisoned.into_inner() = doc,
        }
    }

    /// Reads the stored policy (if the console ever saved one); every node calls it
    /// at start and every few seconds, so a change reaches them all.
    pub async fn load_policy(&self) -> Result<()> {
        if let Some(json) = self.store.console_setting(POLICY_KEY).await? {
            match serde_json::from_str::<PolicyDocument>(&json) {
                Ok(doc) => self.set_policy(doc),
                Err(e) => {
                    tracing::error!("the stored policy cannot be read, keeping the last: {e}")
                }
            }
        }
        Ok(())
    }

    /// Applies a change to the policy (a JSON merge patch: only what changes),
    /// stores it for every node and audits before and after.
    pub async fn update_policy(
        &self,
        admin: &Account,
        patch: &serde_json::Value,
        ctx: &RequestContext,
    ) -> Result<PolicyDocument> {
        let before = self.policy();
        let after = before.patched(patch).map_err(Error::InvalidPolicy)?;
        if after != before {
            let json = serde_json::to_string(&after).map_err(|e| Error::Internal(e.to_string()))?;
            self.store
                .save_console_setting(POLICY_KEY, &json, self.clock.now())
                .await?;
            self.set_policy(after.clone());
            let before_json = serde_json::to_string(&before).unwrap_or_default();
            let detail = Some(format!(
                "by={} before={before_json} after={json}",
                admin.email
            ));
            self.audit(AuditEvent::PolicyChanged, Some(admin), None, ctx, detail)
                .await?;
        }
        Ok(after)
    }
}
