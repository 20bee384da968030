//! The one error type of the domain; the web layer maps it to statuses in one place.

use crate::password::{HashError, PasswordProblem};
use crate::secret_box::CryptoError;
use crate::store::StoreError;

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
    #[error("not found")]
    NotFound,
    #[error("not a valid e-mail address")]
    InvalidEmail,
    #[error("an account with this e-mail address already exists")]
    EmailTaken,
    #[error(transparent)]
    WeakPassword(#[from] PasswordProblem),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Crypto(#[from] CryptoError),
    #[error(transparent)]
    Hash(#[from] HashError),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
