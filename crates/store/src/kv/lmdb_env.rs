//! The only code of the store allowed `unsafe`: opening and resizing the LMDB environment,
//! whose safety rests on how the whole store uses it (one handle per path per process,
//! never `WRITE_MAP`, no transaction open during a resize), and the commit's writes through
//! one cursor, whose heed calls are `unsafe` only because a value read through the
//! transaction must not be held across a write (the commit reads nothing).
#![allow(unsafe_code)]

use std::path::Path;

use heed::types::Bytes;
use heed::{Database, Env, EnvFlags, EnvOpenOptions, PutFlags, RwTxn, WithoutTls};

use super::open::{Access, classify};
use super::overlay::{CommitEntry, Known};
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

/// Writes `entries` (in ascending key order) through one cursor. LMDB looks for a key in
/// the cursor's leaf page before it descends the tree, so in key order most writes skip
/// the descent that `Database::put` and `delete` pay for each key: 8.2k of burst's 63.9k
/// instructions a crank (docs/performance.md, round 6).
///
/// A cursor deletes where it stands, and only a put moves it to a key: a deletion of a key
/// LMDB is known to hold ([`Slot::in_lmdb`](super::overlay::Slot), when `trust_known`)
/// moves there with a `NO_OVERWRITE` put, which leaves a present key as it is. Any other
/// deletion is left to `Database::delete` after the cursor's pass: moving there would
/// insert an absent key first, and an insert that splits a page which the deletion then
/// merges away frees a page the file never gets, so that the file ends short of the last
/// page its header counts (found by a review; test
/// `deleting_absent_keys_leaves_a_file_that_reopens`). Returns false, having stopped, if a
/// key known to be there was not (a caller's false claim, or damage): the caller then
/// drops this transaction and writes again without trusting what was known.
pub(super) fn write_sorted(
    db: &Database<Bytes, Bytes>,
    wtxn: &mut RwTxn<'_>,
    entries: &[CommitEntry<'_>],
    trust_known: bool,
) -> Result<bool, heed::Error> {
    let mut elsewhere = Vec::new();
    let mut cursor = db.iter_mut(wtxn)?;
    for (_, key, slot) in entries {
        let key: &[u8] = key;
        // heed marks cursor writes `unsafe` because a value borrowed from the transaction
        // would dangle once the page under it changes. This loop holds none: `key` and
        // `value` borrow the overlay, never the transaction, and no value the cursor
        // returns is kept.
        match &slot.value {
            // Without `MDB_CURRENT` this is LMDB's ordinary put, positioned by `key`.
            // SAFETY: no value borrowed from the transaction is alive (above).
            Some(value) => unsafe {
                cursor.put_current_with_options::<Bytes>(PutFlags::empty(), key, value)?;
            },
            None if trust_known && slot.in_lmdb == Known::Present => {
                // `KeyExist`: the cursor stands on the key, left as it was.
                // SAFETY: no value borrowed from the transaction is alive (above).
                match unsafe {
                    cursor.put_current_with_options::<Bytes>(PutFlags::NO_OVERWRITE, key, &[])
                } {
                    Err(heed::Error::Mdb(heed::MdbError::KeyExist)) => {}
                    // Inserted: the key was not there. This transaction is dropped.
                    Ok(()) => return Ok(false),
                    Err(err) => return Err(err),
                }
                // SAFETY: no value borrowed from the transaction is alive (above).
                unsafe { cursor.del_current()? };
            }
            None => elsewhere.push(key),
        }
    }
    drop(cursor);
    for key in elsewhere {
        db.delete(wtxn, key)?;
    }
    Ok(true)
}
