//! The undo log of the open crank: each write's key and the overlay entry it replaced.
//! A savepoint is a length of this log; rolling back replays it newest first down to that
//! length, restoring the overlay exactly as it was when the savepoint was taken.

use super::Overlay;

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
    /// The key's overlay entry before the write; `None` if the overlay had no entry.
    previous: Option<Option<Vec<u8>>>,
}

impl UndoLog {
    pub(super) fn len(&self) -> usize {
        self.entries.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub(super) fn push(&mut self, key: &[u8], previous: Option<Option<Vec<u8>>>) {
        let key_start = self.keys.len();
        self.keys.extend_from_slice(key);
        self.entries.push(UndoEntry {
            key_start,
            previous,
        });
    }

    /// The keys written, oldest first (a key written twice appears twice).
    pub(super) fn keys(&self) -> impl Iterator<Item = &[u8]> {
        let ends = self
            .entries
            .iter()
            .skip(1)
            .map(|e| e.key_start)
            .chain(std::iter::once(self.keys.len()));
        self.entries
            .iter()
            .zip(ends)
            .map(|(entry, end)| &self.keys[entry.key_start..end])
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
                previous,
            }) = self.entries.pop()
            else {
                break;
            };
            let key = &self.keys[key_start..];
            match previous {
                // Undoing newest first, the overlay holds the key as this write left it.
                Some(entry) => match overlay.get_mut(key) {
                    Some(slot) => *slot = entry,
                    None => {
                        overlay.insert(key.to_vec(), entry);
                    }
                },
                None => {
                    overlay.remove(key);
                }
            }
            self.keys.truncate(key_start);
        }
    }
}
