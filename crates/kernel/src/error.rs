//! The kernel's error types.

use ocap_queue::QueueError;
use ocap_store::StoreError;
use ocap_types::{CapData, ConfigError, KRef, MethargsError};
use ocap_vat_manager::VatError;

/// Why a kernel operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queues failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
    /// A vat operation failed.
    #[error(transparent)]
    Vat(#[from] VatError),
    /// The cluster config is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A message's result was rejected.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// The host's input was refused before anything was allocated for it.
    #[error(transparent)]
    Input(#[from] InputError),
    /// Waiting for a result took longer than the caller allowed.
    #[error("timed out waiting for the kernel")]
    Timeout,
    /// The kernel thread has stopped.
    #[error("the kernel has stopped")]
    Stopped,
    /// The kernel's job queue is full and the caller is the kernel thread itself (a service
    /// or log sink), which cannot wait for it.
    #[error("the kernel's job queue is full")]
    Busy,
    /// An operation named something that does not exist.
    #[error("{0}")]
    NotFound(String),
    /// An operation that is not allowed on its argument.
    #[error("{0}")]
    Invalid(String),
}

/// Host input the kernel refuses: what would otherwise kill the receiving vat, or put a
/// reference to nothing into its c-list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The arguments cannot become a message a receiver decodes: nested too deeply, or
    /// naming a slot past the slots given.
    #[error("host message refused: {0}")]
    Args(#[from] MethargsError),
    /// A slot names an object or promise that does not exist.
    #[error("host message refused: {kref} does not exist")]
    Unknown {
        /// The kref.
        kref: KRef,
    },
    /// The message is larger than any receiver can be sent.
    #[error("host message refused: {bytes} bytes, over the limit of {limit}")]
    TooLarge {
        /// Its size.
        bytes: usize,
        /// The limit ([`crate::MAX_HOST_MESSAGE_BYTES`]).
        limit: usize,
    },
}

/// A rejected result, as the host sees it (spec §3.5): the message is the rejection's own
/// error message when it is an `Error` value, else a rendering of the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Rejection {
    message: String,
    value: CapData<KRef>,
}

impl Rejection {
    /// Decodes a rejection value.
    pub fn new(value: CapData<KRef>) -> Self {
        let message = match value.decode() {
            Ok(ocap_types::Value::Error { message, .. }) => message,
            Ok(other) => format!("rejected with {other}"),
            Err(e) => format!("rejected with a malformed value ({e})"),
        };
        Rejection { message, value }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The rejection value itself.
    pub fn value(&self) -> &CapData<KRef> {
        &self.value
    }
}
