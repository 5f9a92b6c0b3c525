//! Durable kinds and objects (spec §2.3, §12.6): objects exported as `o+dK/I` whose state
//! lives in the vat store, so that their refs stay valid across vat and kernel restarts as
//! long as the new incarnation defines their kind again (by the same name) while it builds.
//!
//! A durable kind kit (`durable/kit.rs`) is a durable kind whose instances have several
//! facets sharing one state: facet `F` (its index in definition order) of instance `I` is
//! exported as `o+dK/I:F`.
//!
//! Vat-store layout: `sdk.kind.<name>` holds the kind's number `K`, its next instance
//! number and, for a kit, its facets' names; `sdk.nextKindId` the next kind number, and
//! `sdk.durable.<K>/<I>` the state of instance `I` (capdata, serialized like baggage
//! values). An instance is brought back to
//! life ("reanimated") the first time the new incarnation meets its vref — a delivery to it,
//! or a value (baggage, another object's state, a message) that refers to it.
//!
//! Invariant: a kind is defined at most once per incarnation, with the facets it was first
//! defined with, and instance numbers only grow, so no two objects ever share an
//! `o+dK/I[:F]`.

mod kit;
mod record;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::rc::{Rc, Weak};

use ocap_types::{CapData, ExportId, VRef, Value, cbor};

use crate::args::Args;
use crate::core::{Core, State};
use crate::error::{Error, Result};
use crate::guard::{Guards, MethodGuard};
use crate::object::{Object, Reply};
use crate::reference::{LocalObject, Ref, Target};
use crate::val::Val;
use crate::vat::Vat;

pub use kit::{DurableKindKit, KindFacetBuilder, KindKitBuilder};
use record::{KindRecord, decode_counter, to_i64};

const KIND_PREFIX: &str = "sdk.kind.";
const NEXT_KIND_KEY: &str = "sdk.nextKindId";
const STATE_PREFIX: &str = "sdk.durable.";

type DurableMethod = Box<dyn Fn(Vat, DurableState, Args) -> Reply>;

/// A kind's behaviour in this incarnation.
pub(crate) struct KindDef {
    id: u64,
    name: String,
    /// One unnamed facet for a plain kind (exported as `o+dK/I`), the named facets of a kit
    /// in definition order (`o+dK/I:F`, `F` the index).
    facets: Vec<FacetDef>,
    kit: bool,
}

impl KindDef {
    /// The vref of facet `facet_idx` of instance `instance`.
    fn vref(&self, instance: u64, facet_idx: usize) -> VRef {
        VRef::ExportObject(ExportId::Durable {
            kind: self.id,
            instance,
            facet: self
                .kit
                .then(|| u32::try_from(facet_idx).unwrap_or(u32::MAX)),
        })
    }

    /// The facet index a vref's facet part names, if this kind has it.
    fn facet_idx(&self, facet: Option<u32>) -> Option<usize> {
        match (self.kit, facet) {
            (false, None) => Some(0),
            (true, Some(facet)) => {
                let idx = usize::try_from(facet).ok()?;
                (idx < self.facets.len()).then_some(idx)
            }
            _ => None,
        }
    }

    /// The facets' names, as the kind's record keeps them (none for a plain kind).
    fn facet_names(&self) -> Option<Vec<String>> {
        self.kit
            .then(|| self.facets.iter().map(|facet| facet.name.clone()).collect())
    }
}

/// One facet's methods (a plain kind has one facet).
pub(crate) struct FacetDef {
    name: String,
    /// What guards and errors call it: the kind's name, and for a kit's facet its name too.
    iface: String,
    methods: Methods,
}

/// Methods by name, with their guards.
#[derive(Default)]
struct Methods {
    methods: BTreeMap<String, DurableMethod>,
    guards: Guards,
}

impl Methods {
    fn guard(&mut self, name: &str, guard: MethodGuard) {
        self.guards.insert(name, guard);
    }

    fn add<T: Into<Val>>(
        &mut self,
        name: &str,
        method: impl Fn(Vat, DurableState, Args) -> Result<T> + 'static,
    ) {
        let method: DurableMethod =
            Box::new(move |vat, state, args| Reply::from(method(vat, state, args)));
        self.methods.insert(name.to_owned(), method);
    }

    fn add_async<T: Into<Val>>(
        &mut self,
        name: &str,
        method: impl AsyncFn(Vat, DurableState, Args) -> Result<T> + 'static,
    ) {
        let method = Rc::new(method);
        let method: DurableMethod = Box::new(move |vat, state, args| {
            let method = Rc::clone(&method);
            Reply::later(async move { method(vat, state, args).await })
        });
        self.methods.insert(name.to_owned(), method);
    }

    fn names(&self) -> Vec<&String> {
        self.methods.keys().collect()
    }
}

/// Builds a durable kind from named methods; start one with [`Vat::durable_kind`].
///
/// Each method gets the vat handle, the instance's [`DurableState`] and the arguments. The
/// behaviour is code, so it is not stored: every incarnation defines the kind again, under
/// the same name, in its build function; instances made by an earlier incarnation then
/// answer again.
///
/// # Examples
/// ```
/// use ocap_vat::{Baggage, Ref, Result, Val, Vat};
///
/// fn build(vat: &Vat, _parameters: &Val, baggage: &Baggage) -> Result<Ref> {
///     let counters = vat
///         .durable_kind("counter")
///         .method("increment", |_vat, state, _args| {
///             let count = state.field("count")?.as_int().unwrap_or(0) + 1;
///             state.set_field("count", count)?;
///             Ok(count)
///         })
///         .build()?;
///     if !baggage.has("counter") {
///         baggage.set("counter", counters.make(Val::record([("count", 0)]))?)?;
///     }
///     Ok(vat.object("root").build())
/// }
/// # let _ = ocap_vat::Runtime::new(build);
/// ```
pub struct KindBuilder {
    core: Weak<Core>,
    name: String,
    methods: Methods,
}

impl KindBuilder {
    pub(crate) fn new(core: Weak<Core>, name: &str) -> Self {
        KindBuilder {
            core,
            name: name.to_owned(),
            methods: Methods::default(),
        }
    }

    /// Guards the method `name` (see [`MethodGuard`]): arguments that do not match reject
    /// the call before the method runs.
    pub fn guard(mut self, name: &str, guard: impl Into<MethodGuard>) -> Self {
        self.methods.guard(name, guard.into());
        self
    }

    /// Adds a method that answers at once, with its guard.
    pub fn method_guarded<T: Into<Val>>(
        self,
        name: &str,
        guard: impl Into<MethodGuard>,
        method: impl Fn(Vat, DurableState, Args) -> Result<T> + 'static,
    ) -> Self {
        self.guard(name, guard).method(name, method)
    }

    /// Adds a method that answers at once. A later method with the same name replaces it.
    pub fn method<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl Fn(Vat, DurableState, Args) -> Result<T> + 'static,
    ) -> Self {
        self.methods.add(name, method);
        self
    }

    /// Adds a method that may await; it runs on the vat's executor.
    pub fn method_async<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl AsyncFn(Vat, DurableState, Args) -> Result<T> + 'static,
    ) -> Self {
        self.methods.add_async(name, method);
        self
    }

    /// Defines the kind in this incarnation: a kind of that name made by an earlier one
    /// keeps its number, so its instances come back.
    ///
    /// # Errors
    /// When the kind was already defined in this incarnation, or its record is corrupt.
    pub fn build(self) -> Result<DurableKind> {
        let core = self
            .core
            .upgrade()
            .ok_or_else(|| Error::new("the vat is gone"))?;
        let facet = FacetDef {
            name: String::new(),
            iface: self.name.clone(),
            methods: self.methods,
        };
        let def = core
            .state
            .borrow_mut()
            .define_kind(self.name, vec![facet], false)?;
        Ok(DurableKind {
            def,
            core: self.core,
        })
    }
}

impl fmt::Debug for KindBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindBuilder")
            .field("name", &self.name)
            .field("methods", &self.methods.names())
            .finish()
    }
}

/// A durable kind defined in this incarnation: makes instances.
#[derive(Clone)]
pub struct DurableKind {
    def: Rc<KindDef>,
    core: Weak<Core>,
}

impl DurableKind {
    /// The kind's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Makes an instance whose state starts as `state` (usually a record). Its vref is
    /// `o+dK/I`, fixed from now on; it may be kept in baggage and in other durable state.
    ///
    /// # Errors
    /// When `state` holds something that does not survive a restart (a promise, an
    /// ephemeral object).
    pub fn make(&self, state: impl Into<Val>) -> Result<Ref> {
        let core = self
            .core
            .upgrade()
            .ok_or_else(|| Error::new("the vat is gone"))?;
        let mut state_ref = core.state.borrow_mut();
        let instance = state_ref.make_durable(&self.def, &state.into())?;
        Ok(Ref(Target::Local(
            state_ref.instance_object(&self.def, instance, 0),
        )))
    }
}

impl fmt::Debug for DurableKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableKind")
            .field("name", &self.def.name)
            .field("id", &self.def.id)
            .finish()
    }
}

/// The durable state of one instance, kept in the vat store. Every change shows up in the
/// checkpoint of the delivery that made it.
#[derive(Clone)]
pub struct DurableState {
    core: Weak<Core>,
    kind: u64,
    instance: u64,
}

impl DurableState {
    fn core(&self) -> Result<Rc<Core>> {
        self.core
            .upgrade()
            .ok_or_else(|| Error::new("the vat is gone"))
    }

    /// The whole state.
    ///
    /// # Errors
    /// When the stored state is missing or does not decode.
    pub fn get(&self) -> Result<Val> {
        let core = self.core()?;
        let mut state = core.state.borrow_mut();
        let key = state_key(self.kind, self.instance);
        let bytes = state
            .store
            .get(&key)
            .ok_or_else(|| Error::new("the durable object's state is gone"))?;
        let corrupt = |reason: String| Error::new(format!("durable state {key:?}: {reason}"));
        let data: CapData<VRef> = cbor::from_slice(bytes).map_err(|e| corrupt(e.to_string()))?;
        state.deserialize_stored(&data).map_err(corrupt)
    }

    /// Replaces the whole state.
    ///
    /// # Errors
    /// When `value` holds something that does not survive a restart.
    pub fn set(&self, value: impl Into<Val>) -> Result<()> {
        let core = self.core()?;
        let mut state = core.state.borrow_mut();
        let data = state.serialize_durable(&value.into())?;
        state
            .store
            .set(&state_key(self.kind, self.instance), cbor::to_vec(&data));
        Ok(())
    }

    /// One field of a record state (`undefined` when absent).
    ///
    /// # Errors
    /// As [`DurableState::get`].
    pub fn field(&self, name: &str) -> Result<Val> {
        Ok(self.get()?.get(name).cloned().unwrap_or_default())
    }

    /// The facet `name` of this instance of a kind kit (see [`crate::Vat::durable_kind_kit`]).
    ///
    /// # Errors
    /// When the instance's kind has no facet of that name (a plain kind has none).
    pub fn facet(&self, name: &str) -> Result<Ref> {
        let core = self.core()?;
        let mut state = core.state.borrow_mut();
        let def = state
            .kinds
            .get(&self.kind)
            .cloned()
            .ok_or_else(|| Error::new("the durable kind is not defined"))?;
        let facet_idx = def
            .facets
            .iter()
            .position(|facet| def.kit && facet.name == name)
            .ok_or_else(|| Error::new(format!("({}) has no facet {name:?}", def.name)))?;
        Ok(Ref(Target::Local(state.instance_object(
            &def,
            self.instance,
            facet_idx,
        ))))
    }

    /// Sets one field of a record state (a non-record state becomes a record).
    ///
    /// # Errors
    /// As [`DurableState::get`] and [`DurableState::set`].
    pub fn set_field(&self, name: &str, value: impl Into<Val>) -> Result<()> {
        let mut fields = match self.get()? {
            Val::Record(fields) => fields,
            _ => BTreeMap::new(),
        };
        fields.insert(name.to_owned(), value.into());
        self.set(Val::Record(fields))
    }
}

impl fmt::Debug for DurableState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DurableState(o+d{}/{})", self.kind, self.instance)
    }
}

/// The behaviour of one facet of one instance: that facet's methods over the state.
struct Instance {
    def: Rc<KindDef>,
    facet_idx: usize,
    state: DurableState,
}

impl Object for Instance {
    fn invoke(&self, vat: &Vat, method: &str, args: Args) -> Reply {
        let Some(facet) = self.def.facets.get(self.facet_idx) else {
            return Reply::err(format!("({}) has no such facet", self.def.name));
        };
        match facet.methods.methods.get(method) {
            Some(handler) => facet
                .methods
                .guards
                .invoke(&facet.iface, method, args, |args| {
                    handler(vat.clone(), self.state.clone(), args)
                }),
            None => Reply::err(format!("{:?} has no method {method:?}", facet.iface)),
        }
    }
}

fn state_key(kind: u64, instance: u64) -> String {
    format!("{STATE_PREFIX}{kind}/{instance}")
}

fn kind_key(name: &str) -> String {
    format!("{KIND_PREFIX}{name}")
}

impl State {
    /// Defines a kind (a kit when `kit`) in this incarnation. A kind an earlier incarnation
    /// defined keeps its number, and must be defined with the same facets again: its
    /// instances' facet vrefs are fixed.
    fn define_kind(
        &mut self,
        name: String,
        facets: Vec<FacetDef>,
        kit: bool,
    ) -> Result<Rc<KindDef>> {
        if self.kinds.values().any(|def| def.name == name) {
            return Err(Error::new(format!(
                "durable kind {name:?} is already defined in this incarnation"
            )));
        }
        let mut def = KindDef {
            id: 0,
            name,
            facets,
            kit,
        };
        def.id = match self.store.get(&kind_key(&def.name)) {
            Some(bytes) => {
                let record = KindRecord::decode(&def.name, bytes)?;
                if record.facets != def.facet_names() {
                    return Err(Error::new(format!(
                        "durable kind {:?} was defined with facets {:?}, not {:?}",
                        def.name,
                        record.facets.unwrap_or_default(),
                        def.facet_names().unwrap_or_default()
                    )));
                }
                record.id
            }
            None => {
                let id = match self.store.get(NEXT_KIND_KEY) {
                    Some(bytes) => decode_counter(bytes)?,
                    None => 1,
                };
                self.store
                    .set(NEXT_KIND_KEY, Value::Int(to_i64(id + 1)).to_cbor());
                let record = KindRecord {
                    id,
                    next: 1,
                    facets: def.facet_names(),
                };
                self.store.set(&kind_key(&def.name), record.encode());
                id
            }
        };
        let def = Rc::new(def);
        self.kinds.insert(def.id, Rc::clone(&def));
        Ok(def)
    }

    /// Makes a new instance of `def` with `initial` as its state; its number.
    fn make_durable(&mut self, def: &Rc<KindDef>, initial: &Val) -> Result<u64> {
        let data = self.serialize_durable(initial)?;
        let key = kind_key(&def.name);
        let bytes = self
            .store
            .get(&key)
            .ok_or_else(|| Error::new(format!("durable kind {:?} has no record", def.name)))?;
        let mut record = KindRecord::decode(&def.name, bytes)?;
        let instance = record.next;
        record.next += 1;
        self.store.set(&key, record.encode());
        self.store
            .set(&state_key(def.id, instance), cbor::to_vec(&data));
        Ok(instance)
    }

    /// The exported object `vref`, bringing a durable instance of an earlier incarnation
    /// back to life when its kind is defined and its state exists.
    pub(crate) fn export_or_reanimate(&mut self, vref: VRef) -> Option<Rc<LocalObject>> {
        if let Some(object) = self.exports.get(&vref) {
            return Some(Rc::clone(object));
        }
        let VRef::ExportObject(ExportId::Durable {
            kind,
            instance,
            facet,
        }) = vref
        else {
            return None;
        };
        let def = Rc::clone(self.kinds.get(&kind)?);
        let facet_idx = def.facet_idx(facet)?;
        self.store.get(&state_key(kind, instance))?;
        Some(self.instance_object(&def, instance, facet_idx))
    }

    /// The local object for facet `facet_idx` of instance `instance` of `def`: the one
    /// registered under its vref, or a new one registered there.
    fn instance_object(
        &mut self,
        def: &Rc<KindDef>,
        instance: u64,
        facet_idx: usize,
    ) -> Rc<LocalObject> {
        let vref = def.vref(instance, facet_idx);
        if let Some(object) = self.exports.get(&vref) {
            return Rc::clone(object);
        }
        let behavior = Instance {
            def: Rc::clone(def),
            facet_idx,
            state: DurableState {
                core: self.me.clone(),
                kind: def.id,
                instance,
            },
        };
        let iface = def
            .facets
            .get(facet_idx)
            .map_or(def.name.as_str(), |facet| facet.iface.as_str());
        let iface = iface.to_owned();
        let object = self.new_local_object(&iface, Box::new(behavior));
        self.exports.insert(vref, Rc::clone(&object));
        self.export_vrefs.insert(object.local_id, vref);
        object
    }
}
