//! `Runtime`: the SDK's implementation of `VatRuntime`, the only thing the kernel (or a worker
//! process) talks to. It builds the vat at `start`, turns each delivery into tasks on the
//! executor, runs them until none can make progress, and reports the vat-store changes.
//!
//! Invariant: vat code only ever sees SDK types; kernel-protocol values are converted here
//! and in the marshaller.

#[cfg(test)]
mod tests;

use std::fmt;
use std::rc::Rc;

use ocap_types::{
    Delivery, DeliveryOutcome, LogLevel, Resolution, Syscall, VRef, VatHost, VatLog, VatMessage,
    VatRuntime, VatStart,
};

use crate::args::Args;
use crate::baggage::Baggage;
use crate::core::{Core, Out};
use crate::error::{Error, Result};
use crate::promise::Decider;
use crate::reference::Ref;
use crate::store::VatStore;
use crate::val::{Val, from_plain_value};
use crate::vat::Vat;

/// The tag of the SDK's own log lines.
const SDK_TAG: &str = "sdk";

type BuildFn = Box<dyn FnOnce(&Vat, &Val, &Baggage) -> Result<Ref>>;

/// Runs one incarnation of a vat: give it the vat's build function, then hand it to the
/// kernel as a `VatRuntime`.
///
/// The build function gets the vat handle, the vat's parameters (a record, or `Null`) and
/// its baggage, and returns the root object, which the kernel knows as `o+0`. An `Err` (or
/// a non-local root) makes `start` fail, and with it the vat's launch.
pub struct Runtime {
    build: Option<BuildFn>,
    core: Option<Rc<Core>>,
}

impl Runtime {
    /// A runtime that will build the vat with `build`.
    pub fn new(build: impl FnOnce(&Vat, &Val, &Baggage) -> Result<Ref> + 'static) -> Self {
        Runtime {
            build: Some(Box::new(build)),
            core: None,
        }
    }

    /// [`Runtime::new`], boxed as the kernel wants it.
    pub fn boxed(
        build: impl FnOnce(&Vat, &Val, &Baggage) -> Result<Ref> + 'static,
    ) -> Box<dyn VatRuntime> {
        Box::new(Runtime::new(build))
    }

    /// Tasks still waiting (on promises that have not settled).
    #[cfg(test)]
    fn n_parked(&self) -> usize {
        self.core
            .as_ref()
            .map_or(0, |core| core.executor.n_parked())
    }
}

impl VatRuntime for Runtime {
    fn start(&mut self, start: VatStart, host: &mut dyn VatHost) -> DeliveryOutcome {
        let Some(build) = self.build.take() else {
            return DeliveryOutcome::failed("start called twice: the vat's code is already loaded");
        };
        let core = match Core::new(start.name, VatStore::new(start.state)) {
            Ok(core) => core,
            Err(error) => return DeliveryOutcome::failed(error),
        };
        let res = from_plain_value(start.parameters)
            .map_err(|error| format!("vat parameters: {error}"))
            .and_then(|parameters| {
                let vat = Vat::new(core.me.clone());
                let baggage = Baggage::new(core.me.clone());
                build(&vat, &parameters, &baggage)
                    .map_err(|error| format!("build function failed: {error}"))
            })
            .and_then(|root| core.set_root(&root));
        if res.is_ok() {
            self.core = Some(Rc::clone(&core));
        }
        finish(&core, host, res)
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        let Some(core) = self.core.clone() else {
            return DeliveryOutcome::failed("cannot deliver before vat is loaded");
        };
        let res = match delivery {
            Delivery::Message { target, message } => dispatch(&core, target, message),
            Delivery::Notify(resolutions) => notify(&core, resolutions),
            Delivery::RetireExports(vrefs) => {
                core.retire_exports(&vrefs);
                Ok(())
            }
            Delivery::RetireImports(vrefs) => {
                core.retire_imports(&vrefs);
                Ok(())
            }
            // Exports stay alive until a reap finds vat code no longer holds them either.
            Delivery::DropExports(vrefs) => {
                core.drop_exports(&vrefs);
                Ok(())
            }
            Delivery::BringOutYourDead => {
                bring_out_your_dead(&core);
                Ok(())
            }
        };
        finish(&core, host, res)
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        // Parked tasks may hold handles into the vat; drop them with it.
        if let Some(core) = &self.core {
            core.executor.clear();
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runtime")
            .field("loaded", &self.core.is_some())
            .finish()
    }
}

/// Runs the vat until it stalls and reports the outcome. A failed delivery runs nothing
/// more: the kernel is about to terminate the vat.
fn finish(
    core: &Rc<Core>,
    host: &mut dyn VatHost,
    res: std::result::Result<(), String>,
) -> DeliveryOutcome {
    if let Err(error) = res {
        flush(core, host);
        return DeliveryOutcome::failed(error);
    }
    core.executor.run_until_stalled(|| flush(core, host));
    flush(core, host);
    core.save_counters();
    DeliveryOutcome {
        checkpoint: core.state.borrow_mut().store.take_checkpoint(),
        error: None,
    }
}

fn flush(core: &Core, host: &mut dyn VatHost) {
    for out in core.take_outbox() {
        match out {
            Out::Syscall(syscall) => host.syscall(syscall),
            Out::Log(log) => host.log(log),
        }
    }
}

/// Reports the vat's garbage through syscalls (spec §10.2): drops first, then retirements.
fn bring_out_your_dead(core: &Rc<Core>) {
    // Tasks that can run may still let go of references: let them first.
    core.executor.run_until_stalled(|| {});
    let garbage = core.collect_garbage();
    if !garbage.drop_imports.is_empty() {
        core.push_syscall(Syscall::DropImports(garbage.drop_imports));
    }
    if !garbage.retire_imports.is_empty() {
        core.push_syscall(Syscall::RetireImports(garbage.retire_imports));
    }
    if !garbage.retire_exports.is_empty() {
        core.push_syscall(Syscall::RetireExports(garbage.retire_exports));
    }
}

/// Starts the method call as a task. Unknown targets and malformed messages are delivery
/// errors (spec §12.8); everything the method does is not.
fn dispatch(core: &Rc<Core>, target: VRef, message: VatMessage) -> std::result::Result<(), String> {
    let Some(object) = core.exported_object(target) else {
        sdk_warn(core, format!("message to unknown export {target}"));
        return Err("message to an object this vat does not remember exporting".to_owned());
    };
    let (method, args) = message
        .method_and_args()
        .map_err(|error| format!("malformed message: {error}"))?;
    if let Some(result) = message.result
        && !result.is_promise()
    {
        return Err(format!("{method}: the result is not a promise"));
    }
    let args = {
        let mut state = core.state.borrow_mut();
        args.into_iter()
            .map(|arg| state.deserialize_value(arg, &message.methargs.slots))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|error| format!("{method}: {error}"))?
    };
    let result = message.result;
    let weak_core = core.me.clone();
    core.executor.spawn(async move {
        let vat = Vat::new(weak_core.clone());
        let mut res = object
            .behavior
            .invoke(&vat, &method, Args::new(&method, args))
            .await;
        // A promise answer is followed: the result settles when it does (spec §19.4).
        while let Ok(Val::Promise(promise)) = res {
            res = promise.await;
        }
        let Some(core) = weak_core.upgrade() else {
            return;
        };
        match (result, res) {
            (Some(vpid), res) => core.resolve_vpid(vpid, res),
            (None, Err(error)) => sdk_warn(
                &core,
                format!("{method} failed with nobody to tell: {error}"),
            ),
            (None, Ok(_)) => {}
        }
    });
    Ok(())
}

/// Settles the promises the kernel reports. Unknown and settled ones are ignored; a
/// resolution may mention a promise resolved later in the same list, so unknown ones get a
/// second look once the others are in.
fn notify(core: &Rc<Core>, resolutions: Vec<Resolution<VRef>>) -> std::result::Result<(), String> {
    // The kernel retires every promise of a notify from this vat's c-list: forget their
    // vrefs once the values are in.
    let retired: Vec<VRef> = resolutions.iter().map(|r| r.promise).collect();
    let settled = settle_notified(core, resolutions);
    let mut state = core.state.borrow_mut();
    for vref in retired {
        state.retire_promise_vref(vref);
    }
    settled
}

fn settle_notified(
    core: &Rc<Core>,
    resolutions: Vec<Resolution<VRef>>,
) -> std::result::Result<(), String> {
    let mut pending = resolutions;
    loop {
        let mut deferred = Vec::new();
        let mut progressed = false;
        for resolution in pending {
            let Some(promise) = core.live_promise(resolution.promise) else {
                deferred.push(resolution);
                continue;
            };
            let ignored = {
                let state = promise.0.state.borrow();
                state.settlement.is_some() || state.decider == Decider::Vat
            };
            if ignored {
                continue;
            }
            let value = core
                .state
                .borrow_mut()
                .deserialize(&resolution.data)
                .map_err(|error| format!("notify: {error}"))?;
            promise.settle(if resolution.rejected {
                Err(Error::from_reason(value))
            } else {
                Ok(value)
            });
            progressed = true;
        }
        if !progressed || deferred.is_empty() {
            return Ok(());
        }
        pending = deferred;
    }
}

fn sdk_warn(core: &Core, message: String) {
    core.push_log(VatLog {
        level: LogLevel::Warn,
        tags: vec![SDK_TAG.to_owned()],
        message,
    });
}
