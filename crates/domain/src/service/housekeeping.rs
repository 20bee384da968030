//! Housekeeping every node may run: spent mail and links, and sessions no policy
//! could still accept, deleted.

use super::Tweestap;
use crate::error::Result;

impl Tweestap {
    /// Deletes sent mail and spent links older than 30 days (kept that long so a
    /// used link can still be told apart from an unknown one); safe on every node.
    pub async fn purge_spent(&self) -> Result<u64> {
        let before = self.clock.now() - chrono::Duration::days(30);
        Ok(self.store.delete_spent(before).await?)
    }

    /// Deletes sessions no policy could still accept; safe to run on every node.
    pub async fn purge_expired_sessions(&self) -> Result<u64> {
        let p = &self.settings.sessions;
        let oldest_useful = self.clock.now() - p.absolute.max(p.idle).max(p.second_factor);
        Ok(self.store.delete_expired_sessions(oldest_useful).await?)
    }
}
