//! The engine every front-end (pages, JSON API, command line) calls: the
//! [`Tweestap`] struct, its construction and the audit trail every journey writes.
//! The journeys themselves live in the submodules, one per journey.

use crate::account::Account;
use crate::audit::{AuditEvent, AuditRecord, RequestContext};
use crate::clock::Clock;
use crate::error::Result;
use crate::password::PasswordHasher;
use crate::secret_box::SecretBox;
use crate::session::Session;
use crate::settings::Settings;
use crate::store::Store;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::Notify;

mod account_import;
mod accounts;
mod code_step;
mod console;
mod devices;
mod enrollment;
mod export_import;
mod factors;
mod housekeeping;
mod invites;
mod mail_queue;
mod oidc;
mod oidc_flow;
mod oidc_portals;
mod oidc_tokens;
mod one_time_codes;
mod passkey_sign_in;
mod passkeys;
mod password_check;
mod password_reset;
mod password_upgrade;
mod rollout;
mod secret_rotation;
mod sessions;
mod sign_in;
mod sms;
mod support;

pub use account_import::{ImportOptions, ImportReport};
pub use code_step::CodeStepStanding;
pub use console::{AccountPage, NewConsoleAccount, MAX_PAGE};
pub use enrollment::{OpenedLink, SecureStart};
pub use export_import::ImportSummary;
pub use factors::TotpEnrollment;
pub use oidc::NewClient;
pub use oidc_flow::TokenResponse;
pub use oidc_portals::LogoutPost;
pub use oidc_tokens::{Holder, LiveToken};
pub use passkeys::{PasskeyStart, PasskeySummary};
pub use password_reset::{reset_link_validity, RESET_MAILS_PER_HOUR};
pub use rollout::{RoleRollout, Rollout};
pub use secret_rotation::{ResealOptions, ResealReport};
pub use sign_in::{Browser, LoginOutcome};
pub use sms::SmsSetup;
pub use support::{AccountOverview, Actor, MethodSummary};

pub struct Tweestap {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    hasher: PasswordHasher,
    secrets: SecretBox,
    settings: Settings,
    /// Wakes this node's mail worker when a message is queued here.
    mail_wakeup: Arc<Notify>,
    /// Wakes this node's back-channel logout worker when a logout is queued here.
    logout_wakeup: Arc<Notify>,
    /// Sends SMS codes; without one, SMS cannot be set up.
    sms: Option<Arc<dyn crate::sms::SmsSender>>,
    /// The policy the console edits (first from the configuration), shared by the
    /// requests of this node and refreshed from the database.
    policy: Arc<std::sync::RwLock<crate::policy::document::PolicyDocument>>,
    /// The passkey relying party, once the server knows the address people use
    /// (unset: passkeys are not offered).
    passkeys: std::sync::OnceLock<crate::passkey::RelyingParty>,
    /// Told of every audit event (the metrics); none by default.
    observer: Option<Arc<dyn crate::observe::Observer>>,
}

/// A valid session, looked up from the client's token.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub session: Session,
    pub account: Account,
}

/// What the audit log keeps of an address typed by someone without an account: the
/// address when it is one (to spot credential stuffing), else only its length, so
/// a password typed into the wrong field is never stored and no one fills the disk
/// through the log.
fn audited_address(typed: &str) -> String {
    match crate::account::Email::parse(typed) {
        Ok(e) => capped(e.as_str(), 254),
        Err(_) => format!("(not an address, {} characters)", typed.chars().count()),
    }
}

/// At most `max` characters, control characters replaced.
fn capped(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

impl Tweestap {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        hasher: PasswordHasher,
        secrets: SecretBox,
        settings: Settings,
    ) -> Self {
        let mut policy = crate::policy::document::PolicyDocument::from_settings(
            &settings.two_factor,
            &settings.sms,
            settings.remember_device,
            settings.enrollment_link_validity,
        );
        policy.invite_days = settings.console.invite_days;
        policy.reminder_days = settings.console.reminder_days.clone();
        Self {
            store,
            clock,
            hasher,
            secrets,
            settings,
            policy: Arc::new(std::sync::RwLock::new(policy)),
            mail_wakeup: Arc::new(Notify::new()),
            logout_wakeup: Arc::new(Notify::new()),
            sms: None,
            passkeys: std::sync::OnceLock::new(),
            observer: None,
        }
    }

    /// Tells `observer` of every audit event from now on.
    pub fn with_observer(mut self, observer: Arc<dyn crate::observe::Observer>) -> Self {
        self.observer = Some(observer);
        self
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

    /// How busy password hashing is on this node (running, peak, waiting, refused).
    pub fn password_hashing(&self) -> crate::password::HashingLoad {
        self.hasher.load()
    }

    async fn audit(
        &self,
        event: AuditEvent,
        account: Option<&Account>,
        email: Option<&str>,
        ctx: &RequestContext,
        detail: Option<String>,
    ) -> Result<()> {
        self.told(event, detail.as_deref());
        let r = self.audit_row(event, account, email, ctx, detail);
        self.store.append_audit(&r).await?;
        Ok(())
    }

    /// Tells the observer (metrics) of an audit event, before or after its row
    /// is stored.
    fn told(&self, event: AuditEvent, detail: Option<&str>) {
        if let Some(o) = &self.observer {
            o.audited(event, detail);
        }
    }

    /// The audit row of `event`, for the caller to write (alone, or together with
    /// other writes) and to tell the observer of ([`Self::told`]); a row the
    /// store writes only if what it records happens is told once it did.
    fn audit_row(
        &self,
        event: AuditEvent,
        account: Option<&Account>,
        email: Option<&str>,
        ctx: &RequestContext,
        detail: Option<String>,
    ) -> AuditRecord {
        AuditRecord {
            at: self.clock.now(),
            event: event.as_str().to_owned(),
            account_id: account.map(|a| a.id),
            email: email
                .map(audited_address)
                .or_else(|| account.map(|a| a.email.to_string())),
            ip: ctx.ip.as_deref().map(|s| capped(s, 64)),
            user_agent: ctx.user_agent.as_deref().map(|s| capped(s, 256)),
            detail: detail.map(|d| capped(&d, 2000)),
        }
    }

    pub async fn audit_log(&self, limit: u32, email: Option<&str>) -> Result<Vec<AuditRecord>> {
        Ok(self.store.list_audit(limit, email).await?)
    }
}
