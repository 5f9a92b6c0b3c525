//! `Kernel`: the public API. One kernel thread owns the store and runs the crank loop;
//! every API call is a job sent to that thread and run between two cranks (spec §7.9), so
//! host operations never interleave with a delivery.

use std::path::Path;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::Duration;

use ocap_queue::{Command, KernelQueue, run_loop};
use ocap_store::{Durability, KernelStore, Store, StoreConfig};
use ocap_types::{CapData, ClusterConfig, KObjectId, KRef, SubclusterId, Value, VatId};
use ocap_vat_manager::{LogSink, VatManager, VatRegistry};

use crate::core::Core;
use crate::error::{KernelError, Rejection};
use crate::handle::ResultHandle;
use crate::subcluster::{launch, queue_host_message};

/// How to open a kernel.
#[derive(Clone)]
pub struct KernelConfig {
    /// When committed cranks reach the disk.
    pub durability: Durability,
    /// The vat code this host provides.
    pub registry: VatRegistry,
    /// Where vat log lines go (besides `tracing`).
    pub log_sink: Option<LogSink>,
    /// How long `launch_subcluster` waits for the bootstrap result.
    pub bootstrap_timeout: Duration,
}

impl std::fmt::Debug for KernelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelConfig")
            .field("durability", &self.durability)
            .field("registry", &self.registry)
            .field("bootstrap_timeout", &self.bootstrap_timeout)
            .finish_non_exhaustive()
    }
}

impl KernelConfig {
    /// Defaults (every-crank durability, 60 s bootstrap timeout) with `registry`.
    pub fn new(registry: VatRegistry) -> Self {
        KernelConfig {
            durability: Durability::EveryCrank,
            registry,
            log_sink: None,
            bootstrap_timeout: Duration::from_secs(60),
        }
    }
}

/// A launched subcluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaunchResult {
    /// Its id.
    pub subcluster: SubclusterId,
    /// The bootstrap vat's root object.
    pub root: KRef,
    /// What `bootstrap` returned.
    pub bootstrap_result: CapData<KRef>,
}

type JobFn = Box<dyn FnOnce(&mut Core, &mut KernelQueue) -> bool + Send>;

struct Job(JobFn);

impl Command<Core> for Job {
    fn run(self, core: &mut Core, queue: &mut KernelQueue) -> bool {
        (self.0)(core, queue)
    }
}

/// A running kernel.
#[derive(Debug)]
pub struct Kernel {
    jobs: Sender<Job>,
    thread: Option<JoinHandle<()>>,
    bootstrap_timeout: Duration,
}

impl Kernel {
    /// Opens (creating if needed) the kernel whose store is at `path`, relaunches every vat
    /// the store holds, and starts the crank loop.
    ///
    /// # Errors
    /// [`KernelError::Store`] if the store cannot be opened, [`KernelError::Vat`] if a vat
    /// cannot be relaunched.
    pub fn open(path: &Path, config: KernelConfig) -> Result<Kernel, KernelError> {
        let (jobs, commands) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), KernelError>>();
        let path = path.to_path_buf();
        let store_config = StoreConfig {
            durability: config.durability,
            ..StoreConfig::default()
        };
        let registry = config.registry;
        let logs = config.log_sink;
        let thread = std::thread::Builder::new()
            .name("ocap-kernel".to_owned())
            .spawn(move || {
                let started = (|| -> Result<(KernelQueue, Core), KernelError> {
                    let store = Store::open_with(&path, &store_config)?;
                    let mut queue = KernelQueue::new(KernelStore::new(store))?;
                    let mut core = Core::new(VatManager::new(registry, logs));
                    relaunch_vats(&mut core, &mut queue)?;
                    Ok((queue, core))
                })();
                let (mut queue, mut core) = match started {
                    Ok(parts) => {
                        let _ = ready_tx.send(Ok(()));
                        parts
                    }
                    Err(error) => {
                        let _ = ready_tx.send(Err(error));
                        return;
                    }
                };
                let res = run_loop(&mut queue, &mut core, &commands, |core, _| {
                    for waiter in core.idle_waiters.drain(..) {
                        let _ = waiter.send(());
                    }
                });
                if let Err(error) = res {
                    tracing::error!(%error, "kernel stopped: the store failed");
                }
                core.vats.stop_all();
                if let Err(error) = queue.store_mut().kv_mut().flush() {
                    tracing::error!(%error, "final flush failed");
                }
            })
            .map_err(|e| KernelError::Invalid(format!("cannot start the kernel thread: {e}")))?;
        ready_rx.recv().map_err(|_| KernelError::Stopped)??;
        Ok(Kernel {
            jobs,
            thread: Some(thread),
            bootstrap_timeout: config.bootstrap_timeout,
        })
    }

    /// Runs `f` on the kernel thread between two cranks and returns its result.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Core, &mut KernelQueue) -> R + Send + 'static,
    ) -> Result<R, KernelError> {
        let (reply, answer) = mpsc::channel();
        let job = Job(Box::new(move |core, queue| {
            let _ = reply.send(f(core, queue));
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
        let config = config.clone();
        let launched = self.call(move |core, queue| launch(core, queue, &config))??;
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
        let subcluster = launched.subcluster;
        self.call(move |core, queue| terminate_subcluster(core, queue, subcluster))??;
        Err(failure)
    }

    /// Sends `method(args)` to `target` from the host; the handle tells the result.
    ///
    /// # Errors
    /// [`KernelError::Stopped`] if the kernel thread is gone.
    pub fn queue_message(
        &self,
        target: KRef,
        method: &str,
        args: Vec<Value>,
    ) -> Result<ResultHandle, KernelError> {
        self.queue_message_with_slots(target, method, args, Vec::new())
    }

    /// As [`Kernel::queue_message`], with `args` referring to `slots`.
    ///
    /// # Errors
    /// [`KernelError::Stopped`] if the kernel thread is gone.
    pub fn queue_message_with_slots(
        &self,
        target: KRef,
        method: &str,
        args: Vec<Value>,
        slots: Vec<KRef>,
    ) -> Result<ResultHandle, KernelError> {
        let method = method.to_owned();
        self.call(move |core, queue| -> Result<ResultHandle, KernelError> {
            queue.start_crank()?;
            let res = queue_host_message(core, queue, target, &method, args, slots);
            if res.is_err() {
                queue.abort_crank()?;
            }
            queue.end_crank()?;
            res
        })?
    }

    /// Waits until the run queue is empty and no delivery is in flight.
    ///
    /// # Errors
    /// [`KernelError::Timeout`], [`KernelError::Stopped`].
    pub fn run_until_idle(&self, timeout: Duration) -> Result<(), KernelError> {
        let (reply, idle) = mpsc::channel();
        self.call(move |core, _| core.idle_waiters.push(reply))?;
        idle.recv_timeout(timeout).map_err(|e| match e {
            mpsc::RecvTimeoutError::Timeout => KernelError::Timeout,
            mpsc::RecvTimeoutError::Disconnected => KernelError::Stopped,
        })
    }

    /// Terminates a vat on the host's request, between cranks.
    ///
    /// # Errors
    /// [`KernelError::Vat`] (`Vat does not exist.`) for a vat that is not running.
    pub fn terminate_vat(&self, vat: VatId, reason: Option<String>) -> Result<(), KernelError> {
        self.call(move |core, queue| -> Result<(), KernelError> {
            let reason = reason.map(CapData::error);
            let settled = core.vats.terminate(queue, vat, reason)?;
            core.fire_settled(queue, &settled);
            Ok(())
        })?
    }

    /// Revokes an object: later sends to it go splat (spec §4.4).
    ///
    /// # Errors
    /// [`KernelError::Invalid`] for a promise, [`KernelError::NotFound`] for an unknown
    /// object.
    pub fn revoke(&self, target: KRef) -> Result<(), KernelError> {
        let KRef::Object(object) = target else {
            return Err(KernelError::Invalid(format!(
                "cannot revoke promise {target}"
            )));
        };
        self.call(move |_, queue| -> Result<(), KernelError> {
            queue.start_crank()?;
            let res = queue.store_mut().revoke(object);
            queue.end_crank()?;
            res.map_err(|_| KernelError::NotFound(format!("object {object} does not exist")))
        })?
    }

    /// True if the object is revoked.
    ///
    /// # Errors
    /// [`KernelError::Stopped`], [`KernelError::Store`].
    pub fn is_revoked(&self, object: KObjectId) -> Result<bool, KernelError> {
        self.call(move |_, queue| queue.store().object(object))?
            .map(|record| record.is_some_and(|r| r.revoked))
            .map_err(KernelError::from)
    }

    /// The running vats, in id order.
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
        self.call(move |_, queue| {
            queue
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

    /// Runs `f` on the store between cranks (inspection and tests).
    ///
    /// # Errors
    /// [`KernelError::Stopped`].
    pub fn inspect<R: Send + 'static>(
        &self,
        f: impl FnOnce(&KernelStore) -> R + Send + 'static,
    ) -> Result<R, KernelError> {
        self.call(move |_, queue| f(queue.store()))
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
        let _ = self.jobs.send(Job(Box::new(|_, _| false)));
        thread.join().map_err(|_| KernelError::Stopped)
    }
}

impl Drop for Kernel {
    fn drop(&mut self) {
        let _ = self.stop();
    }
}

fn relaunch_vats(core: &mut Core, queue: &mut KernelQueue) -> Result<(), KernelError> {
    let vats = queue.store().vat_ids()?;
    if vats.is_empty() {
        return Ok(());
    }
    queue.start_crank()?;
    for vat in vats {
        let record = queue
            .store()
            .vat(vat)?
            .ok_or_else(|| KernelError::NotFound(format!("vat {vat} record")))?;
        if let Err(error) = core.vats.run_vat(queue, vat, &record) {
            queue.end_crank()?;
            return Err(error.into());
        }
    }
    queue.end_crank()?;
    Ok(())
}

fn terminate_subcluster(
    core: &mut Core,
    queue: &mut KernelQueue,
    subcluster: SubclusterId,
) -> Result<(), KernelError> {
    let Some(record) = queue.store().subcluster(subcluster)? else {
        return Ok(());
    };
    for (_, vat) in record.vats.iter().rev() {
        if core.vats.is_running(*vat) {
            let settled = core.vats.terminate(queue, *vat, None)?;
            core.fire_settled(queue, &settled);
        }
    }
    queue.start_crank()?;
    queue.store_mut().delete_subcluster(subcluster)?;
    queue.end_crank()?;
    Ok(())
}
