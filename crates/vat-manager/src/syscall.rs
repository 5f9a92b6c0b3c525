//! Syscall handling during a delivery (spec §11): each syscall is translated from the vat's
//! refs, validated and applied in the crank, in emission order.
//!
//! Invariant: the first illegal syscall of a delivery is sticky; later syscalls of the same
//! delivery are ignored, and the delivery ends in an abort and the vat's termination (D4).
//! Only the vat's own faults are illegal (a forged or malformed ref or value, a resolution
//! it may not make, a limit): a failure of the store while carrying a syscall out, or an
//! inconsistency of the kernel's own tables (a c-list entry naming a promise that has no
//! record), is the kernel's, recorded as `fault`, and the delivery fails inside the kernel
//! instead.

use ocap_queue::{Crank, KernelResolution, Mode, QueueError, ResolveError};
use ocap_store::{Owner, PromiseState};
use ocap_types::{
    CapData, EndpointId, KRef, Message, Resolution, Syscall, VRef, VatHost, VatId, VatLimits,
    VatLog,
};

use crate::limits::{LimitExceeded, check_value};
use crate::translate::{
    SendResult, TranslateError, capdata_to_kernel, send_result_to_kref, vref_to_kref,
};

/// Receives the log lines vats emit, tagged with the vat id.
pub type LogSink = std::sync::Arc<dyn Fn(VatId, &VatLog) + Send + Sync>;

/// A vat's `exit` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExitRequest {
    pub(crate) failure: bool,
    pub(crate) info: CapData<KRef>,
}

/// The kernel side of one delivery to one vat.
pub(crate) struct SyscallProcessor<'a, 'c> {
    pub(crate) crank: &'a mut Crank<'c>,
    pub(crate) vat: VatId,
    pub(crate) illegal: Option<String>,
    /// A limit the vat went past: sticky like `illegal`, and the termination's reason.
    pub(crate) exceeded: Option<LimitExceeded>,
    /// A failure of the kernel's own (the store) while it carried out a syscall: never the
    /// vat's fault. Sticky; the delivery then fails inside the kernel.
    pub(crate) fault: Option<QueueError>,
    limits: VatLimits,
    syscalls: u32,
    /// Each syscall the vat made, in order, as the vat made it, when the crank log wants
    /// them (`None`: nothing is recorded).
    pub(crate) recorded: Option<Vec<Syscall>>,
    pub(crate) exit: Option<ExitRequest>,
    pub(crate) logs: Option<&'a LogSink>,
}

#[derive(Debug, thiserror::Error)]
enum SyscallError {
    #[error(transparent)]
    Translate(#[from] TranslateError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error(transparent)]
    Store(#[from] ocap_store::StoreError),
    #[error("{0}")]
    Invalid(String),
    #[error("{}", .0.reason())]
    Limit(LimitExceeded),
}

impl<'a, 'c> SyscallProcessor<'a, 'c> {
    /// How many syscalls the vat made through this processor.
    pub(crate) fn syscall_count(&self) -> u32 {
        self.syscalls
    }

    /// The host side of one delivery (or start) of `vat`.
    pub(crate) fn new(
        crank: &'a mut Crank<'c>,
        vat: VatId,
        limits: VatLimits,
        logs: Option<&'a LogSink>,
    ) -> Self {
        SyscallProcessor {
            crank,
            vat,
            illegal: None,
            exceeded: None,
            fault: None,
            limits,
            syscalls: 0,
            recorded: None,
            exit: None,
            logs,
        }
    }
}

impl SyscallProcessor<'_, '_> {
    fn ep(&self) -> EndpointId {
        EndpointId::Vat(self.vat)
    }

    fn kref_of(&mut self, vref: VRef) -> Result<KRef, SyscallError> {
        Ok(vref_to_kref(self.crank.store_mut(), self.vat, vref)?)
    }

    fn promise_to_kernel(&mut self, vref: VRef) -> Result<ocap_types::KPromiseId, SyscallError> {
        match self.kref_of(vref)? {
            KRef::Promise(id) => Ok(id),
            KRef::Object(_) => Err(SyscallError::Invalid(format!("{vref} is not a promise"))),
        }
    }

    fn apply(&mut self, syscall: Syscall) -> Result<(), SyscallError> {
        match syscall {
            Syscall::Send { target, message } => self.send(target, &message),
            Syscall::Subscribe(vref) => {
                let promise = self.promise_to_kernel(vref)?;
                let ep = self.ep();
                if !self.crank.store_mut().add_subscriber(promise, ep)? {
                    self.crank.enqueue_notify(ep, promise, Mode::Buffered)?;
                }
                Ok(())
            }
            Syscall::Resolve(resolutions) => {
                let mut kernel = Vec::with_capacity(resolutions.len());
                let mut vrefs = Vec::with_capacity(resolutions.len());
                for Resolution {
                    promise,
                    rejected,
                    data,
                } in resolutions
                {
                    vrefs.push(promise);
                    let promise = self.promise_to_kernel(promise)?;
                    check_value(&data, &self.limits).map_err(SyscallError::Limit)?;
                    checked(&data)?;
                    let data = capdata_to_kernel(self.crank.store_mut(), self.vat, &data)?;
                    kernel.push(KernelResolution {
                        promise,
                        rejected,
                        value: data,
                    });
                }
                let resolver = Some(Owner::Endpoint(self.ep()));
                let resolved: Vec<_> = kernel.iter().map(|r| r.promise).zip(vrefs).collect();
                self.crank
                    .resolve_promises(resolver, kernel, Mode::Buffered)?;
                // The resolver is done with what it resolved: its entries go, imports
                // (`p-N`, such as a result it answered) and exports (`p+N`) alike, as in
                // SwingSet; the SDK forgets the vrefs too. So a settled promise nobody names
                // is collected; a vref the vat names again later is a new promise.
                // Each entry was just translated, and settling deletes none (a promise
                // named twice failed above as already resolved): no need to read them.
                let ep = self.ep();
                for (promise, vref) in resolved {
                    self.crank
                        .store_mut()
                        .delete_translated_promise_entry(ep, promise, vref)?;
                }
                Ok(())
            }
            Syscall::Exit { failure, info } => {
                check_value(&info, &self.limits).map_err(SyscallError::Limit)?;
                checked(&info)?;
                let info = capdata_to_kernel(self.crank.store_mut(), self.vat, &info)?;
                self.exit = Some(ExitRequest { failure, info });
                Ok(())
            }
            Syscall::DropImports(vrefs) => {
                for vref in vrefs {
                    if vref.is_export() || vref.is_promise() {
                        return Err(SyscallError::Invalid(format!(
                            "dropImports of {vref}, which is not an imported object"
                        )));
                    }
                    let kref = self.kref_of(vref)?;
                    let ep = self.ep();
                    self.crank.store_mut().clear_reachable_flag(ep, kref)?;
                }
                Ok(())
            }
            Syscall::RetireImports(vrefs) => self.retire(vrefs, false, true),
            Syscall::RetireExports(vrefs) => self.retire(vrefs, true, true),
            Syscall::AbandonExports(vrefs) => self.retire(vrefs, true, false),
        }
    }

    fn send(&mut self, target: VRef, message: &Message<VRef>) -> Result<(), SyscallError> {
        check_value(&message.methargs, &self.limits).map_err(SyscallError::Limit)?;
        if self.crank.store().queued_by(self.ep())? >= self.limits.queued_messages {
            return Err(SyscallError::Limit(LimitExceeded::QueuedMessages));
        }
        // A malformed message would be the receiver's delivery error, and kill the receiver:
        // refuse it here, where it is the sender's fault.
        message
            .method_and_args()
            .map_err(|e| SyscallError::Invalid(format!("malformed message: {e}")))?;
        let target = self.kref_of(target)?;
        let methargs = capdata_to_kernel(self.crank.store_mut(), self.vat, &message.methargs)?;
        let result = match message.result {
            None => None,
            Some(vref) => Some(KRef::Promise(
                match send_result_to_kref(self.crank.store_mut(), self.vat, vref)? {
                    SendResult::Fresh(promise) => promise,
                    SendResult::Known(KRef::Promise(promise)) => {
                        self.take_result_decider(vref, promise)?;
                        promise
                    }
                    SendResult::Known(KRef::Object(_)) => {
                        return Err(SyscallError::Invalid(format!("{vref} is not a promise")));
                    }
                },
            )),
        };
        let message = Message { methargs, result };
        let sender = Some(self.ep());
        self.crank
            .enqueue_send(target, message, sender, Mode::Buffered)?;
        Ok(())
    }

    /// Checks that `promise`, which the vat's c-list already held, may be the result of
    /// its send, and takes the sender's right to decide it away.
    fn take_result_decider(
        &mut self,
        vref: VRef,
        promise: ocap_types::KPromiseId,
    ) -> Result<(), SyscallError> {
        // SwingSet rule: a result must be a fresh promise this vat decides. Sending
        // it gives the right to decide away (D20): nobody decides it while the
        // message is queued, the receiver does once it is delivered. So the sender
        // can neither settle it itself nor name it as the result of a second send.
        let record = self.crank.store().existing_promise(promise)?;
        match record.state {
            PromiseState::Unresolved {
                decider: Some(Owner::Endpoint(ep)),
                ..
            } if ep == self.ep() => {}
            _ => {
                return Err(SyscallError::Invalid(format!(
                    "send result {vref} is not an unresolved promise decided by the sender"
                )));
            }
        }
        self.crank.store_mut().set_decider(promise, None)?;
        Ok(())
    }

    fn retire(&mut self, vrefs: Vec<VRef>, exports: bool, check: bool) -> Result<(), SyscallError> {
        for vref in vrefs {
            if vref.is_promise() || vref.is_export() != exports {
                return Err(SyscallError::Invalid(format!(
                    "invalid retire/abandon of {vref}"
                )));
            }
            let kref = self.kref_of(vref)?;
            let ep = self.ep();
            let store = self.crank.store_mut();
            let entry = store
                .clist_entry(ep, kref)?
                .ok_or_else(|| SyscallError::Invalid(format!("{vref} has no c-list entry")))?;
            if check && entry.reachable {
                return Err(SyscallError::Invalid(format!("{vref} is still reachable")));
            }
            if exports {
                // Later sends splat as deleted (spec D10).
                store.orphan_export(ep, kref, vref)?;
            } else {
                store.delete_clist_entry(ep, kref)?;
            }
        }
        Ok(())
    }
}

/// Refuses capdata whose body does not decode or names a slot it does not carry.
fn checked(data: &ocap_types::CapData<VRef>) -> Result<(), SyscallError> {
    data.checked_value()
        .map(drop)
        .map_err(|e| SyscallError::Invalid(format!("malformed value: {e}")))
}

impl VatHost for SyscallProcessor<'_, '_> {
    fn syscall(&mut self, syscall: Syscall) {
        if self.illegal.is_some() || self.exceeded.is_some() || self.fault.is_some() {
            return;
        }
        let kind = syscall.kind();
        tracing::trace!(vat = %self.vat, kind, "syscall");
        self.syscalls = self.syscalls.saturating_add(1);
        if let Some(recorded) = &mut self.recorded {
            recorded.push(syscall.clone());
        }
        let res = if self.syscalls > self.limits.syscalls_per_delivery {
            Err(SyscallError::Limit(LimitExceeded::Syscalls))
        } else {
            self.apply(syscall)
        };
        match res {
            Ok(()) => {}
            Err(SyscallError::Limit(limit)) => {
                tracing::warn!(vat = %self.vat, kind, reason = limit.reason(), "vat went past a limit");
                self.exceeded = Some(limit);
            }
            Err(
                SyscallError::Store(error)
                | SyscallError::Translate(TranslateError::Store(error))
                | SyscallError::Queue(QueueError::Store(error)),
            ) => {
                tracing::error!(vat = %self.vat, kind, %error, "the store failed during a syscall");
                self.fault = Some(QueueError::Store(error));
            }
            // A promise the vat names through its c-list always has a record (every c-list
            // entry holds its promise), so an unknown one is the kernel's inconsistency, not
            // a resolution the vat may not make.
            Err(SyscallError::Queue(error @ QueueError::Resolve(ResolveError::Unknown(_)))) => {
                tracing::error!(vat = %self.vat, kind, %error, "the kernel failed during a syscall");
                self.fault = Some(error);
            }
            Err(SyscallError::Queue(error)) if !matches!(error, QueueError::Resolve(_)) => {
                tracing::error!(vat = %self.vat, kind, %error, "the kernel failed during a syscall");
                self.fault = Some(error);
            }
            Err(error) => {
                tracing::warn!(vat = %self.vat, kind, %error, "Fatal syscall error in vat");
                self.illegal = Some(error.to_string());
            }
        }
    }

    fn log(&mut self, log: VatLog) {
        tracing::info!(vat = %self.vat, tags = ?log.tags, level = ?log.level, "{}", log.message);
        if let Some(sink) = self.logs {
            // The sink is the host's code: its panic is the host's bug, never the vat's, so
            // it must not unwind into the vat (which would then be terminated for it).
            let vat = self.vat;
            let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sink(vat, &log)));
            if let Err(panic) = told {
                let message = ocap_types::panic_message(&*panic);
                tracing::error!(%vat, %message, "the host's log sink panicked; line dropped");
            }
        }
    }
}
