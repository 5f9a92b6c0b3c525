//! The kernel's tables as typed operations over the byte store: id allocation, kernel
//! objects, kernel promises, raw queues, c-lists, vats, vat stores and subclusters.
//!
//! Invariant: the only in-memory state kept here is (a) the id high-water marks, which may
//! run ahead of the store after a rollback but never behind it (ids are never reused),
//! (b) the crank's maybe-free set, which [`KernelStore::rollback_to`] clears together with
//! the refcount changes that filled it, and (c) the crank's refcount cache (`counts.rs`),
//! written back before every savepoint and at the end of the crank, and dropped by every
//! rollback and abort.

mod audit;
mod chain;
mod clist;
mod codec;
mod counts;
mod gc;
mod keys;
mod listing;
mod objects;
mod promises;
mod queues;
mod services;
mod vats;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::collections::BTreeSet;
use std::fmt;

use ocap_types::{EndpointId, KRef};
use serde::de::DeserializeOwned;

use crate::error::{CrankError, StoreError};
use crate::kv::{CrankDigest, Savepoint, Store, chain_crank_hash};

pub use audit::{
    CheckReport, DanglingRef, Holder, Inconsistency, MessagePart, QueueProblem, RefcountMismatch,
    StoredCount,
};
pub use chain::{ChainEnd, follow_promises};
pub use clist::CListEntry;
pub use gc::{GcAction, GcKind};
pub(crate) use objects::recount_object_record;
pub use objects::{ObjectRecord, RefCounts};
pub use promises::{PromiseRecord, PromiseState, WaitingSend};
pub use queues::QueueBounds;
pub use vats::{SubclusterRecord, VatRecord};

/// Who owns an object or decides a promise: an endpoint, or the kernel itself (services).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// The kernel (a kernel service).
    Kernel,
    /// A vat or remote.
    Endpoint(EndpointId),
}

impl From<EndpointId> for Owner {
    fn from(ep: EndpointId) -> Self {
        Owner::Endpoint(ep)
    }
}

impl fmt::Display for Owner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Owner::Kernel => f.write_str("kernel"),
            Owner::Endpoint(ep) => ep.fmt(f),
        }
    }
}

impl std::str::FromStr for Owner {
    type Err = ocap_types::ParseRefError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text == "kernel" {
            Ok(Owner::Kernel)
        } else {
            text.parse().map(Owner::Endpoint)
        }
    }
}

impl serde::Serialize for Owner {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Owner {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// The kernel's store: the byte store plus typed tables.
#[derive(Debug)]
pub struct KernelStore {
    kv: Store,
    high_water: BTreeMap<Vec<u8>, u64>,
    maybe_free: BTreeSet<KRef>,
    /// The open crank's refcount cache (`counts.rs`): written back before every savepoint
    /// and at the end of the crank, emptied when the crank ends, aborts or rolls back.
    counts: counts::CountCache,
    /// Whether the GC action set and the reap queue are empty, as last read or written at
    /// store generation `.0`; checked on every crank, so worth not re-reading.
    empty_hints: std::cell::Cell<Option<(u64, bool, bool)>>,
    /// Whether the terminated list is empty, as last read or written at store generation
    /// `.0`: read at the start of every crank, and nearly always empty.
    terminated_hint: std::cell::Cell<Option<(u64, bool)>>,
}

impl KernelStore {
    /// Wraps an open byte store.
    pub fn new(kv: Store) -> Self {
        KernelStore {
            kv,
            high_water: BTreeMap::new(),
            maybe_free: BTreeSet::new(),
            counts: counts::CountCache::default(),
            empty_hints: std::cell::Cell::new(None),
            terminated_hint: std::cell::Cell::new(None),
        }
    }

    /// The byte store, for reads.
    pub fn kv(&self) -> &Store {
        &self.kv
    }

    /// The byte store, for writes that have no table of their own (tests, queues). Inside
    /// a crank it may lag behind the refcount cache (`counts.rs`) until the next savepoint
    /// or the end of the crank.
    pub fn kv_mut(&mut self) -> &mut Store {
        &mut self.kv
    }

    /// Opens a crank (see [`Store::start_crank`]).
    ///
    /// # Errors
    /// As [`Store::start_crank`].
    pub fn start_crank(&mut self) -> Result<(), CrankError> {
        self.kv.start_crank()?;
        self.counts.clear();
        Ok(())
    }

    /// Takes a savepoint (see [`Store::savepoint`]), first writing the refcount cache's
    /// changes to the store, so that the savepoint holds them.
    ///
    /// # Errors
    /// As [`Store::savepoint`]; [`StoreError`] if writing the cached counts fails.
    pub fn savepoint(&mut self) -> Result<Savepoint, StoreError> {
        if self.kv.in_crank() {
            self.write_back_counts()?;
        }
        Ok(self.kv.savepoint()?)
    }

    /// Rolls back to a savepoint and forgets the maybe-free set, whose entries came from
    /// refcount changes that the rollback undid.
    ///
    /// # Errors
    /// As [`Store::rollback_to`].
    pub fn rollback_to(&mut self, savepoint: Savepoint) -> Result<(), CrankError> {
        self.kv.rollback_to(savepoint)?;
        self.forget_crank_caches();
        Ok(())
    }

    /// Ends the open crank keeping none of its writes (see [`Store::abort_crank`]), and
    /// forgets the maybe-free set.
    ///
    /// # Errors
    /// As [`Store::abort_crank`].
    pub fn abort_crank(&mut self) -> Result<(), CrankError> {
        self.kv.abort_crank()?;
        self.forget_crank_caches();
        Ok(())
    }

    fn forget_crank_caches(&mut self) {
        self.maybe_free.clear();
        self.counts.clear();
        self.empty_hints.set(None);
        self.terminated_hint.set(None);
    }

    /// Ends the crank (see [`Store::end_crank`]), first chaining the digest of its writes
    /// onto the crank hash (docs/store.md "Crank hash") in the crank's own transaction. A
    /// crank that wrote nothing leaves the chain as it was.
    ///
    /// # Errors
    /// As [`Store::end_crank`]; [`StoreError::Corrupt`] if the stored head is not 32 bytes.
    pub fn end_crank(&mut self) -> Result<(), StoreError> {
        // Outside a crank, `end_crank` below reports the misuse as its own.
        if self.kv.in_crank() {
            self.write_back_counts()?;
            self.counts.clear();
        }
        if self.kv.in_crank()
            && let Some(writes) = self
                .kv
                .crank_writes_digest(keys::CRANK_HASH, keys::LOCAL_PREFIX)?
        {
            let head = chain_crank_hash(&self.crank_hash()?, &writes);
            self.kv.set(keys::CRANK_HASH, &head)?;
        }
        self.kv.end_crank()
    }

    /// The head of the crank hash chain: all zeros before the first crank.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails, [`StoreError::Corrupt`] if the stored head is
    /// not 32 bytes.
    pub fn crank_hash(&self) -> Result<CrankDigest, StoreError> {
        match self.kv.get_ref(keys::CRANK_HASH)? {
            None => Ok([0; 32]),
            Some(bytes) => <[u8; 32]>::try_from(&bytes[..]).map_err(|_| StoreError::Corrupt {
                table: "crankHash",
                key: "crankHash".to_owned(),
                reason: "not 32 bytes".to_owned(),
            }),
        }
    }

    /// Deletes every key of the kernel's state (spec §16.5 `reset`), inside the crank. Id
    /// counters start again at 1.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn clear_all(&mut self) -> Result<(), StoreError> {
        for (key, _) in self.kv.scan_prefix(b"")? {
            self.kv.delete(&key)?;
        }
        self.high_water.clear();
        self.maybe_free.clear();
        self.counts.clear();
        self.empty_hints.set(None);
        self.terminated_hint.set(None);
        Ok(())
    }

    /// Takes the set of krefs whose counts reached zero during this crank.
    pub fn take_maybe_free(&mut self) -> BTreeSet<KRef> {
        std::mem::take(&mut self.maybe_free)
    }

    /// Allocates the next number of `counter` (starting at 1). Never reuses a number, even
    /// after a rollback undid the stored increment.
    pub(crate) fn allocate(&mut self, counter: &[u8]) -> Result<u64, StoreError> {
        let stored = self.read_u64(counter)?.unwrap_or(1);
        let high = self.high_water.get(counter).copied().unwrap_or(1);
        let next = stored.max(high);
        self.kv.set(counter, &keys::decimal(next + 1))?;
        self.high_water.insert(counter.to_vec(), next + 1);
        Ok(next)
    }

    pub(crate) fn read_u64(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        self.read_parsed("counters", key)
    }

    /// Reads a key whose value is the text form of a `T` (a kref, a number).
    pub(crate) fn read_parsed<T: std::str::FromStr>(
        &self,
        table: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.kv.get_ref(key)? {
            None => Ok(None),
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.parse().ok())
                .map(Some)
                .ok_or_else(|| StoreError::corrupt(table, key, "does not parse")),
        }
    }

    pub(crate) fn read_cbor<T: DeserializeOwned>(
        &self,
        table: &'static str,
        key: &[u8],
    ) -> Result<Option<T>, StoreError> {
        match self.kv.get_ref(key)? {
            None => Ok(None),
            Some(bytes) => ocap_types::cbor::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt(table, key, e)),
        }
    }

    pub(crate) fn write_cbor<T: serde::Serialize>(
        &mut self,
        key: &[u8],
        value: &T,
    ) -> Result<(), StoreError> {
        self.kv.set(key, &ocap_types::cbor::to_vec(value))
    }

    /// `(gc set empty, reap queue empty)`, from the hint when it is current.
    pub(crate) fn empty_hints(&self) -> Result<(bool, bool), StoreError> {
        let generation = self.kv.generation();
        if let Some((g, gc, reap)) = self.empty_hints.get()
            && g == generation
        {
            return Ok((gc, reap));
        }
        let is_empty = |prefix: &[u8]| -> Result<bool, StoreError> {
            Ok(self.kv.next_entry(prefix, prefix, true)?.is_none())
        };
        let gc = is_empty(keys::GC_ACTION_PREFIX)?;
        let reap = is_empty(keys::REAP_ENTRY_PREFIX)?;
        self.empty_hints.set(Some((generation, gc, reap)));
        Ok((gc, reap))
    }

    pub(crate) fn set_empty_hint(&self, gc: Option<bool>, reap: Option<bool>) {
        if let Some((g, old_gc, old_reap)) = self.empty_hints.get()
            && g == self.kv.generation()
        {
            let hint = (g, gc.unwrap_or(old_gc), reap.unwrap_or(old_reap));
            self.empty_hints.set(Some(hint));
        }
    }

    pub(crate) fn note_maybe_free(&mut self, kref: KRef) {
        self.maybe_free.insert(kref);
    }
}
