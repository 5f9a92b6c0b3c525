//! The vat SDK: what vat code is written against. It plays the role Agoric's liveslots plays
//! for JavaScript vats, and the kernel only ever sees it through [`VatRuntime`].
//!
//! A vat author depends on this crate alone: it re-exports [`VatRuntime`] (what a vat's
//! constructor returns) and, in [`protocol`], the vat protocol's types for driving a vat by
//! hand in its tests. A whole vat (the README's, compiled here):
//!
//! ```
//! use ocap_vat::{Baggage, E, Ref, Result, Runtime, Val, Vat, VatRuntime};
//!
//! fn build(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
//!     Ok(vat
//!         .object("alice")
//!         .bootstrap(async |_vat, roots| {
//!             let reply = E(&roots.vat("bob")?).send("hello", ["alice"]).await?;
//!             Ok(format!("alice got: {reply}"))
//!         })
//!         .build())
//! }
//!
//! pub fn runtime() -> Box<dyn VatRuntime> {
//!     Runtime::boxed(build)
//! }
//! # let _ = runtime();
//! ```
//!
//! # The model
//!
//! * **A vat is a build function** `(vat, parameters, baggage) -> root`. [`Runtime`] runs it
//!   once per incarnation, at `start`; the root it returns is the vat's `o+0`.
//! * **Objects** are made with [`Vat::object`] from named methods (closures, plain or
//!   `async`), or from any [`Object`] implementation. A method answers with a [`Val`], a
//!   [`Promise`] (the caller's result settles when it does), or an [`Error`] (the caller's
//!   result is *rejected*: a failing method is not a failing vat). A method nobody defined
//!   is rejected the same way.
//! * **Values** ([`Val`]) are plain data plus references: local objects and presences
//!   ([`Ref`]) and [`Promise`]s. The runtime marshals them to and from the kernel's capdata:
//!   a local object leaving the vat for the first time is exported as a fresh `o+N` and is
//!   recognised as itself when it comes back; imports become presences and promises.
//! * **Eventual send**: `E(&target).send(method, args)` returns a [`Promise`] for the answer
//!   at once. Through the kernel it is a `send` with a fresh result `p+N` followed by a
//!   `subscribe` to it; to a local object it runs later on this vat's executor.
//! * **Awaiting** happens on a tiny single-threaded executor owned by the vat. After every
//!   delivery the runtime polls it until no task can make progress; a task awaiting a kernel
//!   promise stays parked until a `notify` settles that promise. Awaiting an imported promise
//!   subscribes to it.
//! * **State** that must survive a restart goes in [`Baggage`], kept in the vat store; each
//!   delivery reports the store's changes as its checkpoint. **Durable objects** are
//!   instances of a durable kind ([`Vat::durable_kind`]), exported as `o+dK/I` with their
//!   state in the vat store: an incarnation that defines the kind again (same name, while it
//!   builds) answers messages to instances an earlier one made. A durable kind kit
//!   ([`Vat::durable_kind_kit`]) makes instances of several facets (`o+dK/I:F`) sharing one
//!   durable state. Everything else (ephemeral
//!   local objects other than the root, promises) belongs to one incarnation.
//! * **Exo features** (after Endo's `@endo/exo` and `@agoric/store`, spec §19.12):
//!   [`Guard`]s and [`MethodGuard`]s declare what a method accepts (`method_guarded` on
//!   every builder); a call that does not match is rejected before the method runs, with a
//!   stable text such as `In "increment" method of (Counter): arg 0: string "foo" - Must be
//!   a number`. [`Vat::class`] defines a class (many instances of one set of methods, each
//!   with its own state), [`Vat::class_kit`] a class kit (instances made of several facets
//!   sharing one state; a facet answers only its own methods). [`MapStore`] and
//!   [`SetStore`] hold scalar keys in key order, in memory or — [`Vat::durable_map_store`],
//!   [`Vat::durable_set_store`] — in the vat store; [`WeakMapStore`] and [`WeakSetStore`]
//!   are keyed by object references they recognise without holding, in memory or —
//!   [`Vat::durable_weak_map_store`], [`Vat::durable_weak_set_store`] — in the vat store. [`Ref::call`] invokes a method of a
//!   local object at once, as JavaScript code calls its own vat's objects.
//! * **Logging and exit**: [`Vat::test_log`] writes a line tagged `test` (plus the vat's
//!   name); [`Vat::exit`] and [`Vat::exit_with_failure`] ask the kernel to end the vat.
//!
//! What the runtime itself cannot handle — a message to an export it does not know (such as
//! an ephemeral object of an earlier incarnation), a malformed message — is a delivery
//! error, and the kernel terminates the vat. A failing build function fails the vat's start
//! instead: its launch fails, or, on a restart, the vat is left stopped. A panic in vat code
//! unwinds out of the runtime; the kernel catches it at the worker boundary.
//!
//! **Workers.** [`worker::serve`] runs any runtime in a child process of the kernel, speaking
//! the frame protocol of `docs/vat-protocol.md` on standard input and output.
//!
//! # Design notes
//!
//! * Methods take the [`Vat`] handle as an argument instead of capturing it, and every
//!   handle ([`Vat`], [`Ref`], [`Promise`], [`Baggage`]) points at the vat weakly: objects
//!   held by the runtime's export table never keep the runtime alive through a cycle.
//! * The executor's wakers queue task ids on an mpsc channel, so tasks resume in the order
//!   they were woken, deterministically, without `unsafe` or locks.
//! * A [`Runtime`] is not `Send` (vat state is `Rc`/`RefCell`): construct it on the thread
//!   that drives it — a registry of `fn() -> Box<dyn VatRuntime>` constructors allows that.
//! * The `o+N`/`p+N` counters are saved in the vat store (key `sdk.idCounters`), so a
//!   restarted vat never reuses a vref an earlier incarnation gave the kernel. Baggage lives
//!   under `baggage.<key>`, durable kinds and their instances' state under `sdk.kind.` and
//!   `sdk.durable.`; durable stores under `sdk.map.` and `sdk.set.`, durable weak stores
//!   under `sdk.wmap.` and `sdk.wset.` (keyed by the key's vref text, so a key is
//!   recognised without being held).
//!
//! * **Garbage** (spec §19.8): presences are held by vat code only, the runtime's import
//!   table is weak. On `bringOutYourDead` the runtime reports `dropImports` for imports no
//!   vat code holds strongly, `retireImports` for those that are not even the key of a live
//!   [`WeakMapStore`] or [`WeakSetStore`] any more, and `retireExports` for exports the
//!   kernel dropped that vat code no longer holds. The root, durable exports, and imports
//!   that ever went into (or came out of) the vat store are never reported.
//!
//! Not yet: virtual objects (`o+v…`) and syscalls outside a delivery (spec §19.11).
//!
//! # Example
//!
//! Two vats: `alice` (the bootstrap vat) asks `bob` for a greeting. Here bob is driven by
//! hand, as the kernel would drive it.
//!
//! ```
//! use ocap_vat::protocol::{Delivery, Message, Syscall, VRef, Value, VatHost, VatLog, VatStart};
//! use ocap_vat::{Baggage, E, Ref, Result, Runtime, Val, Vat, VatRuntime};
//!
//! fn alice(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
//!     Ok(vat
//!         .object("alice")
//!         .bootstrap(async |_vat, roots| {
//!             let reply = E(&roots.vat("bob")?).send("hello", ["alice"]).await?;
//!             Ok(format!("alice got: {reply}"))
//!         })
//!         .build())
//! }
//!
//! fn bob(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
//!     Ok(vat
//!         .object("bob")
//!         .method("hello", |vat, args| {
//!             let name = args.str(0)?;
//!             vat.test_log(format!("greeting {name}"));
//!             Ok(format!("hello, {name}, from bob"))
//!         })
//!         .build())
//! }
//!
//! /// A host that records what the vat asks for.
//! #[derive(Default)]
//! struct Host(Vec<Syscall>);
//! impl VatHost for Host {
//!     fn syscall(&mut self, syscall: Syscall) {
//!         self.0.push(syscall);
//!     }
//!     fn log(&mut self, _log: VatLog) {}
//! }
//!
//! let mut runtime = Runtime::new(bob);
//! let mut host = Host::default();
//! let start = VatStart { name: "bob".into(), parameters: Value::Null, state: Vec::new() };
//! assert_eq!(runtime.start(start, &mut host).error, None);
//!
//! // The kernel delivers hello("alice") to bob's root, with a result promise p-1.
//! let result: VRef = "p-1".parse()?;
//! let message = Message::new("hello", vec![Value::str("alice")], Vec::new(), Some(result));
//! let outcome = runtime.deliver(Delivery::Message { target: VRef::ROOT, message }, &mut host);
//! assert_eq!(outcome.error, None);
//!
//! // Bob resolved p-1 with his greeting.
//! let [Syscall::Resolve(resolutions)] = host.0.as_slice() else { panic!("{:?}", host.0) };
//! assert_eq!(resolutions[0].promise, result);
//! assert!(!resolutions[0].rejected);
//! assert_eq!(resolutions[0].data.decode()?, Value::str("hello, alice, from bob"));
//! # let _ = Runtime::boxed(alice);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Example: a guarded class and a store
//!
//! ```
//! use ocap_vat::{Guard, MapStore, Result, Val, Vat};
//!
//! fn accounts(vat: &Vat) -> Result<()> {
//!     let account = vat
//!         .class::<i64>("Account")
//!         .method("balance", |_vat, this, _args| this.get())
//!         .method_guarded("deposit", [Guard::Nat], |_vat, this, args| {
//!             let amount = args.int(0)?;
//!             this.update(|balance| {
//!                 *balance += amount;
//!                 *balance
//!             })
//!         })
//!         .build();
//!     let by_owner = MapStore::new("accounts");
//!     by_owner.init("alice", account.make(10))?;
//!     let alice = by_owner.get("alice")?;
//!     let alice = alice.as_object().ok_or("not an account")?;
//!     assert_eq!(alice.call("deposit", [5])?, Val::from(15));
//!     assert_eq!(
//!         alice.call("deposit", [-5]).unwrap_err().message(),
//!         r#"In "deposit" method of (Account): arg 0: number -5 - Must be a natural number"#
//!     );
//!     Ok(())
//! }
//! # use ocap_vat::VatRuntime;
//! # use ocap_vat::protocol::{Syscall, Value, VatHost, VatLog, VatStart};
//! # struct NoHost;
//! # impl VatHost for NoHost {
//! #     fn syscall(&mut self, _: Syscall) {}
//! #     fn log(&mut self, _: VatLog) {}
//! # }
//! # let mut runtime = ocap_vat::Runtime::new(|vat: &Vat, _: &Val, _: &ocap_vat::Baggage| {
//! #     accounts(vat)?;
//! #     Ok(vat.object("root").build())
//! # });
//! # let start = VatStart { name: "v".into(), parameters: Value::Null, state: Vec::new() };
//! # assert_eq!(runtime.start(start, &mut NoHost).error, None);
//! ```

#![deny(missing_docs)]

mod args;
mod baggage;
mod bootstrap;
mod class;
mod collection;
mod core;
mod durable;
mod error;
mod executor;
mod guard;
mod marshal;
mod object;
mod promise;
pub mod protocol;
mod reference;
mod runtime;
mod send;
mod store;
mod val;
mod vat;
mod weak;
pub mod worker;

pub use args::Args;
pub use baggage::Baggage;
pub use bootstrap::Bootstrap;
pub use class::{Class, ClassBuilder, ClassKit, FacetBuilder, Kit, KitBuilder, This};
pub use collection::{MapStore, SetStore};
pub use durable::{
    DurableKind, DurableKindKit, DurableState, KindBuilder, KindFacetBuilder, KindKitBuilder,
};
pub use error::{Error, Result};
pub use guard::{Guard, MethodGuard};
pub use object::{Object, ObjectBuilder, Reply};
pub use ocap_types::VatRuntime;
pub use promise::{Promise, PromiseFuture, Resolver};
pub use reference::Ref;
pub use runtime::Runtime;
pub use send::{E, Eventual, IntoArgs};
pub use val::Val;
pub use vat::{Logger, Vat};
pub use weak::{WeakMapStore, WeakSetStore};
