//! The queue crate's error type.

use ocap_store::{CrankError, Owner, StoreError};
use ocap_types::KPromiseId;

/// What can go wrong in the queues and the crank machinery.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// A cached queue was used after a rollback without `refresh`.
    #[error("queue {name:?} used after rollback without refresh")]
    StaleCache {
        /// The queue's name.
        name: String,
    },
    /// A stored item does not decode.
    #[error("queue {name:?} holds an item that does not decode: {reason}")]
    Corrupt {
        /// The queue's name.
        name: String,
        /// Why.
        reason: String,
    },
    /// A resolution was refused (spec §5.5).
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// A crank handler failed for a reason of its own, not the store's (a bug in the
    /// kernel: the crank is discarded as after any kernel failure).
    #[error("the crank handler failed")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store failed, or was used outside the crank protocol. The one way a store error
    /// surfaces from the queues.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<CrankError> for QueueError {
    fn from(err: CrankError) -> Self {
        QueueError::Store(err.into())
    }
}

/// Why a promise could not be resolved. These texts name krefs: they go to logs and to the
/// vat-termination path, never into a rejection value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The promise is unknown.
    #[error("unknown kernel promise {0}")]
    Unknown(KPromiseId),
    /// The promise is already settled.
    #[error("{0} was already resolved")]
    AlreadyResolved(KPromiseId),
    /// The resolver is not the decider.
    #[error("{resolver} not permitted to resolve {promise} because {}", decider_text(.decider))]
    NotDecider {
        /// Who tried.
        resolver: String,
        /// The promise.
        promise: KPromiseId,
        /// Its decider.
        decider: Option<Owner>,
    },
}

fn decider_text(decider: &Option<Owner>) -> String {
    match decider {
        Some(owner) => format!("its decider is {owner}"),
        None => "it has no decider".to_owned(),
    }
}
