//! Step 1 → 2 (issue 10 item 5): the GC action set, the reap queue and the pins, stored in
//! version 1 as three text blobs rewritten whole on every change, become keys of their own.
//!
//! | version 1 | version 2 |
//! |---|---|
//! | `gcActions` = sorted lines `v1 dropExport ko5` | `gcAction.v1 dropExport ko5` = empty, one per line |
//! | `reapQueue` = `v3,v1` (oldest first) | `reapQueue.<n, 20 digits>` = `v3` (n from 1), `reapQueued.v3` = empty, `reapQueueNext` = next n |
//! | `pinnedObjects` = `ko3,ko3,ko7` (a multiset) | `pin.ko3` = `2`, `pin.ko7` = `1` |
//!
//! The key texts are written out here rather than taken from `tables::keys`: a step stays
//! what it was when its version was current, whatever later layouts do.

use std::collections::BTreeMap;

use ocap_types::{EndpointId, KObjectId};

use super::{Migration, MigrationTxn};
use crate::error::StoreError;
use crate::tables::GcAction;

const GC_ACTIONS: &[u8] = b"gcActions";
const REAP_QUEUE: &[u8] = b"reapQueue";
const PINNED: &[u8] = b"pinnedObjects";

/// The step, for [`super::MIGRATIONS`].
pub(super) const STEP: Migration = Migration {
    from: 1,
    what: "GC actions, reap queue and pins as keys, not blobs",
    run: blobs_to_keys,
};

fn blobs_to_keys(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    for line in list(txn, GC_ACTIONS, '\n')? {
        let action: GcAction = line
            .parse()
            .map_err(|()| StoreError::corrupt("gcActions", GC_ACTIONS, &line))?;
        txn.set(format!("gcAction.{action}").as_bytes(), b"")?;
    }
    txn.delete(GC_ACTIONS)?;

    let mut seq: u64 = 0;
    for item in list(txn, REAP_QUEUE, ',')? {
        let ep: EndpointId = item
            .parse()
            .map_err(|_| StoreError::corrupt("reapQueue", REAP_QUEUE, &item))?;
        let member = format!("reapQueued.{ep}");
        if txn.get(member.as_bytes())?.is_some() {
            continue;
        }
        seq += 1;
        txn.set(
            format!("reapQueue.{seq:020}").as_bytes(),
            ep.to_string().as_bytes(),
        )?;
        txn.set(member.as_bytes(), b"")?;
    }
    if seq > 0 {
        txn.set(b"reapQueueNext", (seq + 1).to_string().as_bytes())?;
    }
    txn.delete(REAP_QUEUE)?;

    let mut pins: BTreeMap<KObjectId, u32> = BTreeMap::new();
    for item in list(txn, PINNED, ',')? {
        let id: KObjectId = item
            .parse()
            .map_err(|_| StoreError::corrupt("pinnedObjects", PINNED, &item))?;
        *pins.entry(id).or_default() += 1;
    }
    for (id, count) in pins {
        txn.set(format!("pin.{id}").as_bytes(), count.to_string().as_bytes())?;
    }
    txn.delete(PINNED)
}

/// The items of the blob at `key` split at `separator`; none if it is absent or empty.
fn list(txn: &MigrationTxn<'_>, key: &[u8], separator: char) -> Result<Vec<String>, StoreError> {
    let Some(bytes) = txn.get(key)? else {
        return Ok(Vec::new());
    };
    let text = String::from_utf8(bytes)
        .map_err(|_| StoreError::corrupt("migration 1 to 2", key, "not UTF-8"))?;
    Ok(text
        .split(separator)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect())
}
