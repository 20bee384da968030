//! The audit log, and moving a whole database out and in (`tweestap export` and
//! `import`).

use crate::audit::AuditRecord;
use crate::error::StoreResult;
use crate::snapshot::Contents;
use async_trait::async_trait;

#[async_trait]
pub trait AuditStore: Send + Sync + 'static {
    async fn append_audit(&self, r: &AuditRecord) -> StoreResult<()>;
    async fn list_audit(&self, limit: u32, email: Option<&str>) -> StoreResult<Vec<AuditRecord>>;
    /// Every account, factor and audit record (oldest first), read in one
    /// transaction, for `tweestap export`.
    async fn export_contents(&self) -> StoreResult<Contents>;
    /// Writes an export in one transaction: all or nothing. `Conflict` when the
    /// database already holds an account (imports never merge).
    async fn import_contents(&self, c: &Contents) -> StoreResult<()>;
}
