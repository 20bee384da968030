//! Imported password hashes (bcrypt, PBKDF2, scrypt, older Argon2) are replaced by
//! the configured Argon2id the first time their password is proven.

use super::Tweestap;
use crate::account::Account;
use crate::audit::{AuditEvent, RequestContext};
use crate::error::Result;

impl Tweestap {
    /// After `password` verified against `account`'s stored hash: stores a hash made
    /// with the configured Argon2id when the stored one is of another format or has
    /// weaker parameters. A password changed meanwhile is left alone.
    pub(super) async fn upgrade_password_hash(
        &self,
        account: &Account,
        password: &str,
        ctx: &RequestContext,
    ) -> Result<()> {
        let old = account.password_hash.as_str();
        if !self.hasher.needs_rehash(old) {
            return Ok(());
        }
        let from = crate::password::formats::recognise(old)
            .map(|f| f.as_str())
            .unwrap_or("unknown");
        let new = self.hasher.hash(password).await?;
        if self
            .store
            .upgrade_password_hash(account.id, old, &new)
            .await?
        {
            let detail = Some(format!("from={from} to=argon2id"));
            self.audit(
                AuditEvent::PasswordHashUpgraded,
                Some(account),
                None,
                ctx,
                detail,
            )
            .await?;
        }
        Ok(())
    }
}
