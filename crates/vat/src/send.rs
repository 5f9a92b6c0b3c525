//! Eventual send: `E(&target).send(method, args)` queues a message and returns a promise for
//! the answer. To a presence or a kernel promise it is a `send` syscall; to a local object it
//! runs on this vat's executor, never synchronously; to a local promise it waits for the
//! promise and forwards.

use std::fmt;

use crate::args::Args;
use crate::error::Error;
use crate::promise::{Decider, Promise};
use crate::reference::{Ref, Target};
use crate::val::Val;
use crate::vat::Vat;

/// Eventual send, after JavaScript's `E(target).method(args)`.
///
/// ```
/// use ocap_vat::{E, Ref, Result, Val};
///
/// async fn greet(bob: &Ref) -> Result<Val> {
///     E(bob).send("hello", ["alice"]).await
/// }
/// ```
pub struct E<'a, T: ?Sized>(pub &'a T);

impl<T: Eventual + ?Sized> E<'_, T> {
    /// Sends `method(args)` and returns a promise for the answer. Arguments are anything
    /// [`IntoArgs`]: `()`, an array, a `Vec`, a tuple of up to four values, or [`Args`].
    pub fn send(&self, method: &str, args: impl IntoArgs) -> Promise {
        self.0.eventual_send(method, args.into_args())
    }
}

impl<T: ?Sized> fmt::Debug for E<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("E(..)")
    }
}

/// Something messages can be sent to: an object, a promise, or a value holding one.
pub trait Eventual {
    /// Queues `method(args)` for the target; the promise settles with the answer.
    fn eventual_send(&self, method: &str, args: Vec<Val>) -> Promise;
}

impl Eventual for Ref {
    fn eventual_send(&self, method: &str, args: Vec<Val>) -> Promise {
        match &self.0 {
            Target::Remote(presence) => match presence.core.upgrade() {
                Some(core) => core.send_to_vref(presence.vref, method, args),
                None => Promise::rejected(vat_gone()),
            },
            Target::Local(object) => {
                let Some(core) = object.core.upgrade() else {
                    return Promise::rejected(vat_gone());
                };
                let promise = core.local_promise();
                let answer = promise.clone();
                let object = object.clone();
                let vat = Vat::new(core.me.clone());
                let method = method.to_owned();
                core.executor.spawn(async move {
                    let res = object
                        .behavior
                        .invoke(&vat, &method, Args::new(&method, args))
                        .await;
                    answer.settle(res);
                });
                promise
            }
        }
    }
}

impl Eventual for Promise {
    fn eventual_send(&self, method: &str, args: Vec<Val>) -> Promise {
        let (settlement, decider, vref) = {
            let state = self.0.state.borrow();
            (state.settlement.clone(), state.decider, state.vref)
        };
        match (settlement, decider, vref) {
            (Some(Ok(value)), _, _) => value.eventual_send(method, args),
            (Some(Err(error)), _, _) => Promise::rejected(error),
            // Pipelining: the kernel queues the message on the promise and forwards it
            // when the promise's decider resolves it.
            (None, Decider::Kernel, Some(vpid)) => match self.0.core.upgrade() {
                Some(core) => core.send_to_vref(vpid, method, args),
                None => Promise::rejected(vat_gone()),
            },
            (None, _, _) => {
                let Some(core) = self.0.core.upgrade() else {
                    return Promise::rejected(vat_gone());
                };
                let promise = core.local_promise();
                let answer = promise.clone();
                let target = self.clone();
                let method = method.to_owned();
                core.executor.spawn(async move {
                    match target.await {
                        Ok(value) => {
                            answer.settle(Ok(Val::Promise(value.eventual_send(&method, args))))
                        }
                        Err(error) => answer.settle(Err(error)),
                    }
                });
                promise
            }
        }
    }
}

impl Eventual for Val {
    fn eventual_send(&self, method: &str, args: Vec<Val>) -> Promise {
        match self {
            Val::Ref(reference) => reference.eventual_send(method, args),
            Val::Promise(promise) => promise.eventual_send(method, args),
            other => Promise::rejected(Error::new(format!(
                "cannot send {method:?} to {}",
                other.a_kind()
            ))),
        }
    }
}

fn vat_gone() -> Error {
    Error::new("the vat is gone")
}

/// The arguments of a send.
pub trait IntoArgs {
    /// The argument list.
    fn into_args(self) -> Vec<Val>;
}

impl IntoArgs for () {
    fn into_args(self) -> Vec<Val> {
        Vec::new()
    }
}

impl IntoArgs for Args {
    fn into_args(self) -> Vec<Val> {
        self.into_vec()
    }
}

impl<T: Into<Val>> IntoArgs for Vec<T> {
    fn into_args(self) -> Vec<Val> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<T: Into<Val>, const N: usize> IntoArgs for [T; N] {
    fn into_args(self) -> Vec<Val> {
        self.into_iter().map(Into::into).collect()
    }
}

impl<T: Into<Val> + Clone> IntoArgs for &[T] {
    fn into_args(self) -> Vec<Val> {
        self.iter().cloned().map(Into::into).collect()
    }
}

macro_rules! tuple_args {
    ($($name:ident),+) => {
        impl<$($name: Into<Val>),+> IntoArgs for ($($name,)+) {
            #[allow(non_snake_case, reason = "the type parameters name the fields")]
            fn into_args(self) -> Vec<Val> {
                let ($($name,)+) = self;
                vec![$($name.into()),+]
            }
        }
    };
}

tuple_args!(A);
tuple_args!(A, B);
tuple_args!(A, B, C);
tuple_args!(A, B, C, D);
