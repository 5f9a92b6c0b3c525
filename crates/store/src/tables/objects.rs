//! Kernel objects: owner, refcounts, revocation (spec §4), and the refcount operations that
//! span objects and promises (spec §14.2).

use ocap_types::{KObjectId, KPromiseId, KRef};

use super::codec::{Malformed, Reader, Writer};
use super::{KernelStore, Owner, keys};
use crate::error::{Record, StoreError};

/// Reachable and recognizable counts of an object. Invariant: `reachable <= recognizable`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RefCounts {
    /// Holders that can send to it.
    pub reachable: u32,
    /// Holders that can recognize it.
    pub recognizable: u32,
}

/// A kernel object record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRecord {
    /// Who implements it; `None` once orphaned.
    pub owner: Option<Owner>,
    /// Its counts.
    pub counts: RefCounts,
    /// True once revoked (permanent).
    pub revoked: bool,
}

impl ObjectRecord {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.owner(self.owner);
        w.u32(self.counts.reachable);
        w.u32(self.counts.recognizable);
        w.u8(u8::from(self.revoked));
        w.0
    }

    fn decode(bytes: &[u8]) -> Result<Self, Malformed> {
        let mut r = Reader(bytes);
        let record = ObjectRecord {
            owner: r.owner()?,
            counts: RefCounts {
                reachable: r.u32()?,
                recognizable: r.u32()?,
            },
            revoked: r.u8()? != 0,
        };
        r.finish()?;
        Ok(record)
    }
}

/// An object record's bytes with its counts replaced (schema migration 3 → 4).
pub(crate) fn recount_object_record(
    bytes: &[u8],
    reachable: u32,
    recognizable: u32,
) -> Result<Vec<u8>, Malformed> {
    let mut record = ObjectRecord::decode(bytes)?;
    record.counts = RefCounts {
        reachable,
        recognizable,
    };
    Ok(record.encode())
}

impl KernelStore {
    /// Creates an object owned by `owner`, held by nothing yet (0,0): its holders (the
    /// importers' c-list entries, queued messages, values, pins, a root's export entry)
    /// count themselves. It is noted as maybe free, so an object nothing took a hold of by
    /// the end of the crank is dropped and retired at once.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn create_object(&mut self, owner: Owner) -> Result<KObjectId, StoreError> {
        let id = KObjectId(self.allocate(keys::COUNTER_OBJECT.as_bytes())?);
        let record = ObjectRecord {
            owner: Some(owner),
            counts: RefCounts::default(),
            revoked: false,
        };
        // A new id: no record of it can exist.
        self.kv.set_new(&keys::object(id), &record.encode())?;
        self.note_maybe_free(KRef::Object(id));
        Ok(id)
    }

    /// The object's record, `None` if it does not exist.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn object(&self, id: KObjectId) -> Result<Option<ObjectRecord>, StoreError> {
        if let Some(record) = self.counts.object(id) {
            return Ok(Some(record.clone()));
        }
        let key = keys::object(id);
        match self.kv.get_ref(&key)? {
            None => Ok(None),
            Some(bytes) => ObjectRecord::decode(&bytes)
                .map(Some)
                .map_err(|e| StoreError::corrupt("objects", &key, e)),
        }
    }

    /// Writes the object's record.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn put_object(&mut self, id: KObjectId, record: &ObjectRecord) -> Result<(), StoreError> {
        self.counts.forget(KRef::Object(id));
        self.kv.set(&keys::object(id), &record.encode())
    }

    /// Deletes the object's record.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_object(&mut self, id: KObjectId) -> Result<(), StoreError> {
        self.counts.forget(KRef::Object(id));
        self.kv.delete(&keys::object(id))
    }

    /// Marks the object revoked. Idempotent.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the object does not exist.
    pub fn revoke(&mut self, id: KObjectId) -> Result<(), StoreError> {
        let mut record = self
            .object(id)?
            .ok_or_else(|| StoreError::NotFound(Record::Object(id)))?;
        record.revoked = true;
        self.put_object(id, &record)
    }

    /// Adds one hold to `kref`: (+1,+1) for an object, +1 for a promise. A missing record is
    /// left alone (holds on deleted objects are not resurrected).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn incref(&mut self, kref: KRef) -> Result<(), StoreError> {
        self.adjust(kref, 1, 1)
    }

    /// Releases one hold on `kref`, clamping at zero (spec §4.2).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn decref(&mut self, kref: KRef) -> Result<(), StoreError> {
        self.adjust(kref, -1, -1)
    }

    /// Releases one reachable hold on an object (a cleared reachable flag).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn decref_reachable(&mut self, id: KObjectId) -> Result<(), StoreError> {
        self.adjust(KRef::Object(id), -1, 0)
    }

    /// Releases one recognizable hold on an object.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn decref_recognizable(&mut self, id: KObjectId) -> Result<(), StoreError> {
        self.adjust(KRef::Object(id), 0, -1)
    }

    pub(crate) fn adjust(
        &mut self,
        kref: KRef,
        reachable: i64,
        recognizable: i64,
    ) -> Result<(), StoreError> {
        let step = |count: u32, delta: i64| -> u32 {
            let next = i64::from(count) + delta;
            if next < 0 {
                tracing::error!(%kref, "refcount underflow; clamped at zero");
            }
            u32::try_from(next.max(0)).unwrap_or(u32::MAX)
        };
        match kref {
            KRef::Object(id) => {
                let Some(mut record) = self.object(id)? else {
                    return Ok(());
                };
                let counts = &mut record.counts;
                counts.reachable = step(counts.reachable, reachable);
                counts.recognizable = step(counts.recognizable, recognizable);
                if counts.reachable > counts.recognizable {
                    tracing::error!(%kref, "reachable count above recognizable; clamped");
                    counts.reachable = counts.recognizable;
                }
                if (reachable < 0 && counts.reachable == 0)
                    || (recognizable < 0 && counts.recognizable == 0)
                {
                    self.note_maybe_free(kref);
                }
                // Outside a crank nothing may be written, and nothing may hide in the
                // cache as if it had been: the write is refused as any other.
                if self.kv.in_crank() {
                    let evicted = self.counts.set_object(id, record);
                    self.write_evicted(evicted)
                } else {
                    self.kv.set(&keys::object(id), &record.encode())
                }
            }
            KRef::Promise(id) => {
                // The count lives in the promise's record, which the record cache keeps
                // whole (`counts.rs`).
                let freed = self.change_promise(id, |entry| {
                    entry.refcount = step(entry.refcount, reachable);
                    (true, reachable < 0 && entry.refcount == 0)
                })?;
                if freed == Some(true) {
                    self.note_maybe_free(kref);
                }
                Ok(())
            }
        }
    }
}

impl KernelStore {
    /// Every pinned object, with repeats (pins are a multiset), sorted.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a pin's key or count does not parse.
    pub fn pinned_objects(&self) -> Result<Vec<KObjectId>, StoreError> {
        self.pinned(b"pin.ko")
    }

    /// Every pinned promise (a host's results), with repeats, sorted.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if a pin's key or count does not parse.
    pub fn pinned_promises(&self) -> Result<Vec<KPromiseId>, StoreError> {
        self.pinned(b"pin.kp")
    }

    fn pinned<T: std::str::FromStr + Clone + Ord>(
        &self,
        scan: &[u8],
    ) -> Result<Vec<T>, StoreError> {
        let prefix = keys::PIN_PREFIX;
        let mut pinned = Vec::new();
        for (key, value) in self.kv.scan_prefix(scan)? {
            let parse = || -> Option<(T, u32)> {
                let id = std::str::from_utf8(&key[prefix.len()..])
                    .ok()?
                    .parse()
                    .ok()?;
                let count = std::str::from_utf8(&value).ok()?.parse().ok()?;
                Some((id, count))
            };
            let (id, count) =
                parse().ok_or_else(|| StoreError::corrupt("pins", &key, "bad pin"))?;
            pinned.extend(std::iter::repeat_n(id, count as usize));
        }
        pinned.sort();
        Ok(pinned)
    }

    /// How many times `kref` is pinned.
    pub(crate) fn pin_count(&self, kref: KRef) -> Result<u32, StoreError> {
        Ok(self.read_parsed("pins", &keys::pin(kref))?.unwrap_or(0))
    }

    /// Writes the first pin of `kref`, which the caller knows has none (a new id).
    pub(crate) fn set_new_pin_count(&mut self, kref: KRef, count: u32) -> Result<(), StoreError> {
        self.kv
            .set_new(&keys::pin(kref), count.to_string().as_bytes())
    }

    fn set_pin_count(&mut self, kref: KRef, count: u32) -> Result<(), StoreError> {
        if count == 0 {
            self.kv.delete(&keys::pin(kref))
        } else {
            self.kv.set(&keys::pin(kref), count.to_string().as_bytes())
        }
    }

    /// Pins the object once more, holding it (+1,+1) (spec §4.5).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the object does not exist.
    pub fn pin_object(&mut self, id: KObjectId) -> Result<(), StoreError> {
        if self.object(id)?.is_none() {
            return Err(StoreError::NotFound(Record::Object(id)));
        }
        self.pin(KRef::Object(id))
    }

    /// Pins the promise once more, holding it (+1): a host's result promise is pinned when
    /// it is made, so that it, and the references in its value, outlive its settlement for
    /// the host (which has no way to say it is done with them yet).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] if the promise does not exist.
    pub fn pin_promise(&mut self, id: KPromiseId) -> Result<(), StoreError> {
        if self.promise(id)?.is_none() {
            return Err(StoreError::NotFound(Record::Promise(id)));
        }
        self.pin(KRef::Promise(id))
    }

    fn pin(&mut self, kref: KRef) -> Result<(), StoreError> {
        let count = self.pin_count(kref)?;
        self.set_pin_count(kref, count.saturating_add(1))?;
        self.incref(kref)
    }

    /// Removes one pin of the object and its hold; a no-op if it is not pinned.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn unpin_object(&mut self, id: KObjectId) -> Result<(), StoreError> {
        self.unpin(KRef::Object(id)).map(drop)
    }

    /// Removes one pin of `kref`, object or promise, and its hold; returns false (and
    /// changes nothing) if it is not pinned. What nothing else holds is then collected at
    /// the end of the crank.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn unpin(&mut self, kref: KRef) -> Result<bool, StoreError> {
        let count = self.pin_count(kref)?;
        if count == 0 {
            return Ok(false);
        }
        self.set_pin_count(kref, count - 1)?;
        self.decref(kref)?;
        Ok(true)
    }
}
