//! What [`Kernel::inspect`](crate::Kernel::inspect) hands a host: the kernel's tables as a
//! read-only [`KernelStore`] (the closure gets `&KernelStore`, so no write is reachable),
//! the records its reads return, the ids they take, and the refcount audit's
//! [`CheckReport`] (`kernel.inspect(|store| store.check())`).
//!
//! For debugging, tests and tools: these are the store's own types, re-exported so that a
//! host needs no dependency on `ocap-store`; they change when the store's tables do, which
//! is why they live in this module and not beside the kernel's API.
//!
//! Tools look at a store no kernel runs through an [`OfflineStore`] (read-only, under the
//! store's lock), and list its sections with [`vats`], [`objects`], [`promises`] and the
//! rest: bounded listings over `&KernelStore`, which a host can run on a live kernel
//! inside [`Kernel::inspect`](crate::Kernel::inspect) just as well.
//! [`walk_store_file`] reads every page of a store's file, for a process that may crash.
//!
//! ```
//! use ocap_kernel::inspect::KernelStore;
//! use ocap_kernel::{KPromiseId, Kernel, KernelConfig, VatRegistry};
//!
//! let dir = tempfile::tempdir()?;
//! let kernel = Kernel::open(dir.path(), KernelConfig::new(VatRegistry::new()))?;
//! let report = kernel.inspect(|store: &KernelStore| store.check())??;
//! assert!(report.is_empty(), "{report}");
//! let promise: KPromiseId = "kp1".parse()?;
//! assert!(kernel.inspect(move |store| store.promise_state(promise))??.is_none());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod listing;
mod offline;

pub use listing::{
    CListRow, Listing, ObjectRow, PromiseRow, RunQueueRow, SubclusterRow, VatRow, VatStoreRow,
    clists, objects, promises, run_queue, subclusters, vat_stores, vats,
};
pub use ocap_store::{
    CListEntry, CheckReport, DanglingRef, DirLock, FileWalk, GcAction, GcKind, Holder,
    Inconsistency, KernelStore, MessagePart, ObjectRecord, Owner, PromiseRecord, PromiseState,
    QueueBounds, QueueProblem, RefCounts, RefcountMismatch, StoreUsage, StoredCount,
    SubclusterRecord, VatRecord,
};
pub use ocap_types::{ByteBuf, EndpointId, Message, RunQueueItem, VRef};
pub use offline::{OfflineStore, walk_store_file};
