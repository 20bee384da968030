//! "Forgot your password?": the single-use, expiring link mailed on request and the
//! new password set through it.

use super::Tweestap;
use crate::account::{AccountId, Email};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::mail::{new_mail_id, seal_link, Notice};
use crate::store::NewPasswordReset;
use crate::token::Token;
use std::sync::Arc;
use uuid::Uuid;

/// Reset mails sent per account in any hour; further requests are audited only.
pub const RESET_MAILS_PER_HOUR: u32 = 3;

/// One forgotten-password request at a time on this node, in the order they came
/// (see [`Tweestap::request_password_reset_later`]).
static RESET_REQUESTS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// How long a forgotten-password link works.
pub fn reset_link_validity() -> chrono::Duration {
    chrono::Duration::hours(1)
}

impl Tweestap {
    /// "Forgot your password?": mails a single-use link to `<base_url>/password/
    /// reset/<token>` when `email` names an account, at most
    /// [`RESET_MAILS_PER_HOUR`] per account. Answers `Ok(())` in every case (also
    /// for unknown addresses and when rate-limited), after the same lookups, so the
    /// caller cannot tell whether the address has an account. The database keeps only
    /// the token's SHA-256; the queued mail keeps the link sealed.
    pub async fn request_password_reset(
        &self,
        email: &str,
        base_url: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let account = match Email::parse(email) {
            Ok(e) => self.store.account_by_email(&e).await?,
            Err(_) => None,
        };
        let now = self.clock.now();
        // The rate-limit lookup runs for unknown addresses too (on an id no account
        // has), so both paths do the same reads.
        let counted = account.as_ref().map_or(AccountId(Uuid::nil()), |a| a.id);
        let recent = self
            .mails_last_hour(counted, Notice::PASSWORD_RESET)
            .await?;
        let event = AuditEvent::PasswordResetRequested;
        let Some(account) = account else {
            let detail = Some("unknown account".to_owned());
            return self
                .audit(event, None, Some(email.trim()), ctx, detail)
                .await;
        };
        if recent >= RESET_MAILS_PER_HOUR {
            let detail = Some(format!("rate limited, not sent; last_hour={recent}"));
            return self.audit(event, Some(&account), None, ctx, detail).await;
        }
        let (mail_id, link_sealed) = self
            .new_password_link(&account, now + reset_link_validity(), false, base_url)
            .await?;
        let notice = Notice::PasswordReset { link_sealed };
        let detail = Some(format!("mail={mail_id}"));
        self.audit(event, Some(&account), None, ctx, detail).await?;
        // In the language asked in, but an unauthenticated request does not change
        // the account's remembered language.
        let language = ctx.language.unwrap_or(account.language);
        self.queue_notice(&account, mail_id, notice, language, ctx)
            .await
    }

    /// [`Self::request_password_reset`] after the answer: the caller answers at once,
    /// as fast for an address without an account as for one with it (the link, the
    /// queued mail and their audit take time only for accounts), and the request
    /// runs in the background, one at a time on this node in the order they came,
    /// so a person's requests keep their hourly limit. A failure is logged.
    pub fn request_password_reset_later(
        self: &Arc<Self>,
        email: &str,
        base_url: &str,
        ctx: &RequestContext,
    ) {
        let app = Arc::clone(self);
        let (email, base_url, ctx) = (email.to_owned(), base_url.to_owned(), ctx.clone());
        tokio::spawn(async move {
            let _in_turn = RESET_REQUESTS.lock().await;
            if let Err(e) = app.request_password_reset(&email, &base_url, &ctx).await {
                tracing::error!("a forgotten-password request failed: {e}");
            }
        });
    }

    /// A new single-use link to `<base_url>/password/reset/<token>` for `account`
    /// (ending its older ones), valid until `expires_at`; only the token's hash is
    /// stored. Answers the id of the mail that will carry it and the link sealed for
    /// that mail.
    pub(super) async fn new_password_link(
        &self,
        account: &crate::account::Account,
        expires_at: chrono::DateTime<chrono::Utc>,
        invite: bool,
        base_url: &str,
    ) -> Result<(Uuid, String)> {
        let token = Token::generate();
        self.store
            .insert_password_reset(&NewPasswordReset {
                token_hash: token.hash(),
                account_id: account.id,
                created_at: self.clock.now(),
                expires_at,
                invite,
            })
            .await?;
        let mail_id = new_mail_id();
        let link = format!(
            "{}/password/reset/{}",
            base_url.trim_end_matches('/'),
            token.as_str()
        );
        Ok((mail_id, seal_link(&self.secrets, mail_id, &link)))
    }

    async fn reset_link_invalid(&self, ctx: &RequestContext, detail: &str) -> Result<()> {
        self.audit(
            AuditEvent::PasswordResetLinkInvalid,
            None,
            None,
            ctx,
            Some(detail.to_owned()),
        )
        .await?;
        Err(Error::InvalidResetLink)
    }

    /// Whether an open password link is an invitation (its page speaks of a first
    /// password, not a forgotten one).
    pub async fn reset_link_is_invite(&self, token: &str) -> Result<bool> {
        let Some(token) = Token::from_client(token) else {
            return Ok(false);
        };
        Ok(self
            .store
            .password_reset_is_invite(&token.hash(), self.clock.now())
            .await?)
    }

    /// Whether the link with `token` can still be used (for showing the form);
    /// [`Error::InvalidResetLink`] (audited) when not. Does not use it.
    pub async fn check_reset_link(&self, token: &str, ctx: &RequestContext) -> Result<()> {
        let Some(token) = Token::from_client(token) else {
            return self.reset_link_invalid(ctx, "malformed").await;
        };
        match self
            .store
            .password_reset_account(&token.hash(), self.clock.now())
            .await?
        {
            Some(_) => Ok(()),
            None => {
                self.reset_link_invalid(ctx, "unknown, expired or used")
                    .await
            }
        }
    }

    /// Sets a new password through a reset link. A weak password leaves the link
    /// usable; otherwise, in one transaction, the link is claimed atomically (once),
    /// the password changes, the password failures and lock are cleared, every
    /// session and other link of the account ends, and a notice is queued. The
    /// second factor and the code lock-out are untouched.
    pub async fn complete_password_reset(
        &self,
        token: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let Some(token) = Token::from_client(token) else {
            return self.reset_link_invalid(ctx, "malformed").await;
        };
        let hash = token.hash();
        let found = self
            .store
            .password_reset_account(&hash, self.clock.now())
            .await?;
        let account = match found {
            Some(id) => self.store.account_by_id(id).await?,
            None => None,
        };
        let Some(account) = account else {
            return self
                .reset_link_invalid(ctx, "unknown, expired or used")
                .await;
        };
        self.settings
            .passwords
            .check(password, account.email.as_str())?;
        let new_hash = self.hasher.hash(password).await?;
        let now = self.clock.now();
        let invite = self.store.password_reset_is_invite(&hash, now).await?;
        // A first password: no "your password was changed" notice to the person who
        // just chose it.
        let notice = if invite {
            None
        } else {
            let changed = Notice::PasswordChanged;
            Some(
                self.notice_mail(&account, new_mail_id(), changed, ctx)
                    .await?,
            )
        };
        // The link is used and the password set in one transaction: a crash between
        // them would leave the link used up and the old password.
        if !self
            .store
            .use_password_reset(&hash, account.id, &new_hash, now, notice.as_ref())
            .await?
        {
            return self.reset_link_invalid(ctx, "used concurrently").await;
        }
        let Some(notice) = notice else {
            return self
                .audit(AuditEvent::InviteAccepted, Some(&account), None, ctx, None)
                .await;
        };
        // Its sessions ended: the portals they reached are told.
        self.logout_wakeup.notify_one();
        self.audit(
            AuditEvent::PasswordResetCompleted,
            Some(&account),
            None,
            ctx,
            Some("sessions ended".to_owned()),
        )
        .await?;
        self.mail_queued(&account, &notice, ctx).await
    }
}
