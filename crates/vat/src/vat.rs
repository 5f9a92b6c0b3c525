//! `Vat`: the handle vat code holds on its own vat (the "powers"): making objects and
//! promises, spawning tasks, baggage, logging, and exit.

use std::fmt;
use std::future::Future;
use std::rc::{Rc, Weak};

use ocap_types::{CapData, LogLevel, Syscall, VatLog};

use crate::baggage::Baggage;
use crate::class::{ClassBuilder, KitBuilder};
use crate::collection::{MapStore, SetStore};
use crate::core::Core;
use crate::durable::{KindBuilder, KindKitBuilder};
use crate::object::{Object, ObjectBuilder};
use crate::promise::{Promise, Resolver};
use crate::reference::{LocalObject, Ref, Target};
use crate::val::Val;
use crate::weak::{WeakMapStore, WeakSetStore};

/// The tag that marks a log line as a test log (spec §21.0).
const TEST_TAG: &str = "test";

/// A handle on the running vat, passed to the build function and to every method.
///
/// Cheap to clone. It does not keep the vat alive: once the runtime is gone, sends made
/// through it are rejected and logs are dropped.
#[derive(Clone)]
pub struct Vat {
    core: Weak<Core>,
}

impl Vat {
    pub(crate) fn new(core: Weak<Core>) -> Self {
        Vat { core }
    }

    /// The vat's name in its subcluster.
    pub fn name(&self) -> String {
        self.core
            .upgrade()
            .map(|core| core.state.borrow().name.clone())
            .unwrap_or_default()
    }

    /// Starts building a local object whose interface name is `iface`.
    pub fn object(&self, iface: &str) -> ObjectBuilder {
        ObjectBuilder::new(self.clone(), iface)
    }

    /// Starts defining the durable kind `name` (see [`KindBuilder`]): objects whose state
    /// is kept in the vat store and whose refs survive restarts.
    pub fn durable_kind(&self, name: &str) -> KindBuilder {
        KindBuilder::new(self.core.clone(), name)
    }

    /// Starts defining the durable kind kit `name` (see [`KindKitBuilder`]): durable
    /// objects made of several facets that share one durable state.
    pub fn durable_kind_kit(&self, name: &str) -> KindKitBuilder {
        KindKitBuilder::new(self.core.clone(), name)
    }

    /// Starts defining the class `name` (see [`ClassBuilder`]): many objects with the same
    /// methods, each with its own state of type `S`.
    pub fn class<S: 'static>(&self, name: &str) -> ClassBuilder<S> {
        ClassBuilder::new(self.clone(), name)
    }

    /// Starts defining the class kit `name` (see [`KitBuilder`]): instances made of several
    /// facets that share one state of type `S`.
    pub fn class_kit<S: 'static>(&self, name: &str) -> KitBuilder<S> {
        KitBuilder::new(self.clone(), name)
    }

    /// The map store `name` kept in the vat store (see [`MapStore`]): what an earlier
    /// incarnation put in the store of that name is still there.
    pub fn durable_map_store(&self, name: &str) -> MapStore {
        MapStore::durable(self.core.clone(), name)
    }

    /// The set store `name` kept in the vat store (see [`SetStore`]).
    pub fn durable_set_store(&self, name: &str) -> SetStore {
        SetStore::durable(self.core.clone(), name)
    }

    /// The weak map store `name` kept in the vat store (see [`WeakMapStore`]): its keys are
    /// imports, the root or durable objects, recognised but not held; its entries survive
    /// restarts and upgrades, and an import's entry goes when the kernel retires it.
    pub fn durable_weak_map_store(&self, name: &str) -> WeakMapStore {
        WeakMapStore::durable(self.core.clone(), name)
    }

    /// The weak set store `name` kept in the vat store (see [`WeakSetStore`] and
    /// [`Vat::durable_weak_map_store`]).
    pub fn durable_weak_set_store(&self, name: &str) -> WeakSetStore {
        WeakSetStore::durable(self.core.clone(), name)
    }

    /// Makes a local object from any [`Object`] implementation.
    pub fn make(&self, iface: &str, object: impl Object) -> Ref {
        match self.core.upgrade() {
            Some(core) => core.make_object(iface, Box::new(object)),
            None => Ref(Target::Local(Rc::new(LocalObject {
                local_id: 0,
                iface: iface.to_owned(),
                behavior: Box::new(object),
                core: Weak::new(),
            }))),
        }
    }

    /// A pending local promise and the resolver that settles it. Passed to another vat, the
    /// promise is exported as `p+N` and resolved through the kernel when it settles.
    pub fn promise_kit(&self) -> (Promise, Resolver) {
        let promise = match self.core.upgrade() {
            Some(core) => core.local_promise(),
            None => Promise::new(Weak::new(), None, crate::promise::Decider::Vat, false),
        };
        (promise.clone(), Resolver::new(promise))
    }

    /// Runs `future` on the vat's executor, after the current task yields. It may outlive
    /// the delivery that spawned it, parked until a later delivery wakes it.
    pub fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        if let Some(core) = self.core.upgrade() {
            core.executor.spawn(future);
        }
    }

    /// The vat's durable state.
    pub fn baggage(&self) -> Baggage {
        Baggage::new(self.core.clone())
    }

    /// A logger with no tags (console output).
    pub fn logger(&self) -> Logger {
        Logger {
            core: self.core.clone(),
            tags: Vec::new(),
        }
    }

    /// The test logger: its lines carry the tags `test` and the vat's name.
    pub fn test_logger(&self) -> Logger {
        self.logger().with_tag(TEST_TAG).with_tag(&self.name())
    }

    /// Emits `text` through the test logger.
    pub fn test_log(&self, text: impl Into<String>) {
        self.test_logger().info(text);
    }

    /// Asks the kernel to end this vat cleanly after the current delivery, with `info` as
    /// the reason. The delivery itself carries on.
    pub fn exit(&self, info: impl Into<Val>) {
        self.request_exit(false, info.into());
    }

    /// Asks the kernel to end this vat as failed after the current delivery (its effects are
    /// discarded), with `info` as the reason.
    pub fn exit_with_failure(&self, info: impl Into<Val>) {
        self.request_exit(true, info.into());
    }

    fn request_exit(&self, failure: bool, info: Val) {
        let Some(core) = self.core.upgrade() else {
            return;
        };
        let info = {
            let mut state = core.state.borrow_mut();
            state
                .serialize(&info)
                .unwrap_or_else(|error| CapData::error(error.message()))
        };
        core.push_syscall(Syscall::Exit { failure, info });
    }
}

impl fmt::Debug for Vat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vat").field("name", &self.name()).finish()
    }
}

/// Writes log lines with a fixed set of tags; the kernel adds the vat id.
#[derive(Clone)]
pub struct Logger {
    core: Weak<Core>,
    tags: Vec<String>,
}

impl Logger {
    /// The same logger with `tag` added.
    pub fn with_tag(mut self, tag: &str) -> Logger {
        self.tags.push(tag.to_owned());
        self
    }

    /// The tags every line carries.
    pub fn tags(&self) -> &[String] {
        &self.tags
    }

    /// Logs debugging detail.
    pub fn debug(&self, text: impl Into<String>) {
        self.emit(LogLevel::Debug, text.into());
    }

    /// Logs normal operation.
    pub fn info(&self, text: impl Into<String>) {
        self.emit(LogLevel::Info, text.into());
    }

    /// Logs something odd.
    pub fn warn(&self, text: impl Into<String>) {
        self.emit(LogLevel::Warn, text.into());
    }

    /// Logs a failure.
    pub fn error(&self, text: impl Into<String>) {
        self.emit(LogLevel::Error, text.into());
    }

    fn emit(&self, level: LogLevel, message: String) {
        if let Some(core) = self.core.upgrade() {
            core.push_log(VatLog {
                level,
                tags: self.tags.clone(),
                message,
            });
        }
    }
}

impl fmt::Debug for Logger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Logger").field("tags", &self.tags).finish()
    }
}
