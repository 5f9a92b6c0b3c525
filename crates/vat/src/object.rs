//! Objects: the [`Object`] trait (one `invoke` entry point) and [`ObjectBuilder`], which makes
//! an object from a table of named method closures, synchronous or `async`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::rc::Rc;

use crate::args::Args;
use crate::bootstrap::Bootstrap;
use crate::error::{Error, Result};
use crate::executor::LocalFuture;
use crate::guard::{Guards, MethodGuard};
use crate::reference::Ref;
use crate::val::Val;
use crate::vat::Vat;

/// Behaviour of a local object: every message sent to it arrives at [`Object::invoke`].
///
/// Most vats build objects with [`Vat::object`] instead; implement this trait for an object
/// that dispatches by hand (a proxy, a forwarder, a catch-all). State lives in the
/// implementing type behind interior mutability (`Cell`, `RefCell`), because an object is
/// shared by every reference to it.
///
/// # Examples
/// ```
/// use ocap_vat::{Args, Object, Reply, Vat};
///
/// struct Echo;
/// impl Object for Echo {
///     fn invoke(&self, _vat: &Vat, method: &str, args: Args) -> Reply {
///         match method {
///             "echo" => Reply::from(args.val(0).cloned()),
///             other => Reply::err(format!("echo has no method {other:?}")),
///         }
///     }
/// }
/// ```
pub trait Object: 'static {
    /// Handles one message. The reply may be ready now or later (see [`Reply::later`]); an
    /// error rejects the caller's result promise.
    fn invoke(&self, vat: &Vat, method: &str, args: Args) -> Reply;
}

/// What a method answers: a value or an error, now or later. A value that is a promise is
/// followed: the caller's result settles when that promise does.
pub struct Reply(ReplyKind);

enum ReplyKind {
    Ready(Result<Val>),
    Later(LocalFuture<Result<Val>>),
}

impl Reply {
    /// Answers `value` now.
    pub fn ok(value: impl Into<Val>) -> Reply {
        Reply(ReplyKind::Ready(Ok(value.into())))
    }

    /// Fails now: the caller's result promise is rejected with `error`.
    pub fn err(error: impl Into<Error>) -> Reply {
        Reply(ReplyKind::Ready(Err(error.into())))
    }

    /// Answers when `future` completes; the future runs on the vat's executor and may await
    /// promises.
    pub fn later<T: Into<Val>>(future: impl Future<Output = Result<T>> + 'static) -> Reply {
        Reply(ReplyKind::Later(Box::pin(async move {
            future.await.map(Into::into)
        })))
    }

    /// The answer, when it is ready now; otherwise the reply itself, to be awaited.
    ///
    /// # Errors
    /// `Err(self)` when the answer comes later.
    pub fn now(self) -> std::result::Result<Result<Val>, Reply> {
        match self.0 {
            ReplyKind::Ready(res) => Ok(res),
            later @ ReplyKind::Later(_) => Err(Reply(later)),
        }
    }

    /// The same reply with `f` applied to its answer, now or when it comes.
    pub(crate) fn map(self, f: impl FnOnce(Result<Val>) -> Result<Val> + 'static) -> Reply {
        match self.0 {
            ReplyKind::Ready(res) => Reply(ReplyKind::Ready(f(res))),
            ReplyKind::Later(future) => {
                Reply(ReplyKind::Later(Box::pin(async move { f(future.await) })))
            }
        }
    }
}

impl<T: Into<Val>> From<Result<T>> for Reply {
    fn from(res: Result<T>) -> Self {
        Reply(ReplyKind::Ready(res.map(Into::into)))
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ReplyKind::Ready(res) => f.debug_tuple("Reply::Ready").field(res).finish(),
            ReplyKind::Later(_) => f.write_str("Reply::Later(..)"),
        }
    }
}

/// Awaiting a reply gives the method's answer.
impl IntoFuture for Reply {
    type Output = Result<Val>;
    type IntoFuture = LocalFuture<Result<Val>>;

    fn into_future(self) -> Self::IntoFuture {
        match self.0 {
            ReplyKind::Ready(res) => Box::pin(std::future::ready(res)),
            ReplyKind::Later(future) => future,
        }
    }
}

type Method = Box<dyn Fn(Vat, Args) -> Reply>;

/// Builds a local object from named methods. Start one with [`Vat::object`].
///
/// A method is a closure taking the vat handle and the arguments. Use
/// [`ObjectBuilder::method`] for one that answers at once and
/// [`ObjectBuilder::method_async`] for one that awaits (an `async` closure, which may borrow
/// what it captured). Returning `Err` rejects the caller's result promise; a message naming
/// no method is rejected the same way.
///
/// # Examples
/// ```
/// use std::cell::Cell;
/// use ocap_vat::{E, Ref, Vat};
///
/// fn make_counter(vat: &Vat) -> Ref {
///     let count = Rc::new(Cell::new(0_i64));
///     let read = Rc::clone(&count);
///     vat.object("counter")
///         .method("increment", move |_vat, args| {
///             count.set(count.get() + args.int(0).unwrap_or(1));
///             Ok(count.get())
///         })
///         .method("value", move |_vat, _args| Ok(read.get()))
///         .method_async("forward", async |_vat, args| {
///             // Ask another object and answer with its reply.
///             E(&args.object(0)?).send("value", ()).await
///         })
///         .build()
/// }
/// # use std::rc::Rc;
/// ```
pub struct ObjectBuilder {
    vat: Vat,
    iface: String,
    methods: BTreeMap<String, Method>,
    guards: Guards,
}

impl ObjectBuilder {
    pub(crate) fn new(vat: Vat, iface: &str) -> Self {
        ObjectBuilder {
            vat,
            iface: iface.to_owned(),
            methods: BTreeMap::new(),
            guards: Guards::default(),
        }
    }

    /// Guards the method `name` (see [`MethodGuard`]): a call whose arguments do not match
    /// is rejected before the method runs, naming the method, this interface, the argument
    /// and the value.
    pub fn guard(mut self, name: &str, guard: impl Into<MethodGuard>) -> Self {
        self.guards.insert(name, guard.into());
        self
    }

    /// Adds a method that answers at once, with its guard ([`ObjectBuilder::guard`]).
    pub fn method_guarded<T: Into<Val>>(
        self,
        name: &str,
        guard: impl Into<MethodGuard>,
        method: impl Fn(Vat, Args) -> Result<T> + 'static,
    ) -> Self {
        self.guard(name, guard).method(name, method)
    }

    /// Adds a method that answers at once. A later method with the same name replaces it.
    pub fn method<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl Fn(Vat, Args) -> Result<T> + 'static,
    ) -> Self {
        let method: Method = Box::new(move |vat, args| Reply::from(method(vat, args)));
        self.methods.insert(name.to_owned(), method);
        self
    }

    /// Adds a method that may await (typically an `async` closure). It runs on the vat's
    /// executor; the caller's result settles when it completes.
    pub fn method_async<T: Into<Val>>(
        mut self,
        name: &str,
        method: impl AsyncFn(Vat, Args) -> Result<T> + 'static,
    ) -> Self {
        let method = Rc::new(method);
        let method: Method = Box::new(move |vat, args| {
            let method = Rc::clone(&method);
            // The call's future borrows the closure; the async block owns the `Rc` it
            // borrows from, so the whole thing is `'static`.
            Reply::later(async move { method(vat, args).await })
        });
        self.methods.insert(name.to_owned(), method);
        self
    }

    /// Adds the `bootstrap(vats, services)` method the kernel calls on a bootstrap vat's
    /// root, with its arguments already unpacked into a [`Bootstrap`].
    pub fn bootstrap<T: Into<Val>>(
        self,
        method: impl AsyncFn(Vat, Bootstrap) -> Result<T> + 'static,
    ) -> Self {
        self.method_async("bootstrap", async move |vat, args| {
            let roots = Bootstrap::from_args(&args)?;
            method(vat, roots).await
        })
    }

    /// Makes the object.
    pub fn build(self) -> Ref {
        let ObjectBuilder {
            vat,
            iface,
            methods,
            guards,
        } = self;
        let table = MethodTable {
            iface: iface.clone(),
            methods,
            guards,
        };
        vat.make(&iface, table)
    }
}

impl fmt::Debug for ObjectBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObjectBuilder")
            .field("iface", &self.iface)
            .field("methods", &self.methods.keys().collect::<Vec<_>>())
            .finish()
    }
}

struct MethodTable {
    iface: String,
    methods: BTreeMap<String, Method>,
    guards: Guards,
}

impl Object for MethodTable {
    fn invoke(&self, vat: &Vat, method: &str, args: Args) -> Reply {
        match self.methods.get(method) {
            Some(handler) => self
                .guards
                .invoke(&self.iface, method, args, |args| handler(vat.clone(), args)),
            None => Reply::err(format!("{:?} has no method {method:?}", self.iface)),
        }
    }
}
