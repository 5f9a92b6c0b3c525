//! The kernel thread's state and its [`CrankHandler`]: what a crank does with its item,
//! and the host subscriptions that are told about settled results after each commit.

use std::collections::BTreeMap;

use ocap_queue::{
    Crank, CrankHandler, CrankResult, KernelResolution, KernelState, Mode, QueueError, Termination,
};
use ocap_router::{Route, Splat, route};
use ocap_store::{GcKind, Owner, PromiseState};
use ocap_types::{
    CapData, EndpointId, ErrorCode, KPromiseId, KRef, Message, RunQueueItem, SplatReason, VatId,
};
use ocap_vat_manager::{VatError, VatManager};

use crate::crank_log::{CrankHash, CrankLog, CrankOutcome};
use crate::handle::{Queued, Settlement};
use crate::oneshot::Sender;
use crate::services::Services;

/// Something a host is told once the state it reports is durable.
pub(crate) enum Notice {
    /// A result settled.
    Settled(Sender<Settlement>, Settlement),
    /// A host message was queued (or refused).
    Queued(Sender<Queued>, Queued),
    /// Any other answer to a host's call.
    Reply(Box<dyn FnOnce() + Send>),
}

impl Notice {
    fn send(self) {
        // The host may have stopped waiting; that is its business.
        match self {
            Notice::Settled(sender, settlement) => {
                let _ = sender.send(settlement);
            }
            Notice::Queued(sender, queued) => {
                let _ = sender.send(queued);
            }
            Notice::Reply(reply) => reply(),
        }
    }
}

/// Everything the kernel thread owns besides the queue.
pub(crate) struct Core {
    pub(crate) vats: VatManager,
    /// Kernel services registered in this run (spec §15.2).
    pub(crate) services: Services,
    subscriptions: BTreeMap<KPromiseId, Sender<Settlement>>,
    /// What hosts are to be told (settlements, accepted commands, replies), held until the
    /// state it reports is durable (D22): sent by [`Core::tell_hosts`] once the store has
    /// nothing unflushed.
    notices: Vec<Notice>,
    pub(crate) idle_waiters: Vec<Sender<()>>,
    /// Cranks that delivered an item since the kernel started.
    pub(crate) cranks: u64,
    /// Why each live vat without a worker failed to start (D21), until it is restarted or
    /// terminated.
    pub(crate) start_failures: BTreeMap<VatId, String>,
    /// The crank records waiting to be durable (nothing recorded without a sink).
    pub(crate) crank_log: CrankLog,
}

impl Core {
    pub(crate) fn new(vats: VatManager) -> Self {
        Core {
            vats,
            services: Services::default(),
            subscriptions: BTreeMap::new(),
            notices: Vec::new(),
            idle_waiters: Vec::new(),
            cranks: 0,
            start_failures: BTreeMap::new(),
            crank_log: CrankLog::default(),
        }
    }

    pub(crate) fn subscribe(&mut self, promise: KPromiseId, sender: Sender<Settlement>) {
        self.subscriptions.insert(promise, sender);
    }

    fn reject_subscription(&mut self, promise: KPromiseId, value: CapData<KRef>) {
        if let Some(sender) = self.subscriptions.remove(&promise) {
            self.notices.push(Notice::Settled(sender, Err(value)));
        }
    }

    /// Holds `notice` until what it reports is durable.
    pub(crate) fn notify_host(&mut self, notice: Notice) {
        self.notices.push(notice);
    }

    /// Tells hosts what they are waiting for, if the store holds nothing that a crash could
    /// still lose; otherwise keeps it for the commit that makes it durable (with group
    /// commit, at most the group's time limit later).
    pub(crate) fn tell_hosts(&mut self, state: &KernelState) {
        if state.store().kv().has_unflushed() {
            return;
        }
        for notice in self.notices.drain(..) {
            notice.send();
        }
        self.crank_log.durable();
    }

    /// Tells host subscribers about promises that are settled in the committed store.
    pub(crate) fn fire_settled(&mut self, state: &KernelState, settled: &[KPromiseId]) {
        for promise in settled {
            if !self.subscriptions.contains_key(promise) {
                continue;
            }
            let settlement = match state.store().promise(*promise) {
                Ok(Some(record)) => match record.state {
                    PromiseState::Fulfilled(value) => Ok(value),
                    PromiseState::Rejected(value) => Err(value),
                    PromiseState::Unresolved { .. } => continue,
                },
                Ok(None) => continue,
                Err(error) => {
                    tracing::error!(%promise, %error, "cannot read settled promise");
                    continue;
                }
            };
            if let Some(sender) = self.subscriptions.remove(promise) {
                self.notices.push(Notice::Settled(sender, settlement));
            }
        }
        self.tell_hosts(state);
    }

    /// A message that cannot be delivered: reject its result on behalf of the result's
    /// current decider and release the item's holds (spec §8.2).
    fn splat(
        crank: &mut Crank<'_>,
        target: KRef,
        message: &Message<KRef>,
        sender: Option<EndpointId>,
        splat: &Splat,
    ) -> Result<(), QueueError> {
        tracing::warn!(%target, ?splat, "message went splat");
        if let Some(KRef::Promise(result)) = message.result {
            let record = crank.store().promise(result)?;
            if let Some(record) = record.filter(|r| r.is_unresolved()) {
                let resolution = KernelResolution::reject(result, splat.rejection());
                crank.resolve_promises(record.decider(), vec![resolution], Mode::Immediate)?;
            }
        }
        crank.release_send_holds(target, message, sender)
    }

    fn deliver_send(
        &mut self,
        crank: &mut Crank<'_>,
        target: KRef,
        message: &Message<KRef>,
        sender: Option<EndpointId>,
    ) -> Result<CrankResult, QueueError> {
        let splat = match route(crank.store(), target)? {
            // Sends are parked on the promise they wait for when they are enqueued, so only
            // an item stored by an older kernel gets here.
            Route::Requeue(_) => {
                crank.requeue_send(target, message.clone(), sender, Mode::Immediate)?;
                return Ok(CrankResult::Delivered);
            }
            Route::Splat(splat) => splat,
            Route::Deliver {
                owner: Owner::Endpoint(EndpointId::Vat(vat)),
                object,
            } => match (self.vats).deliver_send(crank, vat, object, target, message, sender) {
                Ok(result) => return Ok(result),
                // Only "no such endpoint" is a splat (D14); anything else propagates.
                Err(VatError::NoSuchVat(_)) => Splat::Reason(SplatReason::Unreachable),
                Err(VatError::NotExported) => Splat::Reason(SplatReason::Deleted),
                Err(other) => return Err(other.into()),
            },
            Route::Deliver {
                owner: Owner::Kernel,
                object,
            } => match self
                .services
                .deliver(crank, object, target, message, sender)?
            {
                Some(result) => return Ok(result),
                // No implementation registered in this run (spec §15.2).
                None => Splat::Reason(SplatReason::Unreachable),
            },
            // Remotes are not implemented yet: nobody can receive.
            Route::Deliver { .. } => Splat::Reason(SplatReason::Unreachable),
        };
        Self::splat(crank, target, message, sender, &splat)?;
        Ok(CrankResult::Delivered)
    }
}

impl Core {
    fn deliver_item(
        &mut self,
        crank: &mut Crank<'_>,
        item: &RunQueueItem,
    ) -> Result<CrankResult, QueueError> {
        // Fields are only computed when debug is on: off, this is one cached level check.
        tracing::debug!(
            crank = self.cranks + 1,
            kind = item.kind(),
            target = %ItemTarget(item),
            "crank"
        );
        match item {
            RunQueueItem::Send {
                target,
                message,
                sender,
            } => self.deliver_send(crank, *target, message, *sender),
            RunQueueItem::Notify {
                endpoint: EndpointId::Vat(vat),
                promise,
            } => self
                .vats
                .deliver_notify(crank, *vat, *promise)
                .map_err(QueueError::from),
            RunQueueItem::Notify { promise, .. } => {
                crank.store_mut().decref(KRef::Promise(*promise))?;
                Ok(CrankResult::Delivered)
            }
            RunQueueItem::DropExports { endpoint, objects } => {
                self.deliver_gc(crank, *endpoint, GcKind::DropExport, objects)
            }
            RunQueueItem::RetireExports { endpoint, objects } => {
                self.deliver_gc(crank, *endpoint, GcKind::RetireExport, objects)
            }
            RunQueueItem::RetireImports { endpoint, objects } => {
                self.deliver_gc(crank, *endpoint, GcKind::RetireImport, objects)
            }
            RunQueueItem::BringOutYourDead {
                endpoint: EndpointId::Vat(vat),
            } => self
                .vats
                .deliver_boyd(crank, *vat)
                .map_err(QueueError::from),
            RunQueueItem::BringOutYourDead { .. } => Ok(CrankResult::Delivered),
        }
    }

    fn deliver_gc(
        &mut self,
        crank: &mut Crank<'_>,
        endpoint: EndpointId,
        kind: GcKind,
        objects: &[ocap_types::KObjectId],
    ) -> Result<CrankResult, QueueError> {
        match endpoint {
            EndpointId::Vat(vat) => self
                .vats
                .deliver_gc(crank, vat, kind, objects)
                .map_err(QueueError::from),
            EndpointId::Remote(_) => Ok(CrankResult::Delivered),
        }
    }
}

impl CrankHandler for Core {
    fn before_delivery(&mut self, _crank: &mut Crank<'_>) -> Result<(), QueueError> {
        self.vats.take_delivered();
        Ok(())
    }

    fn deliver(
        &mut self,
        crank: &mut Crank<'_>,
        item: &RunQueueItem,
    ) -> Result<CrankResult, QueueError> {
        let res = self.deliver_item(crank, item);
        if self.crank_log.enabled()
            && let Ok(result) = &res
        {
            self.crank_log.delivered(item, outcome_of(result));
        }
        res
    }

    fn aborted_with_termination(&mut self, item: &RunQueueItem, info: &CapData<KRef>) {
        if let RunQueueItem::Send {
            message:
                Message {
                    result: Some(KRef::Promise(result)),
                    ..
                },
            ..
        } = item
        {
            self.reject_subscription(*result, info.clone());
        }
    }

    fn terminate_in_crank(
        &mut self,
        crank: &mut Crank<'_>,
        termination: Termination,
    ) -> Result<(), QueueError> {
        self.vats
            .terminate_in_crank(crank, &termination)
            .map_err(QueueError::from)
    }

    fn after_commit(&mut self, state: &KernelState, settled: &[KPromiseId]) {
        self.cranks += 1;
        if self.crank_log.enabled() {
            match state.store().crank_hash() {
                Ok(hash) => {
                    let syscalls = self.vats.syscalls();
                    self.crank_log
                        .committed(self.cranks, syscalls, CrankHash(hash));
                }
                Err(error) => tracing::error!(%error, "cannot read the crank hash"),
            }
        }
        self.fire_settled(state, settled);
    }

    fn discarded(
        &mut self,
        crank: &mut Crank<'_>,
        item: &RunQueueItem,
        error: &QueueError,
    ) -> Result<(), QueueError> {
        let outcome = CrankOutcome::Discarded {
            error: error_kind(error),
        };
        self.crank_log.delivered(item, outcome);
        // The vat that ran has moved on from the rolled-back store: reload it.
        if let Some(vat) = self.vats.take_delivered() {
            match self.vats.reload(crank, vat).map_err(QueueError::from)? {
                None => tracing::warn!(%vat, "vat reloaded after a delivery failed in the kernel"),
                Some(failure) => {
                    tracing::warn!(%vat, %failure, "vat could not be reloaded; left stopped");
                    self.start_failures.insert(vat, failure);
                }
            }
        }
        match item {
            // Release the send's holds and reject its result by its current decider, so
            // that every waiter, vat or host, is told.
            RunQueueItem::Send {
                target,
                message,
                sender,
            } => {
                let detail = format!("delivery failed inside the kernel ({})", error_kind(error));
                let rejection = Splat::Rejected(ErrorCode::InternalError.capdata(&detail));
                Self::splat(crank, *target, message, *sender, &rejection)
            }
            RunQueueItem::Notify { promise, .. } => {
                crank.store_mut().decref(KRef::Promise(*promise))?;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

/// What a run-queue item is addressed to, for the log: a send's target kref, a GC or
/// notify item's endpoint.
struct ItemTarget<'a>(&'a RunQueueItem);

impl std::fmt::Display for ItemTarget<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            RunQueueItem::Send { target, .. } => write!(f, "{target}"),
            RunQueueItem::Notify { endpoint, .. }
            | RunQueueItem::DropExports { endpoint, .. }
            | RunQueueItem::RetireExports { endpoint, .. }
            | RunQueueItem::RetireImports { endpoint, .. }
            | RunQueueItem::BringOutYourDead { endpoint } => write!(f, "{endpoint}"),
        }
    }
}

/// The crank log's view of a delivery's result.
fn outcome_of(result: &CrankResult) -> CrankOutcome {
    match result {
        CrankResult::Delivered => CrankOutcome::Delivered,
        CrankResult::Exited(Termination { vat, info }) => CrankOutcome::Exited {
            vat: *vat,
            reason: info.clone(),
        },
        CrankResult::Failed(Termination { vat, info }) => CrankOutcome::Failed {
            vat: *vat,
            reason: info.clone(),
        },
    }
}

/// A fixed description of an internal error, safe to show (no refs or paths).
fn error_kind(error: &QueueError) -> &'static str {
    match error {
        QueueError::Store(_) => "store",
        QueueError::Resolve(_) => "promise resolution",
        _ => "internal",
    }
}
