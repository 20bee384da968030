//! Security events, as recorded in the audit log.

use crate::account::AccountId;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditEvent {
    AccountCreated,
    LoginSucceeded,
    EnrollmentRequired,
    LoginFailed,
    CodeSucceeded,
    CodeFailed,
    CodeReplayed,
    CodeLockedOut,
    PasswordLockedOut,
    LoginThrottled,
    FactorAdded,
    FactorRemoved,
    Logout,
    MailQueued,
    MailSent,
    MailFailed,
    PasswordResetRequested,
    PasswordResetCompleted,
    PasswordResetLinkInvalid,
    EmailCodeSent,
    EmailCodeFailed,
    EmailVerified,
    EnrollmentLinkSent,
    EnrollmentLinkOpened,
    EnrollmentLinkInvalid,
    TwoFactorReset,
    EmailChanged,
    SupportDenied,
    DeviceRemembered,
    DevicesForgotten,
    RecoveryCodesIssued,
    RecoveryCodeUsed,
    SmsSent,
    SmsFailed,
    SmsRefused,
    OidcCodeIssued,
    OidcTokensIssued,
    OidcCodeReused,
    OidcRefreshReused,
    OidcClientAuthFailed,
    OidcLogout,
    SigningKeyGenerated,
    SigningKeysRotated,
    OidcClientAdded,
    OidcClientRemoved,
}

impl AuditEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::AccountCreated => "account_created",
            AuditEvent::LoginSucceeded => "login_succeeded",
            AuditEvent::EnrollmentRequired => "enrollment_required",
            AuditEvent::LoginFailed => "login_failed",
            AuditEvent::CodeSucceeded => "code_succeeded",
            AuditEvent::CodeFailed => "code_failed",
            AuditEvent::CodeReplayed => "code_replayed",
            AuditEvent::CodeLockedOut => "code_locked_out",
            AuditEvent::PasswordLockedOut => "password_locked_out",
            AuditEvent::LoginThrottled => "login_throttled",
            AuditEvent::FactorAdded => "factor_added",
            AuditEvent::FactorRemoved => "factor_removed",
            AuditEvent::Logout => "logout",
            AuditEvent::MailQueued => "mail_queued",
            AuditEvent::MailSent => "mail_sent",
            AuditEvent::MailFailed => "mail_failed",
            AuditEvent::PasswordResetRequested => "password_reset_requested",
            AuditEvent::PasswordResetCompleted => "password_reset_completed",
            AuditEvent::PasswordResetLinkInvalid => "password_reset_link_invalid",
            AuditEvent::EmailCodeSent => "email_code_sent",
            AuditEvent::EmailCodeFailed => "email_code_failed",
            AuditEvent::EmailVerified => "email_verified",
            AuditEvent::EnrollmentLinkSent => "enrollment_link_sent",
            AuditEvent::EnrollmentLinkOpened => "enrollment_link_opened",
            AuditEvent::EnrollmentLinkInvalid => "enrollment_link_invalid",
            AuditEvent::TwoFactorReset => "two_factor_reset",
            AuditEvent::EmailChanged => "email_changed",
            AuditEvent::SupportDenied => "support_denied",
            AuditEvent::DeviceRemembered => "device_remembered",
            AuditEvent::DevicesForgotten => "devices_forgotten",
            AuditEvent::RecoveryCodesIssued => "recovery_codes_issued",
            AuditEvent::RecoveryCodeUsed => "recovery_code_used",
            AuditEvent::SmsSent => "sms_sent",
            AuditEvent::SmsFailed => "sms_failed",
            AuditEvent::SmsRefused => "sms_refused",
            AuditEvent::OidcCodeIssued => "oidc_code_issued",
            AuditEvent::OidcTokensIssued => "oidc_tokens_issued",
            AuditEvent::OidcCodeReused => "oidc_code_reused",
            AuditEvent::OidcRefreshReused => "oidc_refresh_reused",
            AuditEvent::OidcClientAuthFailed => "oidc_client_auth_failed",
            AuditEvent::OidcLogout => "oidc_logout",
            AuditEvent::SigningKeyGenerated => "signing_key_generated",
            AuditEvent::SigningKeysRotated => "signing_keys_rotated",
            AuditEvent::OidcClientAdded => "oidc_client_added",
            AuditEvent::OidcClientRemoved => "oidc_client_removed",
        }
    }
}

/// Where a request came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct RequestContext {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The language the request was answered in; mail it causes is written in it.
    pub language: Option<crate::language::Language>,
}

#[derive(Debug, Clone)]
pub struct AuditRecord {
    pub at: DateTime<Utc>,
    pub event: String,
    pub account_id: Option<AccountId>,
    /// The address as typed (also for unknown accounts, to spot credential stuffing).
    pub email: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}
