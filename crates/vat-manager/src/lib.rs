//! Vats from the kernel's side: the registry of vat code, running workers, c-list
//! translation between vat refs and kernel refs, syscall validation, launch, delivery,
//! termination (inside a crank without waiting, or on a host's request) and the cleanup of
//! terminated vats, and the confinement of worker processes (`confine`: the launcher that
//! restricts a worker before its program runs).
//!
//! ```
//! use ocap_vat_manager::{VatManager, VatRegistry};
//!
//! let manager = VatManager::new(VatRegistry::new(), None);
//! assert_eq!(manager.running().count(), 0);
//! ```

mod bundle;
mod confine;
mod counters;
mod error;
mod limits;
mod manager;
mod registry;
mod subprocess;
mod syscall;
mod translate;

#[cfg(test)]
mod tests;

pub use confine::{
    ConfineError, ConfineMode, Confinement, Facilities, LAUNCH_FAILED, LAUNCHER_COMMAND,
    launch_main,
};
pub use counters::VatCounters;
pub use error::VatError;
pub use limits::LimitExceeded;
pub use manager::VatManager;
pub use registry::{VatFactory, VatRegistry};
pub use subprocess::{SubprocessRuntime, WorkerConfig};
pub use syscall::LogSink;
pub use translate::ForgedRef;
