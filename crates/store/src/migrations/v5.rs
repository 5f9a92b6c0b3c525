//! Step 4 → 5 (issue 13 item 3): the importer index. Freeing an object that vats still
//! recognize tells each importer to retire it; version 4 found them by looking the object
//! up in every vat's c-list, a lookup per vat for every object freed. Version 5 keeps
//! `imp.<ko>.<ep>` (empty value) for every object import `<ep>.c.<ko>` = `R o-N` / `_ o-N`,
//! written and deleted with the entry, so the importers are one prefix scan away.
//!
//! | version 4 | version 5 |
//! |---|---|
//! | no index | `imp.koN.<ep>` for each `<ep>.c.koN` whose vref is `o-…` |
//!
//! The key texts are written out here rather than taken from `tables::keys`: a step stays
//! what it was when its version was current, whatever later layouts do.

use super::{Migration, MigrationTxn};
use crate::error::StoreError;

/// The step, for [`super::MIGRATIONS`].
pub(super) const STEP: Migration = Migration {
    from: 4,
    what: "importer index: imp.<ko>.<ep> for every object import",
    run: index_importers,
};

fn index_importers(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    let mut index = Vec::new();
    for (key, value) in txn.scan_prefix(b"")? {
        let Ok(text) = std::str::from_utf8(&key) else {
            continue;
        };
        let Some((ep, kref)) = text.split_once(".c.") else {
            continue;
        };
        if kref.starts_with("ko") && value.get(1..4) == Some(b" o-".as_slice()) {
            index.push(format!("imp.{kref}.{ep}"));
        }
    }
    for key in index {
        txn.set(key.as_bytes(), b"")?;
    }
    Ok(())
}
