//! The ocap kernel's work queues and crank loop: `StoredQueue` (persistent FIFO with a
//! refreshable cache), `KernelQueue` (run queue, crank buffer, enqueue and resolve), and
//! `run_crank` / `run_loop` driving a `CrankHandler` one item per crank.
//!
//! ```
//! use ocap_queue::KernelQueue;
//! use ocap_store::{KernelStore, Store};
//!
//! let dir = tempfile::tempdir()?;
//! let queue = KernelQueue::new(KernelStore::new(Store::open(dir.path())?))?;
//! assert_eq!(queue.run_queue_len()?, 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod crank;
mod error;
mod gc;
mod kernel_queue;
mod stored_queue;

#[cfg(test)]
mod tests;

pub use crank::{
    Command, CrankHandler, CrankReport, CrankResult, Termination, run_crank, run_loop,
};
pub use error::{QueueError, ResolveError};
pub use kernel_queue::{KernelQueue, KernelResolution, Mode, START_SAVEPOINT};
pub use stored_queue::StoredQueue;
