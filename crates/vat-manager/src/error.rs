//! The vat manager's error type.

use std::path::PathBuf;

use ocap_queue::QueueError;
use ocap_store::{CrankError, StoreError};
use ocap_types::VatId;

use crate::confine::ConfineError;

/// What can go wrong managing vats. A misbehaving vat is not an error here: it is
/// terminated and the outcome reported as data. A store failure is always
/// [`VatError::Store`], however deep it happened (in the queues, in a syscall, while a vat
/// was launched): never wrapped in another variant.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VatError {
    /// No running vat has this id (the "no such endpoint" condition, spec §8.4).
    #[error("Vat does not exist.")]
    NoSuchVat(VatId),
    /// A vat with this id is already running.
    #[error("Vat already exists.")]
    AlreadyRunning(VatId),
    /// The vat's code is not registered.
    #[error("no vat named {0:?} is registered")]
    UnknownCode(String),
    /// Launching failed for a reason of the vat's own (its code, its start); `cause` says
    /// why. A store failure during a launch is [`VatError::Store`] instead.
    #[error("Failed to launch vat {vat} ({name})")]
    Launch {
        /// The vat id (consumed).
        vat: VatId,
        /// The vat's name.
        name: String,
        /// Why.
        #[source]
        cause: Box<VatError>,
    },
    /// Upgrading a vat failed: its new version could not start (`cause` says why). The
    /// upgrade was undone: the vat runs its old version, its state untouched.
    #[error("Failed to upgrade vat {vat} ({name}) to {code:?}")]
    Upgrade {
        /// The vat.
        vat: VatId,
        /// The vat's name.
        name: String,
        /// The code it was to run.
        code: String,
        /// Why.
        #[source]
        cause: Box<VatError>,
    },
    /// The vat's runtime failed to start.
    #[error("Failed to initialize vat {vat}: {message}")]
    Start {
        /// The vat.
        vat: VatId,
        /// The runtime's error.
        message: String,
    },
    /// The vat's worker speaks another version of the worker protocol than this kernel
    /// (`docs/vat-protocol.md` §5): it was built against another release of `ocap-vat`. The
    /// vat does not start.
    #[error(
        "{} (vat {vat}: build it against the ocap-vat of this kernel's release)",
        protocol_mismatch(*worker, *kernel)
    )]
    ProtocolVersion {
        /// The vat.
        vat: VatId,
        /// The worker's version; 0 when it announced none (it predates versions).
        worker: u32,
        /// This kernel's version.
        kernel: u32,
    },
    /// The executable a vat runs (its config's `bundle_path`) cannot be read: the vat
    /// does not start.
    #[error("cannot read the executable of vat {vat}, {}: {reason}", path.display())]
    BundleUnreadable {
        /// The vat.
        vat: VatId,
        /// The executable.
        path: PathBuf,
        /// Why (the system's words).
        reason: String,
    },
    /// The executable a vat runs is not the one it was launched (or last upgraded) with:
    /// the vat does not start until it is upgraded to the new build.
    #[error(
        "the executable of vat {vat}, {}, changed since the vat was launched or last upgraded (recorded {recorded}, found {found}); to run the new build, upgrade the vat to it: `ocap upgrade {vat} {}` (Kernel::upgrade_vat with BundleSpec::Path)",
        path.display(),
        path.display()
    )]
    BundleChanged {
        /// The vat.
        vat: VatId,
        /// The executable.
        path: PathBuf,
        /// The hash the vat's record holds.
        recorded: String,
        /// The executable's hash now.
        found: String,
    },
    /// The vat's worker cannot be started confined as the operator asked (the OS lacks a
    /// facility, no launcher is configured, its program is missing).
    #[error("Failed to start vat {vat} confined")]
    Confine {
        /// The vat.
        vat: VatId,
        /// Why.
        #[source]
        cause: ConfineError,
    },
    /// The target object is not exported by its owner (spec §7.11).
    #[error("object is not in its owner's c-list")]
    NotExported,
    /// The queues refused an operation (never [`QueueError::Store`]: that is
    /// [`VatError::Store`]).
    #[error(transparent)]
    Queue(QueueError),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<QueueError> for VatError {
    /// Flattens: the queues' store error becomes [`VatError::Store`].
    fn from(err: QueueError) -> Self {
        match err {
            QueueError::Store(err) => VatError::Store(err),
            other => VatError::Queue(other),
        }
    }
}

impl From<CrankError> for VatError {
    fn from(err: CrankError) -> Self {
        VatError::Store(err.into())
    }
}

impl From<VatError> for QueueError {
    /// For the crank loop, whose handler speaks [`QueueError`]: a store failure stays
    /// [`QueueError::Store`]; any other failure of a vat operation that reaches the loop is
    /// the kernel's own ([`QueueError::Internal`]).
    fn from(err: VatError) -> Self {
        match err {
            VatError::Store(err) => QueueError::Store(err),
            VatError::Queue(err) => err,
            other => QueueError::Internal(Box::new(other)),
        }
    }
}

/// What a worker of protocol version `worker` and a kernel of version `kernel` disagree on:
/// the text of [`VatError::ProtocolVersion`] and of the failed start that leads to it.
pub(crate) fn protocol_mismatch(worker: u32, kernel: u32) -> String {
    format!("vat worker speaks protocol version {worker}, this kernel speaks {kernel}")
}
