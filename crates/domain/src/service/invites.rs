//! Invitations: a mailed single-use link, valid for days, to choose a password and
//! then set up two-step verification.

use super::Tweestap;
use crate::account::Account;
use crate::audit::RequestContext;
use crate::error::Result;

impl Tweestap {
    /// Mails `account` an invitation. A stand-in that sends nothing, until the
    /// invitation journey (built beside the account import, which calls this) lands.
    pub(crate) async fn invite_account(
        &self,
        _account: &Account,
        _base_url: &str,
        _ctx: &RequestContext,
    ) -> Result<()> {
        Ok(())
    }
}
