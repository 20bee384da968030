//! What a node counts of its sign-ins (for metrics), told by the engine as it writes
//! each audit event: one seam for every journey, so no journey knows about metrics.
//! The observer is called in the request's path, so it must be cheap (atomic counters).

use crate::audit::AuditEvent;

/// Told of every audit event the engine records, as it is stored (just before,
/// or, for a row written with what it records, once that happened).
pub trait Observer: Send + Sync + 'static {
    fn audited(&self, event: AuditEvent, detail: Option<&str>);
}

/// How a password step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordOutcome {
    Ok,
    Wrong,
    /// Refused before the password was checked: a throttle or lock held.
    Throttled,
}

/// The way a code (or passkey) was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeMethod {
    /// An authenticator app's code.
    App,
    Sms,
    Passkey,
    Recovery,
    /// A wrong code at the code step: it is checked against the app and SMS alike,
    /// so it is nobody's in particular.
    Code,
}

/// How a code was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeOutcome {
    Ok,
    Wrong,
    /// Right, but used before.
    Replayed,
    /// Refused because the code step (or the recovery codes) were locked.
    Locked,
}

/// Which guard locked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    Code,
    Password,
}

/// An audit event as metrics count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Password(PasswordOutcome),
    /// A second factor at sign-in.
    SecondFactor(CodeMethod, CodeOutcome),
    /// A wrong code while setting a factor up (not a sign-in).
    SetUpCodeWrong,
    LockedOut(LockKind),
}

impl Signal {
    /// What `event` (with the `detail` the engine wrote) counts as, if anything.
    pub fn of(event: AuditEvent, detail: Option<&str>) -> Option<Signal> {
        use AuditEvent as E;
        let d = detail.unwrap_or_default();
        Some(match event {
            // Also the sign-ins that skip the code on a remembered device.
            E::LoginSucceeded => Signal::Password(PasswordOutcome::Ok),
            E::LoginFailed => Signal::Password(PasswordOutcome::Wrong),
            E::LoginThrottled => Signal::Password(PasswordOutcome::Throttled),
            E::CodeSucceeded if d.contains("kind=sms") => {
                Signal::SecondFactor(CodeMethod::Sms, CodeOutcome::Ok)
            }
            E::CodeSucceeded if d.contains("kind=passkey") => {
                Signal::SecondFactor(CodeMethod::Passkey, CodeOutcome::Ok)
            }
            E::CodeSucceeded => Signal::SecondFactor(CodeMethod::App, CodeOutcome::Ok),
            E::RecoveryCodeUsed => Signal::SecondFactor(CodeMethod::Recovery, CodeOutcome::Ok),
            E::CodeReplayed => Signal::SecondFactor(CodeMethod::App, CodeOutcome::Replayed),
            E::CodeFailed if d.starts_with("set-up") => Signal::SetUpCodeWrong,
            E::CodeFailed if d.starts_with("recovery code") && d.ends_with("locked") => {
                Signal::SecondFactor(CodeMethod::Recovery, CodeOutcome::Locked)
            }
            E::CodeFailed if d.starts_with("recovery code") => {
                Signal::SecondFactor(CodeMethod::Recovery, CodeOutcome::Wrong)
            }
            E::CodeFailed if d == "locked" => {
                Signal::SecondFactor(CodeMethod::Code, CodeOutcome::Locked)
            }
            E::CodeFailed => Signal::SecondFactor(CodeMethod::Code, CodeOutcome::Wrong),
            E::PasskeyFailed => Signal::SecondFactor(CodeMethod::Passkey, CodeOutcome::Wrong),
            E::CodeLockedOut => Signal::LockedOut(LockKind::Code),
            E::PasswordLockedOut => Signal::LockedOut(LockKind::Password),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use AuditEvent as E;

    #[test]
    fn the_details_the_engine_writes_name_the_method() {
        let of = Signal::of;
        let sf = Signal::SecondFactor;
        assert_eq!(
            of(E::CodeSucceeded, Some("factor=1")),
            Some(sf(CodeMethod::App, CodeOutcome::Ok))
        );
        assert_eq!(
            of(E::CodeSucceeded, Some("factor=1 kind=sms")),
            Some(sf(CodeMethod::Sms, CodeOutcome::Ok))
        );
        assert_eq!(
            of(E::CodeFailed, None),
            Some(sf(CodeMethod::Code, CodeOutcome::Wrong))
        );
        assert_eq!(
            of(E::CodeFailed, Some("recovery code: locked")),
            Some(sf(CodeMethod::Recovery, CodeOutcome::Locked))
        );
        assert_eq!(
            of(E::CodeFailed, Some("set-up of factor=1: locked")),
            Some(Signal::SetUpCodeWrong)
        );
        assert_eq!(
            of(E::PasswordLockedOut, None),
            Some(Signal::LockedOut(LockKind::Password))
        );
        assert_eq!(of(E::MailSent, None), None);
    }
}
