//! The store's error types, one per kind of operation (redb's split): [`OpenError`] for
//! opening a store directory, [`CrankError`] for misuse of the crank protocol, and
//! [`StoreError`] for reads, writes and commits.
//!
//! Convention: a variant that only wraps another error is `#[error(transparent)]`; a
//! variant with a cause of its own says what failed and exposes the cause as `source()`,
//! never both, so a chain printed cause by cause repeats nothing.

use std::path::PathBuf;

use ocap_types::{KObjectId, KPromiseId};

/// Why a store directory could not be opened. A refused directory is left as it was.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The path is not a usable store directory (or its lock file cannot be made).
    #[error("cannot open store at {path}: {reason}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The store's file is damaged: not an LMDB file, a damaged header, truncated, or a
    /// B-tree page LMDB rejects.
    #[error("store file at {path} is corrupt: {reason}")]
    CorruptFile {
        /// The store directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds a valid LMDB environment that is not an ocap store (no schema
    /// version key but other content, or another LMDB format version).
    #[error("{path} is not an ocap store: {reason}")]
    ForeignFile {
        /// The store directory.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The store is already open in this process (LMDB allows one environment per file
    /// per process). The store's lock refuses such an open first, as [`OpenError::InUse`].
    #[error("store at {path} is already open in this process")]
    AlreadyOpen {
        /// The store directory.
        path: PathBuf,
    },
    /// Another `Store` holds the directory's lock (`ocap.lock`), in another process or in
    /// this one. The lock is the OS's: it is free again once its holder closes the store or
    /// dies, however it dies. Nothing was written, and nothing but the lock file read.
    #[error("store at {path} is in use by {}", in_use_by(*.pid))]
    InUse {
        /// The store directory.
        path: PathBuf,
        /// The holder's process id, as it recorded it in the lock file; `None` before it
        /// has (while it is still opening the store) or if the file is unreadable.
        pid: Option<u32>,
    },
    /// The store was written by a schema version this build cannot open: a newer one, or an
    /// older one that no migration starts from.
    #[error("store schema version {found} is not supported (expected {expected})")]
    SchemaVersion {
        /// The version found.
        found: String,
        /// The version this build reads.
        expected: u32,
    },
    /// Migrating an older store to this build's schema version failed: a step (from
    /// version `from` to `to`) returned an error, or the commit of all the steps (`from`
    /// the store's version `to` this build's) did. Nothing was written: the store is still
    /// at its old version, its files as they were.
    #[error("cannot migrate store at {path} from schema version {from} to {to}")]
    Migration {
        /// The store directory.
        path: PathBuf,
        /// The version the failed step or commit started from.
        from: u32,
        /// The version it was to reach.
        to: u32,
        /// Why it failed.
        #[source]
        source: Box<StoreError>,
    },
    /// LMDB refused an operation while opening.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// Misuse of the crank protocol: the caller's bug, never a failure of the disk. Nothing
/// was changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CrankError {
    /// `start_crank` while a crank is open.
    #[error("startCrank while already in a crank")]
    AlreadyInCrank,
    /// A crank operation outside a crank.
    #[error("{operation} outside of crank")]
    NotInCrank {
        /// The operation attempted.
        operation: &'static str,
    },
    /// An operation that needs the crank to be over, called inside one.
    #[error("{operation} inside a crank")]
    InCrank {
        /// The operation attempted.
        operation: &'static str,
    },
    /// A write outside a crank.
    #[error("write outside of a crank: every change must belong to a transaction")]
    WriteOutsideCrank,
    /// `rollback_to` / `release` of a savepoint that is no longer open: already released
    /// or rolled back to, or taken in an earlier crank.
    #[error("no such savepoint: it was released, rolled back to, or belongs to another crank")]
    NoSuchSavepoint,
}

/// What can go wrong reading, writing or committing the store's tables.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// LMDB refused an operation.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The crank protocol was misused (a write outside a crank, `end_crank` without
    /// `start_crank`).
    #[error(transparent)]
    Crank(#[from] CrankError),
    /// A key the store cannot hold.
    #[error("invalid key {key:?}: {problem}")]
    InvalidKey {
        /// The key, escaped.
        key: String,
        /// What is wrong with it.
        problem: KeyProblem,
    },
    /// A value longer than LMDB can store (4 GiB).
    #[error("value for key {key:?} is too large ({len} bytes)")]
    ValueTooLarge {
        /// The key, escaped.
        key: String,
        /// The value's length.
        len: usize,
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
    #[error("{0} not found")]
    NotFound(Record),
    /// An enqueue into a queue that is already deleted.
    #[error("enqueue into deleted queue {name}")]
    DeletedQueue {
        /// The queue's name.
        name: String,
    },
}

/// What is wrong with a key [`StoreError::InvalidKey`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyProblem {
    /// The key is empty.
    #[error("empty")]
    Empty,
    /// The key is longer than LMDB's maximum key size (511 bytes).
    #[error("longer than LMDB's maximum key size")]
    TooLong,
    /// The key starts with byte 0, the range the store keeps for itself.
    #[error("keys starting with byte 0 are reserved for the store")]
    Reserved,
}

/// A record a table operation needed and did not find ([`StoreError::NotFound`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Record {
    /// A kernel object.
    #[error("object {0}")]
    Object(KObjectId),
    /// A kernel promise.
    #[error("kernel promise {0}")]
    Promise(KPromiseId),
}

/// An error from LMDB. The field is private so heed stays a private dependency; its text
/// is shown in this error's own message (it is a leaf: no `source()`).
#[derive(Debug, thiserror::Error)]
#[error("lmdb backend: {0}")]
pub struct BackendError(heed::Error);

impl From<heed::Error> for BackendError {
    fn from(err: heed::Error) -> Self {
        BackendError(err)
    }
}

impl From<heed::Error> for StoreError {
    fn from(err: heed::Error) -> Self {
        StoreError::Backend(BackendError(err))
    }
}

impl From<heed::Error> for OpenError {
    fn from(err: heed::Error) -> Self {
        OpenError::Backend(BackendError(err))
    }
}

/// Who holds a store in use, for [`OpenError::InUse`]'s message.
fn in_use_by(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("process {pid}"),
        None => "another opener, which has not recorded its pid".to_owned(),
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

/// Why a backup ([`crate::Store::backup_to`]) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The destination cannot take a backup: not empty, not a directory, or not writable.
    #[error("cannot back up into {path}: {reason}")]
    Destination {
        /// The destination directory.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The store failed: flushing its ended cranks, or LMDB while copying.
    #[error(transparent)]
    Store(#[from] StoreError),
}
