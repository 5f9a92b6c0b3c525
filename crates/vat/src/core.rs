//! The vat's shared state: the vref tables (exports, imports, promises), the id counters, the
//! vat store, the executor, and the outbox of syscalls and logs waiting for the host.
//!
//! Invariants: vat code never runs while `Core::state` is borrowed (so handles may call back
//! in); the id counters only grow and are saved in the vat store, so no incarnation reuses a
//! vref an earlier one handed to the kernel.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::{Rc, Weak};

use ocap_types::{CapData, ExportId, Message, Resolution, Syscall, VRef, Value, VatLog};

use crate::error::{Error, Result};
use crate::executor::Executor;
use crate::promise::{Decider, Promise, PromiseCell};
use crate::reference::{LocalObject, Presence, Ref, Target};
use crate::store::VatStore;
use crate::val::Val;

/// Vat-store key of the id counters.
const COUNTERS_KEY: &str = "sdk.idCounters";

/// What vat code asked of the host, in order.
pub(crate) enum Out {
    Syscall(Syscall),
    Log(VatLog),
}

/// Next ids to allocate for `o+N` and `p+N`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counters {
    pub(crate) next_object: u64,
    pub(crate) next_promise: u64,
}

impl Counters {
    const FIRST: Counters = Counters {
        next_object: 1,
        next_promise: 1,
    };

    fn load(store: &VatStore) -> std::result::Result<Counters, String> {
        let Some(bytes) = store.get(COUNTERS_KEY) else {
            return Ok(Counters::FIRST);
        };
        let corrupt = || format!("vat store key {COUNTERS_KEY:?} is corrupt");
        let value = Value::from_cbor(bytes).map_err(|_| corrupt())?;
        let field = |name: &str| match &value {
            Value::Record(fields) => fields
                .get(name)
                .and_then(Value::as_int)
                .and_then(|n| u64::try_from(n).ok()),
            _ => None,
        };
        Ok(Counters {
            next_object: field("object").ok_or_else(corrupt)?,
            next_promise: field("promise").ok_or_else(corrupt)?,
        })
    }

    fn to_cbor(self) -> Vec<u8> {
        let as_int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
        Value::Record(BTreeMap::from([
            ("object".to_owned(), as_int(self.next_object)),
            ("promise".to_owned(), as_int(self.next_promise)),
        ]))
        .to_cbor()
    }
}

pub(crate) struct Core {
    pub(crate) me: Weak<Core>,
    pub(crate) state: RefCell<State>,
    pub(crate) executor: Executor,
    /// The import keys of every weak store that ever held one of this vat's presences; a
    /// dropped store's set no longer upgrades. Kept outside `state` so that dropping a
    /// store never needs the state borrowed.
    pub(crate) weak_keys: RefCell<Vec<Weak<RefCell<BTreeSet<VRef>>>>>,
}

/// What one `bringOutYourDead` found (spec §10.2, §19.8).
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Garbage {
    /// Imports nothing holds strongly any more, whose reachability the kernel still counts.
    pub(crate) drop_imports: Vec<VRef>,
    /// Imports no longer held strongly nor recognisable (no live weak store has them as key).
    pub(crate) retire_imports: Vec<VRef>,
    /// Exports the kernel dropped that vat code no longer holds either.
    pub(crate) retire_exports: Vec<VRef>,
}

pub(crate) struct State {
    pub(crate) me: Weak<Core>,
    pub(crate) name: String,
    counters: Counters,
    saved_counters: Counters,
    next_local_id: u64,
    /// Exported local objects by vref; strong, because the kernel may send to them.
    pub(crate) exports: BTreeMap<VRef, Rc<LocalObject>>,
    /// The vref of each exported local object, by its local id.
    pub(crate) export_vrefs: BTreeMap<u64, VRef>,
    /// Presences by vref; weak, so identity holds while anyone holds one.
    pub(crate) imports: BTreeMap<VRef, Weak<Presence>>,
    /// Every import the kernel's c-list still has for this vat, with whether the kernel
    /// still counts it reachable from here (true until this vat reports `dropImports`).
    pub(crate) import_status: BTreeMap<VRef, bool>,
    /// Imports written to the vat store (baggage, durable stores and state) or read back
    /// from it: the store holds them, so they are never reported as garbage.
    pub(crate) durable_imports: BTreeSet<VRef>,
    /// Exports the kernel reported unreachable (`dropExports`); retired at the next
    /// `bringOutYourDead` if vat code no longer holds them.
    pub(crate) dropped_exports: BTreeSet<VRef>,
    /// Every promise the kernel knows by a vref; weak, so dropped promises are forgotten.
    pub(crate) promises: BTreeMap<VRef, Weak<PromiseCell>>,
    /// Exported vat-decided promises that settled but whose `resolve` is not yet emitted.
    pub(crate) unreported: Vec<Promise>,
    pub(crate) outbox: Vec<Out>,
    pub(crate) store: VatStore,
    /// Durable kinds defined in this incarnation, by kind number.
    pub(crate) kinds: BTreeMap<u64, Rc<crate::durable::KindDef>>,
}

impl Core {
    pub(crate) fn new(name: String, store: VatStore) -> std::result::Result<Rc<Core>, String> {
        let counters = Counters::load(&store)?;
        Ok(Rc::new_cyclic(|me: &Weak<Core>| Core {
            me: me.clone(),
            state: RefCell::new(State {
                me: me.clone(),
                name,
                counters,
                saved_counters: counters,
                next_local_id: 1,
                exports: BTreeMap::new(),
                export_vrefs: BTreeMap::new(),
                imports: BTreeMap::new(),
                import_status: BTreeMap::new(),
                durable_imports: BTreeSet::new(),
                dropped_exports: BTreeSet::new(),
                promises: BTreeMap::new(),
                unreported: Vec::new(),
                outbox: Vec::new(),
                store,
                kinds: BTreeMap::new(),
            }),
            executor: Executor::new(),
            weak_keys: RefCell::new(Vec::new()),
        }))
    }

    pub(crate) fn push_syscall(&self, syscall: Syscall) {
        self.state.borrow_mut().outbox.push(Out::Syscall(syscall));
    }

    pub(crate) fn push_log(&self, log: VatLog) {
        self.state.borrow_mut().outbox.push(Out::Log(log));
    }

    pub(crate) fn take_outbox(&self) -> Vec<Out> {
        std::mem::take(&mut self.state.borrow_mut().outbox)
    }

    /// Makes a local object with a fresh local id.
    pub(crate) fn make_object(&self, iface: &str, behavior: Box<dyn crate::Object>) -> Ref {
        let object = self.state.borrow_mut().new_local_object(iface, behavior);
        Ref(Target::Local(object))
    }

    /// A pending local promise decided by this vat.
    pub(crate) fn local_promise(&self) -> Promise {
        Promise::new(self.me.clone(), None, Decider::Vat, false)
    }

    /// Registers `root` as `o+0`.
    ///
    /// # Errors
    /// When `root` is not an object of this vat.
    pub(crate) fn set_root(&self, root: &Ref) -> std::result::Result<(), String> {
        let Target::Local(object) = &root.0 else {
            return Err("the build function must return a local object".to_owned());
        };
        if !Weak::ptr_eq(&object.core, &self.me) {
            return Err("the build function returned another vat's object".to_owned());
        }
        let mut state = self.state.borrow_mut();
        state.exports.insert(VRef::ROOT, Rc::clone(object));
        state.export_vrefs.insert(object.local_id, VRef::ROOT);
        Ok(())
    }

    /// Sends `method(args)` to `target` through the kernel: a fresh result `p+N`, then a
    /// subscription to it (spec §19.3). Promises exported by the arguments that are already
    /// settled are resolved right after the send.
    pub(crate) fn send_to_vref(&self, target: VRef, method: &str, args: Vec<Val>) -> Promise {
        let methargs = Val::List(vec![Val::Str(method.to_owned()), Val::List(args)]);
        let promise = {
            let mut state = self.state.borrow_mut();
            let methargs = match state.serialize(&methargs) {
                Ok(methargs) => methargs,
                Err(error) => return Promise::rejected(error),
            };
            let vpid = state.allocate_promise_vref();
            let promise = Promise::new(self.me.clone(), Some(vpid), Decider::Kernel, true);
            state.promises.insert(vpid, promise.downgrade());
            state.outbox.push(Out::Syscall(Syscall::Send {
                target,
                message: Message {
                    methargs,
                    result: Some(vpid),
                },
            }));
            state.outbox.push(Out::Syscall(Syscall::Subscribe(vpid)));
            promise
        };
        self.flush_resolutions(Vec::new());
        promise
    }

    /// Resolves `vpid` (the result of a message delivered to this vat) with `res`.
    pub(crate) fn resolve_vpid(&self, vpid: VRef, res: Result<Val>) {
        let (rejected, data, local) = {
            let mut state = self.state.borrow_mut();
            let (rejected, data) = state.resolution_data(&res);
            let local = state.live_promise(vpid);
            (rejected, data, local)
        };
        // Someone handed us this promise before: settle our copy too.
        if let Some(local) = local {
            local.settle(res);
        }
        self.flush_resolutions(vec![Resolution {
            promise: vpid,
            rejected,
            data,
        }]);
    }

    /// Called when an exported vat-decided promise settles.
    pub(crate) fn report_settled(&self, promise: Promise) {
        self.state.borrow_mut().unreported.push(promise);
        self.flush_resolutions(Vec::new());
    }

    /// Emits one `resolve` with `resolutions` plus every unreported settled export, including
    /// those that serializing these resolutions exports in turn.
    fn flush_resolutions(&self, mut resolutions: Vec<Resolution<VRef>>) {
        let mut state = self.state.borrow_mut();
        loop {
            let batch = std::mem::take(&mut state.unreported);
            if batch.is_empty() {
                break;
            }
            for promise in batch {
                let (vref, settlement) = {
                    let promise_state = promise.0.state.borrow();
                    (promise_state.vref, promise_state.settlement.clone())
                };
                let (Some(vref), Some(res)) = (vref, settlement) else {
                    continue;
                };
                let (rejected, data) = state.resolution_data(&res);
                resolutions.push(Resolution {
                    promise: vref,
                    rejected,
                    data,
                });
            }
        }
        if !resolutions.is_empty() {
            // The kernel retires a promise from this vat's c-list when the vat resolves it.
            for resolution in &resolutions {
                state.retire_promise_vref(resolution.promise);
            }
            state
                .outbox
                .push(Out::Syscall(Syscall::Resolve(resolutions)));
        }
    }

    /// The local object exported as `vref`, if any (a durable instance of an earlier
    /// incarnation is brought back to life).
    pub(crate) fn exported_object(&self, vref: VRef) -> Option<Rc<LocalObject>> {
        self.state.borrow_mut().export_or_reanimate(vref)
    }

    /// The promise the kernel knows as `vref`, if anyone still holds it.
    pub(crate) fn live_promise(&self, vref: VRef) -> Option<Promise> {
        self.state.borrow().live_promise(vref)
    }

    /// Saves the id counters if they moved, so the next incarnation continues from them.
    pub(crate) fn save_counters(&self) {
        let mut state = self.state.borrow_mut();
        if state.counters != state.saved_counters {
            let bytes = state.counters.to_cbor();
            state.store.set(COUNTERS_KEY, bytes);
            state.saved_counters = state.counters;
        }
    }

    /// The kernel no longer knows these exports: forget their vrefs (the root stays).
    pub(crate) fn retire_exports(&self, vrefs: &[VRef]) {
        let mut state = self.state.borrow_mut();
        for vref in vrefs {
            if *vref == VRef::ROOT {
                continue;
            }
            if let Some(object) = state.exports.remove(vref) {
                state.export_vrefs.remove(&object.local_id);
            }
        }
    }

    /// The kernel forgot these imports: so does every durable weak store.
    pub(crate) fn retire_imports(&self, vrefs: &[VRef]) {
        let mut state = self.state.borrow_mut();
        crate::weak::forget_durable_weak_keys(&mut state.store, vrefs);
        for vref in vrefs {
            state.imports.remove(vref);
            state.import_status.remove(vref);
        }
    }

    /// The kernel no longer counts these exports reachable from any importer.
    pub(crate) fn drop_exports(&self, vrefs: &[VRef]) {
        let mut state = self.state.borrow_mut();
        for vref in vrefs {
            if state.exports.contains_key(vref) {
                state.dropped_exports.insert(*vref);
            }
        }
    }

    /// Registers a weak store's import keys, once per store.
    pub(crate) fn register_weak_keys(&self, keys: &Rc<RefCell<BTreeSet<VRef>>>) {
        let mut registered = self.weak_keys.borrow_mut();
        if !registered
            .iter()
            .any(|known| std::ptr::eq(known.as_ptr(), Rc::as_ptr(keys)))
        {
            registered.push(Rc::downgrade(keys));
        }
    }

    /// Finds this vat's garbage (spec §19.8) and forgets it: imports nothing holds
    /// strongly are dropped, and retired as well when no live weak store recognises them;
    /// exports the kernel dropped and vat code no longer holds are retired. The root,
    /// durable exports and imports the vat store holds are never garbage.
    pub(crate) fn collect_garbage(&self) -> Garbage {
        let recognised: BTreeSet<VRef> = {
            let mut registered = self.weak_keys.borrow_mut();
            registered.retain(|keys| keys.strong_count() > 0);
            registered
                .iter()
                .filter_map(Weak::upgrade)
                .flat_map(|keys| keys.borrow().iter().copied().collect::<Vec<_>>())
                .chain(crate::weak::durable_weak_keys(&self.state.borrow().store))
                .collect()
        };
        let mut garbage = Garbage::default();
        let mut retired_objects = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            let state = &mut *state;
            for (vref, reachable) in &mut state.import_status {
                let held = state.durable_imports.contains(vref)
                    || state
                        .imports
                        .get(vref)
                        .is_some_and(|presence| presence.strong_count() > 0);
                if held {
                    continue;
                }
                if *reachable {
                    garbage.drop_imports.push(*vref);
                    *reachable = false;
                }
                if !recognised.contains(vref) {
                    garbage.retire_imports.push(*vref);
                }
            }
            for vref in &garbage.retire_imports {
                state.import_status.remove(vref);
                state.imports.remove(vref);
            }
            for vref in std::mem::take(&mut state.dropped_exports) {
                let durable = matches!(vref, VRef::ExportObject(ExportId::Durable { .. }));
                let Some(object) = state.exports.get(&vref) else {
                    continue;
                };
                if vref == VRef::ROOT || durable || Rc::strong_count(object) > 1 {
                    // Still held: it stays dropped, and may be retired by a later reap.
                    state.dropped_exports.insert(vref);
                    continue;
                }
                if let Some(object) = state.exports.remove(&vref) {
                    state.export_vrefs.remove(&object.local_id);
                    // Dropped once the state is no longer borrowed: its behaviour may hold
                    // handles whose destructors reach back into the vat.
                    retired_objects.push(object);
                }
                garbage.retire_exports.push(vref);
            }
        }
        drop(retired_objects);
        garbage
    }
}

impl State {
    /// Makes a local object with a fresh local id (not exported yet).
    pub(crate) fn new_local_object(
        &mut self,
        iface: &str,
        behavior: Box<dyn crate::Object>,
    ) -> Rc<LocalObject> {
        let local_id = self.next_local_id;
        self.next_local_id += 1;
        Rc::new(LocalObject {
            local_id,
            iface: iface.to_owned(),
            behavior,
            core: self.me.clone(),
        })
    }

    pub(crate) fn allocate_promise_vref(&mut self) -> VRef {
        let vref = VRef::ExportPromise(self.counters.next_promise);
        self.counters.next_promise += 1;
        vref
    }

    pub(crate) fn allocate_object_vref(&mut self) -> VRef {
        let vref = VRef::ExportObject(ExportId::Ephemeral(self.counters.next_object));
        self.counters.next_object += 1;
        vref
    }

    pub(crate) fn live_promise(&self, vref: VRef) -> Option<Promise> {
        self.promises
            .get(&vref)
            .and_then(Weak::upgrade)
            .map(Promise)
    }

    /// Forgets `vref` once the kernel has retired it (this vat resolved the promise, or was
    /// notified of its settlement): the kernel may collect the promise, so the vref must
    /// never be used again. A settled promise sent later gets a fresh `p+N`, resolved right
    /// after the send.
    pub(crate) fn retire_promise_vref(&mut self, vref: VRef) {
        if let Some(promise) = self.promises.remove(&vref).and_then(|weak| weak.upgrade()) {
            let mut state = promise.state.borrow_mut();
            if state.vref == Some(vref) {
                state.vref = None;
            }
        }
    }

    /// The `(rejected, data)` of a resolution with `res`. A value that cannot be serialized
    /// rejects instead, with the reason.
    fn resolution_data(&mut self, res: &Result<Val>) -> (bool, CapData<VRef>) {
        let (rejected, val) = match res {
            Ok(val) => (false, val),
            Err(error) => (true, error.reason()),
        };
        match self.serialize(val) {
            Ok(data) => (rejected, data),
            Err(error) => (true, CapData::error(error.message())),
        }
    }

    /// The error for a local object that belongs to another vat.
    pub(crate) fn foreign_object(object: &LocalObject) -> Error {
        Error::new(format!(
            "{:?} belongs to another vat and cannot be passed from this one",
            object.iface
        ))
    }
}
