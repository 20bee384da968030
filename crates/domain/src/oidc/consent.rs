//! What a person allowed a third-party client (its own module: storage, the
//! export and the engine all speak of it, and it depends on nothing).

use chrono::{DateTime, Utc};

/// What a person allowed a third-party client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub client_id: String,
    /// Space-separated.
    pub scope: String,
    pub granted_at: DateTime<Utc>,
}
