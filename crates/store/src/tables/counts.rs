//! The crank's record cache: the object records and promise records a crank changes, kept
//! in memory and written to the store once, instead of read, decoded, encoded and written
//! again at every hold a crank takes or releases and at every change of a promise's state
//! (an object's counts live in its record; a promise's record, schema 8, holds its count,
//! its state and what it knows of its queue and holders; a crank rewrote the same promise
//! record four or five times, docs/performance.md).
//!
//! Invariant: a cached entry is the record's current value; the store may lag behind it
//! only for entries marked written, and only inside a crank. Every entry marked written is
//! written back before a savepoint is taken and before the crank ends (so savepoints, the
//! crank's writes digest and the commit see exactly the writes they saw without the
//! cache), and the cache is emptied when the crank ends, aborts or rolls back. A table
//! operation that writes or deletes a cached record directly drops its entry first. Every
//! read of a record looks in the cache first.

#[cfg(test)]
mod tests;

use ocap_types::{KObjectId, KPromiseId, KRef};

use super::objects::ObjectRecord;
use super::promises::PromiseEntry;
use super::{KernelStore, keys};
use crate::error::StoreError;

/// The cached record of one kref.
#[derive(Debug)]
enum Cached {
    Object(KObjectId, ObjectRecord),
    Promise(KPromiseId, PromiseEntry),
}

impl Cached {
    fn kref(&self) -> KRef {
        match self {
            Cached::Object(id, _) => KRef::Object(*id),
            Cached::Promise(id, _) => KRef::Promise(*id),
        }
    }
}

#[derive(Debug)]
struct Entry {
    cached: Cached,
    /// Changed since it was read or last written back: the store lags behind.
    written: bool,
}

/// At most this many krefs are cached: a crank that touches more (a burst of sends) puts
/// the newcomers out to the store in turn through the last slot (`CountCache::insert`),
/// instead of searching a long vector at every read.
const CAPACITY: usize = 8;

/// The few krefs whose holds the open crank changed. A vector: a crank touches a handful,
/// and a linear search of it beats hashing a key.
#[derive(Debug, Default)]
pub(crate) struct CountCache {
    entries: Vec<Entry>,
}

impl CountCache {
    pub(crate) fn object(&self, id: KObjectId) -> Option<&ObjectRecord> {
        self.entries.iter().find_map(|e| match &e.cached {
            Cached::Object(o, record) if *o == id => Some(record),
            _ => None,
        })
    }

    pub(crate) fn promise(&self, id: KPromiseId) -> Option<&PromiseEntry> {
        self.entries.iter().find_map(|e| match &e.cached {
            Cached::Promise(p, entry) if *p == id => Some(entry),
            _ => None,
        })
    }

    /// The cached record of promise `id`, to change in place, with its flag that the store
    /// lags behind it (the caller sets it if it changes the record).
    pub(crate) fn promise_mut(&mut self, id: KPromiseId) -> Option<(&mut PromiseEntry, &mut bool)> {
        self.entries.iter_mut().find_map(|e| match &mut e.cached {
            Cached::Promise(p, entry) if *p == id => Some((entry, &mut e.written)),
            _ => None,
        })
    }

    /// Caches the object's changed record, to be written back. Returns the record it put
    /// out to make room, which the caller writes to the store.
    pub(crate) fn set_object(&mut self, id: KObjectId, record: ObjectRecord) -> Option<Evicted> {
        self.set(Cached::Object(id, record))
    }

    /// Caches the promise's changed record, to be written back. Returns the record it put
    /// out to make room, which the caller writes to the store.
    pub(crate) fn set_promise(&mut self, id: KPromiseId, entry: PromiseEntry) -> Option<Evicted> {
        self.set(Cached::Promise(id, entry))
    }

    /// Caches the record of a promise just made, which the store holds as it is (written
    /// directly, so that it keeps `set_new`'s claim): its first change needs no read.
    /// Returns the record it put out to make room, which the caller writes to the store.
    pub(crate) fn add_stored_promise(
        &mut self,
        id: KPromiseId,
        entry: PromiseEntry,
    ) -> Option<Evicted> {
        self.insert(Cached::Promise(id, entry), false)
    }

    fn set(&mut self, cached: Cached) -> Option<Evicted> {
        self.insert(cached, true)
    }

    /// Caches `cached`, marked `written` if the store lags behind it. A full cache puts out
    /// the entry in its last slot (the latest of the entries that came after it filled) to
    /// make room, handed back if the store lags behind it.
    fn insert(&mut self, cached: Cached, written: bool) -> Option<Evicted> {
        let kref = cached.kref();
        if let Some(entry) = self.entries.iter_mut().find(|e| e.cached.kref() == kref) {
            entry.cached = cached;
            entry.written |= written;
            return None;
        }
        let entry = Entry { cached, written };
        if self.entries.len() < CAPACITY {
            self.entries.push(entry);
            return None;
        }
        // Full: the last slot is reused. The entries before it stay, cached first and
        // often the crank's busiest (its target object); the last holds one newcomer at a
        // time (each new promise of a burst of sends, through its few changes).
        let out = std::mem::replace(&mut self.entries[CAPACITY - 1], entry);
        out.written.then_some(Evicted(out.cached))
    }

    /// Forgets `kref`: its record is about to be written or deleted directly.
    pub(crate) fn forget(&mut self, kref: KRef) {
        self.entries.retain(|e| e.cached.kref() != kref);
    }

    /// Forgets everything (the crank ended, or rolled back what the entries say).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }
}

/// A changed record the cache put out to make room: the store must get it now.
#[must_use = "the store lags behind an evicted record until it is written"]
pub(crate) struct Evicted(Cached);

impl KernelStore {
    /// Writes a record the cache put out to make room.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub(crate) fn write_evicted(&mut self, evicted: Option<Evicted>) -> Result<(), StoreError> {
        match evicted {
            None => Ok(()),
            Some(Evicted(Cached::Object(id, record))) => {
                self.kv.set(&keys::object(id), &record.encode())
            }
            Some(Evicted(Cached::Promise(id, entry))) => {
                self.kv.set(&keys::promise(id), &entry.encode())
            }
        }
    }

    /// Writes every changed cached record to the store, keeping the entries (now equal to
    /// the store's).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub(crate) fn write_back_counts(&mut self) -> Result<(), StoreError> {
        for entry in &mut self.counts.entries {
            if !entry.written {
                continue;
            }
            match entry.cached {
                Cached::Object(id, ref record) => {
                    self.kv.set(&keys::object(id), &record.encode())?;
                }
                Cached::Promise(id, ref record) => {
                    self.kv.set(&keys::promise(id), &record.encode())?;
                }
            }
            entry.written = false;
        }
        Ok(())
    }
}
