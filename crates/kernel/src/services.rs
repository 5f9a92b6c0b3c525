//! Kernel services (spec §8.5, §15.2): objects the host implements and registers on the
//! kernel, addressed by krefs the kernel owns (`Owner::Kernel`).
//!
//! A service's kref is durable (pinned, and kept by name in the store, so the same name gets
//! the same kref after a restart); its implementation lives in memory on the kernel thread
//! and must be registered again after every restart. Until it is, messages to it go splat
//! as unreachable.
//!
//! Invariant: a service runs synchronously, inside the crank that delivers the message to
//! it, and its answer settles the result promise in that same crank (with the kernel as the
//! decider). The spec lets the call finish outside the crank because the reference kernel's
//! services are asynchronous and may wait for the crank boundary themselves (the kernel
//! facet); here a service is a plain host function that cannot call back into the kernel,
//! so running it in the crank cannot deadlock, and it keeps every effect of the delivery in
//! one atomic crank. A service must therefore not call the [`crate::Kernel`] API: that call
//! would wait for the crank it is running in.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use ocap_queue::{Crank, CrankResult, KernelResolution, KernelState, Mode, QueueError};
use ocap_store::{KernelStore, Owner};
use ocap_types::{CapData, EndpointId, ErrorCode, KObjectId, KRef, Message, Value};

use crate::error::KernelError;

/// One message to a kernel service: the method, its arguments, and the krefs the arguments'
/// slots stand for.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceCall {
    method: String,
    args: Vec<Value>,
    slots: Vec<KRef>,
}

impl ServiceCall {
    /// A call (for hosts that test their services directly).
    pub fn new(method: &str, args: Vec<Value>, slots: Vec<KRef>) -> Self {
        ServiceCall {
            method: method.to_owned(),
            args,
            slots,
        }
    }

    /// The method's name.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The arguments; a reference is a [`Value::Slot`] indexing [`ServiceCall::slots`].
    pub fn args(&self) -> &[Value] {
        &self.args
    }

    /// The krefs the arguments refer to.
    pub fn slots(&self) -> &[KRef] {
        &self.slots
    }

    /// The kref that argument `index` refers to, if it is a reference.
    pub fn arg_ref(&self, index: usize) -> Option<KRef> {
        match self.args.get(index)? {
            Value::Slot { index, .. } => self.slots.get(usize::try_from(*index).ok()?).copied(),
            _ => None,
        }
    }

    /// Argument `index` if it is a string.
    pub fn arg_str(&self, index: usize) -> Option<&str> {
        match self.args.get(index)? {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }
}

/// A host-provided object living in the kernel (spec §15.2).
///
/// The answer is capdata over krefs: plain data (`CapData::data`), or references the
/// kernel already knows. An `Err(message)` rejects the caller's result with
/// `[KERNEL:DELIVERY_FAILED] <message>`; so does a panic. A service runs on the kernel
/// thread inside a crank and must not call the kernel API (see the module docs).
pub trait KernelService: Send + 'static {
    /// Handles one message.
    ///
    /// # Errors
    /// A message for the caller (an unknown method, bad arguments, a failure).
    fn invoke(&mut self, call: &ServiceCall) -> Result<CapData<KRef>, String>;
}

impl<F> KernelService for F
where
    F: FnMut(&ServiceCall) -> Result<CapData<KRef>, String> + Send + 'static,
{
    fn invoke(&mut self, call: &ServiceCall) -> Result<CapData<KRef>, String> {
        self(call)
    }
}

struct Registered {
    name: String,
    service: Box<dyn KernelService>,
}

/// The services registered in this kernel run, by name and by kref.
#[derive(Default)]
pub(crate) struct Services {
    by_name: BTreeMap<String, KObjectId>,
    by_object: BTreeMap<KObjectId, Registered>,
}

impl std::fmt::Debug for Services {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.by_name.iter()).finish()
    }
}

impl Services {
    /// The kref of the registered service `name`.
    pub(crate) fn get(&self, name: &str) -> Option<KObjectId> {
        self.by_name.get(name).copied()
    }

    /// Registers `service` as `name` (spec §15.2): the kref persisted for the name is
    /// reused, else a pinned kernel object is made and persisted, in a transaction of its own.
    pub(crate) fn register(
        &mut self,
        state: &mut KernelState,
        name: &str,
        service: Box<dyn KernelService>,
    ) -> Result<KObjectId, KernelError> {
        if self.by_name.contains_key(name) {
            return Err(KernelError::ServiceAlreadyRegistered {
                name: name.to_owned(),
            });
        }
        let (object, _) = state.transaction(|crank| -> Result<KObjectId, KernelError> {
            let store = crank.store_mut();
            if let Some(object) = store.kernel_service(name)?
                && store.object(object)?.is_some()
            {
                return Ok(object);
            }
            let object = store.create_object(Owner::Kernel)?;
            store.pin_object(object)?;
            store.put_kernel_service(name, object)?;
            Ok(object)
        })?;
        tracing::info!(%name, %object, "kernel service registered");
        self.by_name.insert(name.to_owned(), object);
        self.by_object.insert(
            object,
            Registered {
                name: name.to_owned(),
                service,
            },
        );
        Ok(object)
    }

    /// Forgets the service `name`, unpins its kref and deletes the persisted name. Unknown
    /// names are ignored. In a transaction of its own.
    pub(crate) fn unregister(
        &mut self,
        state: &mut KernelState,
        name: &str,
    ) -> Result<(), KernelError> {
        state.transaction(|crank| -> Result<(), KernelError> {
            let store = crank.store_mut();
            let Some(object) = store.kernel_service(name)? else {
                return Ok(());
            };
            store.unpin_object(object)?;
            store.delete_kernel_service(name)?;
            Ok(())
        })?;
        if let Some(object) = self.by_name.remove(name) {
            self.by_object.remove(&object);
        }
        Ok(())
    }

    /// Delivers a send that routed to the kernel-owned `object` (spec §8.5); `None` when no
    /// implementation is registered for it (the caller splats it as unreachable).
    pub(crate) fn deliver(
        &mut self,
        crank: &mut Crank<'_>,
        object: KObjectId,
        target: KRef,
        message: &Message<KRef>,
        sender: Option<EndpointId>,
    ) -> Result<Option<CrankResult>, QueueError> {
        let Some(registered) = self.by_object.get_mut(&object) else {
            return Ok(None);
        };
        let store = crank.store_mut();
        let result = match message.result {
            Some(KRef::Promise(result)) => {
                let unresolved = store.promise(result)?.is_some_and(|r| r.is_unresolved());
                store.set_decider(result, Some(Owner::Kernel))?;
                unresolved.then_some(result)
            }
            _ => None,
        };
        let answer = match message.method_and_args() {
            Ok((method, args)) => {
                let call = ServiceCall::new(&method, args, message.methargs.slots.clone());
                let _span =
                    tracing::debug_span!("service", name = %registered.name, %method).entered();
                invoke(registered.service.as_mut(), &call)
            }
            Err(error) => Err(format!("malformed message: {error}")),
        };
        let answer = answer.and_then(|value| check_slots(crank.store(), value));
        match (result, answer) {
            (Some(result), answer) => {
                let (rejected, value) = match answer {
                    Ok(value) => (false, value),
                    Err(error) => (true, ErrorCode::DeliveryFailed.capdata(&error)),
                };
                crank.resolve_promises(
                    Some(Owner::Kernel),
                    vec![KernelResolution {
                        promise: result,
                        rejected,
                        value,
                    }],
                    Mode::Immediate,
                )?;
            }
            (None, Err(error)) => {
                tracing::warn!(name = %registered.name, %error, "Error in kernel service method:");
            }
            (None, Ok(_)) => {}
        }
        crank.release_send_holds(target, message, sender)?;
        Ok(Some(CrankResult::Delivered))
    }
}

/// Calls the service, turning a panic into a failure.
fn invoke(service: &mut dyn KernelService, call: &ServiceCall) -> Result<CapData<KRef>, String> {
    match std::panic::catch_unwind(AssertUnwindSafe(|| service.invoke(call))) {
        Ok(answer) => answer,
        Err(panic) => {
            let message = ocap_types::panic_message(&*panic);
            Err(format!("kernel service panicked: {message}"))
        }
    }
}

/// A service may only answer with a value receivers can decode, and with references the
/// kernel knows.
fn check_slots(store: &KernelStore, value: CapData<KRef>) -> Result<CapData<KRef>, String> {
    if value.checked_value().is_err() {
        return Err("the service answered with a malformed value".into());
    }
    match crate::input::first_unknown(store, &value.slots) {
        Ok(None) => Ok(value),
        _ => Err("the service answered with a reference the kernel does not know".into()),
    }
}
