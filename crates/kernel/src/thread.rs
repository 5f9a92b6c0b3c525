//! The kernel thread: it owns the store, runs the crank loop, and between two cranks runs
//! the jobs API calls send it (host messages, taken together, are queued in one
//! transaction). Opening the store and relaunching the stored vats happen on it too, so the
//! store never leaves it.
//!
//! Invariant: nothing but this thread touches the `KernelState`; API calls reach it only
//! as jobs on a bounded channel.

use std::path::Path;
use std::sync::mpsc::{self, SyncSender};
use std::thread::JoinHandle;

use ocap_queue::{Command, KernelState, run_loop};
use ocap_store::{KernelStore, Store, StoreConfig, VatRecord};
use ocap_types::{KRef, Value, VatId};
use ocap_vat_manager::{VatError, VatManager};

use crate::config::KernelConfig;
use crate::core::{Core, Notice};
use crate::crank_log::{CrankLog, HostInput};
use crate::error::KernelError;
use crate::handle::{NotQueued, Queued, Settlement};
use crate::oneshot::Sender;
use crate::subcluster::{check_host_message, queue_checked_host_message};

pub(crate) type JobFn = Box<dyn FnOnce(&mut Core, &mut KernelState) -> bool + Send>;

/// How many jobs may wait for the kernel thread: a host that queues faster than the kernel
/// works waits (back-pressure) instead of growing the kernel's memory.
pub const JOB_QUEUE_CAPACITY: usize = 4096;

/// A host message waiting to be queued.
pub(crate) struct HostSend {
    pub(crate) target: KRef,
    pub(crate) method: String,
    pub(crate) args: Vec<Value>,
    pub(crate) slots: Vec<KRef>,
    pub(crate) subscriber: Sender<Settlement>,
    pub(crate) queued: Sender<Queued>,
}

/// Work for the kernel thread, run between two cranks.
pub(crate) enum Job {
    /// A host message: the ones taken together are queued in one transaction.
    Send(HostSend),
    /// Anything else; returns false to stop the kernel.
    Call(JobFn),
}

impl Command<Core> for Job {
    fn run_batch(batch: Vec<Job>, core: &mut Core, state: &mut KernelState) -> bool {
        let mut sends = Vec::new();
        for job in batch {
            match job {
                Job::Send(send) => sends.push(send),
                Job::Call(call) => {
                    queue_sends(core, state, std::mem::take(&mut sends));
                    if !call(core, state) {
                        return false;
                    }
                }
            }
        }
        queue_sends(core, state, sends);
        true
    }
}

/// Queues host messages in one transaction, each refused alone if its input is; each host
/// learns its result promise once the transaction is durable.
fn queue_sends(core: &mut Core, state: &mut KernelState, sends: Vec<HostSend>) {
    if sends.is_empty() {
        return;
    }
    let logging = core.crank_log.enabled();
    let mut inputs = Vec::new();
    let queued = state.transaction(|crank| -> Result<Vec<Notice>, KernelError> {
        let mut notices = Vec::with_capacity(sends.len());
        for send in sends {
            // Refused input is refused before anything is written (`check_host_message`
            // only reads), so one message's refusal needs no savepoint to undo.
            let methargs =
                match check_host_message(crank.store(), &send.method, send.args, send.slots) {
                    Ok(methargs) => methargs,
                    Err(KernelError::Input(input)) => {
                        notices.push(Notice::Queued(send.queued, Err(NotQueued::Input(input))));
                        continue;
                    }
                    Err(other) => return Err(other),
                };
            let promise =
                queue_checked_host_message(core, crank, send.target, methargs, send.subscriber)?;
            if logging {
                inputs.push(HostInput {
                    target: send.target,
                    method: send.method,
                    result: promise,
                });
            }
            notices.push(Notice::Queued(send.queued, Ok(promise)));
        }
        Ok(notices)
    });
    match queued {
        Ok((notices, _)) => {
            core.crank_log.host_inputs(inputs);
            for notice in notices {
                core.notify_host(notice);
            }
            core.tell_hosts(state);
        }
        // The hosts' channels are gone with the batch: they see the kernel as stopped.
        Err(error) => tracing::error!(%error, "could not queue host messages"),
    }
}

/// Starts the kernel thread for the store at `path`: it opens the store, relaunches the
/// stored vats, then runs the crank loop until told to stop. Returns once the thread is
/// ready (or failed to open).
pub(crate) fn start(
    path: &Path,
    config: KernelConfig,
) -> Result<(SyncSender<Job>, JoinHandle<()>), KernelError> {
    let (jobs, commands) = mpsc::sync_channel::<Job>(JOB_QUEUE_CAPACITY);
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), KernelError>>();
    let path = path.to_path_buf();
    let store_config = StoreConfig {
        durability: config.durability,
        ..StoreConfig::default()
    };
    let registry = config.registry;
    let logs = config.log_sink;
    let workers = config.workers;
    let reset = config.reset_storage;
    let crank_log = config.crank_log;
    let thread = std::thread::Builder::new()
        .name("ocap-kernel".to_owned())
        .spawn(move || {
            let started = (|| -> Result<(KernelState, Core), KernelError> {
                let store = KernelStore::new(Store::open_with(&path, &store_config)?);
                let mut state = if reset {
                    KernelState::reset(store)?
                } else {
                    KernelState::new(store)?
                };
                let mut core = Core::new(VatManager::new(registry, logs).with_workers(workers));
                core.crank_log = CrankLog::new(crank_log);
                if core.crank_log.enabled() {
                    core.vats.record_syscalls();
                }
                relaunch_vats(&mut core, &mut state)?;
                Ok((state, core))
            })();
            let (mut state, mut core) = match started {
                Ok(parts) => {
                    let _ = ready_tx.send(Ok(()));
                    parts
                }
                Err(error) => {
                    let _ = ready_tx.send(Err(error));
                    return;
                }
            };
            let res = run_loop(&mut state, &mut core, &commands, |core, state| {
                // The loop flushed before going idle: everything is durable.
                core.tell_hosts(state);
                for waiter in core.idle_waiters.drain(..) {
                    let _ = waiter.send(());
                }
            });
            if let Err(error) = res {
                tracing::error!(%error, "kernel stopped: the store failed");
            }
            core.vats.stop_all();
            match state.flush() {
                Ok(()) => core.tell_hosts(&state),
                // What hosts were not told is dropped: they see the kernel as stopped.
                Err(error) => tracing::error!(%error, "final flush failed"),
            }
        })
        .map_err(KernelError::Spawn)?;
    ready_rx.recv().map_err(|_| KernelError::Stopped)??;
    Ok((jobs, thread))
}

/// Starts a worker for every vat the store holds (spec §16.4, D21), each in a transaction
/// of its own, in id order. A vat that fails to start is left stopped, its state untouched,
/// and reported ([`Kernel::stopped_vats`]); it can be restarted or terminated. Only a store
/// failure stops the kernel from opening. Work the new incarnations emit while starting
/// joins the run queue after what was queued before the restart.
fn relaunch_vats(core: &mut Core, state: &mut KernelState) -> Result<(), KernelError> {
    let mut records = Vec::new();
    for vat in state.store().vat_ids()? {
        if let Some(record) = state.store().vat(vat)? {
            records.push((vat, record));
        }
    }
    // Every worker process starts up side by side; the vats start one after another.
    core.vats
        .prespawn(records.iter().map(|(vat, record)| (*vat, record)));
    let restarted = restart_each(core, state, records);
    core.vats.discard_prespawned();
    restarted
}

/// Starts each of `records`' vats, in a transaction of its own (see `relaunch_vats`).
fn restart_each(
    core: &mut Core,
    state: &mut KernelState,
    records: Vec<(VatId, VatRecord)>,
) -> Result<(), KernelError> {
    for (vat, record) in records {
        match state.transaction(|crank| core.vats.run_vat(crank, vat, &record)) {
            Ok(((), settled)) => core.fire_settled(state, &settled),
            Err(VatError::Store(error)) => return Err(error.into()),
            Err(error) => {
                tracing::warn!(%vat, %error, "vat could not be restarted; left stopped");
                core.start_failures.insert(vat, error.to_string());
            }
        }
    }
    Ok(())
}
