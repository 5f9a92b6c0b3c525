//! Step 2 → 3 (issue 13): settled promises are collected. Version 2 counted the reference
//! accounting's holds on a promise: its resolution took one that was never released, and
//! an import entry (`p-N`) took none. Version 3 counts every c-list entry of a promise and
//! takes no hold at resolution; a host's result promises are pinned instead.
//!
//! | version 2 | version 3 |
//! |---|---|
//! | `kpN.rc` counts the resolution's hold of a settled promise | that unit is `pin.kpN` (+1): a settled promise may be a host's result, which version 3 pins, and nothing tells which one it is, so every promise settled before the upgrade stays, as it did |
//! | `kpN.rc` does not count the `p-N` entries naming it | `kpN.rc` + one per `<ep>.c.kpN` whose vref is `p-…` |
//!
//! The key texts are written out here rather than taken from `tables::keys`: a step stays
//! what it was when its version was current, whatever later layouts do.

use std::collections::BTreeMap;

use super::{Migration, MigrationTxn};
use crate::error::StoreError;
use crate::tables::PromiseState;

/// The step, for [`super::MIGRATIONS`].
pub(super) const STEP: Migration = Migration {
    from: 2,
    what: "promise imports counted, settled promises pinned instead of held by their resolution",
    run: count_imports_pin_settled,
};

fn count_imports_pin_settled(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    // Every promise record (`kpN`, next to its count `kpN.rc`), and whether it is settled.
    let mut settled: BTreeMap<String, bool> = BTreeMap::new();
    for (key, value) in txn.scan_prefix(b"kp")? {
        let Ok(text) = std::str::from_utf8(&key) else {
            return Err(StoreError::corrupt("promises", &key, "key is not UTF-8"));
        };
        if text.ends_with(".rc") {
            continue;
        }
        let state =
            PromiseState::decode(&value).map_err(|e| StoreError::corrupt("promises", &key, e))?;
        settled.insert(
            text.to_owned(),
            !matches!(state, PromiseState::Unresolved { .. }),
        );
    }
    // Import entries of promises, from every endpoint's c-list: `<ep>.c.kpN` = `R p-3`.
    let mut imports: BTreeMap<String, u32> = BTreeMap::new();
    for (key, value) in txn.scan_prefix(b"")? {
        let Ok(text) = std::str::from_utf8(&key) else {
            continue;
        };
        let Some((_, kref)) = text.split_once(".c.") else {
            continue;
        };
        if kref.starts_with("kp") && value.get(2..4) == Some(b"p-".as_slice()) {
            *imports.entry(kref.to_owned()).or_default() += 1;
        }
    }
    for (promise, is_settled) in settled {
        let added = imports.get(&promise).copied().unwrap_or(0);
        if added > 0 {
            let rc_key = format!("{promise}.rc");
            let count = match txn.get(rc_key.as_bytes())? {
                Some(bytes) => <[u8; 4]>::try_from(bytes.as_slice())
                    .map(u32::from_le_bytes)
                    .map_err(|_| {
                        StoreError::corrupt("promises", rc_key.as_bytes(), "not 4 bytes")
                    })?,
                None => 0,
            };
            txn.set(
                rc_key.as_bytes(),
                &count.saturating_add(added).to_le_bytes(),
            )?;
        }
        if is_settled {
            let pin_key = format!("pin.{promise}");
            let pins: u32 = match txn.get(pin_key.as_bytes())? {
                Some(bytes) => std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .ok_or_else(|| StoreError::corrupt("pins", pin_key.as_bytes(), "bad pin"))?,
                None => 0,
            };
            txn.set(
                pin_key.as_bytes(),
                pins.saturating_add(1).to_string().as_bytes(),
            )?;
        }
    }
    Ok(())
}
