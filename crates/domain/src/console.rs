//! The roll-out console's vocabulary: which second factors an account has, the
//! filters of the account list and its keyset cursor, the roll-out counts, and the
//! stages of the reminder campaign.

use crate::account::{Account, Role};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, NaiveDate, Utc};

/// What an account has set up as second factor (passkeys will join).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TwoFactorState {
    None,
    App,
    Sms,
    Both,
    /// A passkey, and no app or SMS.
    Passkey,
}

impl TwoFactorState {
    pub const ALL: [TwoFactorState; 5] =
        [Self::None, Self::App, Self::Sms, Self::Both, Self::Passkey];

    /// The state of an account with these kinds of factor (a passkey beside an app
    /// or SMS counts as that app or SMS).
    pub fn of(app: bool, sms: bool, passkey: bool) -> Self {
        match (app, sms) {
            (false, false) if passkey => Self::Passkey,
            (false, false) => Self::None,
            (true, false) => Self::App,
            (false, true) => Self::Sms,
            (true, true) => Self::Both,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::App => "app",
            Self::Sms => "sms",
            Self::Both => "both",
            Self::Passkey => "passkey",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// The console's account list: every filter is optional.
#[derive(Debug, Clone, Default)]
pub struct AccountFilter {
    /// A part of the address or the name (case-insensitive).
    pub q: Option<String>,
    pub two_factor: Option<TwoFactorState>,
    pub role: Option<Role>,
    /// Only shared mailboxes (true) or only personal addresses (false).
    pub shared_mailbox: Option<bool>,
    pub disabled: Option<bool>,
    /// Not signed in since this moment (never counts as not since).
    pub inactive_since: Option<DateTime<Utc>>,
}

/// One account in the console's list.
#[derive(Debug, Clone)]
pub struct AccountListing {
    pub account: Account,
    pub two_factor: TwoFactorState,
    pub last_sign_in_at: Option<DateTime<Utc>>,
}

/// Where the next page of the list starts: after this address (accounts are listed
/// by address, which is unique, so a page never repeats or skips one however the
/// list changes in between). Opaque to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(pub String);

impl Cursor {
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// The place a cursor from a client names; None when it cannot be one this list
    /// gave: not base64url, or text no address has (control characters: a NUL would
    /// also fail the PostgreSQL query with a server error).
    pub fn decode(s: &str) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(s).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        (!text.chars().any(char::is_control)).then_some(Self(text))
    }
}

/// How many accounts of one role have which second factors.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RolloutCounts {
    pub none: u64,
    pub app: u64,
    pub sms: u64,
    pub both: u64,
    /// A passkey only.
    pub passkey: u64,
}

impl RolloutCounts {
    pub fn total(&self) -> u64 {
        self.none + self.app + self.sms + self.both + self.passkey
    }

    /// Accounts with any second factor.
    pub fn with_two_factor(&self) -> u64 {
        self.app + self.sms + self.both + self.passkey
    }

    pub fn add(&mut self, state: TwoFactorState, n: u64) {
        match state {
            TwoFactorState::None => self.none += n,
            TwoFactorState::App => self.app += n,
            TwoFactorState::Sms => self.sms += n,
            TwoFactorState::Both => self.both += n,
            TwoFactorState::Passkey => self.passkey += n,
        }
    }
}

/// One day of the roll-out: per role, the counts at the end of that day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutDay {
    pub day: NaiveDate,
    pub role: Role,
    pub counts: RolloutCounts,
}

/// The reminder stage due for a deadline today: the latest configured stage (days
/// before the deadline) whose day has come, or None before the first stage and from
/// the deadline on. Stages passed before an account became due are skipped by
/// sending only this latest one.
pub fn due_stage(stages: &[u32], deadline: NaiveDate, today: NaiveDate) -> Option<u32> {
    let left = (deadline - today).num_days();
    if left <= 0 {
        return None;
    }
    stages
        .iter()
        .copied()
        .filter(|&s| i64::from(s) >= left)
        .min()
}

/// The next stage still to come after `today`, with its date.
pub fn next_stage(
    stages: &[u32],
    deadline: NaiveDate,
    today: NaiveDate,
) -> Option<(u32, NaiveDate)> {
    let left = (deadline - today).num_days();
    stages
        .iter()
        .copied()
        .filter(|&s| i64::from(s) < left)
        .max()
        .map(|s| (s, deadline - chrono::Duration::days(i64::from(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn the_latest_stage_whose_day_has_come() {
        let stages = [30, 14, 7, 1];
        let deadline = d("2027-01-01");
        assert_eq!(due_stage(&stages, deadline, d("2026-11-01")), None);
        assert_eq!(due_stage(&stages, deadline, d("2026-12-02")), Some(30));
        assert_eq!(due_stage(&stages, deadline, d("2026-12-17")), Some(30));
        assert_eq!(due_stage(&stages, deadline, d("2026-12-18")), Some(14));
        // Became due late: only the latest stage, not the ones it missed.
        assert_eq!(due_stage(&stages, deadline, d("2026-12-26")), Some(7));
        assert_eq!(due_stage(&stages, deadline, d("2026-12-31")), Some(1));
        assert_eq!(due_stage(&stages, deadline, d("2027-01-01")), None);
        assert_eq!(
            next_stage(&stages, deadline, d("2026-12-20")),
            Some((7, d("2026-12-25")))
        );
        assert_eq!(next_stage(&stages, deadline, d("2026-12-31")), None);
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Cursor("an+x@example.be".into());
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("%%%"), None);
    }

    /// Found by fuzzing (fuzz target console_cursor): a forged cursor could name text
    /// with control characters, a NUL among them, which PostgreSQL refuses in a query
    /// (a 500 instead of a 400).
    #[test]
    fn a_cursor_names_no_control_characters() {
        for forged in ["AA", "Jj0H", "YQlh", "YQph"] {
            assert_eq!(Cursor::decode(forged), None, "{forged}");
        }
        let c = Cursor("zoë+x@example.be".into());
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
    }

    #[test]
    fn states() {
        assert_eq!(TwoFactorState::of(true, true, false), TwoFactorState::Both);
        assert_eq!(TwoFactorState::parse("sms"), Some(TwoFactorState::Sms));
        assert_eq!(
            TwoFactorState::parse("passkey"),
            Some(TwoFactorState::Passkey)
        );
        assert_eq!(
            TwoFactorState::of(false, false, true),
            TwoFactorState::Passkey
        );
        assert_eq!(TwoFactorState::of(true, false, true), TwoFactorState::App);
        assert_eq!(TwoFactorState::parse("fax"), None);
    }
}
