//! Sessions: made at sign-in, looked up on every request (with their expiry), ended
//! at sign-out, and swapped for a full one when an enrolment-only session is done.

use super::{SessionInfo, Tweestap};
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;
use crate::session::{Session, SessionStage};
use crate::token::Token;
use chrono::{DateTime, Utc};

impl Tweestap {
    pub(super) async fn create_session(
        &self,
        account: &Account,
        stage: SessionStage,
        amr: &str,
        auth_time: DateTime<Utc>,
        ctx: &RequestContext,
    ) -> Result<Token> {
        let token = Token::generate();
        let now = self.clock.now();
        let s = Session {
            id_hash: token.hash(),
            account_id: account.id,
            stage,
            created_at: now,
            last_seen_at: now,
            auth_time,
            amr: amr.to_owned(),
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.clone(),
        };
        self.store.insert_session(&s).await?;
        Ok(token)
    }

    /// The live session named by `token`, if any. Expired sessions are deleted;
    /// authenticated ones have their idle timer refreshed.
    pub async fn session(&self, token: &Token) -> Result<Option<SessionInfo>> {
        let hash = token.hash();
        let Some(session) = self.store.session(&hash).await? else {
            return Ok(None);
        };
        let now = self.clock.now();
        if self.settings.sessions.is_expired(&session, now) {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        }
        let Some(account) = self.store.account_by_id(session.account_id).await? else {
            self.store.delete_session(&hash).await?;
            return Ok(None);
        };
        // Only write when it matters, so every page view is not a database write.
        if session.stage == SessionStage::Authenticated
            && now - session.last_seen_at > chrono::Duration::seconds(60)
        {
            self.store.touch_session(&hash, now).await?;
        }
        Ok(Some(SessionInfo { session, account }))
    }

    /// After a factor was confirmed in an enrolment-only session: replaces it by a
    /// fully authenticated one (a new id, as at sign-in). `None` if the session was
    /// not in that stage.
    pub async fn finish_enrollment(
        &self,
        token: &Token,
        ctx: &RequestContext,
    ) -> Result<Option<Token>> {
        let Some(info) = self.session(token).await? else {
            return Ok(None);
        };
        if info.session.stage != SessionStage::Enrollment
            || self.active_factors(info.account.id).await?.is_empty()
        {
            return Ok(None);
        }
        self.store.delete_session(&token.hash()).await?;
        let now = self.clock.now();
        let new = self
            .create_session(
                &info.account,
                SessionStage::Authenticated,
                "pwd otp",
                now,
                ctx,
            )
            .await?;
        Ok(Some(new))
    }

    /// Forgets a session without auditing it: the browser is signing in anew.
    pub async fn discard_session(&self, token: &Token) -> Result<()> {
        self.store.delete_session(&token.hash()).await?;
        Ok(())
    }

    pub async fn logout(&self, token: &Token, ctx: &RequestContext) -> Result<()> {
        if let Some(info) = self.session(token).await? {
            self.audit(AuditEvent::Logout, Some(&info.account), None, ctx, None)
                .await?;
        }
        self.store.delete_session(&token.hash()).await?;
        Ok(())
    }
}
