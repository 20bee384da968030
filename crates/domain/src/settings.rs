//! Domain settings, filled from configuration by the binary.

use crate::lockout::LockoutPolicy;
use crate::mail::RetryPolicy;
use crate::password::PasswordRules;
use crate::policy::TwoFactorPolicy;
use crate::session::SessionPolicy;
use crate::shared_mailbox::SharedMailboxes;
use crate::totp::TotpParams;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Shown in authenticator apps next to the code.
    pub issuer: String,
    pub totp: TotpParams,
    /// Wrong codes.
    pub lockout: LockoutPolicy,
    /// Wrong passwords for one account from one client address (or one remembered
    /// browser, one session).
    pub password_lockout: LockoutPolicy,
    /// Wrong passwords per address over every account, and per account from many
    /// addresses.
    pub password_throttle: crate::lockout::throttle::PasswordThrottle,
    pub sessions: SessionPolicy,
    pub passwords: PasswordRules,
    /// Back-off of failed mail deliveries.
    pub mail_retry: RetryPolicy,
    /// Which addresses count as shared mailboxes (info@, secretariaat@, ...).
    pub shared_mailboxes: SharedMailboxes,
    /// Refuse setting up a second factor on a shared mailbox.
    pub refuse_shared_mailboxes: bool,
    /// Who must use two-step verification, and from when.
    pub two_factor: TwoFactorPolicy,
    /// How long a mailed link to a personal QR page works.
    pub enrollment_link_validity: chrono::Duration,
    /// How long a remembered browser may skip the code step.
    pub remember_device: chrono::Duration,
    /// Where SMS may go and how many per hour.
    pub sms: crate::sms::SmsPolicy,
    /// The OpenID Connect provider: key retention and configured clients.
    pub oidc: crate::oidc::OidcSettings,
    /// The roll-out console.
    pub console: ConsoleSettings,
}

/// The roll-out console's own settings (`[console]`).
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// How long a code keeps an administrator in the console before it asks again.
    pub step_up: chrono::Duration,
    /// Audit records older than this are removed (None: kept forever).
    pub audit_retention: Option<chrono::Duration>,
    /// How long an invitation works, and the reminder stages (days before a
    /// deadline), until the console changes them.
    pub invite_days: u32,
    pub reminder_days: Vec<u32>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            step_up: chrono::Duration::minutes(15),
            audit_retention: None,
            invite_days: 5,
            reminder_days: vec![30, 14, 7, 1],
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            issuer: "tweestap".into(),
            totp: TotpParams::default(),
            lockout: LockoutPolicy::default(),
            password_lockout: LockoutPolicy::password_default(),
            password_throttle: Default::default(),
            sessions: SessionPolicy::default(),
            passwords: PasswordRules::default(),
            mail_retry: RetryPolicy::default(),
            shared_mailboxes: SharedMailboxes::default(),
            refuse_shared_mailboxes: false,
            two_factor: TwoFactorPolicy::default(),
            enrollment_link_validity: chrono::Duration::days(5),
            remember_device: chrono::Duration::days(7),
            sms: crate::sms::SmsPolicy::default(),
            oidc: crate::oidc::OidcSettings::default(),
            console: ConsoleSettings::default(),
        }
    }
}
