//! Invitations: an account made by an administrator (one by one or imported) gets
//! a mail with a single-use link to choose a password, valid for the policy's
//! `invite_days`. The link is a password link (only its SHA-256 is stored, as for a
//! forgotten password); once the password is chosen, signing in leads on to setting
//! up two-step verification as the policy asks.

use super::Tweestap;
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;
use crate::mail::{new_mail_id, seal_link, Notice};
use crate::store::NewPasswordReset;
use crate::token::Token;

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
        let now = self.clock.now();
        let token = Token::generate();
        self.store
            .insert_password_reset(&NewPasswordReset {
                token_hash: token.hash(),
                account_id: account.id,
                created_at: now,
                expires_at: now + chrono::Duration::days(i64::from(days)),
                invite: true,
            })
            .await?;
        let mail_id = new_mail_id();
        let link = format!(
            "{}/password/reset/{}",
            base_url.trim_end_matches('/'),
            token.as_str()
        );
        let notice = Notice::Invite {
            link_sealed: seal_link(&self.secrets, mail_id, &link),
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
