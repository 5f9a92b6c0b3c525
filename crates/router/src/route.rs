//! Route computation for a send (spec §8.1) and the retire list of a notify (spec §5.6).
//!
//! Invariant: nothing here writes; the caller carries out the route.

use std::collections::BTreeSet;

use ocap_store::{
    ChainEnd, ObjectRecord, Owner, PromiseRecord, PromiseState, StoreError, follow_promises,
};
use ocap_types::{CapData, KObjectId, KPromiseId, KRef, SplatReason};

/// Read access to the tables routing needs; the store implements it, tests may fake it.
pub trait RouteView {
    /// The object's record.
    ///
    /// # Errors
    /// A store failure.
    fn object(&self, id: KObjectId) -> Result<Option<ObjectRecord>, StoreError>;
    /// The promise's record.
    ///
    /// # Errors
    /// A store failure.
    fn promise(&self, id: KPromiseId) -> Result<Option<PromiseRecord>, StoreError>;
}

impl RouteView for ocap_store::KernelStore {
    fn object(&self, id: KObjectId) -> Result<Option<ObjectRecord>, StoreError> {
        ocap_store::KernelStore::object(self, id)
    }
    fn promise(&self, id: KPromiseId) -> Result<Option<PromiseRecord>, StoreError> {
        ocap_store::KernelStore::promise(self, id)
    }
}

/// Why a send cannot be delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Splat {
    /// A kernel-authored cause.
    Reason(SplatReason),
    /// The target promise was rejected: its rejection passes through unchanged.
    Rejected(CapData<KRef>),
}

impl Splat {
    /// The value the message's result is rejected with.
    pub fn rejection(&self) -> CapData<KRef> {
        match self {
            Splat::Reason(reason) => reason.capdata(),
            Splat::Rejected(value) => value.clone(),
        }
    }
}

/// Where a send goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// To the owner of `object`.
    Deliver {
        /// The owner (an endpoint, or the kernel for a service).
        owner: Owner,
        /// The object the message is for.
        object: KObjectId,
    },
    /// Onto the queue of an unresolved promise.
    Requeue(KPromiseId),
    /// Nowhere.
    Splat(Splat),
}

/// Computes the route of a send to `target`.
///
/// A promise fulfilled to another promise is followed (spec D11); a promise met twice ends
/// the walk as a bad resolution instead of looping. An unknown promise routes like an
/// object with no owner (spec §7.11).
///
/// # Errors
/// A store failure.
pub fn route(view: &impl RouteView, target: KRef) -> Result<Route, StoreError> {
    let end = follow_promises(target, |promise| {
        Ok(view.promise(promise)?.map(|record| record.state))
    })?;
    Ok(match end {
        ChainEnd::Object(object) => return route_to_object(view, object),
        ChainEnd::Unresolved(promise) => Route::Requeue(promise),
        ChainEnd::Rejected(value) => Route::Splat(Splat::Rejected(value)),
        ChainEnd::NotAnObject => Route::Splat(Splat::Reason(SplatReason::NotAnObject)),
        ChainEnd::Unknown => Route::Splat(Splat::Reason(SplatReason::Deleted)),
    })
}

fn route_to_object(view: &impl RouteView, object: KObjectId) -> Result<Route, StoreError> {
    let Some(record) = view.object(object)? else {
        return Ok(Route::Splat(Splat::Reason(SplatReason::Deleted)));
    };
    if record.revoked {
        return Ok(Route::Splat(Splat::Reason(SplatReason::Revoked)));
    }
    Ok(match record.owner {
        None => Route::Splat(Splat::Reason(SplatReason::Deleted)),
        Some(owner) => Route::Deliver { owner, object },
    })
}

/// The promises a notify of `promise` reports (spec §5.6): the promise itself, then every
/// settled promise found depth-first in the values, each once.
///
/// # Errors
/// A store failure.
pub fn retire_list(
    view: &impl RouteView,
    promise: KPromiseId,
) -> Result<Vec<(KPromiseId, PromiseRecord)>, StoreError> {
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let mut stack = vec![promise];
    while let Some(next) = stack.pop() {
        if !seen.insert(next) {
            continue;
        }
        let Some(record) = view.promise(next)? else {
            continue;
        };
        let value = match &record.state {
            PromiseState::Fulfilled(value) | PromiseState::Rejected(value) => value,
            PromiseState::Unresolved { .. } => continue,
        };
        // Push in reverse so that slots are visited in order.
        for slot in value.slots.iter().rev() {
            if let KRef::Promise(inner) = slot
                && !seen.contains(inner)
            {
                stack.push(*inner);
            }
        }
        out.push((next, record));
    }
    Ok(out)
}
