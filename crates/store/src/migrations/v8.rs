//! Step 7 → 8: a promise's refcount moves into its record. Version 7 kept every promise
//! in two keys, `kp<N>` (its state) and `kp<N>.rc` (its refcount), so each promise was two
//! puts, two reads and two deletes in LMDB; version 8 keeps one key.
//!
//! | version 7 | version 8 |
//! |---|---|
//! | `kp<N>` = state | `kp<N>` = refcount (u32 little-endian) then the same state bytes |
//! | `kp<N>.rc` = refcount (u32 little-endian) | gone |
//!
//! What the step refuses (failing the open, the store's files untouched): a `kp<N>.rc`
//! without its record (version 7 never writes one: creation writes both keys, deletion
//! deletes both), a count that is not 4 bytes, a state that does not decode, and a key
//! under `kp` that is neither. A record without its `kp<N>.rc` gets the count 0: that is
//! what version 7 read for it (`KernelStore::promise` took a missing count as 0), so the
//! store reads the same after the step; it is logged, and the audit's recount shows any
//! holder the missing count left out.
//!
//! The key texts and the record layout are written out here rather than taken from
//! `tables`: a step stays what it was when its version was current, whatever later layouts
//! do. Only the state's decoder comes from `tables`, to check each state: the state's
//! encoding is the same in both versions.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use super::{Migration, MigrationTxn};
use crate::error::StoreError;
use crate::tables::PromiseState;

/// The step, for [`super::MIGRATIONS`].
pub(super) const STEP: Migration = Migration {
    from: 7,
    what: "promise refcounts: out of kp<N>.rc, into the first 4 bytes of kp<N>",
    run: fold_refcounts,
};

/// The two keys of one version-7 promise, as found.
#[derive(Default)]
struct Found {
    state: Option<Vec<u8>>,
    refcount: Option<u32>,
}

fn fold_refcounts(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    let mut promises: BTreeMap<u64, Found> = BTreeMap::new();
    for (key, value) in txn.scan_prefix(b"kp")? {
        let corrupt = |why: &str| StoreError::corrupt("promises", &key, why);
        let (digits, is_refcount) = match key.strip_suffix(b".rc") {
            Some(digits) => (&digits[2..], true),
            None => (&key[2..], false),
        };
        let id = parse_id(digits).ok_or_else(|| corrupt("not a promise key"))?;
        let found = promises.entry(id).or_default();
        if is_refcount {
            let count = <[u8; 4]>::try_from(value.as_slice())
                .map_err(|_| corrupt("refcount is not 4 bytes"))?;
            found.refcount = Some(u32::from_le_bytes(count));
        } else {
            PromiseState::decode(&value).map_err(|e| corrupt(e.0))?;
            found.state = Some(value);
        }
    }
    for (id, found) in promises {
        let record_key = format!("kp{id}");
        let Some(state) = found.state else {
            return Err(StoreError::corrupt(
                "promises",
                format!("{record_key}.rc").as_bytes(),
                "refcount without a promise record",
            ));
        };
        let refcount = found.refcount.unwrap_or_else(|| {
            tracing::warn!(
                promise = %record_key,
                "promise record without a refcount; migrated with count 0"
            );
            0
        });
        let mut record = Vec::with_capacity(4 + state.len());
        record.extend_from_slice(&refcount.to_le_bytes());
        record.extend_from_slice(&state);
        txn.set(record_key.as_bytes(), &record)?;
        txn.delete(format!("{record_key}.rc").as_bytes())?;
    }
    Ok(())
}

/// `N` of a promise key `kp<N>`: decimal digits as `KPromiseId`'s `FromStr` reads them
/// (so that `kp<N>` names the key it was read from: no sign, no leading zeros but `0`).
fn parse_id(digits: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(digits).ok()?;
    let id: u64 = text.parse().ok()?;
    (id.to_string() == text).then_some(id)
}
