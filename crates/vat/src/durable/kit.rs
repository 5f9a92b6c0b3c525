//! Durable kind kits, after Agoric's `prepareExoClassKit` on baggage: a durable kind whose
//! instances are made of several facets sharing one durable state. Each facet is its own
//! exported object (`o+dK/I:F`); like a plain durable kind, a kit is defined again by name
//! in every incarnation, with the same facets, and its instances answer again.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::rc::{Rc, Weak};

use crate::args::Args;
use crate::class::Kit;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::guard::MethodGuard;
use crate::reference::{Ref, Target};
use crate::val::Val;
use crate::vat::Vat;

use super::{DurableState, FacetDef, KindDef, Methods};

/// The methods of one facet of a durable kind kit; see [`KindKitBuilder::facet`].
pub struct KindFacetBuilder {
    methods: Methods,
}

impl KindFacetBuilder {
    /// Guards the method `name` (see [`MethodGuard`]).
    pub fn guard(mut self, name: &str, guard: impl Into<MethodGuard>) -> Self {
        self.methods.guard(name, guard.into());
        self
    }

    /// Adds a method that answers at once. It gets the vat, the instance's
    /// [`DurableState`] (shared by every facet; [`DurableState::facet`] reaches the
    /// siblings) and the arguments.
    pub fn method<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl Fn(Vat, DurableState, Args) -> Result<T> + 'static,
    ) -> Self {
        self.methods.add(name, method);
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

    /// Adds a method that may await; it runs on the vat's executor.
    pub fn method_async<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl AsyncFn(Vat, DurableState, Args) -> Result<T> + 'static,
    ) -> Self {
        self.methods.add_async(name, method);
        self
    }
}

impl fmt::Debug for KindFacetBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KindFacetBuilder")
            .field("methods", &self.methods.names())
            .finish()
    }
}

/// Builds a durable kind kit from named facets; start one with
/// [`Vat::durable_kind_kit`](crate::Vat::durable_kind_kit).
///
/// Facets are numbered in the order they are defined, and that number is part of each
/// facet's vref: every incarnation must define the kit with the same facets, in the same
/// order, or [`KindKitBuilder::build`] fails.
///
/// # Examples
/// ```
/// use ocap_vat::{Baggage, Ref, Result, Val, Vat};
///
/// fn build(vat: &Vat, _parameters: &Val, baggage: &Baggage) -> Result<Ref> {
///     let counters = vat
///         .durable_kind_kit("counter")
///         .facet("incrementer", |facet| {
///             facet.method("increment", |_vat, state, _args| {
///                 let count = state.field("count")?.as_int().unwrap_or(0) + 1;
///                 state.set_field("count", count)?;
///                 Ok(count)
///             })
///         })
///         .facet("reader", |facet| {
///             facet.method("read", |_vat, state, _args| state.field("count"))
///         })
///         .build()?;
///     if !baggage.has("counter") {
///         let kit = counters.make(Val::record([("count", 0)]))?;
///         kit.facet("incrementer")?.call("increment", ())?;
///         assert_eq!(kit.facet("reader")?.call("read", ())?, Val::from(1));
///         baggage.set("counter", kit)?;
///     }
///     Ok(vat.object("root").build())
/// }
/// # use ocap_vat::VatRuntime;
/// # use ocap_vat::protocol::{Syscall, Value, VatHost, VatLog, VatStart};
/// # struct NoHost;
/// # impl VatHost for NoHost {
/// #     fn syscall(&mut self, _: Syscall) {}
/// #     fn log(&mut self, _: VatLog) {}
/// # }
/// # let mut runtime = ocap_vat::Runtime::new(build);
/// # let start = VatStart { name: "v".into(), parameters: Value::Null, state: Vec::new() };
/// # assert_eq!(runtime.start(start, &mut NoHost).error, None);
/// ```
pub struct KindKitBuilder {
    core: Weak<Core>,
    name: String,
    facets: Vec<(String, Methods)>,
}

impl KindKitBuilder {
    pub(crate) fn new(core: Weak<Core>, name: &str) -> Self {
        KindKitBuilder {
            core,
            name: name.to_owned(),
            facets: Vec::new(),
        }
    }

    /// Adds the facet `name`, its methods defined by `define`. A later facet with the same
    /// name replaces it (keeping its place).
    pub fn facet(
        mut self,
        name: &str,
        define: impl FnOnce(KindFacetBuilder) -> KindFacetBuilder,
    ) -> Self {
        let methods = define(KindFacetBuilder {
            methods: Methods::default(),
        })
        .methods;
        match self.facets.iter_mut().find(|(facet, _)| facet == name) {
            Some((_, old)) => *old = methods,
            None => self.facets.push((name.to_owned(), methods)),
        }
        self
    }

    /// Defines the kit in this incarnation: a kit of that name made by an earlier one keeps
    /// its number, so its instances' facets come back.
    ///
    /// # Errors
    /// When the kit has no facet, was already defined in this incarnation, an earlier
    /// incarnation defined it with other facets (or as a plain kind), or its record is
    /// corrupt.
    pub fn build(self) -> Result<DurableKindKit> {
        if self.facets.is_empty() {
            return Err(Error::new(format!(
                "durable kind kit {:?} has no facets",
                self.name
            )));
        }
        let core = self
            .core
            .upgrade()
            .ok_or_else(|| Error::new("the vat is gone"))?;
        let facets = self
            .facets
            .into_iter()
            .map(|(facet, methods)| FacetDef {
                iface: format!("{} {facet}", self.name),
                name: facet,
                methods,
            })
            .collect();
        let def = core
            .state
            .borrow_mut()
            .define_kind(self.name, facets, true)?;
        Ok(DurableKindKit {
            def,
            core: self.core,
        })
    }
}

impl fmt::Debug for KindKitBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let facets: Vec<&str> = self.facets.iter().map(|(name, _)| name.as_str()).collect();
        f.debug_struct("KindKitBuilder")
            .field("name", &self.name)
            .field("facets", &facets)
            .finish()
    }
}

/// A durable kind kit defined in this incarnation: makes instances, each a [`Kit`] of
/// durable facets sharing one [`DurableState`].
#[derive(Clone)]
pub struct DurableKindKit {
    def: Rc<KindDef>,
    core: Weak<Core>,
}

impl DurableKindKit {
    /// The kit's name.
    pub fn name(&self) -> &str {
        &self.def.name
    }

    /// Makes an instance whose state starts as `state`: one durable object per facet, each
    /// exported as `o+dK/I:F`. The [`Kit`] (or any facet) may be kept in baggage.
    ///
    /// # Errors
    /// When `state` holds something that does not survive a restart.
    pub fn make(&self, state: impl Into<Val>) -> Result<Kit> {
        let core = self
            .core
            .upgrade()
            .ok_or_else(|| Error::new("the vat is gone"))?;
        let mut vat_state = core.state.borrow_mut();
        let instance = vat_state.make_durable(&self.def, &state.into())?;
        let mut facets = BTreeMap::new();
        for (facet_idx, facet) in self.def.facets.iter().enumerate() {
            let object = vat_state.instance_object(&self.def, instance, facet_idx);
            facets.insert(facet.name.clone(), Ref(Target::Local(object)));
        }
        Ok(Kit::new(facets))
    }
}

impl fmt::Debug for DurableKindKit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let facets: Vec<&str> = self.def.facets.iter().map(|f| f.name.as_str()).collect();
        f.debug_struct("DurableKindKit")
            .field("name", &self.def.name)
            .field("id", &self.def.id)
            .field("facets", &facets)
            .finish()
    }
}
