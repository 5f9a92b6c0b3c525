//! How to open a kernel ([`KernelConfig`]) and what a launch returns ([`LaunchResult`]).

use std::time::Duration;

use ocap_store::Durability;
use ocap_types::{CapData, KRef, SubclusterId};
use ocap_vat_manager::{LogSink, VatRegistry, WorkerConfig};

use crate::crank_log::CrankLogSink;

/// How to open a kernel: [`KernelConfig::new`], then set the fields that differ from the
/// defaults. `#[non_exhaustive]`, as the kernel's knobs grow: build it with `new`, never
/// with a struct literal.
///
/// ```
/// use std::time::Duration;
/// use ocap_kernel::{Durability, KernelConfig, VatRegistry};
///
/// let mut config = KernelConfig::new(VatRegistry::new());
/// config.durability = Durability::GROUP;
/// config.bootstrap_timeout = Duration::from_secs(5);
/// config.workers.program = Some("/usr/local/bin/ocap".into());
/// // Workers are confined through a launcher: `ocap` is one.
/// config.workers.confinement.launcher = Some("/usr/local/bin/ocap".into());
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct KernelConfig {
    /// When committed cranks reach the disk.
    pub durability: Durability,
    /// The vat code compiled into this host (`bundleName`); vat executables
    /// (`bundlePath`) need no registration.
    pub registry: VatRegistry,
    /// Where vat log lines go (besides `tracing`).
    pub log_sink: Option<LogSink>,
    /// How long `launch_subcluster` waits for the bootstrap result.
    pub bootstrap_timeout: Duration,
    /// How worker processes are run: the worker program for registered code configured
    /// `worker: subprocess` (none by default, so launching such a vat fails), the
    /// per-delivery time limit (30 s) and the confinement of the worker processes (always,
    /// through a launcher this config must name; see docs/confinement.md). A vat that
    /// names its own executable (`VatConfig::bundle_path`) needs no program here: the
    /// store records the executable, so reopening relaunches it with nothing configured.
    pub workers: WorkerConfig,
    /// Wipe the store on open (spec §16.4 step 2): every vat, object, promise and queued
    /// message is gone, and ids start again at 1.
    pub reset_storage: bool,
    /// Where the crank log goes: one [`CrankRecord`](crate::CrankRecord) per crank that
    /// delivered an item, in order, once it is durable (none by default; nothing is
    /// recorded then).
    pub crank_log: Option<CrankLogSink>,
}

impl std::fmt::Debug for KernelConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelConfig")
            .field("durability", &self.durability)
            .field("registry", &self.registry)
            .field("bootstrap_timeout", &self.bootstrap_timeout)
            .field("workers", &self.workers)
            .field("crank_log", &self.crank_log.is_some())
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
            workers: WorkerConfig::default(),
            reset_storage: false,
            crank_log: None,
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
