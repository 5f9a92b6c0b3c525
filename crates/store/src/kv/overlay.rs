//! The write overlay: the uncommitted writes of the ended cranks of a group and of the
//! open crank, each key's slot with the undo epoch that last logged it, and the sorted
//! listings scans and commits take of it.
//!
//! Invariant: the overlay is a hash map but is never iterated in hash order: every listing
//! goes through [`sorted_range`], in byte order.

use std::hash::{BuildHasher, Hasher};
use std::ops::Bound;

/// The uncommitted writes: each key with its [`Slot`], in a hash table probed by a hash
/// the caller computes once ([`Overlay::hash`]) and may keep: a write probes once whether
/// or not the key is new, and the undo log and the crank digest find a key again by its
/// kept hash. It is never iterated in hash order: scans and commits sort the entries
/// they visit.
#[derive(Default)]
pub(super) struct Overlay {
    table: hashbrown::HashTable<(Vec<u8>, Slot)>,
    keys: KeyHash,
}

/// How the store hashes its keys: foldhash, with a seed drawn at random for each store.
/// A vat chooses the tail of its vat-store keys. With a hash it can predict (the unseeded
/// multiply-rotate hash this replaced) it can make every key it writes land on one hash,
/// so that each write probes all the others: 16 384 such keys took 845 ms to write, against
/// 25 ms for as many ordinary keys, and a group holds up to 32 MiB of writes. The hashes
/// never order anything, so the random seed changes no result.
#[derive(Clone, Default)]
pub(super) struct KeyHash(foldhash::fast::RandomState);

impl KeyHash {
    /// The hash of `key`.
    #[inline]
    pub(super) fn of(&self, key: &[u8]) -> u64 {
        let mut hasher = self.0.build_hasher();
        hasher.write(key);
        hasher.finish()
    }
}

impl Overlay {
    pub(super) fn len(&self) -> usize {
        self.table.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub(super) fn clear(&mut self) {
        self.table.clear();
    }

    /// The hash the overlay files `key` under (the same for the store's read cache).
    #[inline]
    pub(super) fn hash(&self, key: &[u8]) -> u64 {
        self.keys.of(key)
    }

    /// How the overlay hashes keys, for a table that shares its hashes.
    pub(super) fn key_hash(&self) -> &KeyHash {
        &self.keys
    }

    /// The slot of `key`, whose [`Overlay::hash`] is `hash`.
    #[inline]
    pub(super) fn get(&self, hash: u64, key: &[u8]) -> Option<&Slot> {
        self.table
            .find(hash, |(k, _)| k.as_slice() == key)
            .map(|(_, slot)| slot)
    }

    /// The slot of `key` to change, or where to insert one: a single probe.
    #[inline]
    pub(super) fn entry(
        &mut self,
        hash: u64,
        key: &[u8],
    ) -> hashbrown::hash_table::Entry<'_, (Vec<u8>, Slot)> {
        let keys = &self.keys;
        self.table
            .entry(hash, |(k, _)| k.as_slice() == key, |(k, _)| keys.of(k))
    }

    /// Drops the slot of `key`, if any.
    pub(super) fn remove(&mut self, hash: u64, key: &[u8]) {
        if let Ok(entry) = self.table.find_entry(hash, |(k, _)| k.as_slice() == key) {
            entry.remove();
        }
    }

    /// Every key and its slot, in hash order: callers sort what they keep.
    fn iter(&self) -> impl Iterator<Item = (&Vec<u8>, &Slot)> {
        self.table.iter().map(|(key, slot)| (key, slot))
    }
}

/// An overlay entry: the key's uncommitted value (`None`: deleted), the undo epoch in
/// which the crank last logged the key (see `Store::write`), and what is known of the key
/// in LMDB since the last commit: absent (`Store::set_new` created it in this group), so
/// that deleting it needs no LMDB delete at the commit, or present (the read cache had it
/// when the group first wrote it, or `Store::delete_present`), so that the commit may
/// delete it through its cursor.
#[derive(Debug, Clone)]
pub(super) struct Slot {
    pub(super) value: Option<Vec<u8>>,
    pub(super) logged: u64,
    pub(super) in_lmdb: Known,
}

/// What is known of a key in LMDB's committed state: what the caller of a write says
/// (`Store::set_new`, `Store::delete_present`), or the read cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Known {
    Nothing,
    /// LMDB has no value for it.
    Absent,
    /// LMDB has a value for it.
    Present,
}

/// An overlay entry in a sorted listing: its key's [`sort_prefix`], the key, the value
/// (`None`: deleted).
pub(super) type SortedEntry<'a> = (u128, &'a Vec<u8>, &'a Option<Vec<u8>>);

/// The overlay's entries with keys within `lower` that start with `prefix`, sorted, each
/// with its [`sort_prefix`].
pub(super) fn sorted_range<'a>(
    overlay: &'a Overlay,
    prefix: &[u8],
    lower: Bound<&[u8]>,
) -> Vec<SortedEntry<'a>> {
    let mut entries: Vec<_> = overlay
        .iter()
        .map(|(key, slot)| (key, &slot.value))
        .filter(|(key, _)| {
            key.starts_with(prefix)
                && match lower {
                    Bound::Included(from) => key.as_slice() >= from,
                    Bound::Excluded(from) => key.as_slice() > from,
                    Bound::Unbounded => true,
                }
        })
        .map(|(key, value)| (sort_prefix(key), key, value))
        .collect();
    sort_entries(&mut entries);
    entries
}

/// An overlay entry as a commit writes it: its key's [`sort_prefix`], the key, its slot.
pub(super) type CommitEntry<'a> = (u128, &'a Vec<u8>, &'a Slot);

/// What a commit writes to LMDB, sorted: every entry but the deletions of keys LMDB does
/// not hold (created and deleted within the group; deleting them would be an LMDB lookup
/// each, for nothing).
pub(super) fn commit_entries(overlay: &Overlay) -> Vec<CommitEntry<'_>> {
    let mut entries: Vec<_> = overlay
        .iter()
        .filter(|(_, slot)| slot.value.is_some() || slot.in_lmdb != Known::Absent)
        .map(|(key, slot)| (sort_prefix(key), key, slot))
        .collect();
    sort_by_prefix(&mut entries, |entry| entry.0, |a, b| a.1.cmp(b.1));
    entries
}

/// Sorts `entries` into their keys' byte order.
fn sort_entries(entries: &mut [SortedEntry<'_>]) {
    sort_by_prefix(entries, |entry| entry.0, |a, b| a.1.cmp(b.1));
}

/// Sorts `items` into the byte order of their keys, given each key's [`sort_prefix`] and a
/// comparison of whole keys: by the prefixes as integers, then by whole keys only within
/// runs of equal prefixes. A comparator that compared prefixes and then, through a
/// closure, the bytes cost far more per comparison (the group commit sorts its whole
/// overlay, each crank its digest's keys; callgrind).
pub(super) fn sort_by_prefix<T>(
    items: &mut [T],
    prefix: impl Fn(&T) -> u128,
    compare_keys: impl Fn(&T, &T) -> std::cmp::Ordering,
) {
    items.sort_unstable_by_key(|item| prefix(item));
    let mut start = 0;
    while start < items.len() {
        let head = prefix(&items[start]);
        let len = items[start..]
            .iter()
            .take_while(|item| prefix(item) == head)
            .count();
        if len > 1 {
            items[start..start + len].sort_unstable_by(&compare_keys);
        }
        start += len;
    }
}

/// The first 16 bytes of `key`, zero-padded, as a big-endian integer: ordering by it, then
/// by the whole key on a tie, is the keys' byte order (a padded byte is 0, so a key that is
/// a prefix of another never sorts after it).
pub(super) fn sort_prefix(key: &[u8]) -> u128 {
    let mut head = [0u8; 16];
    let n = key.len().min(16);
    head[..n].copy_from_slice(&key[..n]);
    u128::from_be_bytes(head)
}
