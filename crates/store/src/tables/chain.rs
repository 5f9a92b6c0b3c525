//! Following a chain of promises each fulfilled with the next one (spec §8.1, D11): the one
//! walk that both routing and queueing use to find where a send to a promise ends up.
//!
//! Invariant: the walk visits each promise at most once, so a cycle ends it instead of
//! looping, and it only reads.

use std::collections::BTreeSet;

use ocap_types::{CapData, KObjectId, KPromiseId, KRef};

use super::PromiseState;
use crate::error::StoreError;

/// Where a chain of promises fulfilled with promises ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainEnd {
    /// At an object: the chain's first non-promise reference.
    Object(KObjectId),
    /// At a promise that is not settled yet.
    Unresolved(KPromiseId),
    /// At a rejected promise, with its rejection.
    Rejected(CapData<KRef>),
    /// At a promise fulfilled with something other than one reference, or at a promise met
    /// a second time (a cycle).
    NotAnObject,
    /// At a promise the store does not know.
    Unknown,
}

/// Follows `target` through promises fulfilled with a single reference, reading each
/// promise's state through `state_of`.
///
/// # Errors
/// What `state_of` returns.
pub fn follow_promises(
    target: KRef,
    mut state_of: impl FnMut(KPromiseId) -> Result<Option<PromiseState>, StoreError>,
) -> Result<ChainEnd, StoreError> {
    let mut seen = BTreeSet::new();
    let mut next = target;
    loop {
        let promise = match next {
            KRef::Object(object) => return Ok(ChainEnd::Object(object)),
            KRef::Promise(promise) => promise,
        };
        if !seen.insert(promise) {
            return Ok(ChainEnd::NotAnObject);
        }
        match state_of(promise)? {
            None => return Ok(ChainEnd::Unknown),
            Some(PromiseState::Unresolved { .. }) => return Ok(ChainEnd::Unresolved(promise)),
            Some(PromiseState::Rejected(value)) => return Ok(ChainEnd::Rejected(value)),
            Some(PromiseState::Fulfilled(value)) => match value.single_ref() {
                Some(kref) => next = *kref,
                None => return Ok(ChainEnd::NotAnObject),
            },
        }
    }
}
