//! SMS codes: setting up a phone, sending a code at sign-in, checking it; with the
//! pumping protection in front of every send.

use super::one_time_codes::CodeCheck;
use super::{SessionInfo, Tweestap};
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::factor::{Factor, FactorId, FactorKind};
use crate::language::Language;
use crate::session::SessionStage;
use crate::session_code::CodePurpose;
use crate::sms::{PhoneNumber, SmsMessage, SmsOutcome, SmsRefusal, SmsSend, SMS_SENDS_PER_SESSION};
use crate::store::SmsSendsOf;
use crate::token::{Token, TokenHash};
use uuid::Uuid;

/// A phone being set up: the code went to `to_masked`.
#[derive(Debug, Clone)]
pub struct SmsSetup {
    pub factor_id: FactorId,
    pub to_masked: String,
    pub shared_mailbox: bool,
}

impl Tweestap {
    fn number_of(&self, f: &Factor) -> Result<PhoneNumber> {
        let raw = self.secrets.open(&f.secret_sealed, f.id.0.as_bytes())?;
        let e164 = std::str::from_utf8(&raw).map_err(|_| Error::InvalidPhone("phone_invalid"))?;
        PhoneNumber::from_e164(e164).map_err(|e| Error::InvalidPhone(e.code()))
    }

    /// Sends a new code for `session` to `factor`'s phone (replacing an earlier one),
    /// after the pumping protection. Every send and refusal is audited.
    async fn send_sms_code(
        &self,
        account: &Account,
        session: &Token,
        factor: &Factor,
        sends: u32,
        ctx: &RequestContext,
    ) -> Result<String> {
        let number = self.number_of(factor)?;
        let masked = number.masked();
        let number_mac = self
            .secrets
            .code_mac(b"tweestap sms number v1", number.e164().as_bytes());
        let now = self.clock.now();
        let hour_ago = now - chrono::Duration::hours(1);
        let sent = self
            .store
            .sms_sends_since(account.id, &number_mac, ctx.ip.as_deref(), hour_ago)
            .await?;
        if let Err(refusal) = self.sms_policy().check(&number, &sent) {
            let detail = format!("to={masked} refused={}", refusal.reason());
            self.audit(
                AuditEvent::SmsRefused,
                Some(account),
                None,
                ctx,
                Some(detail),
            )
            .await?;
            return Err(Error::SmsRefused(refusal));
        }
        let Some(sender) = self.sms.as_ref() else {
            return Err(Error::SmsUnavailable);
        };
        let code = self
            .issue_session_code(
                &session.hash(),
                CodePurpose::Sms,
                account.id,
                Some(factor.id),
                sends,
            )
            .await?;
        // Counted before sending: a send that fails may still have cost money.
        self.store
            .record_sms_send(&SmsSend {
                at: now,
                account_id: Some(account.id),
                number_mac,
                ip: ctx.ip.clone(),
            })
            .await?;
        let code = code.as_str();
        let text = match ctx.language.unwrap_or(account.language) {
            Language::Nl => format!(
                "{code} is je code voor {}. Geef hem aan niemand door.",
                self.settings.issuer
            ),
            Language::En => format!(
                "{code} is your code for {}. Do not share it with anyone.",
                self.settings.issuer
            ),
        };
        let msg = SmsMessage::new(number, text);
        match sender.send(&msg).await {
            SmsOutcome::Sent { provider_id } => {
                let detail = format!(
                    "sms={} to={masked} provider_id={}",
                    msg.id,
                    provider_id.as_deref().unwrap_or("-")
                );
                self.audit(AuditEvent::SmsSent, Some(account), None, ctx, Some(detail))
                    .await?;
                Ok(masked)
            }
            SmsOutcome::Failed {
                ambiguous, error, ..
            } => {
                // The code stays: after an ambiguous failure it may well have arrived.
                let detail = format!(
                    "sms={} to={masked} ambiguous={ambiguous} error={error}",
                    msg.id
                );
                self.audit(
                    AuditEvent::SmsFailed,
                    Some(account),
                    None,
                    ctx,
                    Some(detail),
                )
                .await?;
                Err(Error::SmsUnavailable)
            }
        }
    }

    /// Seconds until the hourly limit that now refuses an SMS to `number`
    /// frees up; `None` when no such limit refuses (or the budget of the whole
    /// installation is spent: that has no time to wait for).
    async fn sms_free_again_in(
        &self,
        account: &Account,
        number: &PhoneNumber,
        ctx: &RequestContext,
    ) -> Result<Option<i64>> {
        let number_mac = self
            .secrets
            .code_mac(b"tweestap sms number v1", number.e164().as_bytes());
        let now = self.clock.now();
        let hour_ago = now - chrono::Duration::hours(1);
        let sent = self
            .store
            .sms_sends_since(account.id, &number_mac, ctx.ip.as_deref(), hour_ago)
            .await?;
        let p = &self.sms_policy();
        let (of, count, limit) = match p.check(number, &sent) {
            Err(SmsRefusal::AccountLimit) => (
                SmsSendsOf::Account(account.id),
                sent.account,
                p.per_account_per_hour,
            ),
            Err(SmsRefusal::NumberLimit) => (
                SmsSendsOf::Number(&number_mac),
                sent.number,
                p.per_number_per_hour,
            ),
            Err(SmsRefusal::IpLimit) => match ctx.ip.as_deref() {
                Some(ip) => (SmsSendsOf::Ip(ip), sent.ip, p.per_ip_per_hour),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        // One more may go once the sends counted drop below the limit: when the
        // (count - limit + 1)-th oldest is an hour old.
        let skip = count.saturating_sub(limit);
        let at = self.store.sms_send_at(of, hour_ago, skip).await?;
        Ok(at.map(|t| (t + chrono::Duration::hours(1) - now).num_seconds().max(1)))
    }

    /// While an hourly limit refuses the SMS of the sign-in `session`: the seconds
    /// until it frees up.
    pub async fn sign_in_sms_free_again_in(
        &self,
        session: &Token,
        ctx: &RequestContext,
    ) -> Result<Option<i64>> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        let factors = self.active_factors(info.account.id).await?;
        let Some(f) = factors.iter().find(|f| f.kind == FactorKind::Sms) else {
            return Ok(None);
        };
        let number = self.number_of(f)?;
        self.sms_free_again_in(&info.account, &number, ctx).await
    }

    /// While an hourly limit refuses the SMS to the phone `id` being set up: the
    /// seconds until it frees up.
    pub async fn setup_sms_free_again_in(
        &self,
        session: &Token,
        id: FactorId,
        ctx: &RequestContext,
    ) -> Result<Option<i64>> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        let f = self.pending_sms(&info, id).await?;
        let number = self.number_of(&f)?;
        self.sms_free_again_in(&info.account, &number, ctx).await
    }

    /// While an hourly limit refuses an SMS to the typed `phone` (a phone about to
    /// be set up): the seconds until it frees up.
    pub async fn phone_sms_free_again_in(
        &self,
        session: &Token,
        phone: &str,
        ctx: &RequestContext,
    ) -> Result<Option<i64>> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        let Ok(number) = self.settings.sms.parse_number(phone) else {
            return Ok(None);
        };
        self.sms_free_again_in(&info.account, &number, ctx).await
    }

    async fn sends_so_far(&self, session: &Token) -> Result<u32> {
        Ok(self
            .store
            .session_code(&session.hash(), CodePurpose::Sms)
            .await?
            .map_or(0, |c| c.sends))
    }

    /// Whether `code` is the live SMS code of `session` for `factor` (counting the
    /// try; the code is used up when right).
    async fn sms_code_matches(
        &self,
        session: &TokenHash,
        factor: FactorId,
        code: &str,
    ) -> Result<bool> {
        let Some(stored) = self.store.session_code(session, CodePurpose::Sms).await? else {
            return Ok(false);
        };
        if stored.factor_id != Some(factor) {
            return Ok(false);
        }
        Ok(self.check_one_time_code(&stored, code).await? == CodeCheck::Right)
    }

    /// The active SMS factor of a half-finished sign-in whose live code is `code`.
    pub(super) async fn sms_sign_in_match<'f>(
        &self,
        session: &TokenHash,
        factors: &'f [Factor],
        code: &str,
    ) -> Result<Option<&'f Factor>> {
        let Some(stored) = self.store.session_code(session, CodePurpose::Sms).await? else {
            return Ok(None);
        };
        let Some(f) = factors
            .iter()
            .find(|f| Some(f.id) == stored.factor_id && f.kind == FactorKind::Sms)
        else {
            return Ok(None);
        };
        Ok(self
            .sms_code_matches(session, f.id, code)
            .await?
            .then_some(f))
    }

    // ---- set-up -------------------------------------------------------------------

    /// Starts setting up a phone: the number (read in the configured default region,
    /// mobile only, an allowed country), a pending factor and a code sent to it. The
    /// password is asked unless the session may only set up two-step verification.
    pub async fn begin_sms(
        &self,
        session: &Token,
        phone: &str,
        password: Option<&str>,
        ctx: &RequestContext,
    ) -> Result<SmsSetup> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        match info.session.stage {
            SessionStage::Enrollment => {}
            SessionStage::Authenticated => {
                self.confirm_password(&info.account, password.unwrap_or_default(), ctx)
                    .await?
            }
            _ => return Err(Error::Unauthenticated),
        }
        let account = &info.account;
        if self.settings.refuse_shared_mailboxes && self.is_shared_mailbox(&account.email) {
            return Err(Error::SharedMailbox);
        }
        // The console's policy may leave SMS out for this role.
        if !self.method_allowed(account.role, crate::policy::document::Method::Sms) {
            return Err(Error::SmsUnavailable);
        }
        let number = self
            .settings
            .sms
            .parse_number(phone)
            .map_err(|e| Error::InvalidPhone(e.code()))?;
        if !self.sms_policy().allows_country(&number) {
            let refusal = SmsRefusal::CountryNotAllowed(number.calling_code());
            let detail = format!("to={} refused={}", number.masked(), refusal.reason());
            self.audit(
                AuditEvent::SmsRefused,
                Some(account),
                None,
                ctx,
                Some(detail),
            )
            .await?;
            return Err(Error::SmsRefused(refusal));
        }
        self.store.delete_unconfirmed_factors(account.id).await?;
        let id = FactorId(Uuid::new_v4());
        let factor = Factor {
            id,
            account_id: account.id,
            kind: FactorKind::Sms,
            label: number.masked(),
            secret_sealed: self.secrets.seal(number.e164().as_bytes(), id.0.as_bytes()),
            created_at: self.clock.now(),
            confirmed_at: None,
            last_used_at: None,
            last_step: None,
        };
        self.store.insert_factor(&factor).await?;
        let to_masked = self
            .send_sms_code(account, session, &factor, 1, ctx)
            .await?;
        Ok(SmsSetup {
            factor_id: id,
            to_masked,
            shared_mailbox: self.is_shared_mailbox(&account.email),
        })
    }

    async fn pending_sms(&self, info: &SessionInfo, id: FactorId) -> Result<Factor> {
        if !matches!(
            info.session.stage,
            SessionStage::Authenticated | SessionStage::Enrollment
        ) {
            return Err(Error::Unauthenticated);
        }
        self.store
            .factors_of(info.account.id)
            .await?
            .into_iter()
            .find(|f| f.id == id && !f.is_active() && f.kind == FactorKind::Sms)
            .ok_or(Error::NotFound)
    }

    /// Where the code of a phone being set up went (masked), for its page.
    pub async fn pending_sms_to(&self, session: &Token, id: FactorId) -> Result<String> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        let f = self.pending_sms(&info, id).await?;
        Ok(f.label)
    }

    /// "Send again" while setting up a phone (at most [`SMS_SENDS_PER_SESSION`]).
    pub async fn resend_setup_sms(
        &self,
        session: &Token,
        id: FactorId,
        ctx: &RequestContext,
    ) -> Result<String> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        let f = self.pending_sms(&info, id).await?;
        let sends = self.sends_so_far(session).await?;
        if sends >= SMS_SENDS_PER_SESSION {
            return Err(Error::TooManyRequests);
        }
        self.send_sms_code(&info.account, session, &f, sends + 1, ctx)
            .await
    }

    /// Confirms a phone with the code sent to it. With the account's first factor
    /// come its recovery codes.
    pub async fn confirm_sms(
        &self,
        session: &Token,
        id: FactorId,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<Option<Vec<String>>> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        let f = self.pending_sms(&info, id).await?;
        if !self.sms_code_matches(&session.hash(), id, code).await? {
            let detail = Some(format!("set-up of factor={id}"));
            self.audit(
                AuditEvent::CodeFailed,
                Some(&info.account),
                None,
                ctx,
                detail,
            )
            .await?;
            return Err(Error::InvalidCode);
        }
        let notice = self.factor_added_notice(&info.account, &f, ctx).await?;
        let codes = self.codes_with_factor(&info.account).await?;
        let macs = codes.as_ref().map(|c| c.macs.as_slice());
        if !self
            .store
            .confirm_factor(id, self.clock.now(), Some(&notice), macs)
            .await?
        {
            return Err(Error::NotFound);
        }
        self.factor_confirmed(&info.account, &f, &notice, codes, ctx)
            .await
    }

    // ---- sign-in ------------------------------------------------------------------

    /// The code step of someone whose only method is SMS sends the first code by
    /// itself, once per sign-in: where it went (masked) when it sent one now, `None`
    /// when this sign-in already had one.
    pub async fn first_sign_in_sms(
        &self,
        session: &Token,
        ctx: &RequestContext,
    ) -> Result<Option<String>> {
        if self.sends_so_far(session).await? > 0 {
            return Ok(None);
        }
        self.send_sign_in_sms(session, ctx).await.map(Some)
    }

    /// Whether this sign-in already had an SMS code sent.
    pub async fn sign_in_sms_sent(&self, session: &Token) -> Result<bool> {
        Ok(self.sends_so_far(session).await? > 0)
    }

    /// "Send me a code by SMS" at the code step: to the account's phone, at most
    /// [`SMS_SENDS_PER_SESSION`] per sign-in. Returns where it went (masked).
    pub async fn send_sign_in_sms(&self, session: &Token, ctx: &RequestContext) -> Result<String> {
        let info = self.session(session).await?.ok_or(Error::Unauthenticated)?;
        if info.session.stage != SessionStage::SecondFactor {
            return Err(Error::Unauthenticated);
        }
        let factors = self.active_factors(info.account.id).await?;
        let Some(f) = factors.iter().find(|f| f.kind == FactorKind::Sms) else {
            return Err(Error::NotFound);
        };
        let sends = self.sends_so_far(session).await?;
        if sends >= SMS_SENDS_PER_SESSION {
            return Err(Error::TooManyRequests);
        }
        self.send_sms_code(&info.account, session, f, sends + 1, ctx)
            .await
    }
}
