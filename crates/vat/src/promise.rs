//! Promises: local ones (made with [`crate::Vat::promise_kit`], or the answer of a send to a
//! local object), results of sends through the kernel (`p+N`), and imports (`p-N`). Awaiting
//! one parks the task until it settles; awaiting an import subscribes to it first.
//!
//! Invariant: a settled promise never holds a promise as its value (settling with a promise
//! follows it), and a promise settles at most once.

use std::cell::RefCell;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::task::{Context, Poll, Waker};

use ocap_types::{Syscall, VRef};

use crate::core::Core;
use crate::error::{Error, Result};
use crate::val::Val;

/// A promise for a value. Cheap to clone; equality is identity.
///
/// Await it (`promise.await`, or `(&promise).await` to keep it) to get `Ok(value)` or the
/// rejection as `Err`. Pass it inside a [`Val`] to hand it to another vat; send it messages
/// with [`crate::E`] (they are delivered to whatever it resolves to).
#[derive(Clone)]
pub struct Promise(pub(crate) Rc<PromiseCell>);

pub(crate) struct PromiseCell {
    pub(crate) core: Weak<Core>,
    pub(crate) state: RefCell<PromiseState>,
}

/// Who settles the promise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decider {
    /// This vat: a local promise; once exported as `p+N`, settling it emits `resolve`.
    Vat,
    /// Someone else; the kernel tells us with `notify`.
    Kernel,
}

pub(crate) struct PromiseState {
    /// Set once the kernel knows the promise.
    pub(crate) vref: Option<VRef>,
    pub(crate) decider: Decider,
    pub(crate) settlement: Option<Result<Val>>,
    /// Settled with another promise, which it now follows; later settles are ignored.
    following: bool,
    /// A `subscribe` was issued (or is implied, for the result of our own send).
    pub(crate) subscribed: bool,
    wakers: Vec<Waker>,
}

impl Promise {
    /// A promise already fulfilled with `value`; given a promise, that promise itself.
    pub fn resolved(value: impl Into<Val>) -> Promise {
        match value.into() {
            Val::Promise(promise) => promise,
            value => {
                let promise = Promise::new(Weak::new(), None, Decider::Vat, false);
                promise.complete(Ok(value));
                promise
            }
        }
    }

    /// A promise already rejected with `error`.
    pub fn rejected(error: impl Into<Error>) -> Promise {
        let promise = Promise::new(Weak::new(), None, Decider::Vat, false);
        promise.complete(Err(error.into()));
        promise
    }

    /// True once fulfilled or rejected.
    pub fn is_settled(&self) -> bool {
        self.0.state.borrow().settlement.is_some()
    }

    /// The outcome, if settled, without waiting.
    pub fn peek(&self) -> Option<Result<Val>> {
        self.0.state.borrow().settlement.clone()
    }

    pub(crate) fn new(
        core: Weak<Core>,
        vref: Option<VRef>,
        decider: Decider,
        subscribed: bool,
    ) -> Promise {
        Promise(Rc::new(PromiseCell {
            core,
            state: RefCell::new(PromiseState {
                vref,
                decider,
                settlement: None,
                following: false,
                subscribed,
                wakers: Vec::new(),
            }),
        }))
    }

    /// Settles the promise, unless it is settled or following already. Settling with a
    /// promise follows that promise instead (no promise is ever a promise's value).
    pub(crate) fn settle(&self, res: Result<Val>) {
        {
            let mut state = self.0.state.borrow_mut();
            if state.settlement.is_some() || state.following {
                return;
            }
            if let Ok(Val::Promise(_)) = &res {
                state.following = true;
            }
        }
        match res {
            Ok(Val::Promise(inner)) => self.follow(inner),
            res => self.complete(res),
        }
    }

    fn follow(&self, inner: Promise) {
        if inner == *self {
            self.complete(Err(Error::new("promise resolved to itself")));
            return;
        }
        if let Some(res) = inner.peek() {
            self.complete(res);
            return;
        }
        let Some(core) = self.0.core.upgrade() else {
            return;
        };
        let me = self.clone();
        core.executor.spawn(async move {
            let res = inner.await;
            me.complete(res);
        });
    }

    fn complete(&self, res: Result<Val>) {
        let (wakers, exported) = {
            let mut state = self.0.state.borrow_mut();
            if state.settlement.is_some() {
                return;
            }
            state.settlement = Some(res);
            state.following = false;
            let exported = state.decider == Decider::Vat && state.vref.is_some();
            (std::mem::take(&mut state.wakers), exported)
        };
        for waker in wakers {
            waker.wake();
        }
        if exported && let Some(core) = self.0.core.upgrade() {
            core.report_settled(self.clone());
        }
    }

    pub(crate) fn downgrade(&self) -> Weak<PromiseCell> {
        Rc::downgrade(&self.0)
    }
}

impl PartialEq for Promise {
    fn eq(&self, other: &Promise) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Display for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[promise]")
    }
}

impl fmt::Debug for Promise {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.0.state.borrow();
        let mut out = f.debug_struct("Promise");
        if let Some(vref) = state.vref {
            out.field("vref", &format_args!("{vref}"));
        }
        out.field("decider", &state.decider)
            .field("settlement", &state.settlement)
            .finish()
    }
}

/// The right to settle one local promise (from [`crate::Vat::promise_kit`]). Only the first
/// `resolve` or `reject` counts.
#[derive(Debug, Clone)]
pub struct Resolver {
    promise: Promise,
}

impl Resolver {
    pub(crate) fn new(promise: Promise) -> Self {
        Resolver { promise }
    }

    /// Fulfils the promise with `value`; with a promise, follows it instead.
    pub fn resolve(&self, value: impl Into<Val>) {
        self.promise.settle(Ok(value.into()));
    }

    /// Rejects the promise with `error`.
    pub fn reject(&self, error: impl Into<Error>) {
        self.promise.settle(Err(error.into()));
    }

    /// Settles the promise with `res`.
    pub fn settle(&self, res: Result<Val>) {
        self.promise.settle(res);
    }
}

/// Waits for a [`Promise`] to settle.
#[derive(Debug)]
pub struct PromiseFuture {
    promise: Promise,
}

impl Future for PromiseFuture {
    type Output = Result<Val>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let subscribe = {
            let mut state = self.promise.0.state.borrow_mut();
            if let Some(res) = &state.settlement {
                return Poll::Ready(res.clone());
            }
            if !state.wakers.iter().any(|w| w.will_wake(cx.waker())) {
                state.wakers.push(cx.waker().clone());
            }
            match state.vref {
                Some(vref) if state.decider == Decider::Kernel && !state.subscribed => {
                    state.subscribed = true;
                    Some(vref)
                }
                _ => None,
            }
        };
        if let Some(vref) = subscribe
            && let Some(core) = self.promise.0.core.upgrade()
        {
            core.push_syscall(Syscall::Subscribe(vref));
        }
        Poll::Pending
    }
}

impl IntoFuture for Promise {
    type Output = Result<Val>;
    type IntoFuture = PromiseFuture;

    fn into_future(self) -> PromiseFuture {
        PromiseFuture { promise: self }
    }
}

impl IntoFuture for &Promise {
    type Output = Result<Val>;
    type IntoFuture = PromiseFuture;

    fn into_future(self) -> PromiseFuture {
        PromiseFuture {
            promise: self.clone(),
        }
    }
}
