//! The vat manager's error type.

use ocap_queue::QueueError;
use ocap_store::StoreError;
use ocap_types::VatId;

/// What can go wrong managing vats. A misbehaving vat is not an error here: it is
/// terminated and the outcome reported as data.
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
    /// Launching failed; `cause` says why.
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
    /// The vat's runtime failed to start.
    #[error("Failed to initialize vat {vat}: {message}")]
    Start {
        /// The vat.
        vat: VatId,
        /// The runtime's error.
        message: String,
    },
    /// The target object is not exported by its owner (spec §7.11).
    #[error("object is not in its owner's c-list")]
    NotExported,
    /// The queues failed.
    #[error(transparent)]
    Queue(#[from] QueueError),
}

impl From<StoreError> for VatError {
    fn from(err: StoreError) -> Self {
        VatError::Queue(QueueError::Store(err))
    }
}
