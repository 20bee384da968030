//! Invitations: an account made by an administrator (one by one or imported) gets
//! a mail with a single-use link to choose a password, valid for the policy's
//! `invite_days`. The link is a password link (only its SHA-256 is stored, as for a
//! forgotten password); once the password is chosen, signing in leads on to setting
//! up two-step verification as the policy asks.

use super::Tweestap;
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;
use crate::mail::Notice;

impl Tweestap {
    /// Mails an invitation to `account` (a newer one ends older links).
    pub async fn invite_account(
        &self,
        account: &Account,
        base_url: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.send_invite(account, base_url, None, ctx).await
    }

    /// [`Self::invite_account`] on an administrator's behalf (audited with them).
    pub(super) async fn invite_by(
        &self,
        admin: &Account,
        account: &Account,
        base_url: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.send_invite(account, base_url, Some(admin), ctx).await
    }

    async fn send_invite(
        &self,
        account: &Account,
        base_url: &str,
        by: Option<&Account>,
        ctx: &RequestContext,
    ) -> Result<()> {
        let days = self.policy().invite_days;
        let expires = self.clock.now() + chrono::Duration::days(i64::from(days));
        let (mail_id, link_sealed) = self
            .new_password_link(account, expires, true, base_url)
            .await?;
        let notice = Notice::Invite {
            link_sealed,
            valid_days: i64::from(days),
        };
        let detail = match by {
            Some(admin) => format!("mail={mail_id} valid_days={days} by={}", admin.email),
            None => format!("mail={mail_id} valid_days={days}"),
        };
        self.audit(
            AuditEvent::AccountInvited,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await?;
        self.queue_notice(account, mail_id, notice, account.language, ctx)
            .await
    }
}
