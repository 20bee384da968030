//! Signing in: the password step (its throttles in `password_check`, and remembered
//! devices); the code step is in `code_step`.

use super::Tweestap;
use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;
use crate::factor::{active_kinds, FactorKind};
use crate::oidc::authorize::SignInDemand;
use crate::session::SessionStage;
use crate::token::Token;

/// What a browser brings to the password step.
#[derive(Debug, Clone, Copy, Default)]
pub struct Browser<'a> {
    /// Its remembered-device token.
    pub device: Option<&'a str>,
    /// The session it is signed in with (signing in again: a step-up, or another person).
    pub signed_in: Option<&'a Token>,
    /// What the portal that sent it asked of this sign-in.
    pub demand: SignInDemand,
}

/// What the password step leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// No second factor set up: signed in.
    Authenticated(Token),
    /// The code is still needed; the token names the half-finished sign-in.
    SecondFactor {
        token: Token,
        methods: Vec<FactorKind>,
        /// The account's unused recovery codes (another way through the code step).
        recovery_codes_left: u32,
    },
    /// Two-step verification is required but not set up: the token names a session
    /// that may only set it up.
    EnrollmentRequired(Token),
}

impl Tweestap {
    /// The password step. Unknown addresses and wrong passwords answer alike, after
    /// the same Argon2 work.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome> {
        self.login_from(email, password, None, ctx).await
    }

    /// [`Self::login`] from a browser that may carry a remembered-device token: when
    /// it is this account's and still valid, the code step is skipped.
    pub async fn login_from(
        &self,
        email: &str,
        password: &str,
        device: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome> {
        let browser = Browser {
            device,
            ..Browser::default()
        };
        self.sign_in(email, password, browser, ctx).await
    }

    /// The password step from a browser: what it carries (a remembered-device token,
    /// the session it is signed in with) and what the portal asked of this sign-in.
    pub async fn sign_in(
        &self,
        email: &str,
        password: &str,
        browser: Browser<'_>,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome> {
        let (device, signed_in) = (browser.device, browser.signed_in);
        let found = self
            .check_credentials_from(email, password, device, signed_in, ctx)
            .await?;
        let account = found.account;
        let sid = self.continued_sid(&account, browser.signed_in).await?;
        let methods = active_kinds(&found.factors);
        let now = self.clock.now();
        let demand = browser.demand;
        if !methods.is_empty() && !demand.skip_remembered_device {
            if let Some(device) = self.remembered(&account, browser.device).await? {
                self.store.touch_device(device.id, now).await?;
                let token = self
                    .create_session(&account, "pwd device", now, sid.clone(), ctx)
                    .await?;
                self.replaced(sid.as_deref(), &token).await?;
                let detail = format!("stage=authenticated remembered_device={}", device.id);
                self.audit(
                    AuditEvent::LoginSucceeded,
                    Some(&account),
                    None,
                    ctx,
                    Some(detail),
                )
                .await?;
                return Ok(LoginOutcome::Authenticated(token));
            }
        }
        let stage = if !methods.is_empty() {
            SessionStage::SecondFactor
        } else if demand.require_second_factor || self.requirement(&account).is_required() {
            SessionStage::Enrollment
        } else {
            SessionStage::Authenticated
        };
        let event = AuditEvent::LoginSucceeded;
        let detail = Some(format!("stage={}", stage.as_str()));
        let token = if stage == SessionStage::Authenticated {
            let token = self
                .create_session(&account, "pwd", now, sid.clone(), ctx)
                .await?;
            self.replaced(sid.as_deref(), &token).await?;
            self.audit(event, Some(&account), None, ctx, detail).await?;
            token
        } else {
            // Half-way: nothing is replaced yet.
            self.create_session_audited(&account, stage, now, sid, ctx, event, detail)
                .await?
        };
        if stage == SessionStage::Enrollment {
            self.audit(
                AuditEvent::EnrollmentRequired,
                Some(&account),
                None,
                ctx,
                None,
            )
            .await?;
        }
        Ok(match stage {
            SessionStage::SecondFactor => LoginOutcome::SecondFactor {
                token,
                methods,
                recovery_codes_left: found.recovery_codes_left,
            },
            SessionStage::Enrollment => LoginOutcome::EnrollmentRequired(token),
            SessionStage::Authenticated | SessionStage::EmailCode => {
                LoginOutcome::Authenticated(token)
            }
        })
    }

    /// The browser's earlier session, now that `account` signed in again: the same
    /// person keeps its `sid` (a step-up; the portals' tokens live on), anyone else
    /// ends it first.
    pub(super) async fn continued_sid(
        &self,
        account: &Account,
        signed_in: Option<&Token>,
    ) -> Result<Option<String>> {
        let Some(previous) = signed_in else {
            return Ok(None);
        };
        let Some(s) = self.store.session(&previous.hash()).await? else {
            return Ok(None);
        };
        if s.stage != SessionStage::Authenticated {
            self.store.delete_session(&previous.hash()).await?;
            return Ok(None);
        }
        if s.account_id == account.id && !self.settings.sessions.is_expired(&s, self.clock.now()) {
            return Ok(Some(s.sid));
        }
        self.end_browser_sign_in(&s.sid).await?;
        Ok(None)
    }

    /// A signed-in session `new` continues `sid`: the one it replaces goes.
    pub(super) async fn replaced(&self, sid: Option<&str>, new: &Token) -> Result<()> {
        if let Some(sid) = sid {
            self.store
                .delete_other_sessions_with_sid(sid, &new.hash())
                .await?;
        }
        Ok(())
    }

    /// The kinds of second factor the account has, each once.
    pub async fn active_methods(&self, account: AccountId) -> Result<Vec<FactorKind>> {
        Ok(active_kinds(&self.store.factors_of(account).await?))
    }
}
