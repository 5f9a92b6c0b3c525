//! The store's error type.

use std::path::PathBuf;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// LMDB refused an operation.
    #[error("lmdb backend: {0}")]
    Backend(#[from] BackendError),
    /// `start_crank` while a crank is open.
    #[error("startCrank while already in a crank")]
    AlreadyInCrank,
    /// A crank operation outside a crank.
    #[error("{operation} outside of crank")]
    NotInCrank {
        /// The operation attempted.
        operation: &'static str,
    },
    /// A write outside a crank.
    #[error("write outside of a crank: every change must belong to a transaction")]
    WriteOutsideCrank,
    /// `rollback_to` / `release` of a savepoint that does not exist.
    #[error("no such savepoint as {name:?}")]
    NoSuchSavepoint {
        /// The name asked for.
        name: String,
    },
    /// A savepoint name that is not an identifier.
    #[error("Invalid identifier: {name:?}")]
    InvalidSavepointName {
        /// The name given.
        name: String,
    },
    /// The path to open is not a usable store directory.
    #[error("cannot open store at {path}: {reason}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The store was written by another schema version.
    #[error("store schema version {found} is not supported (expected {expected})")]
    SchemaVersion {
        /// The version found.
        found: String,
        /// The version this build reads.
        expected: u32,
    },
    /// Bytes read from the store are not what the table expects.
    #[error("corrupt store: table {table}, key {key}: {reason}")]
    Corrupt {
        /// The table.
        table: &'static str,
        /// The key, escaped.
        key: String,
        /// What was wrong.
        reason: String,
    },
    /// A table operation on a record that does not exist.
    #[error("{what} not found")]
    NotFound {
        /// The record.
        what: String,
    },
    /// A queue that is already deleted.
    #[error("enqueue into deleted queue {name}")]
    DeletedQueue {
        /// The queue's name.
        name: String,
    },
}

/// An error from LMDB. The field is private so heed stays a private dependency.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct BackendError(#[from] heed::Error);

impl From<heed::Error> for StoreError {
    fn from(err: heed::Error) -> Self {
        StoreError::Backend(BackendError(err))
    }
}

impl StoreError {
    pub(crate) fn corrupt(table: &'static str, key: &[u8], reason: impl ToString) -> Self {
        StoreError::Corrupt {
            table,
            key: String::from_utf8_lossy(key).into_owned(),
            reason: reason.to_string(),
        }
    }
}
