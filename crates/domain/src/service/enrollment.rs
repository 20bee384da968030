//! The set-up journeys of the manuals: "secure your account now" from the sign-in
//! page (the address is proven with a mailed code) and the mailed link to a
//! personal QR page (from My Profile, or after a support reset).

use super::one_time_codes::CodeCheck;
use super::{SessionInfo, SmsSetup, TotpEnrollment, Tweestap};
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::enrollment::{
    EnrollmentLink, LinkPurpose, LinkState, EMAIL_CODE_MAILS_PER_HOUR, EMAIL_CODE_SENDS,
};
use crate::error::{Error, Result};
use crate::factor::{active_kinds, FactorKind};
use crate::mail::{new_mail_id, seal_link, Notice};
use crate::session::SessionStage;
use crate::session_code::CodePurpose;
use crate::sms::SmsRefusal;
use crate::token::Token;
use chrono::{DateTime, Utc};

/// What the first step of "secure your account now" leads to.
#[derive(Debug)]
pub enum SecureStart {
    /// A code was mailed; the token names the session that waits for it.
    CodeSent(Token),
    /// The account has a second factor already: this is an ordinary sign-in, and the
    /// code from the app (or SMS) comes next.
    SecondFactor {
        token: Token,
        methods: Vec<FactorKind>,
        /// The account's unused recovery codes (another way through the code step).
        recovery_codes_left: u32,
    },
}

/// A QR link opened with the password (or a session of its account).
#[derive(Debug)]
pub struct OpenedLink {
    pub enrollment: TotpEnrollment,
    /// A new session that may only set up two-step verification, when the browser
    /// had no session of this account.
    pub session: Option<Token>,
}

fn link_url(base_url: &str, token: &Token) -> String {
    format!(
        "{}/enroll/{}",
        base_url.trim_end_matches('/'),
        token.as_str()
    )
}

impl Tweestap {
    // ---- "secure your account now" -------------------------------------------------

    /// E-mail and password as at sign-in (same throttle, same answers); then, for an
    /// account without a second factor, a half-finished session and a mailed code.
    pub async fn secure_account_start(
        &self,
        email: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<SecureStart> {
        let found = self.check_credentials(email, password, ctx).await?;
        let (account, methods) = (found.account, active_kinds(&found.factors));
        let now = self.clock.now();
        let stage = if methods.is_empty() {
            SessionStage::EmailCode
        } else {
            SessionStage::SecondFactor
        };
        let detail = format!("stage={} via=secure_account", stage.as_str());
        let event = AuditEvent::LoginSucceeded;
        let token = self
            .create_session_audited(&account, stage, now, None, ctx, event, Some(detail))
            .await?;
        if !methods.is_empty() {
            return Ok(SecureStart::SecondFactor {
                token,
                methods,
                recovery_codes_left: found.recovery_codes_left,
            });
        }
        self.mail_email_code(&account, &token, 1, ctx).await?;
        Ok(SecureStart::CodeSent(token))
    }

    /// A new code for the session (replacing any earlier one), mailed; unless the
    /// account had [`EMAIL_CODE_MAILS_PER_HOUR`] codes mailed in the last hour: then
    /// nothing is mailed or stored, only audited, and the caller answers as if it
    /// was (as for reset mails).
    async fn mail_email_code(
        &self,
        account: &Account,
        session: &Token,
        sends: u32,
        ctx: &RequestContext,
    ) -> Result<()> {
        let recent = self.mails_last_hour(account.id, Notice::EMAIL_CODE).await?;
        if recent >= EMAIL_CODE_MAILS_PER_HOUR {
            let detail = Some(format!("rate limited, not sent; last_hour={recent}"));
            return self
                .audit(
                    AuditEvent::EmailCodeFailed,
                    Some(account),
                    None,
                    ctx,
                    detail,
                )
                .await;
        }
        let code = self
            .issue_session_code(&session.hash(), CodePurpose::Email, account.id, None, sends)
            .await?;
        let mail_id = new_mail_id();
        let notice = Notice::EmailCode {
            code_sealed: seal_link(&self.secrets, mail_id, &code),
        };
        let detail = format!("mail={mail_id} send={sends}");
        self.audit(
            AuditEvent::EmailCodeSent,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await?;
        // Not signed in yet: the language asked in, without remembering it.
        let language = ctx.language.unwrap_or(account.language);
        self.queue_notice(account, mail_id, notice, language, ctx)
            .await
    }

    async fn email_code_session(&self, token: &Token) -> Result<SessionInfo> {
        match self.session(token).await? {
            Some(info) if info.session.stage == SessionStage::EmailCode => Ok(info),
            _ => Err(Error::Unauthenticated),
        }
    }

    /// "Send again": a new code, at most [`EMAIL_CODE_SENDS`] per session in all
    /// (and [`EMAIL_CODE_MAILS_PER_HOUR`] per account, see `mail_email_code`).
    pub async fn resend_email_code(&self, token: &Token, ctx: &RequestContext) -> Result<()> {
        let info = self.email_code_session(token).await?;
        let stored = self
            .store
            .session_code(&token.hash(), CodePurpose::Email)
            .await?;
        let sends = match stored {
            Some(c) => c.sends,
            None => 0,
        };
        if sends >= EMAIL_CODE_SENDS {
            let detail = Some(format!("resend refused; sends={sends}"));
            self.audit(
                AuditEvent::EmailCodeFailed,
                Some(&info.account),
                None,
                ctx,
                detail,
            )
            .await?;
            return Err(Error::TooManyRequests);
        }
        // The new code gets its own ten minutes: keep the session alive as long.
        self.store
            .touch_session(&token.hash(), self.clock.now())
            .await?;
        self.mail_email_code(&info.account, token, sends + 1, ctx)
            .await
    }

    /// The mailed code. Right: the address is proven, and the session becomes one
    /// that may only set up two-step verification (under a new id). Wrong:
    /// [`Error::InvalidCode`], or [`Error::CodeExpired`] once the code is past its
    /// ten minutes or its [`EMAIL_CODE_TRIES`](crate::enrollment::EMAIL_CODE_TRIES)
    /// tries.
    pub async fn verify_email_code(
        &self,
        token: &Token,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Token> {
        let info = self.email_code_session(token).await?;
        let account = &info.account;
        let hash = token.hash();
        let Some(stored) = self.store.session_code(&hash, CodePurpose::Email).await? else {
            return Err(Error::CodeExpired);
        };
        let check = self.check_one_time_code(&stored, code).await?;
        let (detail, error) = match check {
            CodeCheck::Right => (None, None),
            CodeCheck::Expired => (Some("expired".to_owned()), Some(Error::CodeExpired)),
            CodeCheck::NoTriesLeft { tries } => (
                Some(format!("no tries left; tries={tries}")),
                Some(Error::CodeExpired),
            ),
            CodeCheck::Wrong { tries, last } => (
                Some(format!("wrong code; tries={tries}")),
                Some(if last {
                    Error::CodeExpired
                } else {
                    Error::InvalidCode
                }),
            ),
        };
        if let Some(error) = error {
            self.audit(
                AuditEvent::EmailCodeFailed,
                Some(account),
                None,
                ctx,
                detail,
            )
            .await?;
            return Err(error);
        }
        // Deleting the session deletes its code too.
        self.store.delete_session(&hash).await?;
        let new = self
            .create_session_audited(
                account,
                SessionStage::Enrollment,
                info.session.auth_time,
                Some(info.session.sid.clone()),
                ctx,
                AuditEvent::EmailVerified,
                None,
            )
            .await?;
        Ok(new)
    }

    // ---- the mailed QR link ----------------------------------------------------------

    /// A new link for `account` (its other open links end), and its URL.
    pub(super) fn new_link(
        &self,
        account: &Account,
        purpose: LinkPurpose,
        base_url: &str,
    ) -> (EnrollmentLink, String) {
        let token = Token::generate();
        let now = self.clock.now();
        let link = EnrollmentLink {
            token_hash: token.hash(),
            account_id: account.id,
            purpose,
            created_at: now,
            expires_at: now + chrono::Duration::days(i64::from(self.policy().enrollment_link_days)),
            used_at: None,
        };
        (link, link_url(base_url, &token))
    }

    /// How many whole days a new link works (for the mail's and the page's wording).
    pub fn link_days(&self) -> i64 {
        i64::from(self.policy().enrollment_link_days).max(1)
    }

    /// "Enable 2FA" on My Profile: after the password, mails a single-use link to the
    /// personal QR page. Returns when the link stops working.
    pub async fn request_enrollment_link(
        &self,
        account: &Account,
        password: &str,
        base_url: &str,
        ctx: &RequestContext,
    ) -> Result<DateTime<Utc>> {
        self.confirm_password(account, password, ctx).await?;
        if self.settings.refuse_shared_mailboxes && self.is_shared_mailbox(&account.email) {
            return Err(Error::SharedMailbox);
        }
        let (link, url) = self.new_link(account, LinkPurpose::Profile, base_url);
        self.store.insert_enrollment_link(&link).await?;
        let mail_id = new_mail_id();
        let notice = Notice::EnrollmentLink {
            link_sealed: seal_link(&self.secrets, mail_id, &url),
            valid_days: self.link_days(),
        };
        let detail = format!(
            "mail={mail_id} expires={}",
            link.expires_at.format("%Y-%m-%dT%H:%M:%SZ")
        );
        self.audit(
            AuditEvent::EnrollmentLinkSent,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await?;
        self.send_notice_as(account, mail_id, notice, ctx).await?;
        Ok(link.expires_at)
    }

    /// The account a QR link belongs to, if it can still be used; otherwise
    /// [`Error::InvalidLink`], [`Error::LinkExpired`] or [`Error::LinkUsed`]
    /// (audited). Does not use the link.
    pub async fn enrollment_link_account(
        &self,
        token: &str,
        ctx: &RequestContext,
    ) -> Result<Account> {
        let link = match Token::from_client(token) {
            Some(t) => self.store.enrollment_link(&t.hash()).await?,
            None => None,
        };
        let (error, account) = match &link {
            None => (Error::InvalidLink, None),
            Some(l) => {
                let account = self.store.account_by_id(l.account_id).await?;
                match (l.state(self.clock.now()), account) {
                    (LinkState::Open, Some(a)) => return Ok(a),
                    (LinkState::Open, None) => (Error::InvalidLink, None),
                    (LinkState::Expired, a) => (Error::LinkExpired, a),
                    (LinkState::Used, a) => (Error::LinkUsed, a),
                }
            }
        };
        let detail = Some(
            match error {
                Error::LinkExpired => "expired",
                Error::LinkUsed => "used",
                _ => "unknown",
            }
            .to_owned(),
        );
        self.audit(
            AuditEvent::EnrollmentLinkInvalid,
            account.as_ref(),
            None,
            ctx,
            detail,
        )
        .await?;
        Err(error)
    }

    /// Whether SMS is offered as a method: a gateway is configured and the policy
    /// lets SMS go somewhere (a country on the allow-list, an hourly budget).
    pub fn sms_offered(&self) -> bool {
        let p = &self.sms_policy();
        self.sms.is_some() && !p.allowed_calling_codes.is_empty() && p.global_per_hour > 0
    }

    /// Which journey a usable link belongs to (`None` when it cannot be used).
    pub async fn enrollment_link_purpose(&self, token: &str) -> Result<Option<LinkPurpose>> {
        let Some(t) = Token::from_client(token) else {
            return Ok(None);
        };
        Ok(self
            .store
            .enrollment_link(&t.hash())
            .await?
            .filter(|l| l.state(self.clock.now()) == LinkState::Open)
            .map(|l| l.purpose))
    }

    /// Checks who opens a link and uses it (see [`Self::open_enrollment_link`]);
    /// returns its account and whether `current` is a session of it.
    async fn claim_link(
        &self,
        token: &str,
        password: Option<&str>,
        current: Option<&SessionInfo>,
        ctx: &RequestContext,
    ) -> Result<(Account, bool)> {
        let account = self.enrollment_link_account(token, ctx).await?;
        let same = current.filter(|s| {
            s.account.id == account.id
                && matches!(
                    s.session.stage,
                    SessionStage::Authenticated | SessionStage::Enrollment
                )
        });
        if same.is_none() {
            if !self.active_factors(account.id).await?.is_empty() {
                return Err(Error::Unauthenticated);
            }
            self.check_link_password(&account, password, ctx).await?;
        }
        if self.settings.refuse_shared_mailboxes && self.is_shared_mailbox(&account.email) {
            return Err(Error::SharedMailbox);
        }
        let Some(t) = Token::from_client(token) else {
            return Err(Error::InvalidLink);
        };
        if self
            .store
            .claim_enrollment_link(&t.hash(), self.clock.now())
            .await?
            != Some(account.id)
        {
            return Err(Error::LinkUsed);
        }
        Ok((account, same.is_some()))
    }

    /// Opens a QR link: the link alone is never enough. Without a session of the
    /// link's account the password is required (wrong ones count towards the
    /// password throttle); an account that already has a second factor must sign in
    /// with it first ([`Error::Unauthenticated`]), so a password and a mailbox cannot
    /// add a phone to it. Then the link is used (once, atomically) and the set-up of
    /// an authenticator app begins.
    pub async fn open_enrollment_link(
        &self,
        token: &str,
        password: Option<&str>,
        current: Option<&SessionInfo>,
        ctx: &RequestContext,
    ) -> Result<OpenedLink> {
        let (account, same) = self.claim_link(token, password, current, ctx).await?;
        let enrollment = self.start_totp(&account).await?;
        let (event, detail) = (
            AuditEvent::EnrollmentLinkOpened,
            Some(format!("factor={}", enrollment.factor_id)),
        );
        let session = if same {
            self.audit(event, Some(&account), None, ctx, detail).await?;
            None
        } else {
            let stage = SessionStage::Enrollment;
            let now = self.clock.now();
            let t = self
                .create_session_audited(&account, stage, now, None, ctx, event, detail)
                .await?;
            Some(t)
        };
        Ok(OpenedLink {
            enrollment,
            session,
        })
    }

    /// [`Self::open_enrollment_link`] for someone who chose SMS: the number is checked
    /// before the link is used (a mistyped number leaves the link as it was); then
    /// the phone's set-up begins in a session that may only set up two-step
    /// verification (`current_token`'s, if it is one; otherwise a new one, returned
    /// for the browser, that ends the signed-in one once the phone is confirmed).
    /// The outer error leaves the link unused; the inner one (the SMS could not go
    /// out) comes after it was used, with the session to choose again in.
    pub async fn open_enrollment_link_sms(
        &self,
        token: &str,
        password: Option<&str>,
        current: Option<&SessionInfo>,
        current_token: Option<&Token>,
        phone: &str,
        ctx: &RequestContext,
    ) -> Result<(Option<Token>, Result<SmsSetup>)> {
        if !self.sms_offered() {
            return Err(Error::SmsUnavailable);
        }
        let number = self
            .settings
            .sms
            .parse_number(phone)
            .map_err(|e| Error::InvalidPhone(e.code()))?;
        if !self.sms_policy().allows_country(&number) {
            return Err(Error::SmsRefused(SmsRefusal::CountryNotAllowed(
                number.calling_code(),
            )));
        }
        let (account, same) = self.claim_link(token, password, current, ctx).await?;
        let enrolling = current.filter(|s| same && s.session.stage == SessionStage::Enrollment);
        let (event, detail) = (
            AuditEvent::EnrollmentLinkOpened,
            Some("method=sms".to_owned()),
        );
        let (session, new) = match (enrolling, current_token) {
            (Some(_), Some(t)) => {
                self.audit(event, Some(&account), None, ctx, detail).await?;
                (t.clone(), None)
            }
            _ => {
                // Signed in already: the set-up session takes its place (same sid)
                // once the phone is confirmed, as after a step-up.
                let (auth_time, sid) = match current.filter(|_| same) {
                    Some(s) => (s.session.auth_time, Some(s.session.sid.clone())),
                    None => (self.clock.now(), None),
                };
                let stage = SessionStage::Enrollment;
                let t = self
                    .create_session_audited(&account, stage, auth_time, sid, ctx, event, detail)
                    .await?;
                (t.clone(), Some(t))
            }
        };
        let setup = self.begin_sms(&session, phone, None, ctx).await;
        Ok((new, setup))
    }
}
