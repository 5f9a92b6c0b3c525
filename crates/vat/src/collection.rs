//! Scalar stores, after Agoric's `makeScalarMapStore` / `makeScalarSetStore`: a map and a
//! set whose keys are scalars (strings, numbers, booleans, `null`, `undefined`, object
//! references), listed in key order. A store lives in memory for one incarnation
//! ([`MapStore::new`]) or in the vat store ([`crate::Vat::durable_map_store`]), where it
//! survives restarts like baggage.
//!
//! Key order: `undefined`, `null`, booleans (false first), numbers (by value), strings (by
//! code point), then object references (in a fixed order of their identities: creation
//! order for local objects of a memory store, vref order in the vat store).
//!
//! Vat-store layout of a durable store named `N` (length `L` in bytes):
//! `sdk.map.<L>:<N>.<key id>` (or `sdk.set.…`) holds the entry `[key, value]` as capdata,
//! serialized like baggage values. The length prefix keeps one store's keys from ever
//! falling under another's prefix. Integral floats are the same key as the integer.

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::{Rc, Weak};

use ocap_types::{CapData, VRef, cbor};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::guard::quote;
use crate::reference::{Ref, Target};
use crate::val::Val;

const MAP_PREFIX: &str = "sdk.map.";
const SET_PREFIX: &str = "sdk.set.";

/// A map from scalar keys to values.
///
/// Cheap to clone; clones share the entries. A memory store ([`MapStore::new`]) takes any
/// value; a durable one ([`crate::Vat::durable_map_store`]) takes what baggage takes (no
/// promises, no ephemeral objects), and so do its keys.
///
/// # Examples
/// ```
/// use ocap_vat::{MapStore, Val};
///
/// let ages = MapStore::new("ages");
/// ages.init("bob", 25)?;
/// ages.init("alice", 30)?;
/// assert!(ages.init("bob", 26).is_err()); // init adds; set replaces
/// ages.set("bob", 26)?;
/// assert_eq!(ages.size(), 2);
/// assert_eq!(ages.keys()?, [Val::from("alice"), Val::from("bob")]);
/// assert_eq!(ages.get("bob")?, Val::from(26));
/// assert!(ages.has("alice"));
/// ages.delete("alice")?;
/// assert!(!ages.has("alice"));
/// # Ok::<(), ocap_vat::Error>(())
/// ```
#[derive(Clone)]
pub struct MapStore {
    table: Table,
}

impl MapStore {
    /// An empty store kept in memory for this incarnation; `label` names it in errors.
    pub fn new(label: &str) -> MapStore {
        MapStore {
            table: Table::heap(label),
        }
    }

    pub(crate) fn durable(core: Weak<Core>, name: &str) -> MapStore {
        MapStore {
            table: Table::durable(core, MAP_PREFIX, name),
        }
    }

    /// The store's label (a durable store's name).
    pub fn label(&self) -> &str {
        &self.table.label
    }

    /// The number of entries.
    pub fn size(&self) -> usize {
        self.table.len()
    }

    /// True when `key` has an entry (false for a value that cannot be a key).
    pub fn has(&self, key: impl Into<Val>) -> bool {
        let key = key.into();
        self.table
            .key_id(&key)
            .is_ok_and(|id| self.table.lookup(&id).is_ok_and(|entry| entry.is_some()))
    }

    /// The value under `key`.
    ///
    /// # Errors
    /// When `key` has no entry, or (durable) the stored entry does not decode.
    pub fn get(&self, key: impl Into<Val>) -> Result<Val> {
        let key = key.into();
        let id = self.table.key_id(&key)?;
        match self.table.lookup(&id)? {
            Some((_, value)) => Ok(value),
            None => Err(self.table.not_found(&key)),
        }
    }

    /// Adds an entry for a new `key`.
    ///
    /// # Errors
    /// When `key` already has one, is not a scalar, or (durable) `key` or `value` would not
    /// survive a restart.
    pub fn init(&self, key: impl Into<Val>, value: impl Into<Val>) -> Result<()> {
        let key = key.into();
        let id = self.table.key_id(&key)?;
        if self.table.lookup(&id)?.is_some() {
            return Err(self.table.already(&key));
        }
        self.table.put(&id, key, value.into())
    }

    /// Replaces the value of an existing `key`.
    ///
    /// # Errors
    /// When `key` has no entry, or (durable) `value` would not survive a restart.
    pub fn set(&self, key: impl Into<Val>, value: impl Into<Val>) -> Result<()> {
        let key = key.into();
        let id = self.table.key_id(&key)?;
        if self.table.lookup(&id)?.is_none() {
            return Err(self.table.not_found(&key));
        }
        self.table.put(&id, key, value.into())
    }

    /// Removes the entry of `key`.
    ///
    /// # Errors
    /// When `key` has no entry.
    pub fn delete(&self, key: impl Into<Val>) -> Result<()> {
        let key = key.into();
        let id = self.table.key_id(&key)?;
        if self.table.remove(&id) {
            Ok(())
        } else {
            Err(self.table.not_found(&key))
        }
    }

    /// The keys, in key order.
    ///
    /// # Errors
    /// When (durable) a stored entry does not decode.
    pub fn keys(&self) -> Result<Vec<Val>> {
        Ok(self.entries()?.into_iter().map(|(key, _)| key).collect())
    }

    /// The values, in the order of their keys.
    ///
    /// # Errors
    /// As [`MapStore::keys`].
    pub fn values(&self) -> Result<Vec<Val>> {
        Ok(self
            .entries()?
            .into_iter()
            .map(|(_, value)| value)
            .collect())
    }

    /// The entries, in key order.
    ///
    /// # Errors
    /// As [`MapStore::keys`].
    pub fn entries(&self) -> Result<Vec<(Val, Val)>> {
        self.table.sorted_entries()
    }
}

impl fmt::Debug for MapStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapStore")
            .field("label", &self.table.label)
            .field("size", &self.size())
            .finish()
    }
}

/// A set of scalar keys (see [`MapStore`] for what a key may be, and memory versus
/// durable stores).
///
/// # Examples
/// ```
/// use ocap_vat::{SetStore, Val};
///
/// let seen = SetStore::new("seen");
/// seen.add("b")?;
/// seen.add("a")?;
/// seen.add("b")?; // adding again changes nothing
/// assert_eq!(seen.size(), 2);
/// assert_eq!(seen.keys()?, [Val::from("a"), Val::from("b")]);
/// assert!(seen.has("a"));
/// # Ok::<(), ocap_vat::Error>(())
/// ```
#[derive(Clone)]
pub struct SetStore {
    table: Table,
}

impl SetStore {
    /// An empty set kept in memory for this incarnation; `label` names it in errors.
    pub fn new(label: &str) -> SetStore {
        SetStore {
            table: Table::heap(label),
        }
    }

    pub(crate) fn durable(core: Weak<Core>, name: &str) -> SetStore {
        SetStore {
            table: Table::durable(core, SET_PREFIX, name),
        }
    }

    /// The set's label (a durable set's name).
    pub fn label(&self) -> &str {
        &self.table.label
    }

    /// The number of keys.
    pub fn size(&self) -> usize {
        self.table.len()
    }

    /// True when `key` is in the set (false for a value that cannot be a key).
    pub fn has(&self, key: impl Into<Val>) -> bool {
        let key = key.into();
        self.table
            .key_id(&key)
            .is_ok_and(|id| self.table.lookup(&id).is_ok_and(|entry| entry.is_some()))
    }

    /// Adds `key`; adding a key already there changes nothing.
    ///
    /// # Errors
    /// When `key` is not a scalar, or (durable) would not survive a restart.
    pub fn add(&self, key: impl Into<Val>) -> Result<()> {
        let key = key.into();
        let id = self.table.key_id(&key)?;
        if self.table.lookup(&id)?.is_some() {
            return Ok(());
        }
        self.table.put(&id, key, Val::Undefined)
    }

    /// Removes `key`.
    ///
    /// # Errors
    /// When `key` is not in the set.
    pub fn delete(&self, key: impl Into<Val>) -> Result<()> {
        let key = key.into();
        let id = self.table.key_id(&key)?;
        if self.table.remove(&id) {
            Ok(())
        } else {
            Err(self.table.not_found(&key))
        }
    }

    /// The keys, in key order.
    ///
    /// # Errors
    /// When (durable) a stored entry does not decode.
    pub fn keys(&self) -> Result<Vec<Val>> {
        Ok(self
            .table
            .sorted_entries()?
            .into_iter()
            .map(|(key, _)| key)
            .collect())
    }
}

impl fmt::Debug for SetStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SetStore")
            .field("label", &self.table.label)
            .field("size", &self.size())
            .finish()
    }
}

/// The entries of one store, by key id.
#[derive(Clone)]
struct Table {
    label: Rc<str>,
    backing: Backing,
}

#[derive(Clone)]
enum Backing {
    /// In memory: `key id → (key, value)`.
    Heap(Rc<RefCell<BTreeMap<String, (Val, Val)>>>),
    /// In the vat store, under `prefix` + key id.
    Durable { core: Weak<Core>, prefix: String },
}

impl Table {
    fn heap(label: &str) -> Table {
        Table {
            label: label.into(),
            backing: Backing::Heap(Rc::default()),
        }
    }

    fn durable(core: Weak<Core>, base: &str, name: &str) -> Table {
        Table {
            label: name.into(),
            backing: Backing::Durable {
                core,
                prefix: format!("{base}{}:{name}.", name.len()),
            },
        }
    }

    /// The identity of `key` in this table.
    fn key_id(&self, key: &Val) -> Result<String> {
        let id = match key {
            Val::Undefined => "u".to_owned(),
            Val::Null => "z".to_owned(),
            Val::Bool(b) => format!("b{}", u8::from(*b)),
            Val::Int(n) => format!("n{n}"),
            Val::BigInt(n) => match i64::try_from(*n) {
                Ok(n) => format!("n{n}"),
                Err(_) => format!("N{n}"),
            },
            Val::Float(x) => match Val::number(*x) {
                Val::Int(n) => format!("n{n}"),
                // One NaN, whatever its bits.
                _ if x.is_nan() => format!("f{:016x}", f64::NAN.to_bits()),
                _ => format!("f{:016x}", x.to_bits()),
            },
            Val::Str(s) => format!("s{s}"),
            Val::Ref(reference) => self.ref_id(reference)?,
            other => {
                return Err(Error::new(format!(
                    "collection {:?}: {} cannot be a key (keys are strings, numbers, \
                     booleans, null, undefined and object references)",
                    self.label,
                    other.a_kind()
                )));
            }
        };
        Ok(id)
    }

    fn ref_id(&self, reference: &Ref) -> Result<String> {
        match &self.backing {
            Backing::Heap(_) => Ok(match &reference.0 {
                Target::Local(object) => format!("l{:020}", object.local_id),
                Target::Remote(presence) => format!("r{}", presence.vref),
            }),
            Backing::Durable { core, .. } => {
                let core = live(core)?;
                let data = core
                    .state
                    .borrow_mut()
                    .serialize_durable(&Val::Ref(reference.clone()))
                    .map_err(|error| self.not_durable(&error))?;
                let vref = data
                    .slots
                    .first()
                    .ok_or_else(|| Error::new("invariant: a serialized reference has a slot"))?;
                Ok(format!("r{vref}"))
            }
        }
    }

    fn lookup(&self, id: &str) -> Result<Option<(Val, Val)>> {
        match &self.backing {
            Backing::Heap(entries) => Ok(entries.borrow().get(id).cloned()),
            Backing::Durable { core, prefix } => {
                let core = live(core)?;
                let mut state = core.state.borrow_mut();
                let key = format!("{prefix}{id}");
                let Some(bytes) = state.store.get(&key) else {
                    return Ok(None);
                };
                let corrupt = |reason: String| {
                    Error::new(format!(
                        "collection {:?}: entry {id:?}: {reason}",
                        self.label
                    ))
                };
                let data: CapData<VRef> =
                    cbor::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
                match state.deserialize_stored(&data).map_err(corrupt)? {
                    Val::List(pair) if pair.len() == 2 => {
                        let mut pair = pair.into_iter();
                        Ok(pair.next().zip(pair.next()))
                    }
                    _ => Err(corrupt("not a [key, value] pair".to_owned())),
                }
            }
        }
    }

    fn put(&self, id: &str, key: Val, value: Val) -> Result<()> {
        match &self.backing {
            Backing::Heap(entries) => {
                entries.borrow_mut().insert(id.to_owned(), (key, value));
                Ok(())
            }
            Backing::Durable { core, prefix } => {
                let core = live(core)?;
                let mut state = core.state.borrow_mut();
                let data = state
                    .serialize_durable(&Val::List(vec![key, value]))
                    .map_err(|error| self.not_durable(&error))?;
                state
                    .store
                    .set(&format!("{prefix}{id}"), cbor::to_vec(&data));
                Ok(())
            }
        }
    }

    /// Removes the entry `id`; true if there was one.
    fn remove(&self, id: &str) -> bool {
        match &self.backing {
            Backing::Heap(entries) => entries.borrow_mut().remove(id).is_some(),
            Backing::Durable { core, prefix } => core.upgrade().is_some_and(|core| {
                core.state
                    .borrow_mut()
                    .store
                    .delete(&format!("{prefix}{id}"))
            }),
        }
    }

    fn len(&self) -> usize {
        match &self.backing {
            Backing::Heap(entries) => entries.borrow().len(),
            Backing::Durable { core, prefix } => core.upgrade().map_or(0, |core| {
                core.state.borrow().store.keys_with_prefix(prefix).count()
            }),
        }
    }

    fn ids(&self) -> Vec<String> {
        match &self.backing {
            Backing::Heap(entries) => entries.borrow().keys().cloned().collect(),
            Backing::Durable { core, prefix } => core.upgrade().map_or_else(Vec::new, |core| {
                core.state
                    .borrow()
                    .store
                    .keys_with_prefix(prefix)
                    .map(|key| key[prefix.len()..].to_owned())
                    .collect()
            }),
        }
    }

    fn sorted_entries(&self) -> Result<Vec<(Val, Val)>> {
        let mut entries = Vec::new();
        for id in self.ids() {
            if let Some((key, value)) = self.lookup(&id)? {
                entries.push((id, key, value));
            }
        }
        entries.sort_by(|(a_id, a, _), (b_id, b, _)| compare_keys(a, b).then(a_id.cmp(b_id)));
        Ok(entries
            .into_iter()
            .map(|(_, key, value)| (key, value))
            .collect())
    }

    /// What the marshaller refused to keep, in this store.
    fn not_durable(&self, error: &Error) -> Error {
        Error::new(format!("collection {:?}: {}", self.label, error.message()))
    }

    fn not_found(&self, key: &Val) -> Error {
        Error::new(format!(
            "key {} not found in collection {:?}",
            quote(key),
            self.label
        ))
    }

    fn already(&self, key: &Val) -> Error {
        Error::new(format!(
            "key {} already registered in collection {:?}",
            quote(key),
            self.label
        ))
    }
}

fn live(core: &Weak<Core>) -> Result<Rc<Core>> {
    core.upgrade().ok_or_else(|| Error::new("the vat is gone"))
}

/// The order of two keys of different kinds, or of two of one kind that compare by value;
/// references (and equal values) tie, to be ordered by their ids.
fn compare_keys(a: &Val, b: &Val) -> Ordering {
    fn rank(key: &Val) -> u8 {
        match key {
            Val::Undefined => 0,
            Val::Null => 1,
            Val::Bool(_) => 2,
            Val::Int(_) | Val::Float(_) | Val::BigInt(_) => 3,
            Val::Str(_) => 4,
            _ => 5,
        }
    }
    fn number(key: &Val) -> f64 {
        match key {
            Val::BigInt(n) => *n as f64,
            other => other.as_number().unwrap_or(f64::NAN),
        }
    }
    rank(a).cmp(&rank(b)).then_with(|| match (a, b) {
        (Val::Bool(x), Val::Bool(y)) => x.cmp(y),
        (Val::Str(x), Val::Str(y)) => x.cmp(y),
        _ if rank(a) == 3 => number(a).total_cmp(&number(b)),
        _ => Ordering::Equal,
    })
}
