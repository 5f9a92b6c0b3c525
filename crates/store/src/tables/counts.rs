//! The crank's refcount cache: the counts a crank changes (object records, promise
//! refcounts), kept in memory and written to the store once, instead of read, decoded,
//! encoded and written again at every hold a crank takes or releases (three to five times
//! a crank for the same few krefs, docs/performance.md). A promise's count is the first 4
//! bytes of its record `kpN` (schema version 8): its write-back reads the record as the
//! store holds it then and replaces those bytes.
//!
//! Invariant: a cached entry is the record's current value (for a promise, its record's
//! current count); the store may lag behind it only for entries marked written, and only
//! inside a crank. Every entry marked written is written back before a savepoint is taken
//! and before the crank ends (so savepoints, the crank's writes digest and the commit see
//! exactly the writes they saw without the cache), and the cache is emptied when the crank
//! ends, aborts or rolls back. A table operation that writes or deletes a cached record
//! directly drops its entry first; the one exception, a write of a promise's state alone,
//! writes the cached count with it, so the entry stays the record's count (and is no
//! longer marked written: the store holds it).

#[cfg(test)]
mod tests;

use ocap_types::{KObjectId, KPromiseId, KRef};

use super::objects::ObjectRecord;
use super::{KernelStore, keys};
use crate::error::StoreError;

/// The cached counts of one kref: an object's whole record (its counts live in it), or a
/// promise's refcount.
#[derive(Debug)]
enum Cached {
    Object(KObjectId, ObjectRecord),
    Promise(KPromiseId, u32),
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

/// At most this many krefs are cached: a crank that touches more (a burst of sends)
/// writes the others' counts straight to the store, as without the cache, instead of
/// searching a long vector at every read.
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

    pub(crate) fn promise(&self, id: KPromiseId) -> Option<u32> {
        self.entries.iter().find_map(|e| match &e.cached {
            Cached::Promise(p, count) if *p == id => Some(*count),
            _ => None,
        })
    }

    /// Caches the object's changed record, to be written back. Returns it if the cache
    /// is full: the caller writes it to the store.
    pub(crate) fn set_object(
        &mut self,
        id: KObjectId,
        record: ObjectRecord,
    ) -> Option<ObjectRecord> {
        match self.set(Cached::Object(id, record)) {
            Some(Cached::Object(_, record)) => Some(record),
            _ => None,
        }
    }

    /// Caches the promise's changed refcount, to be written back. Returns it if the cache
    /// is full: the caller writes it to the store.
    pub(crate) fn set_promise(&mut self, id: KPromiseId, count: u32) -> Option<u32> {
        match self.set(Cached::Promise(id, count)) {
            Some(Cached::Promise(_, count)) => Some(count),
            _ => None,
        }
    }

    /// Caches `cached`, or hands it back if the cache is full.
    fn set(&mut self, cached: Cached) -> Option<Cached> {
        let kref = cached.kref();
        if let Some(entry) = self.entries.iter_mut().find(|e| e.cached.kref() == kref) {
            entry.cached = cached;
            entry.written = true;
            return None;
        }
        if self.entries.len() >= CAPACITY {
            return Some(cached);
        }
        self.entries.push(Entry {
            cached,
            written: true,
        });
        None
    }

    /// Notes that the store holds `kref`'s cached count now (a promise's record was written
    /// with it): the write-back has nothing left to do for it.
    pub(crate) fn written_back(&mut self, kref: KRef) {
        if let Some(entry) = self.entries.iter_mut().find(|e| e.cached.kref() == kref) {
            entry.written = false;
        }
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

impl KernelStore {
    /// Writes every changed cached count to the store, keeping the entries (now equal to
    /// the store's).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub(crate) fn write_back_counts(&mut self) -> Result<(), StoreError> {
        // Indexed, not iterated: a promise's write-back reads its record through `self`.
        for entry_idx in 0..self.counts.entries.len() {
            let entry = &self.counts.entries[entry_idx];
            if !entry.written {
                continue;
            }
            match entry.cached {
                Cached::Object(id, ref record) => {
                    self.kv.set(&keys::object(id), &record.encode())?;
                }
                // The count lives in the promise's record (schema 8): the record as the
                // store holds it now, the crank's writes included, gets the cached count.
                Cached::Promise(id, count) => self.write_promise_refcount(id, count)?,
            }
            self.counts.entries[entry_idx].written = false;
        }
        Ok(())
    }
}
