//! Bounded listings of the tables for inspection tools (`ocap inspect`, later the daemon):
//! each reads at most `limit` records in key order, starting after a cursor, so that a
//! listing of a large store streams through it page by page instead of loading a table.
//!
//! Key order is byte order (`ko1`, `ko10`, `ko2`): it is what a prefix walk yields, and a
//! numeric order would need the whole table read first.

#[cfg(test)]
mod tests;

use ocap_types::{EndpointId, KObjectId, KPromiseId, KRef, VatId};

use super::{CListEntry, KernelStore, ObjectRecord, PromiseRecord, keys};
use crate::error::StoreError;

/// Entries read per step of a walk (keys `keep` skips read more than `limit`).
const WALK_STEP: usize = 64;

impl KernelStore {
    /// At most `limit` objects, in key order, after `after` (from the first if `None`).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a key or record that does not parse.
    pub fn objects_after(
        &self,
        after: Option<KObjectId>,
        limit: usize,
    ) -> Result<Vec<(KObjectId, ObjectRecord)>, StoreError> {
        let from = after.map(|id| keys::object(id).to_vec());
        self.walk_records(b"ko", from, limit, |key, _| {
            let id: KObjectId = parse("objects", key)?;
            Ok(self.object(id)?.map(|record| (id, record)))
        })
    }

    /// At most `limit` promises, in key order, after `after` (from the first if `None`).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a key or record that does not parse.
    pub fn promises_after(
        &self,
        after: Option<KPromiseId>,
        limit: usize,
    ) -> Result<Vec<(KPromiseId, PromiseRecord)>, StoreError> {
        // One key per promise, its record (schema 8: the refcount is inside it).
        let from = after.map(|id| keys::promise(id).to_vec());
        self.walk_records(b"kp", from, limit, |key, _| {
            let id: KPromiseId = parse("promises", key)?;
            Ok(self.promise(id)?.map(|record| (id, record)))
        })
    }

    /// At most `limit` entries of `ep`'s c-list by kref (key order), after `after`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an entry that does not parse.
    pub fn clist_after(
        &self,
        ep: EndpointId,
        after: Option<KRef>,
        limit: usize,
    ) -> Result<Vec<(KRef, CListEntry)>, StoreError> {
        let mut prefix = keys::clist_prefix(ep);
        let skip = prefix.len();
        prefix.push(b'k');
        let from = after.map(|kref| keys::clist(ep, kref).to_vec());
        self.walk_records(&prefix, from, limit, |key, _| {
            let kref: KRef = parse("clist", &key[skip..])?;
            Ok(self.clist_entry(ep, kref)?.map(|entry| (kref, entry)))
        })
    }

    /// At most `limit` keys of `vat`'s store with the size of each value in bytes, in key
    /// order, after `after`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a key that is not UTF-8.
    pub fn vatstore_after(
        &self,
        vat: VatId,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let prefix = keys::vatstore_prefix(vat);
        let from = after.map(|key| keys::vatstore(vat, key));
        self.walk_records(&prefix, from, limit, |key, value| {
            let name = std::str::from_utf8(&key[prefix.len()..])
                .map_err(|_| StoreError::corrupt("vatstore", key, "key is not UTF-8"))?;
            Ok(Some((name.to_owned(), value.len() as u64)))
        })
    }

    /// At most `limit` entries of queue `name` from its tail (the oldest) on, with their
    /// indices, as stored (the run queue's are CBOR `RunQueueItem`s).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for bounds that do not parse, or an entry missing inside them.
    pub fn queue_entries(
        &self,
        name: &str,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let Some(bounds) = self.queue_bounds(name)? else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for index in (bounds.tail..bounds.head).take(limit) {
            let key = keys::queue_entry(name, index);
            let bytes = self
                .kv
                .get(&key)?
                .ok_or_else(|| StoreError::corrupt("queues", &key, "missing inside its bounds"))?;
            out.push((index, bytes));
        }
        Ok(out)
    }

    /// How many times `kref` is pinned (0 if never).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a count that does not parse.
    pub fn pins(&self, kref: KRef) -> Result<u32, StoreError> {
        self.pin_count(kref)
    }

    /// Up to `limit` items that `keep` makes of the entries under `prefix`, in key order,
    /// after the key `from` (from the first if `None`); entries `keep` skips do not count.
    fn walk_records<T>(
        &self,
        prefix: &[u8],
        from: Option<Vec<u8>>,
        limit: usize,
        mut keep: impl FnMut(&[u8], &[u8]) -> Result<Option<T>, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let mut out = Vec::new();
        let (mut from, mut inclusive) = match from {
            Some(key) => (key, false),
            None => (prefix.to_vec(), true),
        };
        while out.len() < limit {
            let step = (limit - out.len()).clamp(1, WALK_STEP);
            let entries = self.kv.scan_from(prefix, &from, inclusive, step)?;
            let exhausted = entries.len() < step;
            for (key, value) in &entries {
                if out.len() == limit {
                    break;
                }
                if let Some(item) = keep(key, value)? {
                    out.push(item);
                }
            }
            match entries.into_iter().next_back() {
                Some((key, _)) if !exhausted => {
                    from = key;
                    inclusive = false;
                }
                _ => break,
            }
        }
        Ok(out)
    }
}

/// Parses a key (or part of one) naming a record, or reports it corrupt in `table`.
fn parse<T: std::str::FromStr>(table: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| StoreError::corrupt(table, bytes, "does not parse"))
}
