//! Mailed links: forgotten-password links and set-up (QR) links, and the support
//! reset that issues one.

use crate::account::AccountId;
use crate::enrollment::EnrollmentLink;
use crate::error::StoreResult;
use crate::mail::NewMail;
use crate::token::TokenHash;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// A forgotten-password link as stored: only the hash of its token.
#[derive(Debug, Clone)]
pub struct NewPasswordReset {
    pub token_hash: TokenHash,
    pub account_id: AccountId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    /// An invitation (an account's first password) rather than a forgotten one.
    pub invite: bool,
}

#[async_trait]
pub trait LinkStore: Send + Sync + 'static {
    /// Stores a new reset link and, in the same transaction, ends every other open
    /// link of the account (`used_at = created_at`).
    async fn insert_password_reset(&self, r: &NewPasswordReset) -> StoreResult<()>;
    /// The account of an open link (unused, `expires_at > now`), without using it.
    async fn password_reset_account(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>>;
    /// Whether an open password link is an invitation.
    async fn password_reset_is_invite(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<bool>;
    /// Uses an open link, atomically: one `UPDATE ... WHERE used_at IS NULL AND
    /// expires_at > now`; of two concurrent claims exactly one gets the account.
    async fn claim_password_reset(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>>;
    /// Sets a new password through an open link of `account`, in one transaction:
    /// the link is used (one conditional `UPDATE`, as [`Self::claim_password_reset`])
    /// and the password changed with all that `AccountStore::change_password`
    /// does, `notice` included. False, and nothing changed, when the link is not
    /// open. A crash leaves the link open or the password changed, never a used
    /// link with the old password.
    async fn use_password_reset(
        &self,
        token_hash: &TokenHash,
        account: AccountId,
        password_hash: &str,
        now: DateTime<Utc>,
        notice: Option<&NewMail>,
    ) -> StoreResult<bool>;

    /// Stores a new QR link and, in the same transaction, ends the account's other
    /// open links (`used_at = created_at`).
    async fn insert_enrollment_link(&self, l: &EnrollmentLink) -> StoreResult<()>;
    async fn enrollment_link(&self, token_hash: &TokenHash) -> StoreResult<Option<EnrollmentLink>>;
    /// Uses an open link, atomically (one conditional `UPDATE`): of two concurrent
    /// claims exactly one gets the account.
    async fn claim_enrollment_link(
        &self,
        token_hash: &TokenHash,
        now: DateTime<Utc>,
    ) -> StoreResult<Option<AccountId>>;
    /// A support reset, in one transaction: every factor, session (and so every
    /// mailed code), open link and portal grant (OIDC tokens and codes) of the
    /// account is gone, `link` is the one open link left, and `notice` (the mail
    /// carrying that link) is queued.
    async fn reset_two_factor(
        &self,
        account: AccountId,
        link: &EnrollmentLink,
        notice: Option<&NewMail>,
    ) -> StoreResult<()>;
}
