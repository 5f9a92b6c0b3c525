//! Run-queue items: what one crank delivers.

mod codec;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use crate::capdata::Message;
use crate::refs::{EndpointId, KObjectId, KPromiseId, KRef};
use crate::value::DecodeError;

/// One unit of work. Only `Send` and `Notify` are stored in the run queue; GC and reap items
/// are synthesized from their own tables (spec §6.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RunQueueItem {
    /// Deliver `message` to whatever `target` routes to.
    Send {
        /// An object or a promise.
        target: KRef,
        /// The message, in kernel space.
        message: Message<KRef>,
        /// The endpoint that sent it, whose queued-message count it adds to until it leaves
        /// the queues; `None` for the host's and services' sends (and for sends stored
        /// before senders were recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender: Option<EndpointId>,
    },
    /// Tell `endpoint` that `promise` is settled.
    Notify {
        /// The subscriber.
        endpoint: EndpointId,
        /// The settled promise.
        promise: KPromiseId,
    },
    /// Tell an owner its exports are no longer reachable.
    DropExports {
        /// The owner.
        endpoint: EndpointId,
        /// The objects.
        objects: Vec<KObjectId>,
    },
    /// Tell an owner its exports are no longer recognizable.
    RetireExports {
        /// The owner.
        endpoint: EndpointId,
        /// The objects.
        objects: Vec<KObjectId>,
    },
    /// Tell an importer the objects it imports are gone.
    RetireImports {
        /// The importer.
        endpoint: EndpointId,
        /// The objects.
        objects: Vec<KObjectId>,
    },
    /// Ask an endpoint to collect its garbage and report it.
    BringOutYourDead {
        /// The endpoint.
        endpoint: EndpointId,
    },
}

impl RunQueueItem {
    /// The item's CBOR: the bytes [`crate::cbor::to_vec`] gives, written without serde (the
    /// run queue encodes an item on nearly every crank).
    pub fn to_cbor(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes an item from its CBOR, as [`crate::cbor::from_slice`] does (and through it,
    /// for any form but the one [`RunQueueItem::to_cbor`] writes).
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are malformed or not an item.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, DecodeError> {
        codec::decode(bytes)
    }

    /// A short name of the item's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            RunQueueItem::Send { .. } => "send",
            RunQueueItem::Notify { .. } => "notify",
            RunQueueItem::DropExports { .. } => "dropExports",
            RunQueueItem::RetireExports { .. } => "retireExports",
            RunQueueItem::RetireImports { .. } => "retireImports",
            RunQueueItem::BringOutYourDead { .. } => "bringOutYourDead",
        }
    }
}
