//! The kernel's error types.

use std::sync::Arc;

use ocap_queue::QueueError;
use ocap_store::{CrankError, OpenError, StoreError};
use ocap_types::{
    CapData, ConfigError, KObjectId, KPromiseId, KRef, MethargsError, ParseRefError, SubclusterId,
};
use ocap_vat_manager::VatError;

/// Why a kernel operation failed. One failure surfaces one way: a store failure is
/// [`KernelError::Store`] whether the store failed under the queues, the vat manager or the
/// kernel itself ([`From<QueueError>`] and [`From<VatError>`] unwrap it), and
/// [`KernelError::Queue`] and [`KernelError::Vat`] never hold one.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KernelError {
    /// The store could not be opened.
    #[error(transparent)]
    Open(#[from] OpenError),
    /// A backup of the running store could not be written.
    #[error(transparent)]
    Backup(#[from] ocap_store::BackupError),
    /// The store failed. The kernel cannot continue the operation; a crank in progress was
    /// rolled back.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queues refused an operation (a bug in the kernel, never a store failure).
    #[error(transparent)]
    Queue(QueueError),
    /// A vat operation failed (an unknown or stopped vat, a vat that failed to start).
    #[error(transparent)]
    Vat(VatError),
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
    /// The kernel thread could not be started.
    #[error("cannot start the kernel thread")]
    Spawn(#[source] std::io::Error),
    /// The kernel could not queue a host's message; the kernel's own error is the source
    /// (shared: a [`crate::ResultHandle`] reports it every time it is asked).
    #[error("the kernel could not queue the message")]
    NotQueued(#[source] Arc<KernelError>),
    /// A blocking kernel API call made on the kernel thread (from a service or a log sink),
    /// where waiting for the answer would deadlock.
    #[error("the kernel API cannot be called from the kernel thread (a service or log sink)")]
    CalledOnKernelThread,
    /// A wait for a result made on the kernel thread, which would wait for itself.
    #[error("a result cannot be awaited on the kernel thread (a service or log sink)")]
    AwaitedOnKernelThread,
    /// No live subcluster has this id.
    #[error("Subcluster does not exist.")]
    NoSuchSubcluster(SubclusterId),
    /// A cluster config names a kernel service that is not registered in this run.
    #[error("no registered kernel service '{name}'")]
    NoSuchService {
        /// The service's name.
        name: String,
    },
    /// A kernel service of this name is already registered in this run.
    #[error("Kernel service \"{name}\" is already registered")]
    ServiceAlreadyRegistered {
        /// The service's name.
        name: String,
    },
    /// The object does not exist.
    #[error("object {0} does not exist")]
    NoSuchObject(KObjectId),
    /// The object is already revoked.
    #[error("object {0} already revoked")]
    AlreadyRevoked(KObjectId),
    /// Only objects can be revoked, not promises.
    #[error("cannot revoke promise {0}")]
    RevokePromise(KPromiseId),
}

impl From<QueueError> for KernelError {
    /// Flattens: the queues' store error becomes [`KernelError::Store`].
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::Store(err) => KernelError::Store(err),
            other => KernelError::Queue(other),
        }
    }
}

impl From<VatError> for KernelError {
    /// Flattens: a store error the vat manager met (directly or through the queues)
    /// becomes [`KernelError::Store`], a queue error [`KernelError::Queue`].
    fn from(err: VatError) -> Self {
        match err {
            VatError::Store(err) => KernelError::Store(err),
            VatError::Queue(err) => KernelError::from(err),
            other => KernelError::Vat(other),
        }
    }
}

impl From<CrankError> for KernelError {
    fn from(err: CrankError) -> Self {
        KernelError::Store(err.into())
    }
}

/// Host input the kernel refuses: what would otherwise kill the receiving vat, or put a
/// reference to nothing into its c-list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InputError {
    /// The arguments cannot become a message a receiver decodes: nested too deeply, or
    /// naming a slot past the slots given.
    #[error("host message refused: {0}")]
    Args(MethargsError),
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
    /// A target given as text is empty (the reference kernel's phrase).
    #[error("invalid reference: incrementRefCount called with empty kref")]
    EmptyKref,
    /// A target given as text does not start with `k`: not a kernel reference at all.
    #[error("invalid reference context: {text:?} is not a kernel reference")]
    NotKernelRef {
        /// The text, cut to 64 characters.
        text: String,
    },
    /// A target given as text starts with `k` but is not `ko<number>` or `kp<number>`.
    #[error(transparent)]
    MalformedKref(#[from] ParseRefError),
}

impl From<MethargsError> for InputError {
    /// The arguments' error is shown in [`InputError::Args`]'s message, not as its source.
    fn from(err: MethargsError) -> Self {
        InputError::Args(err)
    }
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
