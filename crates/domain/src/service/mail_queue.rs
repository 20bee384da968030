//! The mail queue as the engine sees it: notices composed in the right language and
//! queued with the change that caused them, and the delivery worker's side (claiming
//! due mail, recording how each attempt went).

use super::Tweestap;
use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;
use crate::language::Language;
use crate::mail::{new_mail_id, Delivery, NewMail, Notice, QueuedMail};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

impl Tweestap {
    /// Queues `notice` for `account`, in the language of the request that caused it
    /// (remembered for later mail) or else the account's. Never waits for SMTP: the
    /// delivery worker sends it.
    pub(super) async fn send_notice(
        &self,
        account: &Account,
        notice: Notice,
        ctx: &RequestContext,
    ) -> Result<()> {
        self.send_notice_as(account, new_mail_id(), notice, ctx)
            .await
    }

    /// [`Self::send_notice`] as mail `id` (which a sealed secret in it is bound to).
    pub(super) async fn send_notice_as(
        &self,
        account: &Account,
        id: Uuid,
        notice: Notice,
        ctx: &RequestContext,
    ) -> Result<()> {
        let mail = self.notice_mail(account, id, notice, ctx).await?;
        self.store.enqueue_mail(&mail).await?;
        self.mail_queued(account, &mail, ctx).await
    }

    /// The mail `id` of `notice` for `account`, in the language of the request that
    /// caused it (remembered for later mail) or else the account's; not queued yet,
    /// so a change and its notice can be stored together.
    pub(super) async fn notice_mail(
        &self,
        account: &Account,
        id: Uuid,
        notice: Notice,
        ctx: &RequestContext,
    ) -> Result<NewMail> {
        let language = ctx.language.unwrap_or(account.language);
        if language != account.language {
            self.store.set_language(account.id, language).await?;
        }
        Ok(self.mail_in(account, id, notice, language))
    }

    /// The mail `id` of `notice` for `account` in `language`.
    pub(super) fn mail_in(
        &self,
        account: &Account,
        id: Uuid,
        notice: Notice,
        language: Language,
    ) -> NewMail {
        NewMail {
            id,
            account_id: Some(account.id),
            to: account.email.to_string(),
            to_name: account.name.clone(),
            language,
            notice,
            created_at: self.clock.now(),
        }
    }

    /// Queues `notice` as mail `id` in `language` (without remembering the language).
    pub(super) async fn queue_notice(
        &self,
        account: &Account,
        id: Uuid,
        notice: Notice,
        language: Language,
        ctx: &RequestContext,
    ) -> Result<()> {
        let mail = self.mail_in(account, id, notice, language);
        self.store.enqueue_mail(&mail).await?;
        self.mail_queued(account, &mail, ctx).await
    }

    /// Mails of `kind` queued for the account in the last hour (sent or not): what
    /// the per-account hourly caps on reset links and mailed codes count.
    pub(super) async fn mails_last_hour(&self, account: AccountId, kind: &str) -> Result<u32> {
        let since = self.clock.now() - chrono::Duration::hours(1);
        Ok(self.store.mails_since(account, kind, since).await?)
    }

    /// After `mail` is stored in the queue: the audit entry, and this node's worker
    /// woken to send it.
    pub(super) async fn mail_queued(
        &self,
        account: &Account,
        mail: &NewMail,
        ctx: &RequestContext,
    ) -> Result<()> {
        let detail = format!("mail={} kind={}", mail.id, mail.notice.kind());
        self.audit(
            AuditEvent::MailQueued,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await?;
        self.mail_wakeup.notify_one();
        Ok(())
    }

    /// Notified whenever this node queues a message.
    pub fn mail_wakeup(&self) -> &Arc<Notify> {
        &self.mail_wakeup
    }

    /// Claims up to `limit` due messages for this worker (see the store's `claim_mail`);
    /// due-ness and the lease follow the injected clock.
    pub async fn claim_mail(&self, limit: u32) -> Result<Vec<QueuedMail>> {
        let now = self.clock.now();
        let lease_until = now + self.settings.mail_retry.lease;
        Ok(self
            .store
            .claim_mail(now, lease_until, Uuid::new_v4(), limit)
            .await?)
    }

    /// Records how a delivery attempt went: sent, to be retried with back-off, or
    /// given up (audited as `mail_failed`, with the error but never the body).
    pub async fn record_delivery(&self, mail: &QueuedMail, outcome: &Delivery) -> Result<()> {
        let now = self.clock.now();
        let ctx = RequestContext::default();
        let account = match mail.account_id {
            Some(id) => self.store.account_by_id(id).await?,
            None => None,
        };
        match outcome {
            Delivery::Sent => {
                if self.store.mark_mail_sent(mail, now).await? {
                    tracing::info!(mail = %mail.id, kind = %mail.kind, "mail sent");
                    let detail = format!("mail={} kind={}", mail.id, mail.kind);
                    self.audit(
                        AuditEvent::MailSent,
                        account.as_ref(),
                        Some(&mail.to),
                        &ctx,
                        Some(detail),
                    )
                    .await?;
                }
            }
            Delivery::Transient(error) => {
                match self
                    .settings
                    .mail_retry
                    .next_attempt(mail.attempts, mail.created_at, now)
                {
                    Some(at) => {
                        tracing::warn!(mail = %mail.id, attempts = mail.attempts, retry_at = %at, %error, "mail not delivered; will retry");
                        self.store.retry_mail(mail, at, error).await?;
                    }
                    None => {
                        tracing::error!(mail = %mail.id, attempts = mail.attempts, %error, "mail not delivered; giving up");
                        self.give_up_mail(mail, account.as_ref(), now, error)
                            .await?;
                    }
                }
            }
            Delivery::Permanent(error) => {
                tracing::error!(mail = %mail.id, %error, "mail refused; giving up");
                self.give_up_mail(mail, account.as_ref(), now, error)
                    .await?;
            }
        }
        Ok(())
    }

    /// Marks `mail` as given up and, if this worker's claim still held, audits it as
    /// `mail_failed` with the error (never the body).
    async fn give_up_mail(
        &self,
        mail: &QueuedMail,
        account: Option<&Account>,
        now: DateTime<Utc>,
        error: &str,
    ) -> Result<()> {
        if self.store.fail_mail(mail, now, error).await? {
            let detail = format!("mail={} kind={} error={error}", mail.id, mail.kind);
            self.audit(
                AuditEvent::MailFailed,
                account,
                Some(&mail.to),
                &RequestContext::default(),
                Some(detail),
            )
            .await?;
        }
        Ok(())
    }
}
