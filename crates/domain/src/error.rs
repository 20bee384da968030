//! The one error type of the domain; the web layer maps it to statuses in one place.

use crate::password::{HashError, PasswordProblem};
use crate::secret_box::CryptoError;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("e-mail or password is wrong")]
    InvalidCredentials,
    /// A password confirmation inside a signed-in session was wrong.
    #[error("the password is wrong")]
    WrongPassword,
    #[error("the code is wrong or was already used")]
    InvalidCode,
    #[error("too many wrong codes; try again in {retry_after} seconds")]
    TooManyAttempts { retry_after: i64 },
    #[error("not signed in, or the session has expired")]
    Unauthenticated,
    /// A forgotten-password link that is unknown, expired or already used.
    #[error("this link has expired or was already used; request a new one")]
    InvalidResetLink,
    /// A QR link that does not exist (mistyped, or never issued).
    #[error("this link is not valid")]
    InvalidLink,
    #[error("this link has expired; ask for a new one")]
    LinkExpired,
    #[error("this link was already used; ask for a new one")]
    LinkUsed,
    /// A mailed code past its time or its tries; a new one can be sent.
    #[error("this code has expired; ask for a new one")]
    CodeExpired,
    /// A limit on mails or other costly requests was reached.
    #[error("too many requests; try again later")]
    TooManyRequests,
    /// The signed-in person's role does not allow this.
    #[error("you are not allowed to do this")]
    Forbidden,
    /// A support action without a reason for the audit log.
    #[error("give a reason; it is kept in the audit log")]
    ReasonRequired,
    /// Removing the last second factor while two-step verification is required.
    #[error("two-step verification is required for your account: set up another method before removing this one")]
    LastFactorRequired,
    /// A phone number that cannot receive SMS codes; the code says why.
    #[error("this phone number cannot be used for SMS codes")]
    InvalidPhone(&'static str),
    /// The pumping protection refused this SMS; the code says which rule.
    #[error("no SMS was sent: {0}")]
    SmsRefused(crate::sms::SmsRefusal),
    /// The SMS gateway failed; another method may still work.
    #[error("the SMS could not be sent; try again later or use another method")]
    SmsUnavailable,
    /// A client registration that cannot be accepted; the text says why.
    #[error("{0}")]
    InvalidClient(String),
    /// The client is registered in the configuration file, not the database.
    #[error("client {0} is registered in the configuration file; remove it there")]
    ClientInConfig(String),
    /// An ID token could not be signed (no key, or an unusable one).
    #[error("signing failed: {0}")]
    Signing(String),
    #[error("not found")]
    NotFound,
    /// A name (of a passkey) that is empty or too long.
    #[error("give a name of 1 to 60 characters")]
    InvalidName,
    #[error("not a valid e-mail address")]
    InvalidEmail,
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    /// Policy refuses a second factor on shared mailboxes until they are renamed.
    #[error("this address is a shared mailbox; ask for a personal account before setting up two-step verification")]
    SharedMailbox,
    #[error(transparent)]
    WeakPassword(#[from] PasswordProblem),
    #[error(transparent)]
    Snapshot(#[from] crate::snapshot::SnapshotError),
    /// Imports go into an empty database only, so nothing is ever merged or overwritten.
    #[error("the database already holds accounts or clients; import only into an empty database")]
    NotEmpty,
    /// An imported secret does not open with this server's key.
    #[error("factor {0}: its secret does not open with this server's secret key; use the secret key of the exporting server")]
    ForeignKey(uuid::Uuid),
    /// An imported signing key does not open with this server's key.
    #[error("signing key {0}: it does not open with this server's secret key; use the secret key of the exporting server")]
    ForeignSigningKey(String),
    /// The console asks for a fresh code first (a step-up).
    #[error("enter a current code from your app first; administrator actions need one from the last minutes")]
    StepUpRequired,
    /// A passkey was refused, or passkeys cannot work here; the problem says why.
    #[error(transparent)]
    Passkey(#[from] crate::passkey::PasskeyProblem),
    #[error(transparent)]
    InvalidPolicy(crate::policy::document::PolicyProblem),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What a store reports; the engine turns it into [`Error::Store`] (and the web
/// layer into 409 or 503). It lives here, not beside the store traits, so that this
/// module depends on nothing that depends on it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("already exists")]
    Conflict,
    /// The database cannot be reached; callers answer 503 and try again later.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    #[error("database error: {0}")]
    Other(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;
