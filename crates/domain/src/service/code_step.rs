//! The code step of a sign-in: the app's code, an SMS code or a wrong one, each
//! attempt counted towards a lock-out, and the passed step's new session.

use super::one_time_codes::normalise_code;
use super::Tweestap;
use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::error::{Error, Result};
use crate::factor::{Factor, FactorKind};
use crate::lockout::Guard;
use crate::session::SessionStage;
use crate::store::{self, AppCodeTaken, PassedStep};
use crate::token::Token;
use chrono::{DateTime, Utc};

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

/// What a right app code came to (see [`Tweestap::take_app_code`]).
enum AppCode {
    Passed(Token),
    Replayed(u32),
    Locked,
    Gone,
}

/// A code step's end short of an error: the new session, or a wrong code's standing.
pub type CodeStepResult = std::result::Result<Token, CodeStepStanding>;

impl Tweestap {
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
        let has_phone = factors.iter().any(|f| f.kind == FactorKind::Sms);
        // The app's codes are compared before anything is written: comparing changes
        // nothing, and a match counts only with its attempt (never while locked).
        // One attempt is taken before any code counts (atomically, so parallel
        // requests cannot check more than the lock-out allows). While the code step
        // is locked only an SMS code is checked: it has its own limits (a few tries
        // per code, a few codes per sign-in and per hour).
        let reserved = match self.app_code_match(&factors, &code, now)? {
            Some((factor, step)) => {
                match self
                    .take_app_code(&account, token, &sid, factor, step, now, ctx)
                    .await?
                {
                    AppCode::Passed(new) => return Ok(Ok(new)),
                    AppCode::Replayed(failures) => {
                        let detail = Some(format!("factor={}", factor.id));
                        let event = AuditEvent::CodeReplayed;
                        self.audit(event, Some(&account), None, ctx, detail).await?;
                        let locked_until =
                            self.settle_failed_attempt(&account, failures, ctx).await?;
                        return Ok(Err(self.standing_after(failures, locked_until)));
                    }
                    AppCode::Locked => None,
                    AppCode::Gone => return Err(Error::Unauthenticated),
                }
            }
            None if !has_phone => return self.wrong_code(&account, now, ctx).await,
            None => self.reserve_code_attempt(&account, now).await?,
        };
        if has_phone {
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
            let retry_after = self.code_locked_for_now(account.id, now).await?;
            let detail = Some("locked".to_owned());
            self.audit(AuditEvent::CodeFailed, Some(&account), None, ctx, detail)
                .await?;
            return Err(Error::TooManyAttempts { retry_after });
        };
        self.audit(AuditEvent::CodeFailed, Some(&account), None, ctx, None)
            .await?;
        let locked_until = self.settle_failed_attempt(&account, failures, ctx).await?;
        Ok(Err(self.standing_after(failures, locked_until)))
    }

    /// The app code of `factor` at `step`, right for now: the attempt, the step's
    /// claim and, if it holds, the new session and the rest of a passed step, in
    /// one commit (see [`crate::store::CodeStepStore::take_app_code`]).
    #[allow(clippy::too_many_arguments)]
    async fn take_app_code(
        &self,
        account: &Account,
        half: &Token,
        sid: &str,
        factor: &Factor,
        step: u64,
        now: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Result<AppCode> {
        let stage = SessionStage::Authenticated;
        let (new, session) =
            self.new_session(account, stage, "pwd otp", now, Some(sid.to_owned()), ctx);
        let detail = format!("factor={}", factor.id);
        let event = AuditEvent::CodeSucceeded;
        let succeeded = self.audit_row(event, Some(account), None, ctx, Some(detail.clone()));
        let policy = &self.settings.lockout;
        let code = store::AppCode {
            account: account.id,
            factor: factor.id,
            step: i64::try_from(step).map_err(|_| Error::InvalidCode)?,
            max_failures: policy.max_failures,
            hold: now + policy.base,
            now,
        };
        let half = half.hash();
        let passed = PassedStep {
            session: &session,
            half: &half,
            audit: Some(&succeeded),
        };
        Ok(match self.store.take_app_code(&code, &passed).await? {
            AppCodeTaken::Passed => {
                self.told(event, Some(&detail));
                AppCode::Passed(new)
            }
            AppCodeTaken::Replayed(failures) => AppCode::Replayed(failures),
            AppCodeTaken::Locked => AppCode::Locked,
            AppCodeTaken::Gone => AppCode::Gone,
        })
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
        let detail = reserved.is_none().then_some("locked");
        self.told(AuditEvent::CodeFailed, detail);
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

    /// The code step passed: its writes in one commit (see
    /// [`crate::store::CodeStepStore::pass_code_step`]); nothing ends unless the new
    /// session is stored, so a failure leaves a step-up's old session signed in.
    /// `sid` is the half-finished session's (None if it is gone).
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
        let stage = SessionStage::Authenticated;
        let (new, session) = self.new_session(account, stage, amr, now, sid, ctx);
        let event = AuditEvent::CodeSucceeded;
        let audited = succeeded
            .as_ref()
            .map(|detail| self.audit_row(event, Some(account), None, ctx, Some(detail.clone())));
        let half = half.hash();
        let passed = PassedStep {
            session: &session,
            half: &half,
            audit: audited.as_ref(),
        };
        // The half-finished sign-in ended meanwhile (a password change, another
        // code that passed): it cannot be finished.
        if !self.store.pass_code_step(&passed).await? {
            return Err(Error::Unauthenticated);
        }
        if let Some(detail) = &succeeded {
            self.told(event, Some(detail));
        }
        Ok(new)
    }
}
