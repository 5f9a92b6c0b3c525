//! The ocap kernel's store: every piece of kernel state, in LMDB, changed only inside crank
//! transactions that commit whole or not at all.
//!
//! Errors are split by operation: [`Store::open`] fails with an [`OpenError`], the crank
//! protocol's calls (`start_crank`, savepoints, `abort_crank`) with a [`CrankError`], and
//! reads, writes and commits with a [`StoreError`].
//!
//! ```
//! let dir = tempfile::tempdir()?;
//! let mut store = ocap_store::Store::open(dir.path())?;
//! store.start_crank()?;
//! let start = store.savepoint()?;
//! store.set(b"a", b"1")?;
//! store.rollback_to(start)?;
//! assert_eq!(store.get(b"a")?, None);
//! store.end_crank()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod error;
mod kv;
mod migrations;
mod tables;

pub use error::{BackendError, BackupError, CrankError, KeyProblem, OpenError, Record, StoreError};
pub use kv::{
    CrankDigest, DirLock, Durability, FileWalk, Savepoint, Store, StoreConfig, StoreUsage,
    chain_crank_hash,
};
pub use migrations::SCHEMA_VERSION;
pub use tables::{
    CListEntry, ChainEnd, CheckReport, DanglingRef, GcAction, GcKind, Holder, Inconsistency,
    KernelStore, MessagePart, ObjectRecord, Owner, PromiseRecord, PromiseState, QueueBounds,
    QueueProblem, RefCounts, RefcountMismatch, StoredCount, SubclusterRecord, VatRecord,
    WaitingSend, follow_promises,
};
