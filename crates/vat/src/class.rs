//! Classes and class kits, after Endo's `defineExoClass` and `defineExoClassKit`: one set of
//! (optionally guarded) methods, many instances, each with its own state of a Rust type `S`.
//! A kit instance is several objects — its facets — sharing one state; each facet answers
//! only its own methods.
//!
//! Invariant: a facet's behaviour holds the shared state strongly and its sibling facets
//! weakly, so the instance's objects never keep each other alive through a cycle.

#[cfg(test)]
mod tests;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt;
use std::rc::{Rc, Weak};

use crate::args::Args;
use crate::error::{Error, Result};
use crate::guard::{Guards, MethodGuard};
use crate::object::{Object, Reply};
use crate::reference::{LocalObject, Ref, Target};
use crate::val::Val;
use crate::vat::Vat;

type ClassMethod<S> = Box<dyn Fn(Vat, This<S>, Args) -> Reply>;

/// The methods of one facet (a class has one), with their guards.
pub struct FacetBuilder<S> {
    methods: BTreeMap<String, ClassMethod<S>>,
    guards: Guards,
}

impl<S: 'static> FacetBuilder<S> {
    fn new() -> Self {
        FacetBuilder {
            methods: BTreeMap::new(),
            guards: Guards::default(),
        }
    }

    /// Adds a method that answers at once. It gets the vat, the receiver ([`This`]: the
    /// instance's state and facets) and the arguments. A later method with the same name
    /// replaces it.
    pub fn method<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl Fn(Vat, This<S>, Args) -> Result<T> + 'static,
    ) -> Self {
        let method: ClassMethod<S> =
            Box::new(move |vat, this, args| Reply::from(method(vat, this, args)));
        self.methods.insert(name.to_owned(), method);
        self
    }

    /// Adds a method that may await; it runs on the vat's executor.
    pub fn method_async<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl AsyncFn(Vat, This<S>, Args) -> Result<T> + 'static,
    ) -> Self {
        let method = Rc::new(method);
        let method: ClassMethod<S> = Box::new(move |vat, this, args| {
            let method = Rc::clone(&method);
            Reply::later(async move { method(vat, this, args).await })
        });
        self.methods.insert(name.to_owned(), method);
        self
    }

    /// Guards the method `name`: arguments that do not match reject the call before the
    /// method runs (see [`MethodGuard`]).
    pub fn guard(mut self, name: &str, guard: impl Into<MethodGuard>) -> Self {
        self.guards.insert(name, guard.into());
        self
    }

    /// Adds a method that answers at once, with its guard.
    pub fn method_guarded<T: Into<Val>>(
        self,
        name: &str,
        guard: impl Into<MethodGuard>,
        method: impl Fn(Vat, This<S>, Args) -> Result<T> + 'static,
    ) -> Self {
        self.guard(name, guard).method(name, method)
    }

    fn into_def(self, name: &str, iface: String) -> Rc<FacetDef<S>> {
        Rc::new(FacetDef {
            name: name.to_owned(),
            iface,
            methods: self.methods,
            guards: self.guards,
        })
    }
}

impl<S> fmt::Debug for FacetBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FacetBuilder")
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Builds a class; start one with [`Vat::class`].
///
/// # Examples
/// ```
/// use ocap_vat::{Guard, Result, Val, Vat};
///
/// fn counters(vat: &Vat) -> Result<()> {
///     let counter = vat
///         .class::<f64>("Counter")
///         .method("getValue", |_vat, this, _args| Ok(Val::number(this.get()?)))
///         .method_guarded("increment", [Guard::Number], |_vat, this, args| {
///             let by = args.number(0)?;
///             this.update(|value| Val::number(*value + by))
///         })
///         .build();
///     let c = counter.make(10.0);
///     assert_eq!(c.call("increment", [5])?, Val::from(15));
///     let error = c.call("increment", ["foo"]).unwrap_err();
///     assert_eq!(
///         error.message(),
///         r#"In "increment" method of (Counter): arg 0: string "foo" - Must be a number"#
///     );
///     Ok(())
/// }
/// # use ocap_types::{Syscall, Value, VatHost, VatLog, VatRuntime, VatStart};
/// # struct NoHost;
/// # impl VatHost for NoHost {
/// #     fn syscall(&mut self, _: Syscall) {}
/// #     fn log(&mut self, _: VatLog) {}
/// # }
/// # let mut runtime = ocap_vat::Runtime::new(|vat: &Vat, _: &Val, _: &ocap_vat::Baggage| {
/// #     counters(vat)?;
/// #     Ok(vat.object("root").build())
/// # });
/// # let start = VatStart { name: "v".into(), parameters: Value::Null, state: Vec::new() };
/// # assert_eq!(runtime.start(start, &mut NoHost).error, None);
/// ```
pub struct ClassBuilder<S> {
    vat: Vat,
    name: String,
    facet: FacetBuilder<S>,
}

impl<S: 'static> ClassBuilder<S> {
    pub(crate) fn new(vat: Vat, name: &str) -> Self {
        ClassBuilder {
            vat,
            name: name.to_owned(),
            facet: FacetBuilder::new(),
        }
    }

    /// Adds a method that answers at once (see [`FacetBuilder::method`]).
    pub fn method<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl Fn(Vat, This<S>, Args) -> Result<T> + 'static,
    ) -> Self {
        self.facet = self.facet.method(name, method);
        self
    }

    /// Adds a method that may await.
    pub fn method_async<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl AsyncFn(Vat, This<S>, Args) -> Result<T> + 'static,
    ) -> Self {
        self.facet = self.facet.method_async(name, method);
        self
    }

    /// Guards the method `name` (see [`MethodGuard`]).
    pub fn guard(mut self, name: &str, guard: impl Into<MethodGuard>) -> Self {
        self.facet = self.facet.guard(name, guard);
        self
    }

    /// Adds a method that answers at once, with its guard.
    pub fn method_guarded<T: Into<Val>>(
        mut self,
        name: &str,
        guard: impl Into<MethodGuard>,
        method: impl Fn(Vat, This<S>, Args) -> Result<T> + 'static,
    ) -> Self {
        self.facet = self.facet.method_guarded(name, guard, method);
        self
    }

    /// Defines the class.
    pub fn build(self) -> Class<S> {
        let def = self.facet.into_def("", self.name.clone());
        Class {
            kit: ClassKit {
                vat: self.vat,
                name: self.name,
                facets: Rc::new(vec![def]),
            },
        }
    }
}

impl<S> fmt::Debug for ClassBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClassBuilder")
            .field("name", &self.name)
            .field("facet", &self.facet)
            .finish()
    }
}

/// A class: makes instances, each an object with its own state. Cheap to clone.
pub struct Class<S> {
    kit: ClassKit<S>,
}

impl<S: 'static> Class<S> {
    /// The class's name, which is also its instances' interface name.
    pub fn name(&self) -> &str {
        &self.kit.name
    }

    /// Makes an instance whose state starts as `state`.
    pub fn make(&self, state: S) -> Ref {
        let mut facets = self.kit.make(state).facets;
        facets
            .remove("")
            .expect("invariant: a class is a kit with the one facet \"\"")
    }
}

impl<S> Clone for Class<S> {
    fn clone(&self) -> Self {
        Class {
            kit: self.kit.clone(),
        }
    }
}

impl<S> fmt::Debug for Class<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Class")
            .field("name", &self.kit.name)
            .finish()
    }
}

/// Builds a class kit; start one with [`Vat::class_kit`], then add each facet with its
/// methods.
///
/// A facet's interface name is the kit's name and the facet's, as in Endo
/// (`Temperature celsius`); a method of one facet is not a method of another.
///
/// # Examples
/// ```
/// use ocap_vat::{Guard, Result, Val, Vat};
///
/// fn temperatures(vat: &Vat) -> Result<()> {
///     let temperature = vat
///         .class_kit::<f64>("Temperature")
///         .facet("celsius", |facet| {
///             facet.method("getCelsius", |_vat, this, _args| Ok(Val::number(this.get()?)))
///         })
///         .facet("fahrenheit", |facet| {
///             facet.method_guarded("setFahrenheit", [Guard::Number], |_vat, this, args| {
///                 let f = args.number(0)?;
///                 this.set((f - 32.0) * 5.0 / 9.0)?;
///                 Ok(Val::number(f))
///             })
///         })
///         .build();
///     let kit = temperature.make(25.0);
///     let (celsius, fahrenheit) = (kit.facet("celsius")?, kit.facet("fahrenheit")?);
///     fahrenheit.call("setFahrenheit", [212])?;
///     assert_eq!(celsius.call("getCelsius", ())?, Val::from(100));
///     assert!(celsius.call("setFahrenheit", [0]).is_err());
///     // A kit passes as a record of its facets.
///     let _passable = Val::from(kit);
///     Ok(())
/// }
/// # use ocap_types::{Syscall, Value, VatHost, VatLog, VatRuntime, VatStart};
/// # struct NoHost;
/// # impl VatHost for NoHost {
/// #     fn syscall(&mut self, _: Syscall) {}
/// #     fn log(&mut self, _: VatLog) {}
/// # }
/// # let mut runtime = ocap_vat::Runtime::new(|vat: &Vat, _: &Val, _: &ocap_vat::Baggage| {
/// #     temperatures(vat)?;
/// #     Ok(vat.object("root").build())
/// # });
/// # let start = VatStart { name: "v".into(), parameters: Value::Null, state: Vec::new() };
/// # assert_eq!(runtime.start(start, &mut NoHost).error, None);
/// ```
pub struct KitBuilder<S> {
    vat: Vat,
    name: String,
    facets: BTreeMap<String, FacetBuilder<S>>,
}

impl<S: 'static> KitBuilder<S> {
    pub(crate) fn new(vat: Vat, name: &str) -> Self {
        KitBuilder {
            vat,
            name: name.to_owned(),
            facets: BTreeMap::new(),
        }
    }

    /// Adds the facet `name`, whose methods `define` adds. Defining a facet again adds to it.
    pub fn facet(
        mut self,
        name: &str,
        define: impl FnOnce(FacetBuilder<S>) -> FacetBuilder<S>,
    ) -> Self {
        let facet = self.facets.remove(name).unwrap_or_else(FacetBuilder::new);
        self.facets.insert(name.to_owned(), define(facet));
        self
    }

    /// Defines the kit.
    pub fn build(self) -> ClassKit<S> {
        let facets = self
            .facets
            .into_iter()
            .map(|(facet, builder)| {
                let iface = format!("{} {facet}", self.name);
                builder.into_def(&facet, iface)
            })
            .collect();
        ClassKit {
            vat: self.vat,
            name: self.name,
            facets: Rc::new(facets),
        }
    }
}

impl<S> fmt::Debug for KitBuilder<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KitBuilder")
            .field("name", &self.name)
            .field("facets", &self.facets)
            .finish()
    }
}

/// A class kit: makes instances, each a [`Kit`] of facets sharing one state. Cheap to
/// clone.
pub struct ClassKit<S> {
    vat: Vat,
    name: String,
    facets: Rc<Vec<Rc<FacetDef<S>>>>,
}

impl<S: 'static> ClassKit<S> {
    /// The kit's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Makes an instance whose state starts as `state`: one object per facet.
    pub fn make(&self, state: S) -> Kit {
        let shared = Rc::new(Shared {
            class: self.name.clone(),
            state: RefCell::new(state),
            facets: RefCell::new(Vec::new()),
        });
        let mut facets = BTreeMap::new();
        for (facet_idx, def) in self.facets.iter().enumerate() {
            let behavior = FacetObject {
                def: Rc::clone(def),
                shared: Rc::clone(&shared),
                facet_idx,
            };
            let object = self.vat.make(&def.iface, behavior);
            let weak = match &object.0 {
                Target::Local(local) => Rc::downgrade(local),
                Target::Remote(_) => Weak::new(),
            };
            shared.facets.borrow_mut().push((def.name.clone(), weak));
            facets.insert(def.name.clone(), object);
        }
        Kit { facets }
    }
}

impl<S> Clone for ClassKit<S> {
    fn clone(&self) -> Self {
        ClassKit {
            vat: self.vat.clone(),
            name: self.name.clone(),
            facets: Rc::clone(&self.facets),
        }
    }
}

impl<S> fmt::Debug for ClassKit<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let facets: Vec<&str> = self.facets.iter().map(|def| def.name.as_str()).collect();
        f.debug_struct("ClassKit")
            .field("name", &self.name)
            .field("facets", &facets)
            .finish()
    }
}

/// One instance of a class kit: its facets by name. As a [`Val`] it is a record of them,
/// so a kit passed to another vat arrives with its facets in name order (spec §3.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Kit {
    facets: BTreeMap<String, Ref>,
}

impl Kit {
    pub(crate) fn new(facets: BTreeMap<String, Ref>) -> Kit {
        Kit { facets }
    }

    /// The facet `name`.
    ///
    /// # Errors
    /// When the kit has no such facet.
    pub fn facet(&self, name: &str) -> Result<Ref> {
        self.facets
            .get(name)
            .cloned()
            .ok_or_else(|| Error::new(format!("the kit has no facet {name:?}")))
    }

    /// Every facet, by name.
    pub fn facets(&self) -> &BTreeMap<String, Ref> {
        &self.facets
    }
}

impl From<Kit> for Val {
    fn from(kit: Kit) -> Self {
        Val::record(kit.facets)
    }
}

/// The receiver of a class method, after Endo's `this`: the instance's state (shared by
/// all facets of a kit) and its facets.
///
/// The state is borrowed only inside the closures given to [`This::state`] and
/// [`This::update`], so it is never held across an `await`.
pub struct This<S> {
    shared: Rc<Shared<S>>,
    facet_idx: usize,
}

impl<S> This<S> {
    /// Reads the state.
    ///
    /// # Errors
    /// When called from inside [`This::update`] of the same instance.
    pub fn state<T>(&self, read: impl FnOnce(&S) -> T) -> Result<T> {
        let state = self.shared.state.try_borrow().map_err(|_| self.busy())?;
        Ok(read(&state))
    }

    /// Changes the state, answering what `write` answers.
    ///
    /// # Errors
    /// When called from inside [`This::state`] or [`This::update`] of the same instance.
    pub fn update<T>(&self, write: impl FnOnce(&mut S) -> T) -> Result<T> {
        let mut state = self
            .shared
            .state
            .try_borrow_mut()
            .map_err(|_| self.busy())?;
        Ok(write(&mut state))
    }

    /// A copy of the state.
    ///
    /// # Errors
    /// As [`This::state`].
    pub fn get(&self) -> Result<S>
    where
        S: Clone,
    {
        self.state(S::clone)
    }

    /// Replaces the state.
    ///
    /// # Errors
    /// As [`This::update`].
    pub fn set(&self, state: S) -> Result<()> {
        self.update(|old| *old = state)
    }

    /// The object this method was called on (Endo's `this.self`).
    ///
    /// # Errors
    /// When nothing holds that object anymore (possible only after the call returned, in
    /// an `async` method).
    pub fn me(&self) -> Result<Ref> {
        let facets = self.shared.facets.borrow();
        facets
            .get(self.facet_idx)
            .and_then(|(_, object)| object.upgrade())
            .map(|object| Ref(Target::Local(object)))
            .ok_or_else(|| Error::new(format!("this ({}) is gone", self.shared.class)))
    }

    /// The sibling facet `name` of a kit instance (Endo's `this.facets[name]`).
    ///
    /// # Errors
    /// When there is no such facet, or nothing holds it anymore.
    pub fn facet(&self, name: &str) -> Result<Ref> {
        let facets = self.shared.facets.borrow();
        let (_, object) = facets
            .iter()
            .find(|(facet, _)| facet == name)
            .ok_or_else(|| Error::new(format!("({}) has no facet {name:?}", self.shared.class)))?;
        object
            .upgrade()
            .map(|object| Ref(Target::Local(object)))
            .ok_or_else(|| Error::new(format!("facet {name:?} of ({}) is gone", self.shared.class)))
    }

    fn busy(&self) -> Error {
        Error::new(format!(
            "the state of ({}) is already being updated",
            self.shared.class
        ))
    }
}

impl<S> Clone for This<S> {
    fn clone(&self) -> Self {
        This {
            shared: Rc::clone(&self.shared),
            facet_idx: self.facet_idx,
        }
    }
}

impl<S> fmt::Debug for This<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("This")
            .field("class", &self.shared.class)
            .field("facet_idx", &self.facet_idx)
            .finish()
    }
}

/// What the facets of one instance share.
struct Shared<S> {
    class: String,
    state: RefCell<S>,
    /// Each facet's name and object, in definition order.
    facets: RefCell<Vec<(String, Weak<LocalObject>)>>,
}

/// One facet's methods.
struct FacetDef<S> {
    /// The facet's name (`""` for a class).
    name: String,
    iface: String,
    methods: BTreeMap<String, ClassMethod<S>>,
    guards: Guards,
}

/// The behaviour of one facet of one instance.
struct FacetObject<S> {
    def: Rc<FacetDef<S>>,
    shared: Rc<Shared<S>>,
    facet_idx: usize,
}

impl<S: 'static> Object for FacetObject<S> {
    fn invoke(&self, vat: &Vat, method: &str, args: Args) -> Reply {
        let Some(handler) = self.def.methods.get(method) else {
            return Reply::err(format!("{:?} has no method {method:?}", self.def.iface));
        };
        let this = This {
            shared: Rc::clone(&self.shared),
            facet_idx: self.facet_idx,
        };
        self.def
            .guards
            .invoke(&self.def.iface, method, args, |args| {
                handler(vat.clone(), this, args)
            })
    }
}
