//! Signing in: the password step (its throttles in `password_check`, and remembered
//! devices) and the code step, each failure counted towards a lock-out.

use super::one_time_codes::normalise_code;
use super::Tweestap;
use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::error::{Error, Result};
use crate::factor::{Factor, FactorKind};
use crate::lockout::Guard;
use crate::oidc::authorize::SignInDemand;
use crate::session::SessionStage;
use crate::token::Token;
use chrono::{DateTime, Utc};

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

/// Where the code step of a half-finished sign-in stands, for its page and the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeStepStanding {
    /// Codes that may still be tried before the code step locks (the last one locks
    /// when it is wrong too); 0 while locked.
    pub tries_left: u32,
    /// When the lock ends, while the code step is locked. An SMS code and a recovery
    /// code still work while it is (each has its own limits).
    pub locked_until: Option<DateTime<Utc>>,
    /// Seconds until the lock ends, while locked (by the engine's clock).
    pub retry_after: Option<i64>,
}

/// A code step's end short of an error: the new session, or a wrong code's standing.
pub type CodeStepResult = std::result::Result<Token, CodeStepStanding>;

/// What the password step leads to.
#[derive(Debug)]
pub enum LoginOutcome {
    /// No second factor set up: signed in.
    Authenticated(Token),
    /// The code is still needed; the token names the half-finished sign-in.
    SecondFactor {
        token: Token,
        methods: Vec<FactorKind>,
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
        let account = self
            .check_credentials_from(email, password, device, signed_in, ctx)
            .await?;
        let sid = self.continued_sid(&account, browser.signed_in).await?;
        let methods = self.active_methods(account.id).await?;
        let now = self.clock.now();
        let demand = browser.demand;
        if !methods.is_empty() && !demand.skip_remembered_device {
            if let Some(device) = self.remembered(&account, browser.device).await? {
                self.store.touch_device(device.id, now).await?;
                let stage = SessionStage::Authenticated;
                let token = self
                    .create_session(&account, stage, "pwd device", now, sid.clone(), ctx)
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
        let token = self
            .create_session(&account, stage, "pwd", now, sid.clone(), ctx)
            .await?;
        if stage == SessionStage::Authenticated {
            self.replaced(sid.as_deref(), &token).await?;
        }
        self.audit(
            AuditEvent::LoginSucceeded,
            Some(&account),
            None,
            ctx,
            Some(format!("stage={}", stage.as_str())),
        )
        .await?;
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
            SessionStage::SecondFactor => LoginOutcome::SecondFactor { token, methods },
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
        let mut m: Vec<FactorKind> = self
            .active_factors(account)
            .await?
            .into_iter()
            .map(|f| f.kind)
            .collect();
        m.sort();
        m.dedup();
        Ok(m)
    }

    /// The code step. On success the half-finished session is replaced by a new,
    /// authenticated one (a new id, so a fixated id is worthless).
    pub async fn verify_second_factor(
        &self,
        token: &Token,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Token> {
        self.take_code_step(token, code, ctx)
            .await?
            .map_err(|_| Error::InvalidCode)
    }

    /// [`Self::verify_second_factor`], a wrong, malformed or used code answered with
    /// where the code step stands after it (as [`Self::code_step_standing`] would
    /// read it, without reading it again): `Ok(Err(standing))`.
    pub async fn take_code_step(
        &self,
        token: &Token,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<CodeStepResult> {
        let now = self.clock.now();
        let (account, sid, factors) = self.code_step_factors(token).await?;
        let code = normalise_code(code);
        // The app's codes are compared before the attempt is taken: comparing changes
        // nothing, and a match counts only once the attempt is (never while locked).
        let app_match = self.app_code_match(&factors, &code, now)?;
        if app_match.is_none() && !factors.iter().any(|f| f.kind == FactorKind::Sms) {
            return self.wrong_code(&account, now, ctx).await;
        }
        // One attempt is taken before any code counts (atomically, so parallel
        // requests cannot check more than the lock-out allows). While the code step is
        // locked only an SMS code is checked: it has its own limits (a few tries per
        // code, a few codes per sign-in and per hour).
        let reserved = self.reserve_code_attempt(&account, now).await?;
        let (matched, locked) = match reserved {
            Some(_) => (app_match, None),
            None => (None, Some(self.code_locked_for_now(account.id, now).await?)),
        };
        if matched.is_none() {
            if let Some(f) = self
                .sms_sign_in_match(&token.hash(), &factors, &code)
                .await?
            {
                let detail = format!("factor={} kind=sms", f.id);
                let new = self
                    .pass_code_step_of(&account, token, sid, "pwd sms", now, ctx, detail)
                    .await?;
                return Ok(Ok(new));
            }
        }
        let Some(failures) = reserved else {
            let detail = Some("locked".to_owned());
            self.audit(AuditEvent::CodeFailed, Some(&account), None, ctx, detail)
                .await?;
            return Err(Error::TooManyAttempts {
                retry_after: locked.unwrap_or(1),
            });
        };
        if let Some((factor, step)) = matched {
            if self
                .store
                .claim_totp_step(factor.id, step as i64, now)
                .await?
            {
                let detail = format!("factor={}", factor.id);
                let new = self
                    .pass_code_step_of(&account, token, sid, "pwd otp", now, ctx, detail)
                    .await?;
                return Ok(Ok(new));
            }
            self.audit(
                AuditEvent::CodeReplayed,
                Some(&account),
                None,
                ctx,
                Some(format!("factor={}", factor.id)),
            )
            .await?;
        } else {
            self.audit(AuditEvent::CodeFailed, Some(&account), None, ctx, None)
                .await?;
        }
        let locked_until = self.settle_failed_attempt(&account, failures, ctx).await?;
        Ok(Err(self.standing_after(failures, locked_until)))
    }

    /// The app factor (and its time step) whose code `code` is, if any.
    fn app_code_match<'f>(
        &self,
        factors: &'f [Factor],
        code: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<(&'f Factor, u64)>> {
        let mut matched = None;
        // An SMS factor's secret is a phone number, never an HOTP key.
        for f in factors.iter().filter(|f| f.kind == FactorKind::Totp) {
            let key = self.secrets.open(&f.secret_sealed, f.id.0.as_bytes())?;
            if let Some(step) = self
                .settings
                .totp
                .matching_step(&key, code, now.timestamp())
            {
                matched = Some((f, step));
            }
        }
        Ok(matched)
    }

    /// A code that is no one's (no app's, and the account has no phone): the
    /// attempt and its audit row in one write, the hot path of a guessing attack.
    /// The row is written by the store, so the observer is told here.
    async fn wrong_code(
        &self,
        account: &Account,
        now: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Result<CodeStepResult> {
        let policy = &self.settings.lockout;
        let failed = AuditRecord {
            at: now,
            event: AuditEvent::CodeFailed.as_str().to_owned(),
            account_id: Some(account.id),
            email: Some(account.email.to_string()),
            ip: ctx.ip.as_deref().map(|s| super::capped(s, 64)),
            user_agent: ctx.user_agent.as_deref().map(|s| super::capped(s, 256)),
            detail: None,
        };
        let reserved = self
            .store
            .reserve_failed_attempt(
                account.id,
                Guard::Code,
                policy.max_failures,
                now + policy.base,
                now,
                &failed,
                Some("locked"),
            )
            .await?;
        if let Some(o) = &self.observer {
            let detail = reserved.is_none().then_some("locked");
            o.audited(AuditEvent::CodeFailed, detail);
        }
        let Some(failures) = reserved else {
            let retry_after = self.code_locked_for_now(account.id, now).await?;
            return Err(Error::TooManyAttempts { retry_after });
        };
        let locked_until = self.settle_failed_attempt(account, failures, ctx).await?;
        Ok(Err(self.standing_after(failures, locked_until)))
    }

    /// Where the code step stands after a wrong code counted as `failures`, which
    /// locked it until `locked_until` if it did.
    fn standing_after(
        &self,
        failures: u32,
        locked_until: Option<DateTime<Utc>>,
    ) -> CodeStepStanding {
        let now = self.clock.now();
        let locked_until = locked_until.filter(|u| *u > now);
        CodeStepStanding {
            tries_left: match locked_until {
                Some(_) => 0,
                None => self.settings.lockout.tries_left(failures),
            },
            locked_until,
            retry_after: locked_until.map(|u| (u - now).num_seconds().max(1)),
        }
    }

    /// Takes one code attempt for `account` (see `reserve_attempt`): the failures
    /// it counts, or None while the code step is locked.
    pub(super) async fn reserve_code_attempt(
        &self,
        account: &Account,
        now: DateTime<Utc>,
    ) -> Result<Option<u32>> {
        let policy = &self.settings.lockout;
        Ok(self
            .store
            .reserve_attempt(
                account.id,
                Guard::Code,
                policy.max_failures,
                now + policy.base,
                now,
            )
            .await?)
    }

    /// Seconds until the code step unlocks, read afresh (a request in parallel may
    /// have locked it since the account was read); at least 1.
    pub(super) async fn code_locked_for_now(
        &self,
        account: AccountId,
        now: DateTime<Utc>,
    ) -> Result<i64> {
        let fresh = self.store.account_by_id(account).await?;
        Ok(fresh
            .and_then(|a| self.code_locked_for(&a, now))
            .unwrap_or(1))
    }

    /// A reserved attempt failed: the count stands; at the lock-out's threshold the
    /// lock gets its full length (the reservation held it for the shortest): until
    /// when, if it locked.
    pub(super) async fn settle_failed_attempt(
        &self,
        account: &Account,
        failures: u32,
        ctx: &RequestContext,
    ) -> Result<Option<DateTime<Utc>>> {
        let until = self.settings.lockout.lock_until(failures, self.clock.now());
        if let Some(until) = until {
            self.store
                .set_lock(account.id, Guard::Code, Some(until))
                .await?;
            let detail = Some(format!("failures={failures} until={}", until.to_rfc3339()));
            self.audit(AuditEvent::CodeLockedOut, Some(account), None, ctx, detail)
                .await?;
        }
        Ok(until)
    }

    /// The account of the sign-in `token` names while it waits for its code (also
    /// while its code step is locked: see [`Self::code_locked_for`]).
    pub(super) async fn code_step_account(&self, token: &Token) -> Result<Account> {
        let info = self.session(token).await?.ok_or(Error::Unauthenticated)?;
        if info.session.stage != SessionStage::SecondFactor {
            return Err(Error::Unauthenticated);
        }
        Ok(info.account)
    }

    /// [`Self::code_step_account`], the sign-in's sid and the account's active
    /// factors, read together.
    async fn code_step_factors(&self, token: &Token) -> Result<(Account, String, Vec<Factor>)> {
        let hash = token.hash();
        let (session, account, factors) = self
            .store
            .session_with_factors(&hash)
            .await?
            .ok_or(Error::Unauthenticated)?;
        let info = self
            .live_session(&hash, session, account)
            .await?
            .ok_or(Error::Unauthenticated)?;
        if info.session.stage != SessionStage::SecondFactor {
            return Err(Error::Unauthenticated);
        }
        let active = factors.into_iter().filter(Factor::is_active).collect();
        Ok((info.account, info.session.sid, active))
    }

    /// Seconds until the account's code step unlocks, while it is locked.
    pub(super) fn code_locked_for(&self, account: &Account, now: DateTime<Utc>) -> Option<i64> {
        account
            .code_locked_until
            .filter(|u| *u > now)
            .map(|until| (until - now).num_seconds().max(1))
    }

    /// Where the code step of the sign-in `token` names stands: the tries left
    /// before it locks, or when the lock ends.
    pub async fn code_step_standing(&self, token: &Token) -> Result<CodeStepStanding> {
        let now = self.clock.now();
        let account = self.code_step_account(token).await?;
        let locked_until = account.code_locked_until.filter(|u| *u > now);
        let tries_left = match locked_until {
            Some(_) => 0,
            None => self.settings.lockout.tries_left(account.code_failures),
        };
        Ok(CodeStepStanding {
            tries_left,
            locked_until,
            retry_after: self.code_locked_for(&account, now),
        })
    }

    /// The code step passed (with the methods in `amr`): the failure count starts
    /// again and the half-finished session `half` is replaced by an authenticated one
    /// (a new id, so a fixated id is worthless). `succeeded`: the detail of the
    /// audit event `code_succeeded`, written with the rest; `None` writes none
    /// (the caller audits its own event).
    pub(super) async fn pass_code_step(
        &self,
        account: &Account,
        half: &Token,
        amr: &str,
        now: DateTime<Utc>,
        ctx: &RequestContext,
        succeeded: Option<String>,
    ) -> Result<Token> {
        let sid = self.store.session(&half.hash()).await?.map(|s| s.sid);
        self.pass_code_step_audited(account, half, sid, amr, now, ctx, succeeded)
            .await
    }

    /// [`Self::pass_code_step`] for a half-finished session whose `sid` is known,
    /// audited as `code_succeeded` with `detail`.
    #[allow(clippy::too_many_arguments)]
    async fn pass_code_step_of(
        &self,
        account: &Account,
        half: &Token,
        sid: String,
        amr: &str,
        now: DateTime<Utc>,
        ctx: &RequestContext,
        detail: String,
    ) -> Result<Token> {
        self.pass_code_step_audited(account, half, Some(sid), amr, now, ctx, Some(detail))
            .await
    }

    /// The code step passed. Its writes touch different rows, so they go out
    /// together in two waves (on SQLite two group commits instead of six waits):
    /// first the new session and the reset count, then the sessions it replaces end
    /// and the success is audited. Nothing ends before the new session is stored:
    /// a failure leaves a step-up's old session signed in. `sid` is the
    /// half-finished session's (None if it is gone).
    #[allow(clippy::too_many_arguments)]
    async fn pass_code_step_audited(
        &self,
        account: &Account,
        half: &Token,
        sid: Option<String>,
        amr: &str,
        now: DateTime<Utc>,
        ctx: &RequestContext,
        succeeded: Option<String>,
    ) -> Result<Token> {
        let (new, session) = self.new_session(
            account,
            SessionStage::Authenticated,
            amr,
            now,
            sid.clone(),
            ctx,
        );
        let (stored, reset) = tokio::join!(
            self.store_session(account, &session),
            self.store.reset_failures(account.id, Guard::Code),
        );
        stored?;
        reset?;
        let half = half.hash();
        let audited = succeeded.map(|detail| {
            let event = AuditEvent::CodeSucceeded;
            self.audit_record(event, Some(account), None, ctx, Some(detail))
        });
        let (ended, audited) = tokio::join!(
            async {
                match sid.as_deref() {
                    // The half-finished session is of this sid: one delete ends it
                    // and, after a step-up, the signed-in session it replaces.
                    Some(sid) => {
                        self.store
                            .delete_other_sessions_with_sid(sid, &new.hash())
                            .await
                    }
                    None => self.store.delete_session(&half).await,
                }
            },
            async {
                match &audited {
                    Some(r) => self.store.append_audit(r).await,
                    None => Ok(()),
                }
            },
        );
        ended?;
        audited?;
        Ok(new)
    }
}
