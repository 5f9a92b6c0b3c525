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
    /// The path to open is not a usable store directory.
    #[error("cannot open store at {path}: {reason}")]
    BadPath {
        /// The path.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A key the store cannot hold: empty, longer than LMDB allows, or in the store's own
    /// reserved range (keys starting with byte 0).
    #[error("invalid key {key:?}: {reason}")]
    InvalidKey {
        /// The key, escaped.
        key: String,
        /// Why it is refused.
        reason: &'static str,
    },
    /// A value longer than LMDB can store (4 GiB).
    #[error("value for key {key:?} is too large ({len} bytes)")]
    ValueTooLarge {
        /// The key, escaped.
        key: String,
        /// The value's length.
        len: usize,
    },
    /// The store's file is damaged: not an LMDB file, a damaged header, truncated, or a
    /// B-tree page LMDB rejects. The file is left as it was.
    #[error("store file at {path} is corrupt: {reason}")]
    CorruptFile {
        /// The store directory.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds a valid LMDB environment that is not an ocap store (no schema
    /// version key but other content, or another LMDB format version). Left as it was.
    #[error("{path} is not an ocap store: {reason}")]
    ForeignFile {
        /// The store directory.
        path: PathBuf,
        /// What was found.
        reason: String,
    },
    /// The store is already open in this process (LMDB allows one environment per file
    /// per process). The store's lock refuses such an open first, as [`StoreError::InUse`].
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
    /// older one that no migration starts from. Left as it was.
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
    #[error("cannot migrate store at {path} from schema version {from} to {to}: {source}")]
    Migration {
        /// The store directory.
        path: PathBuf,
        /// The version the failed step or commit started from.
        from: u32,
        /// The version it was to reach.
        to: u32,
        /// Why it failed.
        source: Box<StoreError>,
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

/// Who holds a store in use, for [`StoreError::InUse`]'s message.
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
