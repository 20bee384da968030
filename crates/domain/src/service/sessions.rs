//! Sessions: made at sign-in, looked up on every request (with their expiry), ended
//! at sign-out, and swapped for a full one when an enrolment-only session is done.

use super::{SessionInfo, Tweestap};
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;
use crate::session::{new_sid, Session, SessionStage};
use crate::store::SecondSteps;
use crate::token::{Token, TokenHash};
use chrono::{DateTime, Utc};

impl Tweestap {
    /// A new signed-in session, stored with the account's last sign-in (a session
    /// not signed in yet goes through [`Self::create_session_audited`]).
    pub(super) async fn create_session(
        &self,
        account: &Account,
        amr: &str,
        auth_time: DateTime<Utc>,
        sid: Option<String>,
        ctx: &RequestContext,
    ) -> Result<Token> {
        let stage = SessionStage::Authenticated;
        let (token, s) = self.new_session(account, stage, amr, auth_time, sid, ctx);
        // Both writes go out at once (on SQLite they share a commit); the last
        // sign-in is for the console's list ("not signed in since").
        let (stored, marked) = tokio::join!(
            self.store.insert_session(&s),
            self.store.set_last_sign_in(account.id, s.created_at)
        );
        stored?;
        marked?;
        Ok(token)
    }

    /// A new session of `account` and its token, not yet stored.
    pub(super) fn new_session(
        &self,
        account: &Account,
        stage: SessionStage,
        amr: &str,
        auth_time: DateTime<Utc>,
        sid: Option<String>,
        ctx: &RequestContext,
    ) -> (Token, Session) {
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
            sid: sid.unwrap_or_else(new_sid),
        };
        (token, s)
    }

    /// A new session that is not signed in yet (a half-finished sign-in, or one
    /// that may only set up two-step verification), stored in one commit with the
    /// audit row that tells of it: neither is ever there without the other (and
    /// on PostgreSQL one wait for the disk, not two). Its `amr` is `pwd`: it is
    /// read only once signed in, and the step that finishes writes its own.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn create_session_audited(
        &self,
        account: &Account,
        stage: SessionStage,
        auth_time: DateTime<Utc>,
        sid: Option<String>,
        ctx: &RequestContext,
        event: AuditEvent,
        detail: Option<String>,
    ) -> Result<Token> {
        debug_assert_ne!(stage, SessionStage::Authenticated);
        let (token, session) = self.new_session(account, stage, "pwd", auth_time, sid, ctx);
        let row = self.audit_row(event, Some(account), None, ctx, detail.clone());
        self.store.insert_session_audited(&session, &row).await?;
        self.told(event, detail.as_deref());
        Ok(token)
    }

    /// The live session named by `token`, if any. Expired sessions are deleted;
    /// authenticated ones have their idle timer refreshed.
    pub async fn session(&self, token: &Token) -> Result<Option<SessionInfo>> {
        let hash = token.hash();
        // One query for both: this runs on every signed-in request.
        let Some((session, account)) = self.store.session_with_account(&hash).await? else {
            return Ok(None);
        };
        self.live_session(&hash, session, account).await
    }

    /// [`Self::session`] with the account's second steps (as
    /// [`Self::second_steps`] answers them), read in the same query.
    pub async fn session_with_steps(
        &self,
        token: &Token,
    ) -> Result<Option<(SessionInfo, SecondSteps)>> {
        let hash = token.hash();
        let Some((session, account, steps)) = self.store.session_with_second_steps(&hash).await?
        else {
            return Ok(None);
        };
        let Some(info) = self.live_session(&hash, session, account).await? else {
            return Ok(None);
        };
        Ok(Some((info, self.current_steps(steps))))
    }

    /// A session just read with its account, if it still counts: an expired one, or
    /// one of a disabled account, is deleted; a signed-in one seen again is touched.
    pub(super) async fn live_session(
        &self,
        hash: &TokenHash,
        session: Session,
        account: Account,
    ) -> Result<Option<SessionInfo>> {
        let now = self.clock.now();
        if self.settings.sessions.is_expired(&session, now) || account.disabled_at.is_some() {
            self.store.delete_session(hash).await?;
            return Ok(None);
        }
        // Only write when it matters, so every page view is not a database write.
        if session.stage == SessionStage::Authenticated
            && now - session.last_seen_at > self.settings.sessions.touch_after()
        {
            self.store.touch_session(hash, now).await?;
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
        let sid = info.session.sid.clone();
        let new = self
            .create_session(&info.account, "pwd otp", now, Some(sid.clone()), ctx)
            .await?;
        // A step-up that went through set-up: the session it replaces goes now.
        self.store
            .delete_other_sessions_with_sid(&sid, &new.hash())
            .await?;
        Ok(Some(new))
    }

    /// Forgets a session without auditing it: the browser is signing in anew. A
    /// signed-in one ends as at sign-out (its portals' tokens, back-channel logout).
    pub async fn discard_session(&self, token: &Token) -> Result<()> {
        match self.store.session(&token.hash()).await? {
            Some(s) if s.stage == SessionStage::Authenticated => {
                self.end_browser_sign_in(&s.sid).await?;
            }
            _ => self.store.delete_session(&token.hash()).await?,
        }
        Ok(())
    }

    /// Signing out: the session ends with everything portals hold of it.
    pub async fn logout(&self, token: &Token, ctx: &RequestContext) -> Result<()> {
        match self.session(token).await? {
            Some(info) => {
                self.audit(AuditEvent::Logout, Some(&info.account), None, ctx, None)
                    .await?;
                self.end_browser_sign_in(&info.session.sid).await?;
            }
            None => self.store.delete_session(&token.hash()).await?,
        }
        Ok(())
    }

    /// Ends browser sign-in `sid` (every session carrying it): its tokens are
    /// revoked and the portals it reached are told through the logout queue.
    pub(super) async fn end_browser_sign_in(&self, sid: &str) -> Result<()> {
        let queued = self.store.end_sid(sid, self.clock.now()).await?;
        if queued > 0 {
            self.logout_wakeup.notify_one();
        }
        Ok(())
    }

    /// Whether browser sign-in `sid` is still on: some signed-in session carries it
    /// and has not expired. Asked on every use of a token bound to it, so an ended
    /// session's tokens stop at once on every node.
    pub async fn sid_is_live(&self, sid: &str) -> Result<bool> {
        let now = self.clock.now();
        Ok(self.store.sessions_with_sid(sid).await?.iter().any(|s| {
            s.stage == SessionStage::Authenticated && !self.settings.sessions.is_expired(s, now)
        }))
    }
}
