//! Raw persistent FIFO queues (spec §6.2): `queue.<name>.head` is where the next entry is
//! written, `queue.<name>.tail` the next entry to read; both start at 1. These operations
//! read the bounds from the store every time; the run queue's cached wrapper lives in the
//! queue crate.

use ocap_types::EndpointId;

use super::{KernelStore, keys};
use crate::error::StoreError;

/// The bounds of a queue: `tail..head` are its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueBounds {
    /// Index of the next entry to write.
    pub head: u64,
    /// Index of the next entry to read.
    pub tail: u64,
}

impl QueueBounds {
    /// Number of entries.
    pub fn len(self) -> u64 {
        self.head.saturating_sub(self.tail)
    }

    /// True when empty.
    pub fn is_empty(self) -> bool {
        self.len() == 0
    }
}

impl KernelStore {
    /// Creates queue `name` (empty) if it does not exist.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn queue_init(&mut self, name: &str) -> Result<(), StoreError> {
        if self.queue_bounds(name)?.is_none() {
            // Both bounds were just read as absent.
            self.kv
                .set_new(&keys::queue_head(name), &keys::decimal(1))?;
            self.kv
                .set_new(&keys::queue_tail(name), &keys::decimal(1))?;
        }
        Ok(())
    }

    /// The queue's bounds, `None` if it does not exist.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when only one bound exists or a bound is not a number.
    pub fn queue_bounds(&self, name: &str) -> Result<Option<QueueBounds>, StoreError> {
        let head = self.read_u64(&keys::queue_head(name))?;
        let tail = self.read_u64(&keys::queue_tail(name))?;
        match (head, tail) {
            (None, None) => Ok(None),
            (Some(head), Some(tail)) if tail <= head => Ok(Some(QueueBounds { head, tail })),
            _ => Err(StoreError::corrupt(
                "queues",
                name.as_bytes(),
                "queue head/tail missing or inconsistent",
            )),
        }
    }

    /// [`KernelStore::queue_bounds`] of a queue that seldom exists (a settling promise's):
    /// an absent head means no queue, without looking for the tail, which saves an LMDB
    /// miss a settle. The kernel writes both bounds or neither, so a lone tail is damage;
    /// [`KernelStore::check`] reports it, this read does not.
    ///
    /// # Errors
    /// As [`KernelStore::queue_bounds`].
    pub(crate) fn queue_bounds_if_any(
        &self,
        name: &str,
    ) -> Result<Option<QueueBounds>, StoreError> {
        if self.read_u64(&keys::queue_head(name))?.is_none() {
            return Ok(None);
        }
        self.queue_bounds(name)
    }

    /// How many messages `ep` sent that still wait in the run queue or a promise's queue
    /// (what its `queuedMessages` limit bounds).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a count that is not a number.
    pub fn queued_by(&self, ep: EndpointId) -> Result<u64, StoreError> {
        Ok(self.read_u64(&keys::queued_count(ep))?.unwrap_or(0))
    }

    /// Counts one more message of `ep`'s as queued (`added`), or one fewer: a send joins
    /// the queues once, when it is sent, and leaves them once, when it is delivered,
    /// splat or discarded. The count's key goes when it reaches zero; one fewer on no key
    /// does nothing (the sender's keys went with its cleanup after termination).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn count_queued(&mut self, ep: EndpointId, added: bool) -> Result<(), StoreError> {
        let key = keys::queued_count(ep);
        let count = self.read_u64(&key)?.unwrap_or(0);
        let count = if added {
            count.saturating_add(1)
        } else {
            count.saturating_sub(1)
        };
        if count == 0 {
            self.kv.delete(&key)
        } else {
            self.kv.set(&key, &keys::decimal(count))
        }
    }

    /// Writes the queue's bounds.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn write_bounds(&mut self, name: &str, bounds: QueueBounds) -> Result<(), StoreError> {
        self.write_head(name, bounds.head)?;
        self.write_tail(name, bounds.tail)
    }

    /// Writes the queue's head alone (a push moves only the head).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn write_head(&mut self, name: &str, head: u64) -> Result<(), StoreError> {
        self.kv.set(&keys::queue_head(name), &keys::decimal(head))
    }

    /// Writes the queue's tail alone (a pop moves only the tail).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn write_tail(&mut self, name: &str, tail: u64) -> Result<(), StoreError> {
        self.kv.set(&keys::queue_tail(name), &keys::decimal(tail))
    }

    /// Writes entry `index` of queue `name` (the caller advances the head): `index` is the
    /// head, where no entry is.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn queue_write_entry(
        &mut self,
        name: &str,
        index: u64,
        item: &[u8],
    ) -> Result<(), StoreError> {
        self.kv.set_new(&keys::queue_entry(name, index), item)
    }

    /// Reads and deletes entry `index` of queue `name` (the caller advances the tail).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the entry is missing.
    pub fn queue_take_entry(&mut self, name: &str, index: u64) -> Result<Vec<u8>, StoreError> {
        let key = keys::queue_entry(name, index);
        let item = self
            .kv
            .get(&key)?
            .ok_or_else(|| StoreError::corrupt("queues", &key, "queue entry missing"))?;
        self.kv.delete(&key)?;
        Ok(item)
    }

    /// Appends to queue `name`.
    ///
    /// # Errors
    /// [`StoreError::DeletedQueue`] if the queue does not exist.
    pub fn queue_push(&mut self, name: &str, item: &[u8]) -> Result<(), StoreError> {
        let mut bounds = self
            .queue_bounds(name)?
            .ok_or_else(|| StoreError::DeletedQueue {
                name: name.to_owned(),
            })?;
        self.queue_write_entry(name, bounds.head, item)?;
        bounds.head += 1;
        self.write_head(name, bounds.head)
    }

    /// Deletes queue `name` and its entries (a no-op if absent).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn queue_delete(&mut self, name: &str) -> Result<(), StoreError> {
        if let Some(bounds) = self.queue_bounds(name)? {
            for index in bounds.tail..bounds.head {
                self.kv.delete(&keys::queue_entry(name, index))?;
            }
            self.kv.delete(&keys::queue_head(name))?;
            self.kv.delete(&keys::queue_tail(name))?;
        }
        Ok(())
    }
}
