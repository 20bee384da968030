//! What support staff and admins do for others: find an account, reset its
//! two-step verification, give it a personal address.

use super::Tweestap;
use crate::account::{Account, AccountId, Email, Role};
use crate::audit::{AuditEvent, RequestContext};
use crate::enrollment::LinkPurpose;
use crate::error::{Error, Result};
use crate::factor::{Factor, FactorKind};
use crate::mail::{new_mail_id, seal_link, Notice};
use crate::store::StoreError;
use chrono::{DateTime, Utc};

/// Accounts shown per search.
pub const SEARCH_LIMIT: u32 = 50;

/// Who acts on someone else's account.
#[derive(Debug, Clone, Copy)]
pub enum Actor<'a> {
    /// A signed-in person; their role decides what they may do.
    Staff(&'a Account),
    /// The operator at the server's command line (who can read the database anyway).
    Console,
}

impl Actor<'_> {
    fn name(&self) -> String {
        match self {
            Actor::Staff(a) => format!("{} ({})", a.email, a.role),
            Actor::Console => "command line".to_owned(),
        }
    }

    fn is_staff(&self) -> bool {
        match self {
            Actor::Staff(a) => matches!(a.role, Role::Support | Role::Admin),
            Actor::Console => true,
        }
    }

    fn is_admin(&self) -> bool {
        match self {
            Actor::Staff(a) => a.role == Role::Admin,
            Actor::Console => true,
        }
    }

    /// Support may help users and each other; only admins touch admins.
    fn may_manage(&self, target: &Account) -> bool {
        self.is_staff() && (target.role != Role::Admin || self.is_admin())
    }
}

/// An account as support sees it.
#[derive(Debug, Clone)]
pub struct AccountOverview {
    pub account: Account,
    /// Whether an active second factor is set up.
    pub two_factor: bool,
    pub shared_mailbox: bool,
    /// Whether the one looking may reset it (support cannot touch admins).
    pub manageable: bool,
    /// The active methods, oldest first: what a reset takes away.
    pub methods: Vec<MethodSummary>,
    /// Browsers remembered for 7 days (only for one account, `None` in a search).
    pub remembered_devices: Option<usize>,
}

/// One active second factor as support sees it: never its secret.
#[derive(Debug, Clone)]
pub struct MethodSummary {
    pub kind: FactorKind,
    /// For SMS the number, masked (`+32 4•• •• •• 56`); for an app its label.
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<&Factor> for MethodSummary {
    fn from(f: &Factor) -> Self {
        MethodSummary {
            kind: f.kind,
            // The label of an SMS factor is the masked number (see `service::sms`).
            label: f.label.clone(),
            created_at: f.created_at,
            last_used_at: f.last_used_at,
        }
    }
}

impl Tweestap {
    async fn deny(&self, actor: Actor<'_>, ctx: &RequestContext, what: &str) -> Result<()> {
        let (account, detail) = match actor {
            Actor::Staff(a) => (Some(a), format!("{what}; role={}", a.role)),
            Actor::Console => (None, what.to_owned()),
        };
        self.audit(AuditEvent::SupportDenied, account, None, ctx, Some(detail))
            .await?;
        Err(Error::Forbidden)
    }

    async fn overview(&self, actor: Actor<'_>, account: Account) -> Result<AccountOverview> {
        let mut factors = self.active_factors(account.id).await?;
        factors.sort_by_key(|f| f.created_at);
        Ok(AccountOverview {
            two_factor: !factors.is_empty(),
            shared_mailbox: self.is_shared_mailbox(&account.email),
            manageable: actor.may_manage(&account),
            methods: factors.iter().map(MethodSummary::from).collect(),
            remembered_devices: None,
            account,
        })
    }

    /// Accounts whose address or name contains `query` (all when empty), for support.
    pub async fn find_accounts(
        &self,
        actor: Actor<'_>,
        query: &str,
        ctx: &RequestContext,
    ) -> Result<Vec<AccountOverview>> {
        if !actor.is_staff() {
            self.deny(actor, ctx, "support search").await?;
        }
        let found = self
            .store
            .search_accounts(query.trim(), SEARCH_LIMIT)
            .await?;
        let mut out = Vec::with_capacity(found.len());
        for a in found {
            out.push(self.overview(actor, a).await?);
        }
        Ok(out)
    }

    /// One account, for support.
    pub async fn account_overview(
        &self,
        actor: Actor<'_>,
        id: AccountId,
        ctx: &RequestContext,
    ) -> Result<AccountOverview> {
        if !actor.is_staff() {
            self.deny(actor, ctx, "support view").await?;
        }
        let account = self.store.account_by_id(id).await?.ok_or(Error::NotFound)?;
        let mut o = self.overview(actor, account).await?;
        o.remembered_devices = Some(self.devices(id).await?.len());
        Ok(o)
    }

    /// The account with this address (for the command line).
    pub async fn account_by_email(&self, email: &str) -> Result<Account> {
        let email = Email::parse(email).map_err(|_| Error::InvalidEmail)?;
        self.store
            .account_by_email(&email)
            .await?
            .ok_or(Error::NotFound)
    }

    /// Support reset: every factor and session of the account is void at once, the
    /// user gets a new QR link by mail, and the audit log keeps who did it and why.
    /// Returns when the new link stops working.
    pub async fn reset_two_factor(
        &self,
        actor: Actor<'_>,
        target: AccountId,
        reason: &str,
        base_url: &str,
        ctx: &RequestContext,
    ) -> Result<DateTime<Utc>> {
        let reason = reason.trim();
        let account = self
            .store
            .account_by_id(target)
            .await?
            .ok_or(Error::NotFound)?;
        if !actor.may_manage(&account) {
            let what = format!("reset of {} ({})", account.email, account.role);
            self.deny(actor, ctx, &what).await?;
        }
        if reason.is_empty() {
            return Err(Error::ReasonRequired);
        }
        let (link, url) = self.new_link(&account, LinkPurpose::SupportReset, base_url);
        // The mail with the new link is stored with the reset itself: a reset never
        // happens without the way back in going out.
        let mail_id = new_mail_id();
        let notice = Notice::TwoFactorReset {
            link_sealed: seal_link(&self.secrets, mail_id, &url),
            valid_days: self.link_days(),
        };
        // The user's language, not the support person's.
        let mail = self.mail_in(&account, mail_id, notice, account.language);
        self.store
            .reset_two_factor(account.id, &link, Some(&mail))
            .await?;
        // Its sessions ended: the portals they reached are told.
        self.logout_wakeup.notify_one();
        // One line, so a reason with line breaks cannot forge audit entries.
        let reason_line: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(500)
            .collect();
        let detail = format!("by={} reason={reason_line}", actor.name());
        self.audit(
            AuditEvent::TwoFactorReset,
            Some(&account),
            None,
            ctx,
            Some(detail),
        )
        .await?;
        self.mail_queued(&account, &mail, ctx).await?;
        Ok(link.expires_at)
    }

    /// Gives an account a new address (admins only), e.g. to turn a shared mailbox
    /// into a personal account. The old address stays in the audit log.
    pub async fn change_email(
        &self,
        actor: Actor<'_>,
        target: AccountId,
        new_email: &str,
        ctx: &RequestContext,
    ) -> Result<Account> {
        let account = self
            .store
            .account_by_id(target)
            .await?
            .ok_or(Error::NotFound)?;
        if !actor.is_admin() {
            let what = format!("address change of {}", account.email);
            self.deny(actor, ctx, &what).await?;
        }
        let email = Email::parse(new_email).map_err(|_| Error::InvalidEmail)?;
        if email == account.email {
            return Ok(account);
        }
        match self.store.change_email(account.id, &email).await {
            Err(StoreError::Conflict) => return Err(Error::EmailTaken),
            r => r?,
        }
        let detail = format!("old={} new={} by={}", account.email, email, actor.name());
        self.audit(
            AuditEvent::EmailChanged,
            Some(&account),
            Some(email.as_str()),
            ctx,
            Some(detail),
        )
        .await?;
        self.store
            .account_by_id(target)
            .await?
            .ok_or(Error::NotFound)
    }
}
