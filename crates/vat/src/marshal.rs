//! Marshalling between [`Val`] and `CapData<VRef>`: references become slots, numbered in the
//! order a sorted-key, in-order traversal first meets them, one slot per distinct ref
//! (spec §3.1). Serializing exports what leaves the vat for the first time; deserializing
//! turns vrefs back into local objects, presences and promises.

use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

use ocap_types::{CapData, ExportId, VRef, Value};

use crate::core::State;
use crate::error::{Error, Result};
use crate::promise::{Decider, Promise};
use crate::reference::{Presence, Ref, Target};
use crate::val::{Val, from_value, to_value};

/// Where a serialized value goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// To the kernel: local objects and promises are exported as needed.
    Wire,
    /// Into the vat store, to outlive this incarnation: only refs that survive a restart.
    Durable,
}

impl State {
    /// Serializes `val` for a syscall, exporting local objects and promises as needed.
    ///
    /// # Errors
    /// When `val` holds another vat's object.
    pub(crate) fn serialize(&mut self, val: &Val) -> Result<CapData<VRef>> {
        self.serialize_in(val, Mode::Wire)
    }

    /// Serializes `val` for the vat store (baggage).
    ///
    /// # Errors
    /// When `val` holds a promise or a local object that does not survive a restart.
    pub(crate) fn serialize_durable(&mut self, val: &Val) -> Result<CapData<VRef>> {
        self.serialize_in(val, Mode::Durable)
    }

    fn serialize_in(&mut self, val: &Val, mode: Mode) -> Result<CapData<VRef>> {
        let mut slots: Vec<VRef> = Vec::new();
        let mut slot_of: BTreeMap<VRef, u32> = BTreeMap::new();
        let value = to_value(val, &mut |reference| {
            let (vref, iface) = self.slot_for(reference, mode)?;
            let index = match slot_of.get(&vref) {
                Some(index) => *index,
                None => {
                    let index = u32::try_from(slots.len())
                        .map_err(|_| Error::new("too many references in one value"))?;
                    slots.push(vref);
                    slot_of.insert(vref, index);
                    index
                }
            };
            Ok(Value::Slot { index, iface })
        })?;
        Ok(CapData::new(&value, slots))
    }

    /// The vref (exporting if needed) and interface name of a reference.
    fn slot_for(&mut self, reference: &Val, mode: Mode) -> Result<(VRef, Option<String>)> {
        match reference {
            Val::Ref(Ref(Target::Local(object))) => {
                if !Weak::ptr_eq(&object.core, &self.me) {
                    return Err(State::foreign_object(object));
                }
                let known = self.export_vrefs.get(&object.local_id).copied();
                let vref = match (mode, known) {
                    (Mode::Wire, Some(vref)) => {
                        // Leaving the vat again: the kernel may hand it out anew, so it is no
                        // longer a candidate for retirement.
                        self.dropped_exports.remove(&vref);
                        vref
                    }
                    // The root is `o+0` in every incarnation, and durable instances keep
                    // their `o+dK/I`; other objects are ephemeral.
                    (Mode::Durable, Some(VRef::ROOT)) => VRef::ROOT,
                    (Mode::Durable, Some(vref @ VRef::ExportObject(ExportId::Durable { .. }))) => {
                        vref
                    }
                    (Mode::Durable, _) => {
                        return Err(Error::new(format!(
                            "cannot store the non-durable object {:?} in baggage",
                            object.iface
                        )));
                    }
                    (Mode::Wire, None) => {
                        let vref = self.allocate_object_vref();
                        self.exports.insert(vref, Rc::clone(object));
                        self.export_vrefs.insert(object.local_id, vref);
                        vref
                    }
                };
                Ok((vref, Some(object.iface.clone())))
            }
            Val::Ref(Ref(Target::Remote(presence))) => {
                if !Weak::ptr_eq(&presence.core, &self.me) {
                    return Err(Error::new(
                        "a presence from another vat cannot be passed from this one",
                    ));
                }
                if mode == Mode::Durable {
                    self.durable_imports.insert(presence.vref);
                }
                Ok((presence.vref, presence.iface.clone()))
            }
            Val::Promise(promise) => {
                if mode == Mode::Durable {
                    return Err(Error::new("cannot store a promise in baggage"));
                }
                Ok((self.export_promise(promise)?, None))
            }
            other => Err(Error::new(format!("not a reference: {}", other.kind()))),
        }
    }

    /// The promise's vref; a local promise gets a fresh `p+N`, and is resolved by a later
    /// `resolve` (right after the current syscall if it is settled already).
    fn export_promise(&mut self, promise: &Promise) -> Result<VRef> {
        let detached = promise.0.core.strong_count() == 0;
        if !detached && !Weak::ptr_eq(&promise.0.core, &self.me) {
            return Err(Error::new(
                "a promise from another vat cannot be passed from this one",
            ));
        }
        let (known, settled) = {
            let state = promise.0.state.borrow();
            (state.vref, state.settlement.is_some())
        };
        if let Some(vref) = known {
            return Ok(vref);
        }
        let vref = self.allocate_promise_vref();
        promise.0.state.borrow_mut().vref = Some(vref);
        self.promises.insert(vref, promise.downgrade());
        if settled {
            self.unreported.push(promise.clone());
        }
        Ok(vref)
    }

    /// Deserializes capdata the kernel delivered.
    ///
    /// # Errors
    /// When the body is malformed or names an export this vat does not know.
    pub(crate) fn deserialize(&mut self, data: &CapData<VRef>) -> std::result::Result<Val, String> {
        let value = data.decode().map_err(|e| e.to_string())?;
        self.deserialize_value(value, &data.slots)
    }

    /// Deserializes capdata read from the vat store: the imports it names are held by the
    /// store, so they are never reported as garbage.
    ///
    /// # Errors
    /// As [`State::deserialize`].
    pub(crate) fn deserialize_stored(
        &mut self,
        data: &CapData<VRef>,
    ) -> std::result::Result<Val, String> {
        for vref in &data.slots {
            if matches!(vref, VRef::ImportObject(_)) {
                self.durable_imports.insert(*vref);
            }
        }
        self.deserialize(data)
    }

    /// Converts one decoded value whose slots index `slots`.
    ///
    /// # Errors
    /// When a slot is out of range or names an export this vat does not know.
    pub(crate) fn deserialize_value(
        &mut self,
        value: Value,
        slots: &[VRef],
    ) -> std::result::Result<Val, String> {
        from_value(value, &mut |index, iface| {
            let vref = usize::try_from(index)
                .ok()
                .and_then(|index| slots.get(index))
                .copied()
                .ok_or_else(|| format!("slot {index} out of range"))?;
            self.val_for_vref(vref, iface)
        })
    }

    fn val_for_vref(
        &mut self,
        vref: VRef,
        iface: Option<String>,
    ) -> std::result::Result<Val, String> {
        match vref {
            VRef::ExportObject(_) => self
                .export_or_reanimate(vref)
                .map(|object| Val::Ref(Ref(Target::Local(object))))
                .ok_or_else(|| {
                    "a reference to an object this vat does not remember exporting".to_owned()
                }),
            VRef::ImportObject(_) => {
                // The kernel just gave it to this vat (again), or the vat store held it.
                self.import_status.insert(vref, true);
                if let Some(presence) = self.imports.get(&vref).and_then(Weak::upgrade) {
                    return Ok(Val::Ref(Ref(Target::Remote(presence))));
                }
                let presence = Rc::new(Presence {
                    vref,
                    iface,
                    core: self.me.clone(),
                });
                self.imports.insert(vref, Rc::downgrade(&presence));
                Ok(Val::Ref(Ref(Target::Remote(presence))))
            }
            VRef::ExportPromise(_) | VRef::ImportPromise(_) => {
                if let Some(promise) = self.live_promise(vref) {
                    return Ok(Val::Promise(promise));
                }
                let promise = Promise::new(self.me.clone(), Some(vref), Decider::Kernel, false);
                self.promises.insert(vref, promise.downgrade());
                Ok(Val::Promise(promise))
            }
        }
    }
}
