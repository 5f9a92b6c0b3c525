//! The ocap kernel: one thread that owns the store and runs cranks, and the API that hosts
//! use to launch subclusters of vats, send them messages and wait for the results.
//!
//! This crate is a host's one dependency (vat code needs only `ocap-vat`): besides the
//! kernel's own API it re-exports what that API names, from the lower crates, so a host
//! never depends on them. At the root: the values and refs a host builds and reads
//! ([`Value`], [`CapData`], [`KRef`], ...), the configs ([`KernelConfig`] and what it
//! holds, [`ClusterConfig`], [`VatConfig`], ...), vat code registration ([`VatRegistry`]),
//! and the errors [`KernelError`] wraps. In [`inspect`]: the store's tables and records
//! that [`Kernel::inspect`] shows, for debugging and tools.
//!
//! Errors: a store failure is always [`KernelError::Store`], whichever layer met it, and
//! opening the store is [`KernelError::Open`]; what a host may branch on has a variant of
//! its own ([`KernelError::NoSuchSubcluster`], [`InputError::MalformedKref`], ...).
//!
//! A result is waited for with [`ResultHandle::wait`] or awaited ([`ResultHandle`] is a
//! `Future`, for any async runtime). A value prints for users as JSON with
//! [`Value::to_json_string`], and converts to and from `serde_json` with [`Value::to_json`]
//! and [`Value::from_json`].
//!
//! ```
//! use std::time::Duration;
//!
//! use ocap_kernel::{ClusterConfig, Kernel, KernelConfig, Value, VatConfig, VatRegistry};
//! use ocap_vat::{Baggage, Ref, Result, Runtime, Val, Vat};
//!
//! // A vat: its root says it is ready when bootstrapped, and answers `greet(name)`.
//! fn greeter(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
//!     Ok(vat
//!         .object("greeter")
//!         .bootstrap(async |_vat, _roots| Ok("ready"))
//!         .method("greet", |_vat, args| Ok(format!("hello, {}", args.str(0)?)))
//!         .build())
//! }
//!
//! let mut registry = VatRegistry::new();
//! registry.register("greeter", || Runtime::boxed(greeter));
//! let dir = tempfile::tempdir()?;
//! let kernel = Kernel::open(dir.path(), KernelConfig::new(registry))?;
//!
//! let cluster = ClusterConfig::builder("main")
//!     .vat("main", VatConfig::named("greeter"))
//!     .build()?;
//! let launched = kernel.launch_subcluster(&cluster)?;
//! assert_eq!(launched.bootstrap_result.decode()?, Value::str("ready"));
//!
//! let reply = kernel.queue_message(launched.root, "greet", vec![Value::str("host")])?;
//! let value = reply.wait(Duration::from_secs(10))?.decode()?;
//! assert_eq!(value.to_json_string(), r#""hello, host""#);
//! kernel.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod config;
mod core;
mod crank_log;
mod error;
mod handle;
mod input;
pub mod inspect;
mod kernel;
mod lifecycle;
mod oneshot;
mod services;
mod subcluster;
mod thread;
mod upgrade;

#[cfg(test)]
mod tests;

pub use config::{KernelConfig, LaunchResult};
pub use crank_log::{CrankHash, CrankLogSink, CrankOutcome, CrankRecord, HostInput};
pub use error::{InputError, KernelError, Rejection};
pub use handle::ResultHandle;
pub use input::MAX_HOST_MESSAGE_BYTES;
pub use kernel::Kernel;
pub use lifecycle::{SubclusterInfo, VatInfo};
/// How many c-list entries of a terminated vat one crank cleans up at most.
pub use ocap_queue::CLEANUP_BUDGET;
pub use ocap_queue::QueueError;
pub use ocap_store::{
    BackupError, CrankError, Durability, KeyProblem, OpenError, Record, StoreError,
};
pub use ocap_types::{
    CapData, ClusterConfig, ClusterConfigBuilder, ConfigError, DecodeError, DepthError, EndpointId,
    ErrorCode, JsonError, KObjectId, KPromiseId, KRef, LogLevel, Message, MethargsError,
    OrderedVats, ParseRefError, Resolution, RunQueueItem, SubclusterId, Syscall, VRef, Value,
    VatConfig, VatId, VatLimits, VatLog, VatRuntime, WorkerKind,
};
pub use ocap_vat_manager::{
    ConfineError, ConfineMode, Confinement, Facilities, LAUNCH_FAILED, LAUNCHER_COMMAND,
    LimitExceeded, LogSink, VatCounters, VatError, VatFactory, VatRegistry, WorkerConfig,
    launch_main,
};
pub use services::{KernelService, ServiceCall};
pub use thread::JOB_QUEUE_CAPACITY;
pub use upgrade::{BundleSpec, VatUpgrade};
