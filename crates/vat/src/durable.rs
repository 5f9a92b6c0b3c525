//! Durable kinds and objects (spec §2.3, §12.6): objects exported as `o+dK/I` whose state
//! lives in the vat store, so that their refs stay valid across vat and kernel restarts as
//! long as the new incarnation defines their kind again (by the same name) while it builds.
//!
//! Vat-store layout: `sdk.kind.<name>` holds the kind's number `K` and its next instance
//! number, `sdk.nextKindId` the next kind number, and `sdk.durable.<K>/<I>` the state of
//! instance `I` (capdata, serialized like baggage values). An instance is brought back to
//! life ("reanimated") the first time the new incarnation meets its vref — a delivery to it,
//! or a value (baggage, another object's state, a message) that refers to it.
//!
//! Invariant: a kind is defined at most once per incarnation, and instance numbers only
//! grow, so no two objects ever share an `o+dK/I`.

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

const KIND_PREFIX: &str = "sdk.kind.";
const NEXT_KIND_KEY: &str = "sdk.nextKindId";
const STATE_PREFIX: &str = "sdk.durable.";

type DurableMethod = Box<dyn Fn(Vat, DurableState, Args) -> Reply>;

/// A kind's behaviour in this incarnation.
pub(crate) struct KindDef {
    id: u64,
    name: String,
    methods: BTreeMap<String, DurableMethod>,
    guards: Guards,
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
    methods: BTreeMap<String, DurableMethod>,
    guards: Guards,
}

impl KindBuilder {
    pub(crate) fn new(core: Weak<Core>, name: &str) -> Self {
        KindBuilder {
            core,
            name: name.to_owned(),
            methods: BTreeMap::new(),
            guards: Guards::default(),
        }
    }

    /// Guards the method `name` (see [`MethodGuard`]): arguments that do not match reject
    /// the call before the method runs.
    pub fn guard(mut self, name: &str, guard: impl Into<MethodGuard>) -> Self {
        self.guards.insert(name, guard.into());
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
        let method: DurableMethod =
            Box::new(move |vat, state, args| Reply::from(method(vat, state, args)));
        self.methods.insert(name.to_owned(), method);
        self
    }

    /// Adds a method that may await; it runs on the vat's executor.
    pub fn method_async<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl AsyncFn(Vat, DurableState, Args) -> Result<T> + 'static,
    ) -> Self {
        let method = Rc::new(method);
        let method: DurableMethod = Box::new(move |vat, state, args| {
            let method = Rc::clone(&method);
            Reply::later(async move { method(vat, state, args).await })
        });
        self.methods.insert(name.to_owned(), method);
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
        let def = core
            .state
            .borrow_mut()
            .define_kind(self.name, self.methods, self.guards)?;
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
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
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
        let object = core
            .state
            .borrow_mut()
            .make_durable(&self.def, &state.into())?;
        Ok(Ref(Target::Local(object)))
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

/// The behaviour of one instance: its kind's methods over its state.
struct Instance {
    def: Rc<KindDef>,
    state: DurableState,
}

impl Object for Instance {
    fn invoke(&self, vat: &Vat, method: &str, args: Args) -> Reply {
        match self.def.methods.get(method) {
            Some(handler) => self
                .def
                .guards
                .invoke(&self.def.name, method, args, |args| {
                    handler(vat.clone(), self.state.clone(), args)
                }),
            None => Reply::err(format!("{:?} has no method {method:?}", self.def.name)),
        }
    }
}

fn state_key(kind: u64, instance: u64) -> String {
    format!("{STATE_PREFIX}{kind}/{instance}")
}

fn kind_key(name: &str) -> String {
    format!("{KIND_PREFIX}{name}")
}

/// A kind's stored record: its number and its next instance number.
fn encode_kind(id: u64, next: u64) -> Vec<u8> {
    let as_int = |n: u64| Value::Int(i64::try_from(n).unwrap_or(i64::MAX));
    Value::Record(BTreeMap::from([
        ("id".to_owned(), as_int(id)),
        ("next".to_owned(), as_int(next)),
    ]))
    .to_cbor()
}

fn decode_kind(name: &str, bytes: &[u8]) -> Result<(u64, u64)> {
    let corrupt = || Error::new(format!("the record of durable kind {name:?} is corrupt"));
    let value = Value::from_cbor(bytes).map_err(|_| corrupt())?;
    let field = |field: &str| match &value {
        Value::Record(fields) => fields
            .get(field)
            .and_then(Value::as_int)
            .and_then(|n| u64::try_from(n).ok()),
        _ => None,
    };
    Ok((
        field("id").ok_or_else(corrupt)?,
        field("next").ok_or_else(corrupt)?,
    ))
}

impl State {
    fn define_kind(
        &mut self,
        name: String,
        methods: BTreeMap<String, DurableMethod>,
        guards: Guards,
    ) -> Result<Rc<KindDef>> {
        if self.kinds.values().any(|def| def.name == name) {
            return Err(Error::new(format!(
                "durable kind {name:?} is already defined in this incarnation"
            )));
        }
        let id = match self.store.get(&kind_key(&name)) {
            Some(bytes) => decode_kind(&name, bytes)?.0,
            None => {
                let id = match self.store.get(NEXT_KIND_KEY) {
                    Some(bytes) => decode_counter(bytes)?,
                    None => 1,
                };
                self.store
                    .set(NEXT_KIND_KEY, Value::Int(to_i64(id + 1)).to_cbor());
                self.store.set(&kind_key(&name), encode_kind(id, 1));
                id
            }
        };
        let def = Rc::new(KindDef {
            id,
            name,
            methods,
            guards,
        });
        self.kinds.insert(id, Rc::clone(&def));
        Ok(def)
    }

    fn make_durable(&mut self, def: &Rc<KindDef>, initial: &Val) -> Result<Rc<LocalObject>> {
        let data = self.serialize_durable(initial)?;
        let key = kind_key(&def.name);
        let bytes = self
            .store
            .get(&key)
            .ok_or_else(|| Error::new(format!("durable kind {:?} has no record", def.name)))?;
        let (id, instance) = decode_kind(&def.name, bytes)?;
        self.store.set(&key, encode_kind(id, instance + 1));
        self.store
            .set(&state_key(def.id, instance), cbor::to_vec(&data));
        Ok(self.instance_object(def, instance))
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
            facet: None,
        }) = vref
        else {
            return None;
        };
        let def = Rc::clone(self.kinds.get(&kind)?);
        self.store.get(&state_key(kind, instance))?;
        Some(self.instance_object(&def, instance))
    }

    /// A local object for instance `instance` of `def`, registered under its vref.
    fn instance_object(&mut self, def: &Rc<KindDef>, instance: u64) -> Rc<LocalObject> {
        let behavior = Instance {
            def: Rc::clone(def),
            state: DurableState {
                core: self.me.clone(),
                kind: def.id,
                instance,
            },
        };
        let object = self.new_local_object(&def.name, Box::new(behavior));
        let vref = VRef::ExportObject(ExportId::Durable {
            kind: def.id,
            instance,
            facet: None,
        });
        self.exports.insert(vref, Rc::clone(&object));
        self.export_vrefs.insert(object.local_id, vref);
        object
    }
}

fn decode_counter(bytes: &[u8]) -> Result<u64> {
    Value::from_cbor(bytes)
        .ok()
        .and_then(|v| v.as_int())
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Error::new(format!("vat store key {NEXT_KIND_KEY:?} is corrupt")))
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
