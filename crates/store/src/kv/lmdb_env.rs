//! The only code allowed `unsafe`: opening and resizing the LMDB environment, whose
//! safety rests on how the whole store uses it (one handle per path per process, never
//! `WRITE_MAP`, no transaction open during a resize).
#![allow(unsafe_code)]

use std::path::Path;

use heed::{Env, EnvFlags, EnvOpenOptions, WithoutTls};

use super::open::{Access, classify};
use crate::error::OpenError;

/// Opens the LMDB environment at `path`.
pub(super) fn open_env(
    path: &Path,
    map_size: usize,
    access: Access,
) -> Result<Env<WithoutTls>, OpenError> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_dbs(4);
    if access == Access::Inspect {
        // SAFETY: without locking, LMDB cannot keep a writer in another process from
        // changing pages under our reads. Every inspecting opener (the judgement before an
        // open, a read-only store, a file walk) runs while the store's own lock
        // (`ocap.lock`) is held, by the caller or by the parent process that waits for
        // the walk, so no store writes the file meanwhile.
        unsafe {
            options.flags(EnvFlags::READ_ONLY | EnvFlags::NO_LOCK);
        }
    }
    // SAFETY: the environment is opened once per path across processes (the store's lock
    // refuses a second opener, and heed a second open in this process), never with
    // WRITE_MAP, and the store never truncates its file while it is open.
    let res = unsafe { options.open(path) };
    res.map_err(|err| classify(path, err))
}

/// Sets a new map size.
///
/// # Safety
/// None of this environment's transactions may be open (the caller's invariant).
pub(super) fn resize_env(env: &Env<WithoutTls>, new_size: usize) -> Result<(), heed::Error> {
    // SAFETY: `grow_map` is called only with no transaction open: by `Store::grow` after
    // dropping its reader and aborting the failed write transaction, and by a migration's
    // commit after aborting its failed write transaction (its reads used the separate,
    // closed inspection environment); the store owns the only handle to the environment.
    unsafe { env.resize(new_size) }
}
