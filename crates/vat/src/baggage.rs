//! Baggage: the durable key → value map vat code keeps in the vat store. It survives vat and
//! kernel restarts; values are CBOR-encoded capdata, so they may hold presences and the root.

use std::fmt;
use std::rc::{Rc, Weak};

use ocap_types::{CapData, VRef, cbor};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::val::Val;

/// Vat-store prefix of baggage entries.
const PREFIX: &str = "baggage.";

/// The vat's durable state: a map from text keys to values, kept in the vat store.
///
/// Values are plain data, presences of other vats' objects, and this vat's root; promises
/// and other local objects do not outlive an incarnation, so storing them is an error.
/// Every change shows up in the checkpoint of the delivery that made it.
#[derive(Clone)]
pub struct Baggage {
    core: Weak<Core>,
}

impl Baggage {
    pub(crate) fn new(core: Weak<Core>) -> Self {
        Baggage { core }
    }

    fn core(&self) -> Result<Rc<Core>> {
        self.core
            .upgrade()
            .ok_or_else(|| Error::new("the vat is gone"))
    }

    /// The value under `key`, if any.
    ///
    /// # Errors
    /// When the stored bytes do not decode (the vat store is corrupt).
    pub fn get(&self, key: &str) -> Result<Option<Val>> {
        let core = self.core()?;
        let mut state = core.state.borrow_mut();
        let Some(bytes) = state.store.get(&full_key(key)) else {
            return Ok(None);
        };
        let corrupt = |reason: String| Error::new(format!("baggage key {key:?}: {reason}"));
        let data: CapData<VRef> = cbor::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        state.deserialize_stored(&data).map(Some).map_err(corrupt)
    }

    /// Stores `value` under `key`, replacing what was there.
    ///
    /// # Errors
    /// When `value` holds a promise or a local object other than the root.
    pub fn set(&self, key: &str, value: impl Into<Val>) -> Result<()> {
        let core = self.core()?;
        let mut state = core.state.borrow_mut();
        let data = state.serialize_durable(&value.into())?;
        state.store.set(&full_key(key), cbor::to_vec(&data));
        Ok(())
    }

    /// The value under `key`; when there is none, stores and returns `init()`.
    ///
    /// # Errors
    /// As [`Baggage::get`] and [`Baggage::set`].
    pub fn get_or_init(&self, key: &str, init: impl FnOnce() -> Val) -> Result<Val> {
        if let Some(value) = self.get(key)? {
            return Ok(value);
        }
        let value = init();
        self.set(key, value.clone())?;
        Ok(value)
    }

    /// True when `key` has a value.
    pub fn has(&self, key: &str) -> bool {
        self.core
            .upgrade()
            .is_some_and(|core| core.state.borrow().store.get(&full_key(key)).is_some())
    }

    /// Removes `key`; true if it had a value.
    pub fn delete(&self, key: &str) -> bool {
        self.core
            .upgrade()
            .is_some_and(|core| core.state.borrow_mut().store.delete(&full_key(key)))
    }

    /// The keys, sorted.
    pub fn keys(&self) -> Vec<String> {
        let Some(core) = self.core.upgrade() else {
            return Vec::new();
        };
        let state = core.state.borrow();
        state
            .store
            .keys_with_prefix(PREFIX)
            .map(|k| k[PREFIX.len()..].to_owned())
            .collect()
    }
}

impl fmt::Debug for Baggage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Baggage")
            .field("keys", &self.keys())
            .finish()
    }
}

fn full_key(key: &str) -> String {
    format!("{PREFIX}{key}")
}
