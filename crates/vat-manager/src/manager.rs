//! `VatManager`: the running vats, and delivering to, launching and terminating them.
//!
//! Invariant: termination never waits and never opens a transaction of its own: both entry
//! points work inside the [`Crank`] they are given. [`VatManager::terminate_in_crank`] is
//! the crank loop's (a vat's exit or failure); [`VatManager::terminate`] is a host
//! request's, in a transaction the kernel opens between cranks.

mod runtime;
mod upgrade;

use std::collections::BTreeMap;

use ocap_queue::{Crank, CrankResult, KernelResolution, Mode, Termination};
use ocap_store::{GcKind, Owner, PromiseState, VatRecord};
use ocap_types::{
    CapData, Delivery, DeliveryOutcome, EndpointId, ErrorCode, KObjectId, KPromiseId, KRef,
    Message, Resolution, Syscall, VRef, VatHost, VatId, VatLimits, VatRuntime,
};

use crate::counters::VatCounters;
use crate::error::VatError;
use crate::limits::{LimitExceeded, check_checkpoint};
use crate::registry::VatRegistry;
use crate::subprocess::WorkerConfig;
use crate::syscall::{LogSink, SyscallProcessor};
use crate::translate::{capdata_to_vat, kref_to_vref};

struct VatHandle {
    runtime: Box<dyn VatRuntime>,
    /// What this vat may ask of the kernel (from its record).
    limits: VatLimits,
    /// When this incarnation started, counted per manager: `running()` lists vats in the
    /// order their workers were (re)started (spec §17 `getVatIds`).
    started: u64,
}

/// The running vats.
pub struct VatManager {
    registry: VatRegistry,
    running: BTreeMap<VatId, VatHandle>,
    /// Workers spawned ahead of their starts (`prespawn`), by vat.
    prespawned: BTreeMap<VatId, runtime::Prespawned>,
    starts: u64,
    logs: Option<LogSink>,
    workers: WorkerConfig,
    /// The vat the latest delivery ran, until taken.
    delivered: Option<VatId>,
    /// What each vat did since this manager was made (memory only: see
    /// [`VatCounters`]).
    counters: BTreeMap<VatId, VatCounters>,
    /// The latest delivery's syscalls (the crank log's `syscalls`), when recorded (see
    /// [`VatManager::record_syscalls`]).
    syscalls: Option<Vec<Syscall>>,
}

impl std::fmt::Debug for VatManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VatManager")
            .field("registry", &self.registry)
            .field("running", &self.running.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// What one delivery did, for [`VatCounters`].
#[derive(Default)]
struct Tally {
    /// The vat ran the delivery.
    delivered: bool,
    syscalls: u32,
    /// A syscall was refused or a limit exceeded.
    denied: bool,
}

/// Renders a termination reason for `Vat termination: <message>` (spec §3.4, D15).
fn render_reason(info: &CapData<KRef>) -> String {
    match info.decode() {
        Ok(ocap_types::Value::Error { message, .. }) => message,
        Ok(ocap_types::Value::Str(text)) => text,
        Ok(other) => other.to_string(),
        Err(_) => "malformed reason".to_owned(),
    }
}

/// Runs `f` on the vat's runtime, turning a panic in vat code into a delivery error.
fn guarded(f: impl FnOnce() -> DeliveryOutcome) -> DeliveryOutcome {
    ocap_types::run_guarded(f)
}

impl VatManager {
    /// A manager with no running vats.
    pub fn new(registry: VatRegistry, logs: Option<LogSink>) -> Self {
        VatManager {
            registry,
            running: BTreeMap::new(),
            prespawned: BTreeMap::new(),
            starts: 0,
            logs,
            workers: WorkerConfig::default(),
            delivered: None,
            counters: BTreeMap::new(),
            syscalls: None,
        }
    }

    /// Sets how subprocess vats (`worker: subprocess`) are started.
    #[must_use]
    pub fn with_workers(mut self, workers: WorkerConfig) -> Self {
        self.workers = workers;
        self
    }

    /// True if the vat has a running worker.
    pub fn is_running(&self, vat: VatId) -> bool {
        self.running.contains_key(&vat)
    }

    /// The running vats, in the order their workers were (re)started.
    pub fn running(&self) -> impl Iterator<Item = VatId> + '_ {
        let mut vats: Vec<(u64, VatId)> = self
            .running
            .iter()
            .map(|(id, h)| (h.started, *id))
            .collect();
        vats.sort_unstable();
        vats.into_iter().map(|(_, id)| id)
    }

    /// Starts a worker for `vat` from its record and stored state; the record must already
    /// be in the store or be `record`. Runs inside the caller's transaction. A vat that
    /// runs its own executable starts only if the executable's hash is the record's.
    ///
    /// # Errors
    /// [`VatError::AlreadyRunning`], [`VatError::UnknownCode`], [`VatError::Start`],
    /// [`VatError::BundleUnreadable`], [`VatError::BundleChanged`].
    pub fn run_vat(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        record: &VatRecord,
    ) -> Result<(), VatError> {
        self.start_vat(crank, vat, record).map(drop)
    }

    /// Launches a new vat (spec §12.2): starts it, exports its root `o+0` and persists its
    /// record. Returns the root object.
    ///
    /// # Errors
    /// [`VatError::Launch`] with the cause when the vat cannot start;
    /// [`VatError::Store`] (not wrapped in `Launch`: it is the kernel's failure, not the
    /// vat's) when the store fails.
    pub fn launch_vat(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        record: &VatRecord,
    ) -> Result<KObjectId, VatError> {
        let launch_error = |cause: VatError| match cause {
            VatError::Store(_) | VatError::Queue(_) => cause,
            cause => VatError::Launch {
                vat,
                name: record.name.clone(),
                cause: Box::new(cause),
            },
        };
        let bundle_hash = self.start_vat(crank, vat, record).map_err(launch_error)?;
        let store = crank.store_mut();
        let ep = EndpointId::Vat(vat);
        let root = store.export_root(ep)?;
        store.put_vat(vat, &runtime::with_bundle_hash(record, bundle_hash))?;
        Ok(root)
    }

    /// Delivers a send that routed to `object`, owned by `vat` (spec §8.4). `target` is the
    /// item's original target, whose hold is released here.
    ///
    /// # Errors
    /// [`VatError::NoSuchVat`] when the vat has no worker (the caller splats the message as
    /// unreachable); [`VatError::NotExported`] when the vat does not export the object.
    pub fn deliver_send(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        object: KObjectId,
        target: KRef,
        message: &Message<KRef>,
        sender: Option<EndpointId>,
    ) -> Result<CrankResult, VatError> {
        if !self.running.contains_key(&vat) {
            return Err(VatError::NoSuchVat(vat));
        }
        let ep = EndpointId::Vat(vat);
        let store = crank.store_mut();
        let entry = store
            .clist_entry(ep, KRef::Object(object))?
            .filter(|entry| entry.vref.is_export())
            .ok_or(VatError::NotExported)?;
        if let Some(KRef::Promise(result)) = message.result {
            store.set_decider(result, Some(Owner::Endpoint(ep)))?;
        }
        let methargs = capdata_to_vat(store, vat, &message.methargs)?;
        let result = match message.result {
            Some(result) => Some(kref_to_vref(store, vat, result)?),
            None => None,
        };
        // The send leaves the queues: its holds go (collection waits for the crank's end,
        // so the order against the translation above does not matter).
        crank.release_send_holds(target, message, sender)?;
        let delivery = Delivery::Message {
            target: entry.vref,
            message: Message { methargs, result },
        };
        self.deliver(crank, vat, delivery)
    }

    /// Delivers a notify of `promise` to `vat` (spec §9), releasing the notify's hold on
    /// every path. A vat that is gone, or never knew the promise, is skipped.
    ///
    /// # Errors
    /// [`VatError::Store`] when the store fails.
    pub fn deliver_notify(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        promise: KPromiseId,
    ) -> Result<CrankResult, VatError> {
        let ep = EndpointId::Vat(vat);
        let store = crank.store_mut();
        let notified = KRef::Promise(promise);
        store.decref(notified)?;
        if !self.running.contains_key(&vat) {
            return Ok(CrankResult::Delivered);
        }
        let Some(entry) = store.clist_entry(ep, notified)? else {
            return Ok(CrankResult::Delivered);
        };
        let mut resolutions = Vec::new();
        // Translating the values imports into the c-list but settles nothing: read it once.
        let retired = ocap_router::retire_list(&*store, promise)?;
        for (id, record) in &retired {
            let (rejected, value) = match &record.state {
                PromiseState::Fulfilled(value) => (false, value),
                PromiseState::Rejected(value) => (true, value),
                PromiseState::Unresolved { .. } => continue,
            };
            // The notified promise's entry was read above: what `kref_to_vref` does with
            // an entry it finds, without reading it again.
            let vref = if *id == promise {
                store.mark_reachable(ep, notified, entry)?;
                entry.vref
            } else {
                kref_to_vref(store, vat, KRef::Promise(*id))?
            };
            resolutions.push(Resolution {
                promise: vref,
                rejected,
                data: capdata_to_vat(store, vat, value)?,
            });
        }
        if resolutions.is_empty() {
            return Ok(CrankResult::Delivered);
        }
        // Once told, the vat is done with these promises (it forgets their vrefs): retire
        // its c-list entries, so a settled promise nobody names is collected. Translating
        // the values never changes a promise's entry but for its flag, which deleting
        // ignores: the notified promise's entry read above still serves.
        for (id, _) in &retired {
            if *id == promise {
                store.delete_read_clist_entry(ep, notified, entry)?;
            } else {
                store.delete_clist_entry(ep, KRef::Promise(*id))?;
            }
        }
        self.deliver(crank, vat, Delivery::Notify(resolutions))
    }

    /// Delivers a GC item (`dropExports`, `retireExports` or `retireImports`, as `kind`
    /// says) to `vat` (spec §10.1). Objects the vat no longer has in its c-list are left
    /// out; with none left, or a vat that is gone, nothing is delivered. After a successful
    /// delivery dropped exports lose their reachable flag and retired imports are deleted.
    ///
    /// # Errors
    /// [`VatError::Store`] when the store fails.
    pub fn deliver_gc(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        kind: GcKind,
        objects: &[KObjectId],
    ) -> Result<CrankResult, VatError> {
        if !self.running.contains_key(&vat) {
            return Ok(CrankResult::Delivered);
        }
        let ep = EndpointId::Vat(vat);
        let mut held = Vec::new();
        for object in objects {
            let kref = KRef::Object(*object);
            if let Some(entry) = crank.store().clist_entry(ep, kref)? {
                held.push((kref, entry.vref));
            }
        }
        if held.is_empty() {
            return Ok(CrankResult::Delivered);
        }
        let vrefs: Vec<VRef> = held.iter().map(|(_, vref)| *vref).collect();
        let delivery = match kind {
            GcKind::DropExport => Delivery::DropExports(vrefs),
            GcKind::RetireExport => Delivery::RetireExports(vrefs),
            GcKind::RetireImport => Delivery::RetireImports(vrefs),
        };
        let result = self.deliver(crank, vat, delivery)?;
        if result.is_failed() {
            return Ok(result);
        }
        let krefs: Vec<KRef> = held.iter().map(|(kref, _)| *kref).collect();
        crank.after_gc_delivery(ep, kind, &krefs)?;
        Ok(result)
    }

    /// Asks `vat` to collect its garbage and report it through syscalls (spec §10.2).
    ///
    /// # Errors
    /// [`VatError::Store`] when the store fails.
    pub fn deliver_boyd(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
    ) -> Result<CrankResult, VatError> {
        if !self.running.contains_key(&vat) {
            return Ok(CrankResult::Delivered);
        }
        self.deliver(crank, vat, Delivery::BringOutYourDead)
    }

    /// What each vat that received a delivery since this manager was made did, by id. A
    /// terminated vat keeps its entry (its denial is what ended it), one small entry per
    /// vat delivered to in this run.
    pub fn counters(&self) -> &BTreeMap<VatId, VatCounters> {
        &self.counters
    }

    /// Hands one delivery to a running vat, counts it, and turns its outcome into a crank
    /// result (spec §11.5).
    fn deliver(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        delivery: Delivery,
    ) -> Result<CrankResult, VatError> {
        let mut tally = Tally::default();
        let res = self.deliver_tallied(crank, vat, delivery, &mut tally);
        if tally.delivered {
            let counters = self.counters.entry(vat).or_default();
            counters.deliveries += 1;
            counters.syscalls += u64::from(tally.syscalls);
            counters.denials += u64::from(tally.denied);
        }
        res
    }

    fn deliver_tallied(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        delivery: Delivery,
        tally: &mut Tally,
    ) -> Result<CrankResult, VatError> {
        let handle = self.running.get_mut(&vat).ok_or(VatError::NoSuchVat(vat))?;
        self.delivered = Some(vat);
        let _span = tracing::debug_span!("delivery", %vat, kind = delivery.kind()).entered();
        tracing::debug!(%vat, kind = delivery.kind(), "delivery");
        let limits = handle.limits;
        let mut host = SyscallProcessor::new(&mut *crank, vat, limits, self.logs.as_ref());
        // Reuse the buffer of the previous delivery: no allocation per crank.
        if let Some(syscalls) = &mut self.syscalls {
            syscalls.clear();
        }
        host.recorded = self.syscalls.take();
        let runtime = &mut handle.runtime;
        let outcome = guarded(|| runtime.deliver(delivery, &mut host as &mut dyn VatHost));
        tally.delivered = true;
        tally.syscalls = host.syscall_count();
        let (illegal, exit, exceeded) = (host.illegal, host.exit, host.exceeded);
        tally.denied = illegal.is_some() || exceeded.is_some();
        self.syscalls = host.recorded;
        if let Some(fault) = host.fault {
            return Err(fault.into());
        }
        let fatal = |code: ErrorCode, detail: &str| {
            CrankResult::Failed(Termination {
                vat,
                info: code.capdata(detail),
            })
        };
        let over_limit = |limit: LimitExceeded| {
            tracing::warn!(%vat, reason = limit.reason(), "vat went past a limit");
            fatal(ErrorCode::IllegalSyscall, limit.reason())
        };
        if let Some(detail) = illegal {
            tracing::warn!(%vat, %detail, "illegal syscall");
            return Ok(fatal(
                ErrorCode::IllegalSyscall,
                "Syscall translation error: prepare to die",
            ));
        }
        if let Some(limit) = exceeded {
            return Ok(over_limit(limit));
        }
        if let Some(error) = outcome.error {
            tracing::warn!(%vat, %error, "delivery error");
            return Ok(fatal(ErrorCode::InternalError, &error));
        }
        if let Err(limit) = check_checkpoint(&outcome.checkpoint, &limits) {
            tally.denied = true;
            return Ok(over_limit(limit));
        }
        let applied = crank.store_mut().apply_checkpoint(
            vat,
            &outcome.checkpoint,
            limits.vatstore_total_bytes,
        )?;
        if applied.is_err() {
            tally.denied = true;
            return Ok(over_limit(LimitExceeded::VatstoreTotal));
        }
        Ok(match exit {
            Some(exit) => {
                let termination = Termination {
                    vat,
                    info: exit.info,
                };
                if exit.failure {
                    CrankResult::Failed(termination)
                } else {
                    CrankResult::Exited(termination)
                }
            }
            None => CrankResult::Delivered,
        })
    }

    /// Terminates a vat inside the crank in progress (spec §7.8, §12.5): stops its worker,
    /// rejects the promises it decides, deletes its record and vat store, and marks it for
    /// cleanup in later cranks. Never waits.
    ///
    /// # Errors
    /// [`VatError::Store`] when the store fails.
    pub fn terminate_in_crank(
        &mut self,
        crank: &mut Crank<'_>,
        termination: &Termination,
    ) -> Result<(), VatError> {
        let reason = format!("Vat termination: {}", render_reason(&termination.info));
        self.terminate_with(crank, termination.vat, &reason)
    }

    /// Stops `vat`, rejects the promises it decides with `[KERNEL:VAT_TERMINATED] <reason>`
    /// (spec §12.5.2, D3), deletes its record and vat store, and marks it for cleanup.
    fn terminate_with(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        reason: &str,
    ) -> Result<(), VatError> {
        tracing::warn!(%vat, %reason, "vat terminated");
        self.running.remove(&vat);
        let ep = EndpointId::Vat(vat);
        let rejection = ErrorCode::VatTerminated.capdata::<KRef>(reason);
        let mut decided = Vec::new();
        for (_, kref) in crank.store().clist_entries(ep)? {
            if let KRef::Promise(id) = kref {
                let record = crank.store().promise(id)?;
                if record.and_then(|r| r.decider()) == Some(Owner::Endpoint(ep)) {
                    decided.push(KernelResolution::reject(id, rejection.clone()));
                }
            }
        }
        crank.resolve_promises(Some(Owner::Endpoint(ep)), decided, Mode::Immediate)?;
        let store = crank.store_mut();
        if let Some(record) = store.vat(vat)?
            && let Some(sc) = record.subcluster
            && let Some(mut sub) = store.subcluster(sc)?
        {
            sub.vats.retain(|(_, v)| *v != vat);
            // A subcluster without vats is gone (spec §15.1 does this at the next GC; doing
            // it here spares every crank a scan of all subclusters).
            if sub.vats.is_empty() {
                store.delete_subcluster(sc)?;
            } else {
                store.put_subcluster(sc, &sub)?;
            }
        }
        store.delete_vat(vat)?;
        store.mark_terminated(ep)?;
        Ok(())
    }

    /// Terminates a vat on a host's request, inside the transaction the kernel opened for
    /// it between cranks. Whether the vat is live is the store's word (its record), not
    /// whether a worker runs: a vat that failed to (re)start can be terminated too.
    ///
    /// # Errors
    /// [`VatError::NoSuchVat`] for a vat that has no record.
    pub fn terminate(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        reason: Option<CapData<KRef>>,
    ) -> Result<(), VatError> {
        if crank.store().vat(vat)?.is_none() {
            return Err(VatError::NoSuchVat(vat));
        }
        // Spec §12.5.2: a given reason is rendered; without one the vat "was deleted".
        let reason = match reason {
            Some(info) => format!("Vat termination: {}", render_reason(&info)),
            None => "Vat was deleted.".to_owned(),
        };
        self.terminate_with(crank, vat, &reason)
    }

    /// The vat the latest delivery ran (its in-memory state may have moved on), and forgets
    /// it: the crank loop takes it at the start of each crank, and after a delivery failed
    /// inside the kernel, to reload that vat from the rolled-back store.
    pub fn take_delivered(&mut self) -> Option<VatId> {
        if let Some(syscalls) = &mut self.syscalls {
            syscalls.clear();
        }
        self.delivered.take()
    }

    /// Records each delivery's syscalls from now on, for [`VatManager::syscalls`] (off by
    /// default: recording clones every syscall).
    pub fn record_syscalls(&mut self) {
        self.syscalls.get_or_insert_with(Vec::new);
    }

    /// The syscalls of the latest delivery, in order, as the vat made them (vat refs);
    /// empty when not recorded, and again once [`VatManager::take_delivered`] is called at
    /// the next crank's start.
    pub fn syscalls(&self) -> &[Syscall] {
        self.syscalls.as_deref().unwrap_or_default()
    }

    /// Restarts a running vat from the store inside the crank (its in-memory state no longer
    /// matches the store: a delivery to it was rolled back by a kernel failure). A vat that
    /// cannot start again is left stopped, as a failed restart leaves it, with the start
    /// failure returned; its start's effects are undone.
    ///
    /// # Errors
    /// [`VatError::Store`] when the store fails.
    pub fn reload(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
    ) -> Result<Option<String>, VatError> {
        self.running.remove(&vat);
        let Some(record) = crank.store().vat(vat)? else {
            return Ok(None);
        };
        let savepoint = crank.savepoint()?;
        match self.run_vat(crank, vat, &record) {
            Ok(()) => Ok(None),
            Err(error @ (VatError::Store(_) | VatError::Queue(_))) => Err(error),
            Err(error) => {
                crank.rollback_to(savepoint)?;
                Ok(Some(error.to_string()))
            }
        }
    }

    /// Stops a vat's worker without touching the store (a launch that is being undone).
    pub fn forget(&mut self, vat: VatId) {
        self.running.remove(&vat);
    }

    /// Stops every worker without touching the store (kernel shutdown).
    pub fn stop_all(&mut self) {
        self.prespawned.clear();
        self.running.clear();
    }
}
