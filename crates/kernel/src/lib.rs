//! The ocap kernel: one thread that owns the store and runs cranks, and the API that hosts
//! use to launch subclusters of vats, send them messages and wait for the results.
//!
//! ```
//! use ocap_kernel::{Kernel, KernelConfig};
//! use ocap_vat_manager::VatRegistry;
//!
//! let dir = tempfile::tempdir()?;
//! let kernel = Kernel::open(dir.path(), KernelConfig::new(VatRegistry::new()))?;
//! assert!(kernel.vat_ids()?.is_empty());
//! kernel.shutdown()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod core;
mod error;
mod gc;
mod handle;
mod input;
mod kernel;
mod lifecycle;
mod oneshot;
mod services;
mod subcluster;

#[cfg(test)]
mod tests;

pub use error::{InputError, KernelError, Rejection};
pub use handle::ResultHandle;
pub use kernel::{JOB_QUEUE_CAPACITY, Kernel, KernelConfig, LaunchResult};
pub use lifecycle::{SubclusterInfo, VatInfo};
pub use services::{KernelService, ServiceCall};
