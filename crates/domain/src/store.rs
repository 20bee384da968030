//! Storage as traits: one interface per area, one implementation shared by every
//! database (the `tweestap-store` crate).
//!
//! [`Store`] is the sum of the focused traits, so the engine holds one
//! `Arc<dyn Store>`. Code that calls store methods on a concrete type brings the
//! traits into scope with `use tweestap_domain::store::prelude::*`.

mod accounts;
mod audit;
mod code_step;
mod codes;
mod console;
mod devices;
mod factors;
mod links;
mod mail_queue;
mod oidc;
mod passkeys;
mod portals;
mod sealed;
mod sessions;
mod throttles;
mod upkeep;

pub use crate::error::{StoreError, StoreResult};
pub use accounts::{AccountStore, NewAccount, SignInAccount};
pub use audit::AuditStore;
pub use code_step::{AppCode, AppCodeTaken, CodeStepStore, PassedStep};
pub use codes::{CodeStore, SmsSendsOf};
pub use console::{AuditFilter, ConsoleStore, SentReminder};
pub use devices::{DeviceStore, SecondSteps};
pub use factors::FactorStore;
pub use links::{LinkStore, NewPasswordReset};
pub use mail_queue::MailQueue;
pub use oidc::OidcStore;
pub use passkeys::{Ceremony, PasskeyStore};
pub use portals::PortalStore;
pub use sealed::{Resealed, SealedAt, SealedKind, SealedStore, SealedValue};
pub use sessions::SessionStore;
pub use throttles::{Attempt, Bucket, BucketTake, ThrottleState, ThrottleStore};
pub use upkeep::Upkeep;

/// Everything the engine asks of a database.
pub trait Store:
    AccountStore
    + FactorStore
    + SessionStore
    + CodeStepStore
    + CodeStore
    + MailQueue
    + AuditStore
    + LinkStore
    + DeviceStore
    + OidcStore
    + PasskeyStore
    + PortalStore
    + SealedStore
    + ConsoleStore
    + ThrottleStore
    + Upkeep
{
}

impl<T> Store for T where
    T: AccountStore
        + FactorStore
        + SessionStore
        + CodeStepStore
        + CodeStore
        + MailQueue
        + AuditStore
        + LinkStore
        + DeviceStore
        + OidcStore
        + PasskeyStore
        + PortalStore
        + SealedStore
        + ConsoleStore
        + ThrottleStore
        + Upkeep
{
}

/// Every store trait, for `use tweestap_domain::store::prelude::*`.
pub mod prelude {
    pub use super::{
        AccountStore, AuditStore, CodeStepStore, CodeStore, ConsoleStore, DeviceStore, FactorStore,
        LinkStore, MailQueue, OidcStore, PasskeyStore, PortalStore, SealedStore, SessionStore,
        Store, ThrottleStore, Upkeep,
    };
}
