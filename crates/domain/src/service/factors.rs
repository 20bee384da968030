//! Setting up and removing second factors: the authenticator app's secret and its
//! QR data, the confirming code, the notice mails and the first recovery codes.

use super::one_time_codes::normalise_code;
use super::{SessionInfo, Tweestap};
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::factor::{Factor, FactorId, FactorKind};
use crate::lockout::throttle::ThrottleKey;
use crate::mail::{new_mail_id, NewMail, Notice};
use crate::recovery::NewRecoveryCodes;
use crate::session::SessionStage;
use crate::store::Attempt;
use crate::totp;
use uuid::Uuid;

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
    pub(super) async fn start_totp(&self, account: &Account) -> Result<TotpEnrollment> {
        if self.settings.refuse_shared_mailboxes && self.is_shared_mailbox(&account.email) {
            return Err(Error::SharedMailbox);
        }
        // The console's policy may leave the app out for this role.
        if !self.method_allowed(account.role, crate::policy::document::Method::App) {
            return Err(Error::Forbidden);
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
        let failures = self.take_set_up_attempt(account, id, ctx).await?;
        let Some(step) =
            self.settings
                .totp
                .matching_step(&secret, &normalise_code(code), now.timestamp())
        else {
            let detail = Some(format!("set-up of factor={id}"));
            self.audit(AuditEvent::CodeFailed, Some(account), None, ctx, detail)
                .await?;
            self.set_up_code_wrong(account, id, failures, ctx).await?;
            return Err(Error::InvalidCode);
        };
        // The code that confirms the set-up cannot be used again to sign in.
        self.store.claim_totp_step(id, step as i64, now).await?;
        let notice = self.factor_added_notice(account, &f, ctx).await?;
        let codes = self.codes_with_factor(account).await?;
        let macs = codes.as_ref().map(|c| c.macs.as_slice());
        if !self
            .store
            .confirm_factor(id, now, Some(&notice), macs)
            .await?
        {
            return Err(Error::NotFound);
        }
        self.factor_confirmed(account, &f, &notice, codes, ctx)
            .await
    }

    /// Takes one attempt at the confirming code of the set-up `id` before it is
    /// checked (in one statement, so parallel requests check no more than allowed):
    /// the count, or `TooManyAttempts` while locked. Wrong codes lock as the code
    /// step does (5, then 60 s doubling), with a count of their own per set-up.
    async fn take_set_up_attempt(
        &self,
        account: &Account,
        id: FactorId,
        ctx: &RequestContext,
    ) -> Result<u32> {
        let now = self.clock.now();
        let policy = &self.settings.lockout;
        let key = ThrottleKey::set_up(id.0);
        let attempt = Attempt {
            key: key.as_str(),
            account: Some(account.id),
            now,
            lock_at: Some((policy.max_failures, now + policy.base)),
            cap: None,
            restart_before: None,
        };
        if let Some(count) = self.store.take_attempt(&attempt).await? {
            return Ok(count);
        }
        let detail = Some(format!("set-up of factor={id}: locked"));
        self.audit(AuditEvent::CodeFailed, Some(account), None, ctx, detail)
            .await?;
        let state = self.store.throttle_state(key.as_str()).await?;
        let until = state.and_then(|s| s.locked_until);
        Err(Error::TooManyAttempts {
            retry_after: until.map_or(1, |u| (u - now).num_seconds().max(1)),
        })
    }

    /// A wrong confirming code: at the threshold the set-up locks for the full length.
    async fn set_up_code_wrong(
        &self,
        account: &Account,
        id: FactorId,
        failures: u32,
        ctx: &RequestContext,
    ) -> Result<()> {
        let Some(until) = self.settings.lockout.lock_until(failures, self.clock.now()) else {
            return Ok(());
        };
        let key = ThrottleKey::set_up(id.0);
        self.store.lock_throttle(key.as_str(), until).await?;
        let detail = format!(
            "scope=set-up factor={id} failures={failures} until={}",
            until.to_rfc3339()
        );
        let detail = Some(detail);
        self.audit(AuditEvent::CodeLockedOut, Some(account), None, ctx, detail)
            .await
    }

    /// The "a factor was added" mail, to be queued with the confirmation itself.
    pub(super) async fn factor_added_notice(
        &self,
        account: &Account,
        f: &Factor,
        ctx: &RequestContext,
    ) -> Result<NewMail> {
        let notice = Notice::FactorAdded {
            factor_kind: f.kind.as_str().to_owned(),
        };
        self.notice_mail(account, new_mail_id(), notice, ctx).await
    }

    /// The recovery codes to store with the confirmation of a factor of `account`,
    /// in its transaction: new ones with its first factor or when none are left (so
    /// a crash never leaves an active factor without them).
    pub(super) async fn codes_with_factor(
        &self,
        account: &Account,
    ) -> Result<Option<NewRecoveryCodes>> {
        let first = self.active_factors(account.id).await?.is_empty();
        if first || self.store.recovery_codes_left(account.id).await? == 0 {
            return Ok(Some(self.fresh_recovery_codes(account)));
        }
        Ok(None)
    }

    /// After a factor's first right code was stored with its `notice` and `codes`
    /// ([`Self::codes_with_factor`]): audit, and the codes returned to be shown once.
    pub(super) async fn factor_confirmed(
        &self,
        account: &Account,
        f: &Factor,
        notice: &NewMail,
        codes: Option<NewRecoveryCodes>,
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
        match codes {
            Some(new) => Ok(Some(self.recovery_codes_issued(account, new, ctx).await?)),
            None => Ok(None),
        }
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
                self.notice_mail(account, new_mail_id(), notice, ctx)
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
}
