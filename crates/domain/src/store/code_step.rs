//! The code step's writes that must stand or fall together: a passed step, and an
//! app code taken, counted and (if it holds) passed in one commit.

use crate::account::AccountId;
use crate::audit::AuditRecord;
use crate::error::StoreResult;
use crate::factor::FactorId;
use crate::session::Session;
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// What a passed code step writes, all or none: the new signed-in `session` (the
/// account's last sign-in is its `created_at`), the account's code failures and
/// lock cleared, the half-finished session `half` ended with every other session of
/// the new one's sid (after a step-up, the session it replaces), and `audit`.
#[derive(Debug, Clone, Copy)]
pub struct PassedStep<'a> {
    pub session: &'a Session,
    pub half: &'a TokenHash,
    pub audit: Option<&'a AuditRecord>,
}

/// An app code that matched `factor` at time step `step`, taken as one attempt of
/// the account's code step (see `AccountStore::reserve_attempt` for
/// `max_failures` and `hold`).
#[derive(Debug, Clone, Copy)]
pub struct AppCode {
    pub account: AccountId,
    pub factor: FactorId,
    pub step: i64,
    pub max_failures: u32,
    pub hold: DateTime<Utc>,
    pub now: DateTime<Utc>,
}

/// What taking an app code came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppCodeTaken {
    /// The code step is locked: nothing was written, the step is not used up.
    Locked,
    /// The step was used before (a replay): the attempt counts as a failure, with
    /// this many failures now (the lock is set as `reserve_attempt` sets it).
    Replayed(u32),
    /// The step is claimed and the [`PassedStep`] written.
    Passed,
    /// The half-finished session is gone (ended meanwhile: by a password change,
    /// or by another code that passed): nothing was written, the attempt not
    /// counted, the step not used up.
    Gone,
}

#[async_trait]
pub trait CodeStepStore: Send + Sync + 'static {
    /// Writes a passed code step (see [`PassedStep`]) in one transaction, if its
    /// half-finished session is still there (read with a lock, so that one ended
    /// by a transaction in parallel counts as gone): whether it was. So one
    /// half-finished sign-in becomes at most one signed-in session, and none
    /// once a password change ended it.
    async fn pass_code_step(&self, passed: &PassedStep<'_>) -> StoreResult<bool>;

    /// An app code, in one transaction (on PostgreSQL one statement): unless the
    /// code step is locked at `code.now` or the half-finished session is gone
    /// (as for [`Self::pass_code_step`]), claims `code.step` of the factor (a step
    /// is accepted once, by one node) and, if that holds, writes `passed`;
    /// otherwise counts the attempt as a failure. Parallel attempts on the account
    /// are counted one after another, as by `reserve_attempt`, so a right code that
    /// comes while wrong ones lock the step does not count.
    async fn take_app_code(
        &self,
        code: &AppCode,
        passed: &PassedStep<'_>,
    ) -> StoreResult<AppCodeTaken>;
}
