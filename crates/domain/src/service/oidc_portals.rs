//! What reaches the portals beyond a sign-in: the consents people give
//! third-party portals, the back-channel logout queue's delivery side, and
//! disabling an account (which ends all it holds).

use super::Tweestap;
use crate::account::{Account, AccountId};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::oidc::backchannel::{self, LogoutDelivery, QueuedLogout};
use crate::oidc::consent::Consent;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// A logout token ready to POST.
#[derive(Debug, Clone)]
pub struct LogoutPost {
    pub uri: String,
    pub logout_token: String,
}

/// How long a worker holds a claimed logout before another may try it.
const LOGOUT_LEASE_SECS: i64 = 60;

impl Tweestap {
    // ---- consent ----------------------------------------------------------------

    /// The person allowed `client_id` the scopes `scope` (space-separated), adding to
    /// what they allowed before.
    pub async fn give_consent(
        &self,
        account: &Account,
        client_id: &str,
        scope: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let before = self.store.oidc_consent(account.id, client_id).await?;
        let mut all: Vec<&str> = before.as_deref().unwrap_or_default().split(' ').collect();
        for s in scope.split(' ') {
            if !all.contains(&s) {
                all.push(s);
            }
        }
        all.retain(|s| !s.is_empty());
        let joined = all.join(" ");
        self.store
            .grant_oidc_consent(account.id, client_id, &joined, self.clock.now())
            .await?;
        let detail = format!("client {client_id}; scope {joined}");
        self.audit(
            AuditEvent::OidcConsentGiven,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await
    }

    /// The person said no to `client_id`.
    pub async fn audit_consent_denied(
        &self,
        account: &Account,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let detail = format!("client {client_id}");
        self.audit(
            AuditEvent::OidcConsentDenied,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await
    }

    /// The person's consents, with the client's name where it still exists.
    pub async fn consents(&self, account: AccountId) -> Result<Vec<(Consent, Option<String>)>> {
        let mut out = Vec::new();
        for c in self.store.oidc_consents(account).await? {
            let name = self.client(&c.client_id).await?.map(|x| x.name);
            out.push((c, name));
        }
        Ok(out)
    }

    /// Withdraws a consent: the client's tokens for the person stop at once.
    pub async fn revoke_consent(
        &self,
        account: &Account,
        client_id: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        if !self
            .store
            .revoke_oidc_consent(account.id, client_id, self.clock.now())
            .await?
        {
            return Err(Error::NotFound);
        }
        let detail = format!("client {client_id}");
        self.audit(
            AuditEvent::OidcConsentRevoked,
            Some(account),
            None,
            ctx,
            Some(detail),
        )
        .await
    }

    // ---- back-channel logout ------------------------------------------------------

    /// Notified whenever this node queues a logout token.
    pub fn logout_wakeup(&self) -> &Arc<Notify> {
        &self.logout_wakeup
    }

    /// Claims up to `limit` due logout tokens for this worker.
    pub async fn claim_logouts(&self, limit: u32) -> Result<Vec<QueuedLogout>> {
        let now = self.clock.now();
        let lease = now + chrono::Duration::seconds(LOGOUT_LEASE_SECS);
        Ok(self
            .store
            .claim_logouts(now, lease, Uuid::new_v4(), limit)
            .await?)
    }

    /// The signed logout token for `q` and where it goes; `None` when the client is
    /// gone or no longer has a back-channel logout URI (then it is dropped).
    pub async fn logout_post(&self, issuer: &str, q: &QueuedLogout) -> Result<Option<LogoutPost>> {
        let client = self.client(&q.client_id).await?;
        let Some((client, uri)) = client.and_then(|c| {
            let uri = c.options.backchannel_logout_uri.clone()?;
            Some((c, uri))
        }) else {
            self.store.finish_logout(q).await?;
            return Ok(None);
        };
        let claims = backchannel::logout_claims(issuer, q, self.clock.now());
        let logout_token = self
            .sign_jwt(&claims, client.id_token_alg, backchannel::LOGOUT_TOKEN_TYP)
            .await?;
        Ok(Some(LogoutPost { uri, logout_token }))
    }

    /// Records how a delivery went: done, tried again later with back-off, or given
    /// up; each audited.
    pub async fn record_logout(&self, q: &QueuedLogout, outcome: &LogoutDelivery) -> Result<()> {
        let now = self.clock.now();
        let ctx = RequestContext::default();
        let account = match Uuid::parse_str(&q.subject) {
            Ok(id) => self.store.account_by_id(AccountId(id)).await?,
            Err(_) => None,
        };
        let base = format!(
            "client {}; sid {}; attempt {}",
            q.client_id, q.sid, q.attempts
        );
        match outcome {
            LogoutDelivery::Delivered => {
                if self.store.finish_logout(q).await? {
                    self.audit(
                        AuditEvent::OidcBackchannelLogoutSent,
                        account.as_ref(),
                        None,
                        &ctx,
                        Some(base),
                    )
                    .await?;
                }
            }
            LogoutDelivery::Failed(why) => {
                match backchannel::next_attempt(q.attempts, q.created_at, now) {
                    Some(at) => {
                        tracing::warn!(client = %q.client_id, attempts = q.attempts, retry_at = %at, error = %why, "back-channel logout not delivered; will retry");
                        if self.store.retry_logout(q, at, why).await? {
                            self.audit(
                                AuditEvent::OidcBackchannelLogoutRetry,
                                account.as_ref(),
                                None,
                                &ctx,
                                Some(format!("{base}; {why}")),
                            )
                            .await?;
                        }
                    }
                    None => {
                        tracing::error!(client = %q.client_id, attempts = q.attempts, error = %why, "back-channel logout not delivered; giving up");
                        if self.store.finish_logout(q).await? {
                            self.audit(
                                AuditEvent::OidcBackchannelLogoutFailed,
                                account.as_ref(),
                                None,
                                &ctx,
                                Some(format!("{base}; {why}")),
                            )
                            .await?;
                        }
                    }
                }
            }
        }
        Ok(())
    }

    // ---- disabling accounts -------------------------------------------------------

    /// Disables (or enables again) the account with this address. Disabling ends
    /// its sessions, remembered browsers and every token portals hold, and tells
    /// the portals (back-channel logout).
    pub async fn set_account_disabled(&self, email: &str, disabled: bool) -> Result<Account> {
        let account = self.account_by_email(email).await?;
        let at = disabled.then(|| self.clock.now());
        self.store.set_disabled(account.id, at).await?;
        let event = if disabled {
            self.logout_wakeup.notify_one();
            AuditEvent::AccountDisabled
        } else {
            AuditEvent::AccountEnabled
        };
        self.audit(
            event,
            Some(&account),
            None,
            &RequestContext::default(),
            Some("by the command line".to_owned()),
        )
        .await?;
        Ok(Account {
            disabled_at: at,
            ..account
        })
    }
}
