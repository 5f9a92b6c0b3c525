//! The undo log of the open crank: each write's key and the overlay entry it replaced.
//! A savepoint is a length of this log; rolling back replays it newest first down to that
//! length, restoring the overlay exactly as it was when the savepoint was taken.

use hashbrown::hash_table::Entry;

use super::{Overlay, Slot};

/// The open crank's writes, oldest first, as needed to undo them. The keys share one
/// buffer, so logging a write allocates nothing for its key.
#[derive(Default)]
pub(super) struct UndoLog {
    keys: Vec<u8>,
    entries: Vec<UndoEntry>,
}

struct UndoEntry {
    /// Where the key starts in `UndoLog::keys`; it ends where the next key starts.
    key_start: usize,
    /// The key's [`Overlay::hash`](super::Overlay::hash), kept so that undoing the write
    /// and digesting the crank find the key's slot without hashing it again.
    hash: u64,
    /// The key's overlay entry before the write; `None` if the overlay had no entry.
    previous: Option<Slot>,
}

impl UndoLog {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    #[inline]
    pub(super) fn push(&mut self, key: &[u8], hash: u64, previous: Option<Slot>) {
        let key_start = self.keys.len();
        self.keys.extend_from_slice(key);
        self.entries.push(UndoEntry {
            key_start,
            hash,
            previous,
        });
    }

    /// Calls `visit(start, end, hash)` with where each written key lies in
    /// [`UndoLog::key_bytes`] and its hash, oldest first (a key written twice is visited
    /// twice).
    #[inline]
    pub(super) fn for_each_key_range(&self, mut visit: impl FnMut(usize, usize, u64)) {
        let mut entries = self.entries.iter().peekable();
        while let Some(entry) = entries.next() {
            let end = entries
                .peek()
                .map_or(self.keys.len(), |next| next.key_start);
            visit(entry.key_start, end, entry.hash);
        }
    }

    /// The written keys, back to back.
    pub(super) fn key_bytes(&self) -> &[u8] {
        &self.keys
    }

    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.entries.clear();
    }

    /// Undoes the writes after the first `mark`, newest first.
    pub(super) fn undo_to(&mut self, mark: usize, overlay: &mut Overlay) {
        while self.entries.len() > mark {
            let Some(UndoEntry {
                key_start,
                hash,
                previous,
            }) = self.entries.pop()
            else {
                break;
            };
            let key = &self.keys[key_start..];
            match previous {
                // Undoing newest first, the overlay holds the key as this write left it.
                Some(previous) => match overlay.entry(hash, key) {
                    Entry::Occupied(mut slot) => slot.get_mut().1 = previous,
                    Entry::Vacant(vacant) => {
                        vacant.insert((key.to_vec(), previous));
                    }
                },
                None => overlay.remove(hash, key),
            }
            self.keys.truncate(key_start);
        }
    }
}
