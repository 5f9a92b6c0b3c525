//! `Kernel`: the public API. One kernel thread owns the store and runs the crank loop;
//! every API call is a job sent to that thread and run between two cranks (spec §7.9), so
//! host operations never interleave with a delivery.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread::JoinHandle;
use std::time::Duration;

use ocap_queue::KernelState;
use ocap_store::KernelStore;
use ocap_types::{CapData, ClusterConfig, KObjectId, KRef, SubclusterId, Value, VatId};
use ocap_vat_manager::VatCounters;

use crate::config::{KernelConfig, LaunchResult};
use crate::core::{Core, Notice};
use crate::crank_log::{CrankHash, CrankLogSink};
use crate::error::{InputError, KernelError, Rejection};
use crate::handle::ResultHandle;
use crate::input::check_host_args;
use crate::lifecycle::{self, SubclusterInfo, VatInfo};
use crate::oneshot::{self, RecvError};
use crate::services::KernelService;
use crate::subcluster::launch;
use crate::thread::{self, HostSend, Job};
use crate::upgrade::{self, VatUpgrade};

/// A running kernel.
#[derive(Debug)]
pub struct Kernel {
    jobs: SyncSender<Job>,
    thread: Option<JoinHandle<()>>,
    bootstrap_timeout: Duration,
}

impl Kernel {
    /// Opens (creating if needed) the kernel whose store is at `path`, relaunches every vat
    /// the store holds, and starts the crank loop. A vat that cannot be relaunched is left
    /// stopped and listed by [`Kernel::stopped_vats`]; the kernel opens all the same.
    ///
    /// # Errors
    /// [`KernelError::Store`] if the store cannot be opened or fails.
    pub fn open(path: &Path, config: KernelConfig) -> Result<Kernel, KernelError> {
        let bootstrap_timeout = config.bootstrap_timeout;
        let (jobs, thread) = thread::start(path, config)?;
        Ok(Kernel {
            jobs,
            thread: Some(thread),
            bootstrap_timeout,
        })
    }

    /// Hands `job` to the kernel thread, waiting while its queue is full. On the kernel
    /// thread itself (a service or log sink) waiting would never end: a full queue is then
    /// [`KernelError::Busy`].
    fn send_job(&self, job: Job) -> Result<(), KernelError> {
        let on_kernel_thread = self
            .thread
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id());
        if !on_kernel_thread {
            return self.jobs.send(job).map_err(|_| KernelError::Stopped);
        }
        self.jobs.try_send(job).map_err(|error| match error {
            TrySendError::Full(_) => KernelError::Busy,
            TrySendError::Disconnected(_) => KernelError::Stopped,
        })
    }

    /// Runs `f` on the kernel thread between two cranks and returns its result.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, &mut KernelState) -> R + Send + 'static,
    ) -> Result<R, KernelError> {
        // A service or a log sink runs on the kernel thread, inside a crank: waiting there
        // for a job the same thread would have to run is a deadlock. Say so instead.
        if self
            .thread
            .as_ref()
            .is_some_and(|t| t.thread().id() == std::thread::current().id())
        {
            return Err(KernelError::CalledOnKernelThread);
        }
        let (reply, answer) = mpsc::channel();
        let job = Job::Call(Box::new(move |core, state| {
            let result = f(core, state);
            // Told once what the call did is durable (D22).
            core.notify_host(Notice::Reply(Box::new(move || {
                let _ = reply.send(result);
            })));
            core.tell_hosts(state);
            true
        }));
        self.jobs.send(job).map_err(|_| KernelError::Stopped)?;
        answer.recv().map_err(|_| KernelError::Stopped)
    }

    /// Launches a subcluster and waits for its bootstrap result (spec §15.1). If bootstrap
    /// is rejected, or returns an `Error` value, the subcluster's vats are terminated and
    /// the launch fails with that error.
    ///
    /// # Errors
    /// [`KernelError::Config`], [`KernelError::Vat`] (a vat failed to launch),
    /// [`KernelError::Rejected`] (bootstrap failed), [`KernelError::Timeout`].
    pub fn launch_subcluster(&self, config: &ClusterConfig) -> Result<LaunchResult, KernelError> {
        // Before the clone: parameters nested too deeply must not be copied or dropped here.
        config.validate()?;
        let config = config.clone();
        let launched = self.call(move |core, state| launch(core, state, &config))??;
        let outcome = launched.bootstrap.wait(self.bootstrap_timeout);
        let failure = match outcome {
            Ok(value) => match value.decode() {
                Ok(Value::Error { .. }) => KernelError::Rejected(Rejection::new(value)),
                _ => {
                    return Ok(LaunchResult {
                        subcluster: launched.subcluster,
                        root: KRef::Object(launched.root),
                        bootstrap_result: value,
                    });
                }
            },
            Err(error) => error,
        };
        // D17: a failed launch leaves no running vats behind.
        let subcluster = launched.subcluster;
        self.call(move |core, state| lifecycle::terminate_subcluster(core, state, subcluster))??;
        Err(failure)
    }

    /// Sends `method(args)` to `target` from the host; the handle tells the result.
    ///
    /// # Errors
    /// As [`Kernel::queue_message_with_slots`].
    pub fn queue_message(
        &self,
        target: KRef,
        method: &str,
        args: Vec<Value>,
    ) -> Result<ResultHandle, KernelError> {
        self.queue_message_with_slots(target, method, args, Vec::new())
    }

    /// As [`Kernel::queue_message`], with the target as text (spec §2.8). The text is
    /// checked against the kref grammar before anything is allocated.
    ///
    /// # Errors
    /// [`KernelError::Input`] for a malformed target: [`InputError::EmptyKref`],
    /// [`InputError::NotKernelRef`] for one that does not start with `k`,
    /// [`InputError::MalformedKref`] for one that is not `ko<number>`/`kp<number>`;
    /// [`KernelError::Stopped`].
    pub fn queue_message_text(
        &self,
        target: &str,
        method: &str,
        args: Vec<Value>,
    ) -> Result<ResultHandle, KernelError> {
        self.queue_message(parse_kref(target)?, method, args)
    }

    /// As [`Kernel::queue_message`], with `args` referring to `slots`. Returns at once: the
    /// message is queued between two cranks, in the order of the calls.
    ///
    /// # Errors
    /// [`KernelError::Input`] for arguments a receiver could not decode (nested too
    /// deeply, or naming a slot past `slots`), before anything is allocated; a slot naming
    /// an object or promise that does not exist is refused through the handle.
    /// [`KernelError::Stopped`] if the kernel thread is gone.
    pub fn queue_message_with_slots(
        &self,
        target: KRef,
        method: &str,
        args: Vec<Value>,
        slots: Vec<KRef>,
    ) -> Result<ResultHandle, KernelError> {
        let args = check_host_args(args, &slots)?;
        let (subscriber, settlement) = oneshot::channel();
        let (queued_tx, queued) = oneshot::channel();
        // Not a `call`: the host does not wait for the job, so it can queue many messages
        // back to back; the handle learns the result promise when the job has run.
        let job = Job::Send(HostSend {
            target,
            method: method.to_owned(),
            args,
            slots,
            subscriber,
            queued: queued_tx,
        });
        self.send_job(job)?;
        let kernel_thread = self.thread.as_ref().map(|t| t.thread().id());
        Ok(ResultHandle::pending(queued, settlement, kernel_thread))
    }

    /// Waits until the run queue is empty and no delivery is in flight.
    ///
    /// # Errors
    /// [`KernelError::Timeout`], [`KernelError::Stopped`].
    pub fn run_until_idle(&self, timeout: Duration) -> Result<(), KernelError> {
        let (reply, idle) = oneshot::channel();
        self.call(move |core, _| core.idle_waiters.push(reply))?;
        idle.recv_timeout(timeout).map_err(|e| match e {
            RecvError::Empty => KernelError::Timeout,
            RecvError::Closed => KernelError::Stopped,
        })
    }

    /// Terminates a vat on the host's request, between cranks.
    ///
    /// # Errors
    /// [`KernelError::Vat`] (`Vat does not exist.`) for a vat that is not live.
    pub fn terminate_vat(&self, vat: VatId, reason: Option<String>) -> Result<(), KernelError> {
        self.call(move |core, state| -> Result<(), KernelError> {
            let reason = reason.map(CapData::error);
            let ((), settled) =
                state.transaction(|crank| core.vats.terminate(crank, vat, reason))?;
            core.start_failures.remove(&vat);
            core.fire_settled(state, &settled);
            Ok(())
        })?
    }

    /// Restarts a vat (spec §12.6): a fresh incarnation from its stored record and vat
    /// store, keeping its c-list, objects and promises; bootstrap is not run again.
    ///
    /// # Errors
    /// [`KernelError::Vat`]: `Vat does not exist.` for an unknown or terminated vat, or the
    /// new incarnation's start failure (the vat is then left stopped).
    pub fn restart_vat(&self, vat: VatId) -> Result<(), KernelError> {
        self.call(move |core, state| lifecycle::restart_vat(core, state, vat))?
    }

    /// Upgrades a vat to a new version of its code (SwingSet's upgrade contract): the new
    /// version starts on the vat's vat store, so it finds its baggage and defines its
    /// durable kinds again; bootstrap is not run again. Its root keeps its kref (the root
    /// is what the new build function returns), and durable exports stay. The old
    /// version's ephemeral exports are abandoned (sends to them are rejected as
    /// `OBJECT_DELETED`), and the promises it decided are rejected with
    /// `[KERNEL:VAT_UPGRADED]`. The vat's record names the new bundle from then on, so a
    /// restart or a reopened kernel runs the new version. A stopped vat may be upgraded.
    ///
    /// Atomic: if the new version fails to start, nothing changed and the vat runs on its
    /// old version (a stopped vat stays stopped).
    ///
    /// # Errors
    /// [`KernelError::Vat`]: [`crate::VatError::NoSuchVat`] for an unknown or terminated vat;
    /// [`crate::VatError::Upgrade`] (the start failure as its source) when the new version cannot
    /// start, its code is not registered included.
    pub fn upgrade_vat(&self, vat: VatId, upgrade: VatUpgrade) -> Result<(), KernelError> {
        self.call(move |core, state| upgrade::upgrade_vat(core, state, vat, upgrade))?
    }

    /// Terminates a subcluster (spec §15.1): its vats in reverse launch order, each cleaned
    /// up at once, then its record.
    ///
    /// # Errors
    /// [`KernelError::NoSuchSubcluster`].
    pub fn terminate_subcluster(&self, subcluster: SubclusterId) -> Result<(), KernelError> {
        self.call(move |core, state| lifecycle::terminate_subcluster(core, state, subcluster))?
    }

    /// Every subcluster, in id order.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn subclusters(&self) -> Result<Vec<SubclusterInfo>, KernelError> {
        self.call(|_, state| lifecycle::subclusters(state))?
    }

    /// One subcluster, `None` if there is no such subcluster.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn subcluster(&self, id: SubclusterId) -> Result<Option<SubclusterInfo>, KernelError> {
        self.call(move |_, state| lifecycle::subcluster(state, id))?
    }

    /// The vats of a subcluster, in launch order.
    ///
    /// # Errors
    /// [`KernelError::NoSuchSubcluster`].
    pub fn subcluster_vats(&self, id: SubclusterId) -> Result<Vec<VatId>, KernelError> {
        self.call(move |_, state| lifecycle::subcluster_vats(state, id))?
    }

    /// True if `vat` belongs to the subcluster `id`.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn is_vat_in_subcluster(&self, vat: VatId, id: SubclusterId) -> Result<bool, KernelError> {
        Ok(self
            .subcluster(id)?
            .is_some_and(|sub| sub.vats.iter().any(|(_, v)| *v == vat)))
    }

    /// The running vats, in the order their workers were (re)started (a restarted vat moves
    /// to the end), with their names, configs and subclusters.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn vats(&self) -> Result<Vec<VatInfo>, KernelError> {
        self.call(|core, state| lifecycle::vats(core, state))?
    }

    /// The live vats that have no running worker, each with why its last start failed
    /// (spec D21): a vat that could not be restarted when the kernel was opened, or by
    /// [`Kernel::restart_vat`]. Each can be restarted or terminated.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn stopped_vats(&self) -> Result<Vec<(VatId, String)>, KernelError> {
        self.call(|core, state| lifecycle::stopped_vats(core, state))?
    }

    /// The head of the crank hash chain: BLAKE3 links over every committed crank's store
    /// writes (docs/store.md "Crank hash"). Equal inputs give equal heads for deterministic
    /// vats; it may include cranks a group commit has not made durable yet.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn crank_hash(&self) -> Result<CrankHash, KernelError> {
        self.call(|_, state| Ok(CrankHash(state.store().crank_hash()?)))?
    }

    /// Pins a vat's root object so that it is never collected, and returns it (spec §4.5).
    ///
    /// # Errors
    /// [`KernelError::Vat`] (`Vat does not exist.`) for a vat without a root.
    pub fn pin_vat_root(&self, vat: VatId) -> Result<KRef, KernelError> {
        self.call(move |_, state| lifecycle::pin_vat_root(state, vat))?
    }

    /// Removes one pin from a vat's root object.
    ///
    /// # Errors
    /// [`KernelError::Vat`] (`Vat does not exist.`) for a vat without a root.
    pub fn unpin_vat_root(&self, vat: VatId) -> Result<(), KernelError> {
        self.call(move |_, state| lifecycle::unpin_vat_root(state, vat))?
    }

    /// Releases one of the host's holds on `kref`: the result promise of a message it
    /// queued (each is pinned for the host when it is made, so that its value stays
    /// readable), or an object it pinned ([`Kernel::pin_vat_root`]). What nothing else
    /// holds is collected at once, so a host that releases every result it is done with
    /// leaves nothing behind in the store. Returns false, changing nothing, if the host
    /// held no pin on it. A released result must not be used again.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn release(&self, kref: KRef) -> Result<bool, KernelError> {
        self.call(move |_, state| lifecycle::release(state, kref))?
    }

    /// Schedules a `bringOutYourDead` for every running vat (spec §6.5).
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn reap_vats(&self) -> Result<(), KernelError> {
        self.call(|core, state| lifecycle::reap_vats(core, state))?
    }

    /// Writes a consistent, compacted copy of the running kernel's store into directory
    /// `dest`, which must be missing or empty, between two cranks: every crank ended so far
    /// is committed first, so the copy holds what hosts were told. The copy is a store
    /// that opens like this one (and `ocap check` verifies).
    ///
    /// # Errors
    /// [`KernelError::Backup`] for a destination that is not empty or cannot be written, or
    /// a store failure (the partial copy is removed); [`KernelError::Stopped`].
    pub fn backup(&self, dest: &std::path::Path) -> Result<(), KernelError> {
        let dest = dest.to_path_buf();
        self.call(move |_, state| state.backup_to(&dest).map_err(KernelError::from))?
    }

    /// Schedules a `bringOutYourDead` for one running vat (spec §6.5): it reports what it no
    /// longer uses, and what that frees is collected in the cranks that follow.
    ///
    /// # Errors
    /// [`KernelError::Vat`] (`Vat does not exist.`) for a vat that is not running;
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn reap_vat(&self, vat: VatId) -> Result<(), KernelError> {
        self.call(move |core, state| lifecycle::reap_vat(core, state, vat))?
    }

    /// Debug garbage collection (spec §17): cleans up every terminated vat completely, then
    /// collects what became unreachable.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn collect_garbage(&self) -> Result<(), KernelError> {
        self.call(|_, state| lifecycle::collect_garbage(state))?
    }

    /// Registers a kernel service (spec §15.2) and returns its object. The same name gets
    /// the same object across restarts; the implementation must be registered again after
    /// each one. It runs on the kernel thread and must not call this API (see
    /// [`KernelService`]).
    ///
    /// # Errors
    /// [`KernelError::ServiceAlreadyRegistered`] if `name` is already registered in this run.
    pub fn register_service(
        &self,
        name: &str,
        service: impl KernelService,
    ) -> Result<KRef, KernelError> {
        let name = name.to_owned();
        let service: Box<dyn KernelService> = Box::new(service);
        self.call(move |core, state| core.services.register(state, &name, service))?
            .map(KRef::Object)
    }

    /// Unregisters a kernel service: forgets its implementation, unpins its object and
    /// forgets its name. Unknown names are ignored.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn unregister_service(&self, name: &str) -> Result<(), KernelError> {
        let name = name.to_owned();
        self.call(move |core, state| core.services.unregister(state, &name))?
    }

    /// Revokes an object: later sends to it go splat (spec §4.4). Revocation is permanent
    /// and survives restarts.
    ///
    /// # Errors
    /// [`KernelError::RevokePromise`] for a promise, [`KernelError::AlreadyRevoked`],
    /// [`KernelError::NoSuchObject`] for an unknown object.
    pub fn revoke(&self, target: KRef) -> Result<(), KernelError> {
        let object = match target {
            KRef::Object(object) => object,
            KRef::Promise(promise) => return Err(KernelError::RevokePromise(promise)),
        };
        self.call(move |_, state| -> Result<(), KernelError> {
            match state.store().object(object)? {
                None => return Err(KernelError::NoSuchObject(object)),
                Some(record) if record.revoked => return Err(KernelError::AlreadyRevoked(object)),
                Some(_) => {}
            }
            state.transaction(|crank| -> Result<(), KernelError> {
                Ok(crank.store_mut().revoke(object)?)
            })?;
            Ok(())
        })?
    }

    /// True if the object is revoked.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn is_revoked(&self, object: KObjectId) -> Result<bool, KernelError> {
        self.call(move |_, state| state.store().object(object))?
            .map(|record| record.is_some_and(|r| r.revoked))
            .map_err(KernelError::from)
    }

    /// The running vats, in the order their workers were (re)started (a restarted vat moves
    /// to the end).
    ///
    /// # Errors
    /// [`KernelError::Stopped`].
    pub fn vat_ids(&self) -> Result<Vec<VatId>, KernelError> {
        self.call(|core, _| core.vats.running().collect())
    }

    /// The root object of a live vat (its `o+0`), `None` if it has none.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn vat_root(&self, vat: VatId) -> Result<Option<KRef>, KernelError> {
        self.call(move |_, state| {
            state
                .store()
                .clist_kref(ocap_types::EndpointId::Vat(vat), ocap_types::VRef::ROOT)
        })?
        .map_err(KernelError::from)
    }

    /// How many cranks have delivered an item since this kernel was opened.
    ///
    /// # Errors
    /// [`KernelError::Stopped`].
    pub fn crank_count(&self) -> Result<u64, KernelError> {
        self.call(|core, _| core.cranks)
    }

    /// What each vat did since this kernel was opened: deliveries, syscalls, denials, by
    /// vat id (terminated vats included). Kept in memory, never in the store, so they
    /// restart at 0 when the kernel is opened again.
    ///
    /// # Errors
    /// [`KernelError::Stopped`].
    pub fn vat_counters(&self) -> Result<BTreeMap<VatId, VatCounters>, KernelError> {
        self.call(|core, _| core.vats.counters().clone())
    }

    /// Runs `f` on the store between cranks (inspection and tests).
    ///
    /// # Errors
    /// [`KernelError::Stopped`].
    pub fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&KernelStore) -> R + Send + 'static,
    ) -> Result<R, KernelError> {
        self.call(move |_, state| f(state.store()))
    }

    /// Installs the crank-log sink between cranks, replacing the one
    /// [`KernelConfig::crank_log`](crate::KernelConfig::crank_log) or an earlier call set;
    /// `None` stops recording. Recording costs a copy of every crank's syscalls, so a host
    /// that listens only now and then (a daemon's subscribers) installs a sink only while
    /// someone listens. The new sink sees the cranks that become durable from now on.
    ///
    /// # Errors
    /// [`KernelError::Stopped`]; [`KernelError::CalledOnKernelThread`] from a sink or a
    /// service.
    pub fn set_crank_log(&self, sink: Option<CrankLogSink>) -> Result<(), KernelError> {
        self.call(move |core, _| core.crank_log.set_sink(sink))
    }

    /// Runs `f` on the store between cranks after committing and syncing every ended crank
    /// a group commit still holds: while `f` runs, the store's file holds exactly what `f`
    /// sees and nothing writes to it, so another process may read the file meanwhile (the
    /// page walk of `ocap check` on a daemon's store). Cranks wait until `f` returns.
    ///
    /// # Errors
    /// [`KernelError::Stopped`]; [`KernelError::Store`] if the commit fails (then `f` does
    /// not run).
    pub fn inspect_durable<R: Send + 'static>(
        &self,
        f: impl FnOnce(&KernelStore) -> R + Send + 'static,
    ) -> Result<R, KernelError> {
        self.call(move |_, state| {
            state.flush()?;
            Ok(f(state.store()))
        })?
    }

    /// Stops the kernel: the crank loop ends between cranks, pending commits are flushed.
    ///
    /// # Errors
    /// [`KernelError::Stopped`] if the kernel thread had already died.
    pub fn shutdown(mut self) -> Result<(), KernelError> {
        self.stop()
    }

    fn stop(&mut self) -> Result<(), KernelError> {
        let Some(thread) = self.thread.take() else {
            return Ok(());
        };
        let _ = self.jobs.send(Job::Call(Box::new(|_, _| false)));
        thread.join().map_err(|_| KernelError::Stopped)
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

/// A host-supplied kref (spec §2.8); the phrases are the ones the reference kernel's callers
/// match on.
fn parse_kref(text: &str) -> Result<KRef, InputError> {
    if text.is_empty() {
        return Err(InputError::EmptyKref);
    }
    if !text.starts_with('k') {
        // Cap the echoed text: it is the caller's input.
        let text: String = text.chars().take(64).collect();
        return Err(InputError::NotKernelRef { text });
    }
    Ok(text.parse()?)
}
