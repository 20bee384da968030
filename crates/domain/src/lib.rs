//! The tweestap domain: accounts, factors, codes, sessions, policy and audit.
//!
//! Nothing in this crate knows about HTTP or SQL. Storage is reached through the
//! [`store::Store`] trait; the web layer only translates requests into calls on
//! [`service::Tweestap`].

pub mod account;
pub mod account_import;
pub mod audit;
pub mod clock;
pub mod console;
pub mod device;
pub mod enrollment;
pub mod error;
pub mod factor;
#[doc(hidden)]
pub mod fuzzing;
pub mod language;
pub mod lockout;
pub mod mail;
pub mod observe;
pub mod oidc;
pub mod passkey;
pub mod password;
pub mod policy;
pub mod recovery;
pub mod secret_box;
pub mod service;
pub mod session;
pub mod session_code;
pub mod settings;
pub mod shared_mailbox;
pub mod sms;
pub mod snapshot;
pub mod store;
pub mod token;
pub mod totp;

pub use error::Error;
pub use service::Tweestap;
