//! C-lists (spec §2.6): per endpoint, a bijection between its refs and kernel refs, stored
//! both ways under `<ep>.c.`: `<ep>.c.<vref>` → kref and `<ep>.c.<kref>` → `R <vref>` or
//! `_ <vref>` (reachable flag).

use ocap_types::{EndpointId, KPromiseId, KRef, VRef};

use super::{KernelStore, keys};
use crate::Store;
use crate::error::StoreError;

/// A c-list entry seen from the kernel side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CListEntry {
    /// The endpoint's ref.
    pub vref: VRef,
    /// True while the endpoint can reach (not just recognize) the kref.
    pub reachable: bool,
}

impl KernelStore {
    /// The kref that `vref` names in `ep`'s c-list.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the entry does not parse.
    pub fn clist_kref(&self, ep: EndpointId, vref: VRef) -> Result<Option<KRef>, StoreError> {
        let key = keys::clist(ep, vref);
        match self.kv.get_ref(&key)? {
            None => Ok(None),
            Some(bytes) => KRef::from_ascii(&bytes)
                .map(Some)
                .ok_or_else(|| StoreError::corrupt("clist", &key, "does not parse")),
        }
    }

    /// The entry for `kref` in `ep`'s c-list.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the entry does not parse.
    pub fn clist_entry(
        &self,
        ep: EndpointId,
        kref: KRef,
    ) -> Result<Option<CListEntry>, StoreError> {
        let key = keys::clist(ep, kref);
        let Some(bytes) = self.kv.get_ref(&key)? else {
            return Ok(None);
        };
        // `R <vref>` or `_ <vref>`.
        let parsed = match &bytes[..] {
            [flag @ (b'R' | b'_'), b' ', vref @ ..] => {
                VRef::from_ascii(vref).map(|vref| CListEntry {
                    vref,
                    reachable: *flag == b'R',
                })
            }
            _ => None,
        };
        parsed
            .map(Some)
            .ok_or_else(|| StoreError::corrupt("clist", &key, "not a flagged vref"))
    }

    /// Adds `kref ↔ vref` to `ep`'s c-list, flagged reachable. Refcounts are the caller's.
    /// Neither direction may exist yet (the caller found one absent and allocated the
    /// other).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn add_clist_entry(
        &mut self,
        ep: EndpointId,
        kref: KRef,
        vref: VRef,
    ) -> Result<(), StoreError> {
        self.kv.set_new(&keys::clist(ep, vref), &keys::part(kref))?;
        match (kref, vref.is_export()) {
            (KRef::Object(id), false) => self.kv.set_new(&keys::importer(id, ep), b"")?,
            (KRef::Object(_), true) => {}
            // The promise's record keeps which c-lists can hold it (`promises.rs`).
            (KRef::Promise(id), _) => self.note_promise_holder(id, ep)?,
        }
        self.kv
            .set_new(&keys::clist(ep, kref), &keys::flagged(true, vref))
    }

    /// The endpoints whose c-lists import object `id`, from the importer index.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an index key that does not parse.
    pub fn importers(&self, id: ocap_types::KObjectId) -> Result<Vec<EndpointId>, StoreError> {
        let prefix = keys::importers_prefix(id);
        self.kv
            .scan_prefix(&prefix)?
            .iter()
            .map(|(key, _)| {
                std::str::from_utf8(&key[prefix.len()..])
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| StoreError::corrupt("importers", key, "bad endpoint"))
            })
            .collect()
    }

    fn write_flag(
        &mut self,
        ep: EndpointId,
        kref: KRef,
        vref: VRef,
        reachable: bool,
    ) -> Result<(), StoreError> {
        self.kv
            .set(&keys::clist(ep, kref), &keys::flagged(reachable, vref))
    }

    /// Clears the reachable flag; for an imported object that still exists this releases
    /// one reachable hold (spec §2.6). Returns false if there is no entry.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn clear_reachable_flag(&mut self, ep: EndpointId, kref: KRef) -> Result<bool, StoreError> {
        let Some(entry) = self.clist_entry(ep, kref)? else {
            return Ok(false);
        };
        if entry.reachable {
            self.write_flag(ep, kref, entry.vref, false)?;
            if let (KRef::Object(id), false) = (kref, entry.vref.is_export()) {
                self.decref_reachable(id)?;
            }
        }
        Ok(true)
    }

    /// Creates the root object of `ep` (spec §12.2): owned by it, exported as `o+0`, and
    /// held by that entry for as long as it stays.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn export_root(&mut self, ep: EndpointId) -> Result<ocap_types::KObjectId, StoreError> {
        let root = self.create_object(super::Owner::Endpoint(ep))?;
        let kref = KRef::Object(root);
        self.add_clist_entry(ep, kref, VRef::ROOT)?;
        self.incref(kref)?;
        Ok(root)
    }

    /// Sets the reachable flag of an existing entry again (spec §2.6, issue 13): a vat that
    /// sends out an export the kernel dropped makes it reachable again, so it is dropped
    /// (and retired) once more when its importers let go; an object delivered again to a
    /// vat that dropped its import is held reachable by that import again.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn mark_reachable(
        &mut self,
        ep: EndpointId,
        kref: KRef,
        entry: CListEntry,
    ) -> Result<(), StoreError> {
        if entry.reachable {
            return Ok(());
        }
        self.write_flag(ep, kref, entry.vref, true)?;
        if let (KRef::Object(_), false) = (kref, entry.vref.is_export()) {
            self.adjust(kref, 1, 0)?;
        }
        Ok(())
    }

    /// True if a c-list entry of `vref` for `kref` holds the kref: every promise entry,
    /// every object import, and a vat's root export `o+0` (while its vat lives, the root
    /// stays). Other exports hold nothing: their importers, queues and values do.
    #[must_use]
    pub fn entry_holds(kref: KRef, vref: VRef) -> bool {
        kref.is_promise() || !vref.is_export() || vref == VRef::ROOT
    }

    /// Deletes the entry, releasing the holds it stood for (spec §2.6): an import of an
    /// object loses its reachable flag and one recognizable hold; a promise's entry, import
    /// (`p-N`) or export (`p+N`), and a root export release the hold they took.
    ///
    /// Imports are counted, unlike in the reference kernel (spec §14.7): an object or a
    /// settled promise is collected once nothing names it, so every c-list entry that can
    /// name it to a vat must hold it (see `docs/decisions.md`, "Balanced object counts").
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_clist_entry(&mut self, ep: EndpointId, kref: KRef) -> Result<(), StoreError> {
        match self.clist_entry(ep, kref)? {
            Some(entry) => self.delete_read_clist_entry(ep, kref, entry),
            None => Ok(()),
        }
    }

    /// [`KernelStore::delete_clist_entry`] of an entry the caller has just read with
    /// [`KernelStore::clist_entry`] (and not changed since, but for its reachable flag if
    /// `kref` is a promise, which deleting ignores): saves reading it again.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_read_clist_entry(
        &mut self,
        ep: EndpointId,
        kref: KRef,
        entry: CListEntry,
    ) -> Result<(), StoreError> {
        // What `clear_reachable_flag` does, without reading the entry again or rewriting
        // its flag: the entry is deleted below in this same crank, so only the release of
        // the reachable hold remains (the stored result, and the crank's digest, are the
        // same either way).
        if let (true, KRef::Object(id), false) = (entry.reachable, kref, entry.vref.is_export()) {
            self.decref_reachable(id)?;
        }
        match kref {
            KRef::Object(id) if !entry.vref.is_export() => self.decref_recognizable(id)?,
            _ if Self::entry_holds(kref, entry.vref) => self.decref(kref)?,
            KRef::Object(_) | KRef::Promise(_) => {}
        }
        self.remove_clist_pair(ep, kref, entry.vref, true)
    }

    /// Deletes `ep`'s c-list entry `promise ↔ vref`, which the caller has just found or
    /// made by translating `vref` in this crank, and releases the hold it takes: what
    /// [`KernelStore::delete_clist_entry`] does for a promise, without reading the entry
    /// (a promise entry's flag changes nothing here).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_translated_promise_entry(
        &mut self,
        ep: EndpointId,
        promise: KPromiseId,
        vref: VRef,
    ) -> Result<(), StoreError> {
        let kref = KRef::Promise(promise);
        if Self::entry_holds(kref, vref) {
            self.decref(kref)?;
        }
        self.remove_clist_pair(ep, kref, vref, true)
    }

    /// Orphans an export of `ep` (its vat retired or abandoned it, or is gone): the entry
    /// is deleted, the object loses its owner (later sends splat as deleted, spec D10) and,
    /// for a root, the root's hold; it is collected once nothing else holds it.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn orphan_export(
        &mut self,
        ep: EndpointId,
        kref: KRef,
        vref: VRef,
    ) -> Result<(), StoreError> {
        self.forget_clist_entry(ep, kref, vref)?;
        let KRef::Object(id) = kref else {
            return Ok(());
        };
        if let Some(mut record) = self.object(id)? {
            record.owner = None;
            self.put_object(id, &record)?;
            if vref == VRef::ROOT {
                self.decref(kref)?;
            }
            self.note_maybe_free(kref);
        }
        Ok(())
    }

    /// Removes both directions of the entry without touching refcounts.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn forget_clist_entry(
        &mut self,
        ep: EndpointId,
        kref: KRef,
        vref: VRef,
    ) -> Result<(), StoreError> {
        self.remove_clist_pair(ep, kref, vref, false)
    }

    /// Deletes both directions of the entry and its importer-index key. `stored`: the caller
    /// has just read one direction, so both are stored (a c-list has both or neither), which
    /// lets the commit delete them through its cursor (`Store::delete_present`).
    fn remove_clist_pair(
        &mut self,
        ep: EndpointId,
        kref: KRef,
        vref: VRef,
        stored: bool,
    ) -> Result<(), StoreError> {
        let delete = if stored {
            Store::delete_present
        } else {
            Store::delete
        };
        delete(&mut self.kv, &keys::clist(ep, vref))?;
        if let (KRef::Object(id), false) = (kref, vref.is_export()) {
            self.kv.delete(&keys::importer(id, ep))?;
        }
        delete(&mut self.kv, &keys::clist(ep, kref))
    }

    /// Allocates the next import number (`o-N` or `p-N`) of `ep`.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn allocate_import(&mut self, ep: EndpointId, promise: bool) -> Result<u64, StoreError> {
        self.allocate(&keys::endpoint_counter(ep, promise))
    }

    /// Every `(vref, kref)` in `ep`'s c-list, in vref byte order (exports `o+`, imports `o-`,
    /// then promises).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an entry that does not parse.
    pub fn clist_entries(&self, ep: EndpointId) -> Result<Vec<(VRef, KRef)>, StoreError> {
        let prefix = keys::clist_prefix(ep);
        let mut out = Vec::new();
        for (key, value) in self.kv.scan_prefix(&prefix)? {
            let suffix = &key[prefix.len()..];
            if suffix.first() == Some(&b'k') {
                continue; // the kref → vref direction
            }
            let parse = || -> Option<(VRef, KRef)> {
                let vref = std::str::from_utf8(suffix).ok()?.parse().ok()?;
                let kref = std::str::from_utf8(&value).ok()?.parse().ok()?;
                Some((vref, kref))
            };
            out.push(parse().ok_or_else(|| StoreError::corrupt("clist", &key, "bad entry"))?);
        }
        Ok(out)
    }

    /// At most `limit` of the `(vref, kref)` pairs of `ep`'s c-list, in the order of
    /// [`KernelStore::clist_entries`]; reads no more than it returns (bounded cleanup).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an entry that does not parse.
    pub fn first_clist_entries(
        &self,
        ep: EndpointId,
        limit: usize,
    ) -> Result<Vec<(VRef, KRef)>, StoreError> {
        let prefix = keys::clist_prefix(ep);
        // Vref keys start with `o` or `p`; the kref → vref direction (`k…`) sorts before
        // them, so start the walk just past it.
        let mut from = prefix.clone();
        from.push(b'o');
        let mut out = Vec::new();
        for (key, value) in self.kv.scan_from(&prefix, &from, true, limit)? {
            let suffix = &key[prefix.len()..];
            let parse = || -> Option<(VRef, KRef)> {
                let vref = std::str::from_utf8(suffix).ok()?.parse().ok()?;
                let kref = std::str::from_utf8(&value).ok()?.parse().ok()?;
                Some((vref, kref))
            };
            out.push(parse().ok_or_else(|| StoreError::corrupt("clist", &key, "bad entry"))?);
        }
        Ok(out)
    }

    /// Deletes every key of endpoint `ep` (c-list, counters, vat store, record).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_endpoint_keys(&mut self, ep: EndpointId) -> Result<(), StoreError> {
        for (key, _) in self.kv.scan_prefix(&keys::endpoint_prefix(ep))? {
            self.kv.delete(&key)?;
        }
        Ok(())
    }
}
