//! The ocap kernel's state, work queues and crank loop: `StoredQueue` (persistent FIFO
//! with a refreshable cache), `KernelState` (the store, the run queue and the crank buffer)
//! with `Crank`, the open transaction through which every change is made (enqueue,
//! resolve, roll back, commit), and `run_crank` / `run_loop` driving a `CrankHandler` one
//! item per crank.
//!
//! ```
//! use ocap_queue::{KernelState, QueueError};
//! use ocap_store::{KernelStore, Owner, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let mut state = KernelState::new(KernelStore::new(Store::open(dir.path())?))?;
//! // A transaction that fails keeps nothing.
//! let failed = state.transaction(|crank| -> Result<(), QueueError> {
//!     crank.store_mut().create_object(Owner::Kernel)?;
//!     Err(QueueError::StaleCache { name: "example".into() })
//! });
//! assert!(failed.is_err());
//! let (object, _settled) = state.transaction(|crank| -> Result<_, QueueError> {
//!     Ok(crank.store_mut().create_object(Owner::Kernel)?)
//! })?;
//! assert!(state.store().object(object)?.is_some());
//! assert_eq!(state.run_queue_len()?, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod crank_loop;
mod error;
mod gc;
mod state;
mod stored_queue;

#[cfg(test)]
mod tests;

pub use crank_loop::{
    COMMANDS_PER_TURN, Command, CrankHandler, CrankReport, CrankResult, Termination, run_crank,
    run_loop,
};
pub use error::{QueueError, ResolveError};
pub use gc::{CLEANUP_BUDGET, CleanupReport};
pub use state::{Crank, CrankSavepoint, KernelResolution, KernelState, Mode};
pub use stored_queue::{QueueItem, StoredQueue};
