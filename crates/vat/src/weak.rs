//! Weak stores, after JavaScript's `WeakMap`/`WeakSet` and Agoric's weak scalar stores: maps
//! and sets keyed by object references that do not keep their keys alive, but still
//! *recognise* them. An import that vat code no longer holds strongly, but that is the key
//! of a live weak store, is reported as dropped on `bringOutYourDead` and not retired: the
//! kernel may hand it back, and the store then finds its entry again (spec §19.8). Once the
//! entry is deleted or the store itself is dropped, the next reap retires the import.
//!
//! A store lives in memory for one incarnation ([`WeakMapStore::new`]) or in the vat store
//! ([`crate::Vat::durable_weak_map_store`], `weak/stored.rs`), where it survives restarts
//! and upgrades like baggage.
//!
//! Invariant: a store's set of import keys is shared with the vat's `Core` only weakly, and
//! holds vrefs, never presences, so a store never makes an import strongly held.

mod stored;
#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::{Rc, Weak};

use ocap_types::VRef;

use crate::core::Core;
use crate::error::{Error, Result};
use crate::reference::{Ref, Target};
use crate::val::Val;

use stored::{StoredTable, WeakKind};
pub(crate) use stored::{durable_weak_keys, forget_durable_weak_keys};

/// The identity of a weak key: a local object by its local id, a presence by its vref
/// (both within their vat, which the core's address tells apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum KeyId {
    Local(usize, u64),
    Import(usize, VRef),
}

struct HeapTable {
    label: String,
    entries: RefCell<BTreeMap<KeyId, Val>>,
    /// The import keys, shared weakly with the vats they belong to.
    imports: Rc<RefCell<BTreeSet<VRef>>>,
}

impl HeapTable {
    fn new(label: &str) -> HeapTable {
        HeapTable {
            label: label.to_owned(),
            entries: RefCell::new(BTreeMap::new()),
            imports: Rc::new(RefCell::new(BTreeSet::new())),
        }
    }

    fn key_id(&self, key: &Val) -> Result<KeyId> {
        match key {
            Val::Ref(Ref(Target::Local(object))) => Ok(KeyId::Local(
                Weak::as_ptr(&object.core) as usize,
                object.local_id,
            )),
            Val::Ref(Ref(Target::Remote(presence))) => Ok(KeyId::Import(
                Weak::as_ptr(&presence.core) as usize,
                presence.vref,
            )),
            other => Err(Error::new(format!(
                "{:?}: a weak store's key must be an object reference, not {}",
                self.label,
                other.kind()
            ))),
        }
    }

    fn has(&self, key: &Val) -> bool {
        self.key_id(key)
            .is_ok_and(|id| self.entries.borrow().contains_key(&id))
    }

    fn get(&self, key: &Val) -> Result<Val> {
        let id = self.key_id(key)?;
        self.entries
            .borrow()
            .get(&id)
            .cloned()
            .ok_or_else(|| Error::new(format!("{:?}: key not found", self.label)))
    }

    fn put(&self, key: &Val, value: Val, must_be_new: bool) -> Result<()> {
        let id = self.key_id(key)?;
        if must_be_new && self.entries.borrow().contains_key(&id) {
            return Err(Error::new(format!("{:?}: key already present", self.label)));
        }
        if let Val::Ref(Ref(Target::Remote(presence))) = key
            && let Some(core) = presence.core.upgrade()
        {
            self.imports.borrow_mut().insert(presence.vref);
            core.register_weak_keys(&self.imports);
        }
        // The old value (if any) is dropped after the borrow ends.
        let old = self.entries.borrow_mut().insert(id, value);
        drop(old);
        Ok(())
    }

    fn delete(&self, key: &Val) -> Result<()> {
        let id = self.key_id(key)?;
        let old = self.entries.borrow_mut().remove(&id);
        if old.is_none() {
            return Err(Error::new(format!("{:?}: key not found", self.label)));
        }
        if let KeyId::Import(_, vref) = id {
            self.imports.borrow_mut().remove(&vref);
        }
        drop(old);
        Ok(())
    }
}

/// A weak store's entries: in memory, or in the vat store.
enum Table {
    Heap(HeapTable),
    Stored(StoredTable),
}

impl Table {
    fn has(&self, key: &Val) -> bool {
        match self {
            Table::Heap(table) => table.has(key),
            Table::Stored(table) => table.has(key),
        }
    }

    fn get(&self, key: &Val) -> Result<Val> {
        match self {
            Table::Heap(table) => table.get(key),
            Table::Stored(table) => table.get(key),
        }
    }

    fn put(&self, key: &Val, value: Val, must_be_new: bool) -> Result<()> {
        match self {
            Table::Heap(table) => table.put(key, value, must_be_new),
            Table::Stored(table) => table.put(key, value, must_be_new),
        }
    }

    fn delete(&self, key: &Val) -> Result<()> {
        match self {
            Table::Heap(table) => table.delete(key),
            Table::Stored(table) => table.delete(key),
        }
    }
}

/// A map keyed by object references that holds its keys weakly but recognisably (a
/// JavaScript `WeakMap`): keeping an import only as a key here lets the vat drop it while
/// still recognising it if it comes back. Values are held strongly. It cannot be listed.
///
/// Cheap to clone; clones share the entries. [`WeakMapStore::new`] makes one in memory for
/// one incarnation; [`crate::Vat::durable_weak_map_store`] one in the vat store, whose keys
/// must survive a restart too (imports, the root, durable objects) and whose entry of an
/// import goes when the kernel retires that import.
///
/// # Examples
/// ```
/// # use ocap_vat::{Result, Val, Vat, WeakMapStore};
/// fn remember(vat: &Vat) -> Result<()> {
///     let thing = vat.object("thing").build();
///     let seen = WeakMapStore::new("seen");
///     seen.init(thing.clone(), "first")?;
///     assert!(seen.has(thing.clone()));
///     assert_eq!(seen.get(thing.clone())?, Val::from("first"));
///     assert!(seen.init(thing.clone(), "again").is_err()); // init adds; set replaces
///     seen.delete(thing.clone())?;
///     assert!(!seen.has(thing));
///     Ok(())
/// }
/// # use ocap_types::{Syscall, Value, VatHost, VatLog, VatRuntime, VatStart};
/// # struct NoHost;
/// # impl VatHost for NoHost {
/// #     fn syscall(&mut self, _: Syscall) {}
/// #     fn log(&mut self, _: VatLog) {}
/// # }
/// # let mut runtime = ocap_vat::Runtime::new(|vat: &Vat, _: &Val, _: &ocap_vat::Baggage| {
/// #     remember(vat)?;
/// #     Ok(vat.object("root").build())
/// # });
/// # let start = VatStart { name: "v".into(), parameters: Value::Null, state: Vec::new() };
/// # assert_eq!(runtime.start(start, &mut NoHost).error, None);
/// ```
#[derive(Clone)]
pub struct WeakMapStore {
    table: Rc<Table>,
}

impl WeakMapStore {
    /// An empty store; `label` names it in errors.
    pub fn new(label: &str) -> WeakMapStore {
        WeakMapStore {
            table: Rc::new(Table::Heap(HeapTable::new(label))),
        }
    }

    pub(crate) fn durable(core: Weak<Core>, name: &str) -> WeakMapStore {
        WeakMapStore {
            table: Rc::new(Table::Stored(StoredTable::new(core, WeakKind::Map, name))),
        }
    }

    /// True when `key` has an entry (false for a value that cannot be a key).
    pub fn has(&self, key: impl Into<Val>) -> bool {
        self.table.has(&key.into())
    }

    /// The value under `key`.
    ///
    /// # Errors
    /// When `key` has no entry or is not an object reference.
    pub fn get(&self, key: impl Into<Val>) -> Result<Val> {
        self.table.get(&key.into())
    }

    /// Adds an entry for a new `key`.
    ///
    /// # Errors
    /// When `key` already has one or is not an object reference.
    pub fn init(&self, key: impl Into<Val>, value: impl Into<Val>) -> Result<()> {
        self.table.put(&key.into(), value.into(), true)
    }

    /// Sets the value under `key`, adding the entry if needed.
    ///
    /// # Errors
    /// When `key` is not an object reference.
    pub fn set(&self, key: impl Into<Val>, value: impl Into<Val>) -> Result<()> {
        self.table.put(&key.into(), value.into(), false)
    }

    /// Deletes the entry of `key`.
    ///
    /// # Errors
    /// When `key` has no entry.
    pub fn delete(&self, key: impl Into<Val>) -> Result<()> {
        self.table.delete(&key.into())
    }
}

/// A set of object references that holds them weakly but recognisably (a JavaScript
/// `WeakSet`); see [`WeakMapStore`], and [`crate::Vat::durable_weak_set_store`] for one in
/// the vat store.
#[derive(Clone)]
pub struct WeakSetStore {
    table: Rc<Table>,
}

impl WeakSetStore {
    /// An empty set; `label` names it in errors.
    pub fn new(label: &str) -> WeakSetStore {
        WeakSetStore {
            table: Rc::new(Table::Heap(HeapTable::new(label))),
        }
    }

    pub(crate) fn durable(core: Weak<Core>, name: &str) -> WeakSetStore {
        WeakSetStore {
            table: Rc::new(Table::Stored(StoredTable::new(core, WeakKind::Set, name))),
        }
    }

    /// True when `key` is in the set.
    pub fn has(&self, key: impl Into<Val>) -> bool {
        self.table.has(&key.into())
    }

    /// Adds `key` (adding it again changes nothing).
    ///
    /// # Errors
    /// When `key` is not an object reference.
    pub fn add(&self, key: impl Into<Val>) -> Result<()> {
        self.table.put(&key.into(), Val::Undefined, false)
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// When `key` is not in the set.
    pub fn delete(&self, key: impl Into<Val>) -> Result<()> {
        self.table.delete(&key.into())
    }
}
