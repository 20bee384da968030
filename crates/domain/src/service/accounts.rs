//! Accounts: adding and listing them, their active factors, and what the
//! two-step policy asks of them.

use super::Tweestap;
use crate::account::{Account, AccountId, Email, Role};
use crate::audit::{AuditEvent, RequestContext};
use crate::error::{Error, Result};
use crate::factor::Factor;
use crate::policy::Requirement;
use crate::store::{NewAccount, StoreError};

impl Tweestap {
    pub async fn add_account(
        &self,
        email: &str,
        name: &str,
        role: Role,
        password: &str,
    ) -> Result<Account> {
        let email = Email::parse(email).map_err(|_| Error::InvalidEmail)?;
        self.settings.passwords.check(password, email.as_str())?;
        let new = NewAccount {
            id: AccountId::random(),
            email: email.clone(),
            name: name.trim().to_owned(),
            role,
            password_hash: self.hasher.hash(password).await?,
            created_at: self.clock.now(),
        };
        match self.store.insert_account(&new).await {
            Err(StoreError::Conflict) => return Err(Error::EmailTaken),
            other => other?,
        }
        let account = self
            .store
            .account_by_id(new.id)
            .await?
            .ok_or(Error::NotFound)?;
        self.audit(
            AuditEvent::AccountCreated,
            Some(&account),
            None,
            &RequestContext::default(),
            None,
        )
        .await?;
        Ok(account)
    }

    /// Whether an address is a shared mailbox (see [`crate::shared_mailbox`]).
    pub fn is_shared_mailbox(&self, email: &Email) -> bool {
        self.settings.shared_mailboxes.is_shared(email)
    }

    pub async fn accounts(&self) -> Result<Vec<Account>> {
        Ok(self.store.list_accounts().await?)
    }

    pub async fn active_factors(&self, account: AccountId) -> Result<Vec<Factor>> {
        Ok(self
            .store
            .factors_of(account)
            .await?
            .into_iter()
            .filter(Factor::is_active)
            .collect())
    }

    /// What the two-step policy asks of this account now.
    pub fn requirement(&self, account: &Account) -> Requirement {
        self.policy()
            .two_factor()
            .requirement(account.role, self.clock.now())
    }
}
