//! The engine every front-end (pages, JSON API, command line) calls.

use crate::account::{Account, AccountId, Email, Role};
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::factor::{Factor, FactorId, FactorKind};
use crate::lockout::Guard;
use crate::mail::{seal_link, Delivery, Language, NewMail, Notice, QueuedMail};
use crate::password::PasswordHasher;
use crate::policy::Requirement;
use crate::secret_box::SecretBox;
use crate::session::{Session, SessionStage};
use crate::session_code::{new_code, CodePurpose, SessionCode};
use crate::settings::Settings;
use crate::snapshot::Snapshot;
use crate::store::{NewAccount, NewPasswordReset, Store, StoreError};
use crate::token::{Token, TokenHash};
use crate::totp;
use chrono::{DateTime, Utc};

mod devices;
mod enrollment;
mod oidc;
mod oidc_flow;
pub use oidc_flow::TokenResponse;
mod sms;
mod support;
pub use enrollment::{OpenedLink, SecureStart};
pub use oidc::NewClient;
pub use sms::SmsSetup;
use std::sync::Arc;
pub use support::{AccountOverview, Actor};
use tokio::sync::Notify;
use uuid::Uuid;

/// Reset mails sent per account in any hour; further requests are audited only.
pub const RESET_MAILS_PER_HOUR: u32 = 3;

/// How long a forgotten-password link works.
pub fn reset_link_validity() -> chrono::Duration {
    chrono::Duration::hours(1)
}

pub struct Tweestap {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    secrets: SecretBox,
    settings: Settings,
    /// Wakes this node's mail worker when a message is queued here.
    mail_wakeup: Arc<Notify>,
    /// Sends SMS codes; without one, SMS cannot be set up.
    sms: Option<Arc<dyn crate::sms::SmsSender>>,
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
    },
    /// Two-step verification is required but not set up: the token names a session
    /// that may only set it up.
    EnrollmentRequired(Token),
}

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub accounts: usize,
    pub factors: usize,
    pub audit: usize,
    pub signing_keys: usize,
    pub clients: usize,
}

/// A valid session, looked up from the client's token.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session: Session,
    pub account: Account,
}

/// The data for the QR page of a factor still being set up.
#[derive(Debug, Clone)]
pub struct TotpEnrollment {
    pub factor_id: FactorId,
    pub secret_base32: String,
    pub otpauth_uri: String,
    /// The account is a shared mailbox (info@, ...): warn that the app ties it to
    /// one person's phone.
    pub shared_mailbox: bool,
}

impl Tweestap {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        secrets: SecretBox,
        settings: Settings,
    ) -> Self {
        Self {
            store,
            clock,
            hasher,
            secrets,
            settings,
            mail_wakeup: Arc::new(Notify::new()),
            sms: None,
        }
    }

    /// The gateway SMS codes go through.
    pub fn with_sms_sender(mut self, sender: Arc<dyn crate::sms::SmsSender>) -> Self {
        self.sms = Some(sender);
        self
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    async fn audit(
        &self,
        event: AuditEvent,
        account: Option<&Account>,
        email: Option<&str>,
        ctx: &RequestContext,
        detail: Option<String>,
    ) -> Result<()> {
        let r = AuditRecord {
            at: self.clock.now(),
            event: event.as_str().to_owned(),
            account_id: account.map(|a| a.id),
            email: email
                .map(str::to_owned)
                .or_else(|| account.map(|a| a.email.to_string())),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
            detail,
        };
        self.store.append_audit(&r).await?;
        Ok(())
    }

    // ---- accounts -------------------------------------------------------------

    pub async fn add_account(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<Account> {
        let email = Email::parse(email).map_err(|_| Error::InvalidEmail)?;
        self.settings.passwords.check(password, email.as_str())?;
        let new = NewAccount {
            id: AccountId::random(),
            email: email.clone(),
            name: name.trim().to_owned(),
            role,
            password_hash: self.hasher.hash(password).await?,
            created_at: self.clock.now(),
        };
        match self.store.insert_account(&new).await {
            Err(StoreError::Conflict) => return Err(Error::EmailTaken),
            other => other?,
        }
        let account = self
            .store
            .account_by_id(new.id)
            .await?
            .ok_or(Error::NotFound)?;
        self.audit(
            AuditEvent::AccountCreated,
            Some(&account),
            None,
            &RequestContext::default(),
            None,
        )
        .await?;
        Ok(account)
    }

    /// Whether an address is a shared mailbox (see [`crate::shared_mailbox`]).
    pub fn is_shared_mailbox(&self, email: &Email) -> bool {
        self.settings.shared_mailboxes.is_shared(email)
    }

    pub async fn accounts(&self) -> Result<Vec<Account>> {
        Ok(self.store.list_accounts().await?)
    }

    pub async fn active_factors(&self, account: AccountId) -> Result<Vec<Factor>> {
        Ok(self
            .store
            .factors_of(account)
            .await?
            .into_iter()
            .filter(Factor::is_active)
            .collect())
    }

    // ---- sign-in --------------------------------------------------------------

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
        let account = self.check_credentials(email, password, ctx).await?;
        let methods = self.active_methods(account.id).await?;
        let now = self.clock.now();
        if !methods.is_empty() {
            if let Some(device) = self.remembered(&account, device).await? {
                self.store.touch_device(device.id, now).await?;
                let token = self
                    .create_session(
                        &account,
                        SessionStage::Authenticated,
                        "pwd device",
                        now,
                        ctx,
                    )
                    .await?;
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
        } else if self.requirement(&account).is_required() {
            SessionStage::Enrollment
        } else {
            SessionStage::Authenticated
        };
        let token = self
            .create_session(&account, stage, "pwd", now, ctx)
            .await?;
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

    /// E-mail and password, with the throttle; every failure audited and answered
    /// alike. Shared by sign-in and "secure your account now".
    async fn check_credentials(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<Account> {
        let account = match Email::parse(email) {
            Ok(e) => self.store.account_by_email(&e).await?,
            Err(_) => None,
        };
        let ok = self
            .hasher
            .verify(password, account.as_ref().map(|a| a.password_hash.as_str()))
            .await;
        let now = self.clock.now();
        let Some(account) = account else {
            let detail = Some("unknown account".to_owned());
            self.audit(
                AuditEvent::LoginFailed,
                None,
                Some(email.trim()),
                ctx,
                detail,
            )
            .await?;
            return Err(Error::InvalidCredentials);
        };
        // While throttled even the right password is refused, with the same answer as a
        // wrong one, so the throttle reveals nothing about the account or the password.
        if account.password_locked_until.is_some_and(|u| u > now) {
            self.audit(AuditEvent::LoginThrottled, Some(&account), None, ctx, None)
                .await?;
            return Err(Error::InvalidCredentials);
        }
        if !ok {
            let detail = Some("wrong password".to_owned());
            self.audit(AuditEvent::LoginFailed, Some(&account), None, ctx, detail)
                .await?;
            self.count_failure(&account, Guard::Password, ctx).await?;
            return Err(Error::InvalidCredentials);
        }
        if account.password_failures > 0 {
            self.store
                .reset_failures(account.id, Guard::Password)
                .await?;
        }
        Ok(account)
    }

    /// What the two-step policy asks of this account now.
    pub fn requirement(&self, account: &Account) -> Requirement {
        self.settings
            .two_factor
            .requirement(account.role, self.clock.now())
    }

    /// After a factor was confirmed in an enrolment-only session: replaces it by a
    /// fully authenticated one (a new id, as at sign-in). `None` if the session was
    /// not in that stage.
    pub async fn finish_enrollment(
        &self,
        token: &Token,
        ctx: &RequestContext,
    ) -> Result<Option<Token>> {
        let Some(info) = self.session(token).await? else {
            return Ok(None);
        };
        if info.session.stage != SessionStage::Enrollment
            || self.active_factors(info.account.id).await?.is_empty()
        {
            return Ok(None);
        }
        self.store.delete_session(&token.hash()).await?;
        let now = self.clock.now();
        let new = self
            .create_session(
                &info.account,
                SessionStage::Authenticated,
                "pwd otp",
                now,
                ctx,
            )
            .await?;
        Ok(Some(new))
    }

    async fn create_session(
        &self,
        account: &Account,
        stage: SessionStage,
        amr: &str,
        auth_time: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Result<Token> {
        let token = Token::generate();
        let now = self.clock.now();
        let s = Session {
            id_hash: token.hash(),
            account_id: account.id,
            stage,
            created_at: now,
            last_seen_at: now,
            auth_time,
            amr: amr.to_owned(),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
        };
        self.store.insert_session(&s).await?;
        Ok(token)
    }

    /// The live session named by `token`, if any. Expired sessions are deleted;
    /// authenticated ones have their idle timer refreshed.
    pub async fn session(&self, token: &Token) -> Result<Option<SessionInfo>> {
        let hash = token.hash();
        let Some(session) = self.store.session(&hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if self.settings.sessions.is_expired(&session, now) {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        let Some(account) = self.store.account_by_id(session.account_id).await? else {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        };
        // Only write when it matters, so every page view is not a database write.
        if session.stage == SessionStage::Authenticated
            && now - session.last_seen_at > chrono::Duration::seconds(60)
        {
            self.store.touch_session(&hash, now).await?;
        }
        Ok(Some(SessionInfo { session, account }))
    }

    /// The code step. On success the half-finished session is replaced by a new,
    /// authenticated one (a new id, so a fixated id is worthless).
    pub async fn verify_second_factor(
        &self,
        token: &Token,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Token> {
        let info = self.session(token).await?.ok_or(Error::Unauthenticated)?;
        if info.session.stage != SessionStage::SecondFactor {
            return Err(Error::Unauthenticated);
        }
        let account = info.account;
        let now = self.clock.now();
        if let Some(until) = account.code_locked_until.filter(|u| *u > now) {
            return Err(Error::TooManyAttempts {
                retry_after: (until - now).num_seconds().max(1),
            });
        }
        let code = normalise_code(code);
        let factors = self.active_factors(account.id).await?;
        let mut matched = None;
        // An SMS factor's secret is a phone number, never an HOTP key.
        for f in factors.iter().filter(|f| f.kind == FactorKind::Totp) {
            let key = self.secrets.open(&f.secret_sealed, f.id.0.as_bytes())?;
            if let Some(step) = self
                .settings
                .totp
                .matching_step(&key, &code, now.timestamp())
            {
                matched = Some((f, step));
            }
        }
        if matched.is_none() {
            if let Some(f) = self
                .sms_sign_in_match(&token.hash(), &factors, &code)
                .await?
            {
                self.store.reset_failures(account.id, Guard::Code).await?;
                self.store.delete_session(&token.hash()).await?;
                let new = self
                    .create_session(&account, SessionStage::Authenticated, "pwd sms", now, ctx)
                    .await?;
                let detail = Some(format!("factor={} kind=sms", f.id));
                self.audit(AuditEvent::CodeSucceeded, Some(&account), None, ctx, detail)
                    .await?;
                return Ok(new);
            }
        }
        if let Some((factor, step)) = matched {
            if self
                .store
                .claim_totp_step(factor.id, step as i64, now)
                .await?
            {
                self.store.reset_failures(account.id, Guard::Code).await?;
                self.store.delete_session(&token.hash()).await?;
                let new = self
                    .create_session(&account, SessionStage::Authenticated, "pwd otp", now, ctx)
                    .await?;
                self.audit(
                    AuditEvent::CodeSucceeded,
                    Some(&account),
                    None,
                    ctx,
                    Some(format!("factor={}", factor.id)),
                )
                .await?;
                return Ok(new);
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
        self.count_failure(&account, Guard::Code, ctx).await?;
        Err(Error::InvalidCode)
    }

    /// Counts one more consecutive failure and locks when the policy says so.
    async fn count_failure(
        &self,
        account: &Account,
        guard: Guard,
        ctx: &RequestContext,
    ) -> Result<()> {
        let (policy, event) = match guard {
            Guard::Code => (&self.settings.lockout, AuditEvent::CodeLockedOut),
            Guard::Password => (
                &self.settings.password_lockout,
                AuditEvent::PasswordLockedOut,
            ),
        };
        let failures = self.store.increment_failures(account.id, guard).await?;
        if let Some(until) = policy.lock_until(failures, self.clock.now()) {
            self.store.set_lock(account.id, guard, Some(until)).await?;
            let detail = Some(format!("failures={failures} until={}", until.to_rfc3339()));
            self.audit(event, Some(account), None, ctx, detail).await?;
        }
        Ok(())
    }

    /// Forgets a session without auditing it: the browser is signing in anew.
    pub async fn discard_session(&self, token: &Token) -> Result<()> {
        self.store.delete_session(&token.hash()).await?;
        Ok(())
    }

    pub async fn logout(&self, token: &Token, ctx: &RequestContext) -> Result<()> {
        if let Some(info) = self.session(token).await? {
            self.audit(AuditEvent::Logout, Some(&info.account), None, ctx, None)
                .await?;
        }
        self.store.delete_session(&token.hash()).await?;
        Ok(())
    }

    // ---- factors --------------------------------------------------------------

    async fn confirm_password(
        &self,
        account: &Account,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        if self
            .hasher
            .verify(password, Some(&account.password_hash))
            .await
        {
            return Ok(());
        }
        let detail = Some("password confirmation failed".to_owned());
        self.audit(AuditEvent::LoginFailed, Some(account), None, ctx, detail)
            .await?;
        Err(Error::WrongPassword)
    }

    /// Starts setting up an authenticator app: after the password, a new secret that
    /// becomes an active factor only once a code from it is confirmed.
    pub async fn begin_totp(
        &self,
        account: &Account,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<TotpEnrollment> {
        self.confirm_password(account, password, ctx).await?;
        self.start_totp(account).await
    }

    /// [`Self::begin_totp`] for a session that may only set up two-step verification:
    /// its password was proven moments ago (and, from "secure your account now", the
    /// address too), so it is not asked again.
    pub async fn begin_totp_in_enrollment(&self, info: &SessionInfo) -> Result<TotpEnrollment> {
        if info.session.stage != SessionStage::Enrollment {
            return Err(Error::Unauthenticated);
        }
        self.start_totp(&info.account).await
    }

    /// A new secret that becomes an active factor once a code from it is confirmed.
    async fn start_totp(&self, account: &Account) -> Result<TotpEnrollment> {
        if self.settings.refuse_shared_mailboxes && self.is_shared_mailbox(&account.email) {
            return Err(Error::SharedMailbox);
        }
        self.store.delete_unconfirmed_factors(account.id).await?;
        let id = FactorId(Uuid::new_v4());
        let secret = totp::new_secret();
        let factor = Factor {
            id,
            account_id: account.id,
            kind: FactorKind::Totp,
            label: "Authenticator app".into(),
            secret_sealed: self.secrets.seal(&secret, id.0.as_bytes()),
            created_at: self.clock.now(),
            confirmed_at: None,
            last_used_at: None,
            last_step: None,
        };
        self.store.insert_factor(&factor).await?;
        Ok(self.enrollment_of(account, &factor, &secret))
    }

    fn enrollment_of(&self, account: &Account, f: &Factor, secret: &[u8]) -> TotpEnrollment {
        let b32 = totp::base32(secret);
        TotpEnrollment {
            factor_id: f.id,
            otpauth_uri: totp::otpauth_uri(
                &self.settings.issuer,
                account.email.as_str(),
                &b32,
                &self.settings.totp,
            ),
            secret_base32: b32,
            shared_mailbox: self.is_shared_mailbox(&account.email),
        }
    }

    async fn pending_factor(&self, account: &Account, id: FactorId) -> Result<Factor> {
        self.store
            .factors_of(account.id)
            .await?
            .into_iter()
            .find(|f| f.id == id && !f.is_active() && f.kind == FactorKind::Totp)
            .ok_or(Error::NotFound)
    }

    /// The QR data of a factor still being set up, to show the page again.
    pub async fn pending_totp(&self, account: &Account, id: FactorId) -> Result<TotpEnrollment> {
        let f = self.pending_factor(account, id).await?;
        let secret = self.secrets.open(&f.secret_sealed, f.id.0.as_bytes())?;
        Ok(self.enrollment_of(account, &f, &secret))
    }

    /// Confirms a factor being set up with a code from it. With the account's first
    /// factor come its recovery codes, returned to be shown once.
    pub async fn confirm_totp(
        &self,
        account: &Account,
        id: FactorId,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Vec<String>>> {
        let f = self.pending_factor(account, id).await?;
        let secret = self.secrets.open(&f.secret_sealed, f.id.0.as_bytes())?;
        let now = self.clock.now();
        let Some(step) =
            self.settings
                .totp
                .matching_step(&secret, &normalise_code(code), now.timestamp())
        else {
            let detail = Some(format!("set-up of factor={id}"));
            self.audit(AuditEvent::CodeFailed, Some(account), None, ctx, detail)
                .await?;
            return Err(Error::InvalidCode);
        };
        // The code that confirms the set-up cannot be used again to sign in.
        self.store.claim_totp_step(id, step as i64, now).await?;
        let notice = self.factor_added_notice(account, &f, ctx).await?;
        if !self.store.confirm_factor(id, now, Some(&notice)).await? {
            return Err(Error::NotFound);
        }
        self.factor_confirmed(account, &f, &notice, ctx).await
    }

    /// The "a factor was added" mail, to be queued with the confirmation itself.
    async fn factor_added_notice(
        &self,
        account: &Account,
        f: &Factor,
        ctx: &RequestContext,
    ) -> Result<NewMail> {
        let notice = Notice::FactorAdded {
            factor_kind: f.kind.as_str().to_owned(),
        };
        self.notice_mail(account, Uuid::new_v4(), notice, ctx).await
    }

    /// After a factor's first right code was stored with its `notice`: audit, and
    /// with the account's first factor its recovery codes (returned to be shown
    /// once).
    async fn factor_confirmed(
        &self,
        account: &Account,
        f: &Factor,
        notice: &NewMail,
        ctx: &RequestContext,
    ) -> Result<Option<Vec<String>>> {
        let detail = format!("factor={} kind={}", f.id, f.kind.as_str());
        self.audit(
            AuditEvent::FactorAdded,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await?;
        self.mail_queued(account, notice, ctx).await?;
        let first = self.active_factors(account.id).await?.len() == 1;
        if first || self.store.recovery_codes_left(account.id).await? == 0 {
            return Ok(Some(self.issue_recovery_codes(account, ctx).await?));
        }
        Ok(None)
    }

    pub async fn remove_factor(
        &self,
        account: &Account,
        id: FactorId,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.confirm_password(account, password, ctx).await?;
        let owned = self
            .store
            .factors_of(account.id)
            .await?
            .into_iter()
            .find(|f| f.id == id);
        let Some(factor) = owned else {
            return Err(Error::NotFound);
        };
        let active = self.active_factors(account.id).await?;
        if factor.is_active() && active.len() == 1 && self.requirement(account).is_required() {
            return Err(Error::LastFactorRequired);
        }
        // A set-up that was never finished protected nothing: no notice for it, and
        // nothing to forget. Otherwise a browser remembered while this factor guarded
        // the account does not keep skipping the code for the factors that remain.
        let notice = if factor.is_active() {
            let notice = Notice::FactorRemoved {
                factor_kind: factor.kind.as_str().to_owned(),
            };
            Some(
                self.notice_mail(account, Uuid::new_v4(), notice, ctx)
                    .await?,
            )
        } else {
            None
        };
        let forget = factor.is_active().then_some(account.id);
        if !self
            .store
            .remove_factor(id, forget, notice.as_ref())
            .await?
        {
            return Err(Error::NotFound);
        }
        self.audit(
            AuditEvent::FactorRemoved,
            Some(account),
            None,
            ctx,
            Some(format!("factor={id}")),
        )
        .await?;
        if let Some(mail) = &notice {
            self.mail_queued(account, mail, ctx).await?;
        }
        Ok(())
    }

    // ---- mail -----------------------------------------------------------------

    /// Queues `notice` for `account`, in the language of the request that caused it
    /// (remembered for later mail) or else the account's. Never waits for SMTP: the
    /// delivery worker sends it.
    async fn send_notice(
        &self,
        account: &Account,
        notice: Notice,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.send_notice_as(account, Uuid::new_v4(), notice, ctx)
            .await
    }

    /// [`Self::send_notice`] as mail `id` (which a sealed secret in it is bound to).
    async fn send_notice_as(
        &self,
        account: &Account,
        id: Uuid,
        notice: Notice,
        ctx: &RequestContext,
    ) -> Result<()> {
        let mail = self.notice_mail(account, id, notice, ctx).await?;
        self.store.enqueue_mail(&mail).await?;
        self.mail_queued(account, &mail, ctx).await
    }

    /// The mail `id` of `notice` for `account`, in the language of the request that
    /// caused it (remembered for later mail) or else the account's; not queued yet,
    /// so a change and its notice can be stored together.
    async fn notice_mail(
        &self,
        account: &Account,
        id: Uuid,
        notice: Notice,
        ctx: &RequestContext,
    ) -> Result<NewMail> {
        let language = ctx.language.unwrap_or(account.language);
        if language != account.language {
            self.store.set_language(account.id, language).await?;
        }
        Ok(self.mail_in(account, id, notice, language))
    }

    /// The mail `id` of `notice` for `account` in `language`.
    fn mail_in(&self, account: &Account, id: Uuid, notice: Notice, language: Language) -> NewMail {
        NewMail {
            id,
            account_id: Some(account.id),
            to: account.email.to_string(),
            to_name: account.name.clone(),
            language,
            notice,
            created_at: self.clock.now(),
        }
    }

    /// Queues `notice` as mail `id` in `language` (without remembering the language).
    async fn queue_notice(
        &self,
        account: &Account,
        id: Uuid,
        notice: Notice,
        language: Language,
        ctx: &RequestContext,
    ) -> Result<()> {
        let mail = self.mail_in(account, id, notice, language);
        self.store.enqueue_mail(&mail).await?;
        self.mail_queued(account, &mail, ctx).await
    }

    /// Mails of `kind` queued for the account in the last hour (sent or not): what
    /// the per-account hourly caps on reset links and mailed codes count.
    async fn mails_last_hour(&self, account: AccountId, kind: &str) -> Result<u32> {
        let since = self.clock.now() - chrono::Duration::hours(1);
        Ok(self.store.mails_since(account, kind, since).await?)
    }

    /// After `mail` is stored in the queue: the audit entry, and this node's worker
    /// woken to send it.
    async fn mail_queued(
        &self,
        account: &Account,
        mail: &NewMail,
        ctx: &RequestContext,
    ) -> Result<()> {
        let detail = format!("mail={} kind={}", mail.id, mail.notice.kind());
        self.audit(
            AuditEvent::MailQueued,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await?;
        self.mail_wakeup.notify_one();
        Ok(())
    }

    // ---- forgotten passwords --------------------------------------------------

    /// "Forgot your password?": mails a single-use link to `<base_url>/password/
    /// reset/<token>` when `email` names an account, at most
    /// [`RESET_MAILS_PER_HOUR`] per account. Answers `Ok(())` in every case (also
    /// for unknown addresses and when rate-limited), after the same lookups, so the
    /// caller cannot tell whether the address has an account. The database keeps only
    /// the token's SHA-256; the queued mail keeps the link sealed.
    pub async fn request_password_reset(
        &self,
        email: &str,
        base_url: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let account = match Email::parse(email) {
            Ok(e) => self.store.account_by_email(&e).await?,
            Err(_) => None,
        };
        let now = self.clock.now();
        // The rate-limit lookup runs for unknown addresses too (on an id no account
        // has), so both paths do the same reads.
        let counted = account.as_ref().map_or(AccountId(Uuid::nil()), |a| a.id);
        let recent = self
            .mails_last_hour(counted, Notice::PASSWORD_RESET)
            .await?;
        let event = AuditEvent::PasswordResetRequested;
        let Some(account) = account else {
            let detail = Some("unknown account".to_owned());
            return self
                .audit(event, None, Some(email.trim()), ctx, detail)
                .await;
        };
        if recent >= RESET_MAILS_PER_HOUR {
            let detail = Some(format!("rate limited, not sent; last_hour={recent}"));
            return self.audit(event, Some(&account), None, ctx, detail).await;
        }
        let token = Token::generate();
        self.store
            .insert_password_reset(&NewPasswordReset {
                token_hash: token.hash(),
                account_id: account.id,
                created_at: now,
                expires_at: now + reset_link_validity(),
            })
            .await?;
        let mail_id = Uuid::new_v4();
        let link = format!(
            "{}/password/reset/{}",
            base_url.trim_end_matches('/'),
            token.as_str()
        );
        let notice = Notice::PasswordReset {
            link_sealed: seal_link(&self.secrets, mail_id, &link),
        };
        let detail = Some(format!("mail={mail_id}"));
        self.audit(event, Some(&account), None, ctx, detail).await?;
        // In the language asked in, but an unauthenticated request does not change
        // the account's remembered language.
        let language = ctx.language.unwrap_or(account.language);
        self.queue_notice(&account, mail_id, notice, language, ctx)
            .await
    }

    async fn reset_link_invalid(&self, ctx: &RequestContext, detail: &str) -> Result<()> {
        self.audit(
            AuditEvent::PasswordResetLinkInvalid,
            None,
            None,
            ctx,
            Some(detail.to_owned()),
        )
        .await?;
        Err(Error::InvalidResetLink)
    }

    /// Whether the link with `token` can still be used (for showing the form);
    /// [`Error::InvalidResetLink`] (audited) when not. Does not use it.
    pub async fn check_reset_link(&self, token: &str, ctx: &RequestContext) -> Result<()> {
        let Some(token) = Token::from_client(token) else {
            return self.reset_link_invalid(ctx, "malformed").await;
        };
        match self
            .store
            .password_reset_account(&token.hash(), self.clock.now())
            .await?
        {
            Some(_) => Ok(()),
            None => {
                self.reset_link_invalid(ctx, "unknown, expired or used")
                    .await
            }
        }
    }

    /// Sets a new password through a reset link. A weak password leaves the link
    /// usable; otherwise the link is claimed atomically (once), and then the password
    /// changes, the password failures and lock are cleared, every session and other
    /// link of the account ends, and a notice is mailed. The second factor and the
    /// code lock-out are untouched.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let Some(token) = Token::from_client(token) else {
            return self.reset_link_invalid(ctx, "malformed").await;
        };
        let hash = token.hash();
        let found = self
            .store
            .password_reset_account(&hash, self.clock.now())
            .await?;
        let account = match found {
            Some(id) => self.store.account_by_id(id).await?,
            None => None,
        };
        let Some(account) = account else {
            return self
                .reset_link_invalid(ctx, "unknown, expired or used")
                .await;
        };
        self.settings
            .passwords
            .check(password, account.email.as_str())?;
        let new_hash = self.hasher.hash(password).await?;
        let now = self.clock.now();
        if self.store.claim_password_reset(&hash, now).await? != Some(account.id) {
            return self.reset_link_invalid(ctx, "used concurrently").await;
        }
        let notice = self
            .notice_mail(&account, Uuid::new_v4(), Notice::PasswordChanged, ctx)
            .await?;
        self.store
            .change_password(account.id, &new_hash, now, Some(&notice))
            .await?;
        self.audit(
            AuditEvent::PasswordResetCompleted,
            Some(&account),
            None,
            ctx,
            Some("sessions ended".to_owned()),
        )
        .await?;
        self.mail_queued(&account, &notice, ctx).await
    }

    /// Notified whenever this node queues a message.
    pub fn mail_wakeup(&self) -> &Arc<Notify> {
        &self.mail_wakeup
    }

    /// Claims up to `limit` due messages for this worker (see [`Store::claim_mail`]);
    /// due-ness and the lease follow the injected clock.
    pub async fn claim_mail(&self, limit: u32) -> Result<Vec<QueuedMail>> {
        let now = self.clock.now();
        let lease_until = now + self.settings.mail_retry.lease;
        Ok(self
            .store
            .claim_mail(now, lease_until, Uuid::new_v4(), limit)
            .await?)
    }

    /// Records how a delivery attempt went: sent, to be retried with back-off, or
    /// given up (audited as `mail_failed`, with the error but never the body).
    pub async fn record_delivery(&self, mail: &QueuedMail, outcome: &Delivery) -> Result<()> {
        let now = self.clock.now();
        let ctx = RequestContext::default();
        let account = match mail.account_id {
            Some(id) => self.store.account_by_id(id).await?,
            None => None,
        };
        let give_up = |error: &str| format!("mail={} kind={} error={error}", mail.id, mail.kind);
        match outcome {
            Delivery::Sent => {
                if self.store.mark_mail_sent(mail, now).await? {
                    tracing::info!(mail = %mail.id, kind = %mail.kind, "mail sent");
                    let detail = format!("mail={} kind={}", mail.id, mail.kind);
                    self.audit(
                        AuditEvent::MailSent,
                        account.as_ref(),
                        Some(&mail.to),
                        &ctx,
                        Some(detail),
                    )
                    .await?;
                }
            }
            Delivery::Transient(error) => {
                match self
                    .settings
                    .mail_retry
                    .next_attempt(mail.attempts, mail.created_at, now)
                {
                    Some(at) => {
                        tracing::warn!(mail = %mail.id, attempts = mail.attempts, retry_at = %at, %error, "mail not delivered; will retry");
                        self.store.retry_mail(mail, at, error).await?;
                    }
                    None => {
                        tracing::error!(mail = %mail.id, attempts = mail.attempts, %error, "mail not delivered; giving up");
                        if self.store.fail_mail(mail, now, error).await? {
                            self.audit(
                                AuditEvent::MailFailed,
                                account.as_ref(),
                                Some(&mail.to),
                                &ctx,
                                Some(give_up(error)),
                            )
                            .await?;
                        }
                    }
                }
            }
            Delivery::Permanent(error) => {
                tracing::error!(mail = %mail.id, %error, "mail refused; giving up");
                if self.store.fail_mail(mail, now, error).await? {
                    self.audit(
                        AuditEvent::MailFailed,
                        account.as_ref(),
                        Some(&mail.to),
                        &ctx,
                        Some(give_up(error)),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// Everything worth keeping, as one document (see [`crate::snapshot`]).
    pub async fn export(&self) -> Result<Snapshot> {
        let contents = self.store.export_contents().await?;
        Ok(Snapshot::new(&contents, self.clock.now()))
    }

    /// Loads an export into an empty database in one transaction. Every secret is
    /// opened first, so a wrong secret key is caught before anything is written.
    pub async fn import(&self, snapshot: &Snapshot) -> Result<ImportSummary> {
        let contents = snapshot.contents()?;
        for f in &contents.factors {
            self.secrets
                .open(&f.secret_sealed, f.id.0.as_bytes())
                .map_err(|_| Error::ForeignKey(f.id.0))?;
        }
        for k in &contents.signing_keys {
            self.secrets
                .open(&k.private_sealed, k.kid.as_bytes())
                .map_err(|_| Error::ForeignSigningKey(k.kid.clone()))?;
        }
        match self.store.import_contents(&contents).await {
            Err(StoreError::Conflict) => return Err(Error::NotEmpty),
            r => r?,
        }
        Ok(ImportSummary {
            accounts: contents.accounts.len(),
            factors: contents.factors.len(),
            audit: contents.audit.len(),
            signing_keys: contents.signing_keys.len(),
            clients: contents.clients.len(),
        })
    }

    pub async fn audit_log(&self, limit: u32, email: Option<&str>) -> Result<Vec<AuditRecord>> {
        Ok(self.store.list_audit(limit, email).await?)
    }

    /// Deletes sent mail and spent links older than 30 days (kept that long so a
    /// used link can still be told apart from an unknown one); safe on every node.
    pub async fn purge_spent(&self) -> Result<u64> {
        let before = self.clock.now() - chrono::Duration::days(30);
        Ok(self.store.delete_spent(before).await?)
    }

    /// Deletes sessions no policy could still accept; safe to run on every node.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let p = &self.settings.sessions;
        let oldest_useful = self.clock.now() - p.absolute.max(p.idle).max(p.second_factor);
        Ok(self.store.delete_expired_sessions(oldest_useful).await?)
    }
}

/// What became of a typed one-time code (mailed or sent by SMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeCheck {
    Right,
    /// Wrong; `last` when that was its final try.
    Wrong {
        tries: u32,
        last: bool,
    },
    Expired,
    NoTriesLeft {
        tries: u32,
    },
}

impl Tweestap {
    /// A new code of `purpose` for `session` (replacing an earlier one of that
    /// purpose, its tries starting again), stored as a MAC; returns the code itself,
    /// to be mailed or sent.
    async fn issue_session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
        account: AccountId,
        factor_id: Option<FactorId>,
        sends: u32,
    ) -> Result<String> {
        let code = new_code();
        let now = self.clock.now();
        self.store
            .put_session_code(&SessionCode {
                session_hash: session.clone(),
                purpose,
                account_id: account,
                factor_id,
                code_mac: self
                    .secrets
                    .code_mac(&code_context(purpose, session), code.as_bytes()),
                attempts: 0,
                sends,
                created_at: now,
                expires_at: now + purpose.validity(),
            })
            .await?;
        Ok(code)
    }

    /// The one check behind mailed and SMS codes: past `expires_at` the code is
    /// dead; otherwise the try is counted first (atomically, so parallel guesses
    /// share the limit) and only then compared with the stored MAC, in constant
    /// time. A right code is used up.
    async fn check_one_time_code(&self, stored: &SessionCode, typed: &str) -> Result<CodeCheck> {
        if stored.expires_at <= self.clock.now() {
            return Ok(CodeCheck::Expired);
        }
        let (session, purpose) = (&stored.session_hash, stored.purpose);
        let Some(tries) = self.store.count_session_code_try(session, purpose).await? else {
            return Ok(CodeCheck::Expired);
        };
        let max_tries = purpose.max_tries();
        if tries > max_tries {
            return Ok(CodeCheck::NoTriesLeft { tries });
        }
        let typed = normalise_code(typed);
        let context = code_context(purpose, session);
        if !self
            .secrets
            .code_matches(&context, typed.as_bytes(), &stored.code_mac)
        {
            return Ok(CodeCheck::Wrong {
                tries,
                last: tries >= max_tries,
            });
        }
        self.store.delete_session_code(session, purpose).await?;
        Ok(CodeCheck::Right)
    }
}

/// What a code's MAC is bound to besides the code: its session, and for SMS a label
/// (both as before the codes shared a table, so codes issued then still check).
fn code_context(purpose: CodePurpose, session: &TokenHash) -> Vec<u8> {
    match purpose {
        CodePurpose::Email => session.0.as_bytes().to_vec(),
        CodePurpose::Sms => format!("tweestap sms code v1 {}", session.0).into_bytes(),
    }
}

/// People type codes with spaces ("123 456"); apps show them that way too.
fn normalise_code(code: &str) -> String {
    code.chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect()
}
