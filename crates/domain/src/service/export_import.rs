//! Moving an installation: everything worth keeping exported as one document, and
//! loaded into an empty database.

use super::Tweestap;
use crate::error::{Error, Result};
use crate::snapshot::Snapshot;
use crate::store::StoreError;

/// What an import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportSummary {
    pub accounts: usize,
    pub factors: usize,
    pub audit: usize,
    pub signing_keys: usize,
    pub clients: usize,
    pub consents: usize,
}

impl Tweestap {
    /// Everything worth keeping, as one document (see [`crate::snapshot`]).
    pub async fn export(&self) -> Result<Snapshot> {
        let contents = self.store.export_contents().await?;
        Ok(Snapshot::new(&contents, self.clock.now()))
    }

    /// Loads an export into an empty database in one transaction. Every secret is
    /// opened first, so a wrong secret key is caught before anything is written.
    pub async fn import(&self, snapshot: &Snapshot) -> Result<ImportSummary> {
        let contents = snapshot.contents()?;
        for f in &contents.factors {
            self.secrets
                .open(&f.secret_sealed, f.id.0.as_bytes())
                .map_err(|_| Error::ForeignKey(f.id.0))?;
        }
        for k in &contents.signing_keys {
            self.secrets
                .open(&k.private_sealed, k.kid.as_bytes())
                .map_err(|_| Error::ForeignSigningKey(k.kid.clone()))?;
        }
        match self.store.import_contents(&contents).await {
            Err(StoreError::Conflict) => return Err(Error::NotEmpty),
            r => r?,
        }
        Ok(ImportSummary {
            accounts: contents.accounts.len(),
            factors: contents.factors.len(),
            audit: contents.audit.len(),
            signing_keys: contents.signing_keys.len(),
            clients: contents.clients.len(),
            consents: contents.consents.len(),
        })
    }
}
