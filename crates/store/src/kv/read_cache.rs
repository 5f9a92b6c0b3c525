//! A small cache of what the store's long-lived read transaction read from LMDB: the
//! values (and absences) of keys the overlay does not hold, so that a key a crank reads
//! but never writes (a vat's c-list entry for a long-lived object, read at every send to
//! it) costs a hash probe instead of a B-tree descent.
//!
//! Invariant: an entry is what LMDB's current snapshot holds for its key. The snapshot
//! changes only when a commit renews the read transaction, and the cache is emptied then
//! (`Store::flush`); the overlay shadows the cache, so writes in between need no care.

use super::overlay::KeyHash;

/// At most this many entries: beyond it the cache starts again empty, so that a long
/// stretch of reads of keys never seen again (fresh promises) cannot grow it.
const CAPACITY: usize = 1024;
/// Values longer than this are not cached (the copy would cost what the lookup saves).
const MAX_VALUE: usize = 256;

/// Keys read from LMDB's snapshot, each with its value there (`None`: absent).
pub(super) struct ReadCache {
    table: hashbrown::HashTable<(Vec<u8>, Option<Vec<u8>>)>,
    /// The overlay's hash: a read probes both tables with one hash.
    keys: KeyHash,
}

impl ReadCache {
    /// An empty cache hashing keys as `keys` does.
    pub(super) fn new(keys: KeyHash) -> Self {
        ReadCache {
            table: hashbrown::HashTable::new(),
            keys,
        }
    }

    /// What LMDB's snapshot holds for `key` (whose hash is `hash`), if cached.
    #[inline]
    pub(super) fn get(&self, hash: u64, key: &[u8]) -> Option<&Option<Vec<u8>>> {
        self.table
            .find(hash, |(k, _)| k.as_slice() == key)
            .map(|(_, value)| value)
    }

    /// Notes that LMDB's snapshot holds `value` for `key`.
    pub(super) fn insert(&mut self, hash: u64, key: &[u8], value: Option<&[u8]>) {
        // Absences are not kept: the keys a crank finds absent are mostly fresh ones it
        // is about to write (a new export's c-list entry), never read from LMDB again.
        if value.is_none_or(|v| v.len() > MAX_VALUE) {
            return;
        }
        if self.table.len() >= CAPACITY {
            self.table.clear();
        }
        let keys = &self.keys;
        self.table
            .insert_unique(hash, (key.to_vec(), value.map(<[u8]>::to_vec)), |(k, _)| {
                keys.of(k)
            });
    }

    /// Forgets everything: the snapshot changed.
    pub(super) fn clear(&mut self) {
        self.table.clear();
    }
}
