//! `StoredQueue<T>`: a persistent FIFO whose head and tail are cached in memory.
//!
//! Invariant: the cache is valid only for the store generation it was filled at. After a
//! rollback every operation fails with [`QueueError::StaleCache`] until [`StoredQueue::refresh`]
//! re-reads the bounds, so a stale head/tail can never skip or lose an item (the seed bug).

use std::marker::PhantomData;

use ocap_store::{KernelStore, QueueBounds};
use ocap_types::{DecodeError, RunQueueItem};

use crate::error::QueueError;

/// What a [`StoredQueue`] holds: a type with a byte encoding (CBOR for the run queue).
pub trait QueueItem: Sized {
    /// The item's stored bytes.
    fn encode(&self) -> Vec<u8>;

    /// The item back from its stored bytes.
    ///
    /// # Errors
    /// [`DecodeError`] for bytes that are not an item.
    fn decode(bytes: &[u8]) -> Result<Self, DecodeError>;
}

/// Run-queue items go through their hand-written codec, not serde: one is popped on every
/// crank (docs/performance.md, issue 14).
impl QueueItem for RunQueueItem {
    fn encode(&self) -> Vec<u8> {
        self.to_cbor()
    }

    fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        RunQueueItem::from_cbor(bytes)
    }
}

/// A persistent FIFO of `T` (CBOR-encoded) named `name` in the store.
#[derive(Debug)]
pub struct StoredQueue<T> {
    name: String,
    bounds: QueueBounds,
    generation: u64,
    _items: PhantomData<fn(T) -> T>,
}

impl<T: QueueItem> StoredQueue<T> {
    /// Opens queue `name`, creating it (empty) if missing. Must run inside a crank when the
    /// queue does not exist yet.
    ///
    /// # Errors
    /// [`QueueError::Store`] if the store fails.
    pub fn open(store: &mut KernelStore, name: &str) -> Result<Self, QueueError> {
        let bounds = match store.queue_bounds(name)? {
            Some(bounds) => bounds,
            None => {
                store.queue_init(name)?;
                QueueBounds { head: 1, tail: 1 }
            }
        };
        Ok(StoredQueue {
            name: name.to_owned(),
            bounds,
            generation: store.kv().generation(),
            _items: PhantomData,
        })
    }

    /// Re-reads head and tail from the store. Call after every rollback.
    ///
    /// # Errors
    /// [`QueueError::Store`] if the store fails or the queue vanished.
    pub fn refresh(&mut self, store: &KernelStore) -> Result<(), QueueError> {
        self.bounds = store
            .queue_bounds(&self.name)?
            .ok_or_else(|| QueueError::Corrupt {
                name: self.name.clone(),
                reason: "queue bounds missing".to_owned(),
            })?;
        self.generation = store.kv().generation();
        Ok(())
    }

    fn check(&self, store: &KernelStore) -> Result<(), QueueError> {
        if store.kv().generation() == self.generation {
            Ok(())
        } else {
            Err(QueueError::StaleCache {
                name: self.name.clone(),
            })
        }
    }

    /// Number of items (derived from head and tail; there is no separate counter).
    ///
    /// # Errors
    /// [`QueueError::StaleCache`] after a rollback without refresh.
    pub fn len(&self, store: &KernelStore) -> Result<u64, QueueError> {
        self.check(store)?;
        Ok(self.bounds.len())
    }

    /// Appends an item.
    ///
    /// # Errors
    /// [`QueueError::StaleCache`], or [`QueueError::Store`] (e.g. outside a crank).
    pub fn push(&mut self, store: &mut KernelStore, item: &T) -> Result<(), QueueError> {
        self.check(store)?;
        let bytes = item.encode();
        store.queue_write_entry(&self.name, self.bounds.head, &bytes)?;
        let next = QueueBounds {
            head: self.bounds.head + 1,
            ..self.bounds
        };
        store.write_head(&self.name, next.head)?;
        self.bounds = next;
        Ok(())
    }

    /// Removes and returns the oldest item, `None` if empty.
    ///
    /// # Errors
    /// [`QueueError::StaleCache`], [`QueueError::Corrupt`] for an item that does not decode,
    /// [`QueueError::Store`].
    pub fn pop(&mut self, store: &mut KernelStore) -> Result<Option<T>, QueueError> {
        self.check(store)?;
        if self.bounds.is_empty() {
            return Ok(None);
        }
        let bytes = store.queue_take_entry(&self.name, self.bounds.tail)?;
        let next = QueueBounds {
            tail: self.bounds.tail + 1,
            ..self.bounds
        };
        store.write_tail(&self.name, next.tail)?;
        self.bounds = next;
        T::decode(&bytes)
            .map(Some)
            .map_err(|e| QueueError::Corrupt {
                name: self.name.clone(),
                reason: e.to_string(),
            })
    }
}
