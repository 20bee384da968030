//! The one mechanism behind mailed and SMS codes: issued per half-finished session
//! and purpose, stored as a MAC, checked with a shared limit on tries.

use super::Tweestap;
use crate::account::AccountId;
use crate::error::Result;
use crate::factor::FactorId;
use crate::session_code::{new_code, CodePurpose, SessionCode};
use crate::token::TokenHash;
use zeroize::Zeroizing;

/// What became of a typed one-time code (mailed or sent by SMS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CodeCheck {
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
    pub(super) async fn issue_session_code(
        &self,
        session: &TokenHash,
        purpose: CodePurpose,
        account: AccountId,
        factor_id: Option<FactorId>,
        sends: u32,
    ) -> Result<Zeroizing<String>> {
        let code = Zeroizing::new(new_code());
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
    /// time. A right code is used up: only the check that deletes it has it, so two
    /// uses of it at once (one browser, two requests) have one winner.
    pub(super) async fn check_one_time_code(
        &self,
        stored: &SessionCode,
        typed: &str,
    ) -> Result<CodeCheck> {
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
        if !self.store.delete_session_code(session, purpose).await? {
            return Ok(CodeCheck::Expired);
        }
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

/// People type codes with spaces ("123 456"); apps show them that way too. Wiped
/// from memory when dropped.
pub(super) fn normalise_code(code: &str) -> Zeroizing<String> {
    Zeroizing::new(
        code.chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect(),
    )
}
