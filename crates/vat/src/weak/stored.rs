//! Durable weak stores: a [`super::WeakMapStore`] or [`super::WeakSetStore`] kept in the vat
//! store, so that it survives restarts and upgrades like baggage.
//!
//! Vat-store layout of a store named `N` (length `L` in bytes): `sdk.wmap.<L>:<N>.<vref>`
//! (or `sdk.wset.…`) holds the value of the key `vref` as capdata, serialized like baggage
//! values (a set's value is `undefined`). The length prefix keeps one store's keys from ever
//! falling under another's prefix.
//!
//! Invariant: a key is written as its vref's text, never serialized, so an import that is
//! only a key here is *recognised* (the garbage collector finds it under these prefixes and
//! does not retire it) but not *held* (it is not one of the imports the vat store holds, so
//! it is dropped once vat code lets go of it). Values are held, as in baggage. When the
//! kernel retires an import, its entries go from every durable weak store.

use std::collections::BTreeSet;
use std::rc::{Rc, Weak};

#[cfg(test)]
mod tests;

use ocap_types::{CapData, ExportId, VRef, cbor};

use crate::core::{Core, State};
use crate::error::{Error, Result};
use crate::reference::{Ref, Target};
use crate::store::VatStore;
use crate::val::Val;

const MAP_PREFIX: &str = "sdk.wmap.";
const SET_PREFIX: &str = "sdk.wset.";

/// Which of the two weak stores a stored table backs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WeakKind {
    Map,
    Set,
}

/// The entries of one durable weak store, in the vat store.
pub(crate) struct StoredTable {
    label: String,
    core: Weak<Core>,
    prefix: String,
}

impl StoredTable {
    pub(crate) fn new(core: Weak<Core>, kind: WeakKind, name: &str) -> StoredTable {
        let base = match kind {
            WeakKind::Map => MAP_PREFIX,
            WeakKind::Set => SET_PREFIX,
        };
        StoredTable {
            label: name.to_owned(),
            core,
            prefix: format!("{base}{}:{name}.", name.len()),
        }
    }

    fn core(&self) -> Result<Rc<Core>> {
        self.core
            .upgrade()
            .ok_or_else(|| Error::new("the vat is gone"))
    }

    /// The vat-store key of `key`'s entry. A key must outlive the incarnation: an import,
    /// the root, or a durable object of this vat.
    fn entry_key(&self, state: &State, key: &Val) -> Result<String> {
        let vref = match key {
            Val::Ref(Ref(Target::Local(object))) => {
                if !Weak::ptr_eq(&object.core, &state.me) {
                    return Err(State::foreign_object(object));
                }
                match state.export_vrefs.get(&object.local_id) {
                    Some(vref @ VRef::ExportObject(ExportId::Durable { .. })) => *vref,
                    Some(&VRef::ROOT) => VRef::ROOT,
                    _ => {
                        return Err(Error::new(format!(
                            "{:?}: the non-durable object {:?} cannot be a key of a durable \
                             weak store",
                            self.label, object.iface
                        )));
                    }
                }
            }
            Val::Ref(Ref(Target::Remote(presence))) => {
                if !Weak::ptr_eq(&presence.core, &state.me) {
                    return Err(Error::new(
                        "a presence from another vat cannot be a key in this one",
                    ));
                }
                presence.vref
            }
            other => {
                return Err(Error::new(format!(
                    "{:?}: a weak store's key must be an object reference, not {}",
                    self.label,
                    other.kind()
                )));
            }
        };
        Ok(format!("{}{vref}", self.prefix))
    }

    pub(crate) fn has(&self, key: &Val) -> bool {
        let Ok(core) = self.core() else {
            return false;
        };
        let state = core.state.borrow();
        self.entry_key(&state, key)
            .is_ok_and(|entry| state.store.get(&entry).is_some())
    }

    pub(crate) fn get(&self, key: &Val) -> Result<Val> {
        let core = self.core()?;
        let mut state = core.state.borrow_mut();
        let entry = self.entry_key(&state, key)?;
        let bytes = state
            .store
            .get(&entry)
            .ok_or_else(|| Error::new(format!("{:?}: key not found", self.label)))?;
        let corrupt = |reason: String| Error::new(format!("{:?}: {entry:?}: {reason}", self.label));
        let data: CapData<VRef> = cbor::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        state.deserialize_stored(&data).map_err(corrupt)
    }

    pub(crate) fn put(&self, key: &Val, value: Val, must_be_new: bool) -> Result<()> {
        let core = self.core()?;
        let mut state = core.state.borrow_mut();
        let entry = self.entry_key(&state, key)?;
        if must_be_new && state.store.get(&entry).is_some() {
            return Err(Error::new(format!("{:?}: key already present", self.label)));
        }
        let data = state
            .serialize_durable(&value)
            .map_err(|error| Error::new(format!("{:?}: {}", self.label, error.message())))?;
        state.store.set(&entry, cbor::to_vec(&data));
        Ok(())
    }

    pub(crate) fn delete(&self, key: &Val) -> Result<()> {
        let core = self.core()?;
        let mut state = core.state.borrow_mut();
        let entry = self.entry_key(&state, key)?;
        if state.store.delete(&entry) {
            Ok(())
        } else {
            Err(Error::new(format!("{:?}: key not found", self.label)))
        }
    }
}

/// Every `(vat-store key, key vref)` of every durable weak store.
fn entries(store: &VatStore) -> Vec<(String, VRef)> {
    [MAP_PREFIX, SET_PREFIX]
        .into_iter()
        .flat_map(|prefix| {
            store
                .keys_with_prefix(prefix)
                .filter_map(move |key| Some((key.to_owned(), entry_vref(&key[prefix.len()..])?)))
        })
        .collect()
}

/// The key vref of an entry, from the part of its vat-store key after the prefix
/// (`<L>:<N>.<vref>`).
fn entry_vref(rest: &str) -> Option<VRef> {
    let (len, rest) = rest.split_once(':')?;
    let len: usize = len.parse().ok()?;
    rest.get(len..)?.strip_prefix('.')?.parse().ok()
}

/// The imports some durable weak store has as a key: recognised, so never retired by this
/// vat's garbage collection.
pub(crate) fn durable_weak_keys(store: &VatStore) -> BTreeSet<VRef> {
    entries(store)
        .into_iter()
        .map(|(_, vref)| vref)
        .filter(|vref| matches!(vref, VRef::ImportObject(_)))
        .collect()
}

/// Deletes every durable weak store's entry for these (retired) imports.
pub(crate) fn forget_durable_weak_keys(store: &mut VatStore, vrefs: &[VRef]) {
    for (key, vref) in entries(store) {
        if vrefs.contains(&vref) {
            store.delete(&key);
        }
    }
}
