//! Checks of what a host hands the kernel, done before anything is allocated for it.
//!
//! Invariant: a host message reaches the run queue only if every receiver can decode it
//! and every reference in it exists. Arguments are checked on the host's thread, without
//! recursion, so input of any depth is refused with an error (and torn down without
//! recursion); the references are checked on the kernel thread, in the job's own
//! transaction, before the result promise is made.

use ocap_store::{KernelStore, StoreError};
use ocap_types::{CapData, KRef, Value, check_args};

use crate::error::{InputError, KernelError};

/// `args`, if they can become a message over `slots` (see [`check_args`]). Refused
/// arguments are disposed of here, so a host's value of any depth cannot overflow the
/// stack when it is dropped.
///
/// # Errors
/// [`InputError::Args`].
pub(crate) fn check_host_args(args: Vec<Value>, slots: &[KRef]) -> Result<Vec<Value>, InputError> {
    match check_args(&args, slots.len()) {
        Ok(()) => Ok(args),
        Err(error) => {
            args.into_iter().for_each(Value::dispose);
            Err(error.into())
        }
    }
}

/// The largest host message the kernel takes, in bytes of encoded arguments plus 8 per
/// slot: well inside what one frame to a worker process can carry, so a message a host
/// may send can always be delivered.
pub const MAX_HOST_MESSAGE_BYTES: usize = 8 << 20;

/// Refuses a message too large to deliver (see [`MAX_HOST_MESSAGE_BYTES`]).
///
/// # Errors
/// [`InputError::TooLarge`].
pub(crate) fn check_size(methargs: &CapData<KRef>) -> Result<(), InputError> {
    let bytes = methargs
        .body
        .len()
        .saturating_add(methargs.slots.len().saturating_mul(8));
    if bytes > MAX_HOST_MESSAGE_BYTES {
        return Err(InputError::TooLarge {
            bytes,
            limit: MAX_HOST_MESSAGE_BYTES,
        });
    }
    Ok(())
}

/// Refuses `slots` naming an object or promise the kernel does not have: once in a c-list,
/// a dangling kref would be a vat's import of nothing.
///
/// # Errors
/// [`InputError::Unknown`] for the first such kref, [`KernelError::Store`].
pub(crate) fn check_known(store: &KernelStore, slots: &[KRef]) -> Result<(), KernelError> {
    match first_unknown(store, slots)? {
        Some(kref) => Err(InputError::Unknown { kref }.into()),
        None => Ok(()),
    }
}

/// The first of `krefs` the store has no record of.
pub(crate) fn first_unknown(
    store: &KernelStore,
    krefs: &[KRef],
) -> Result<Option<KRef>, StoreError> {
    for kref in krefs {
        let known = match kref {
            KRef::Object(id) => store.object(*id)?.is_some(),
            KRef::Promise(id) => store.promise_state(*id)?.is_some(),
        };
        if !known {
            return Ok(Some(*kref));
        }
    }
    Ok(None)
}
