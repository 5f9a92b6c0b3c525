//! `Ref`: a reference to an object, either local (implemented in this vat) or a presence (an
//! import `o-N` standing for an object elsewhere). Identity is what matters: a local object
//! keeps one export vref for as long as the kernel knows it, and comes back as itself.

use std::fmt;
use std::rc::{Rc, Weak};

use ocap_types::VRef;

use crate::args::Args;
use crate::core::Core;
use crate::error::{Error, Result};
use crate::object::Object;
use crate::send::IntoArgs;
use crate::val::Val;
use crate::vat::Vat;

/// A reference to an object: one of this vat's own (local), or a presence of an object
/// another vat (or the kernel) implements. Cheap to clone; equality is identity.
///
/// Send it messages with [`crate::E`]; pass it to others inside a [`crate::Val`].
#[derive(Clone)]
pub struct Ref(pub(crate) Target);

#[derive(Clone)]
pub(crate) enum Target {
    Local(Rc<LocalObject>),
    Remote(Rc<Presence>),
}

/// An object implemented in this vat.
pub(crate) struct LocalObject {
    /// Unique within the vat; the export table is keyed by it.
    pub(crate) local_id: u64,
    pub(crate) iface: String,
    pub(crate) behavior: Box<dyn Object>,
    pub(crate) core: Weak<Core>,
}

/// An imported object (`o-N`).
pub(crate) struct Presence {
    pub(crate) vref: VRef,
    pub(crate) iface: Option<String>,
    pub(crate) core: Weak<Core>,
}

impl Ref {
    /// The interface name the object was made with (for a presence: what its exporter
    /// called it, or `Remotable`).
    pub fn iface(&self) -> &str {
        match &self.0 {
            Target::Local(obj) => &obj.iface,
            Target::Remote(presence) => presence.iface.as_deref().unwrap_or("Remotable"),
        }
    }

    /// True when this vat implements the object.
    pub fn is_local(&self) -> bool {
        matches!(self.0, Target::Local(_))
    }

    /// Calls `method(args)` on a local object now, as JavaScript code calls a method of an
    /// object in its own vat: the method (and its guard) runs before `call` returns.
    /// Use [`crate::E`] for everything else.
    ///
    /// # Errors
    /// What the method answers as an error (a guard's rejection included); an error too when
    /// the object is a presence, or when the method answers only later (an `async` one).
    ///
    /// # Examples
    /// ```
    /// # use ocap_vat::{Result, Val, Vat};
    /// fn double(vat: &Vat) -> Result<()> {
    ///     let doubler = vat
    ///         .object("doubler")
    ///         .method("double", |_vat, args| Ok(args.int(0)? * 2))
    ///         .build();
    ///     assert_eq!(doubler.call("double", [21])?, Val::from(42));
    ///     Ok(())
    /// }
    /// # use ocap_types::{Syscall, Value, VatHost, VatLog, VatRuntime, VatStart};
    /// # struct NoHost;
    /// # impl VatHost for NoHost {
    /// #     fn syscall(&mut self, _: Syscall) {}
    /// #     fn log(&mut self, _: VatLog) {}
    /// # }
    /// # let mut runtime = ocap_vat::Runtime::new(|vat: &Vat, _: &Val, _: &ocap_vat::Baggage| {
    /// #     double(vat)?;
    /// #     Ok(vat.object("root").build())
    /// # });
    /// # let start = VatStart { name: "v".into(), parameters: Value::Null, state: Vec::new() };
    /// # assert_eq!(runtime.start(start, &mut NoHost).error, None);
    /// ```
    pub fn call(&self, method: &str, args: impl IntoArgs) -> Result<Val> {
        let Target::Local(object) = &self.0 else {
            return Err(Error::new(format!(
                "cannot call {method:?} of a remote object directly: send it with E()"
            )));
        };
        let vat = Vat::new(object.core.clone());
        let reply = object
            .behavior
            .invoke(&vat, method, Args::new(method, args.into_args()));
        reply.now().unwrap_or_else(|_later| {
            Err(Error::new(format!(
                "{method:?} of ({}) answers later: send it with E() instead",
                object.iface
            )))
        })
    }
}

impl PartialEq for Ref {
    fn eq(&self, other: &Ref) -> bool {
        match (&self.0, &other.0) {
            (Target::Local(a), Target::Local(b)) => Rc::ptr_eq(a, b),
            (Target::Remote(a), Target::Remote(b)) => {
                a.vref == b.vref && Weak::ptr_eq(&a.core, &b.core)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[object {}]", self.iface())
    }
}

impl fmt::Debug for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Target::Local(obj) => write!(f, "Ref::Local({}#{})", obj.iface, obj.local_id),
            Target::Remote(presence) => write!(f, "Ref::Remote({})", presence.vref),
        }
    }
}
