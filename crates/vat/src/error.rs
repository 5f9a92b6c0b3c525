//! `Error`: why a method failed or a promise was rejected. It carries a [`Val`] (usually an
//! `Error` value) because a rejection reason crosses vats as data.

use std::fmt;

use crate::val::Val;

/// The reason a method failed or a promise was rejected.
///
/// A method that returns `Err(error)` rejects its caller's result promise with
/// [`Error::reason`]; awaiting a rejected [`crate::Promise`] gives the reason back as an
/// `Error`, so `?` passes a rejection on to the caller. This is vat-level data, not a failure
/// of the runtime: the runtime reports its own failures as delivery errors.
///
/// # Examples
/// ```
/// use ocap_vat::{Error, Val};
///
/// let error = Error::new("no such account");
/// assert_eq!(error.message(), "no such account");
/// assert_eq!(error.reason(), &Val::error("no such account"));
/// assert_eq!(Error::from_reason(Val::from(7)).message(), "7");
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    reason: Box<Val>,
}

/// `Result` with the SDK's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error whose reason is an `Error` value with `message`.
    pub fn new(message: impl Into<String>) -> Self {
        Error::from_reason(Val::error(message))
    }

    /// An error with any value as its reason (JavaScript code may reject with anything).
    pub fn from_reason(reason: Val) -> Self {
        Error {
            reason: Box::new(reason),
        }
    }

    /// The reason, as sent to whoever awaits the rejected promise.
    pub fn reason(&self) -> &Val {
        &self.reason
    }

    /// The reason, by value.
    pub fn into_reason(self) -> Val {
        *self.reason
    }

    /// The message of an `Error` reason, or a rendering of any other reason.
    pub fn message(&self) -> String {
        match &*self.reason {
            Val::Error { message, .. } => message.clone(),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

impl From<&str> for Error {
    fn from(message: &str) -> Self {
        Error::new(message)
    }
}

impl From<String> for Error {
    fn from(message: String) -> Self {
        Error::new(message)
    }
}
