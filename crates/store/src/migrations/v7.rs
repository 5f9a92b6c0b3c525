//! Step 6 → 7 (issue 12 item 4): where a vat runs leaves the hashed records. Version 6
//! stored each vat's worker kind inside its record (`v<N>.config`) and its subcluster's
//! config (`subcluster.s<N>`), so the crank hash, which covers every stored byte, differed
//! between a run with vats in process and the same run with worker processes. Version 7
//! stores both records with every vat `inProcess` and keeps a subprocess vat's kind in
//! `local.worker.v<N>` = `subprocess`; keys under `local.` are left out of the hash.
//!
//! | version 6 | version 7 |
//! |---|---|
//! | `v<N>.config` with `"worker": "subprocess"` | the same record with `"inProcess"`, and `local.worker.v<N>` = `subprocess` |
//! | `subcluster.s<N>` naming each vat's kind | every vat `inProcess` |
//!
//! The key texts are written out here rather than taken from `tables::keys`: a step stays
//! what it was when its version was current, whatever later layouts do.

#[cfg(test)]
mod tests;

use ocap_types::WorkerKind;

use super::{Migration, MigrationTxn};
use crate::error::StoreError;
use crate::tables::{SubclusterRecord, VatRecord};

/// The step, for [`super::MIGRATIONS`].
pub(super) const STEP: Migration = Migration {
    from: 6,
    what: "worker kinds: out of v<N>.config and subcluster.s<N>, into local.worker.v<N>",
    run: move_worker_kinds,
};

fn move_worker_kinds(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    for (key, value) in txn.scan_prefix(b"v")? {
        let Some(vat) = vat_of_config_key(&key) else {
            continue;
        };
        let mut record: VatRecord = ocap_types::cbor::from_slice(&value)
            .map_err(|e| StoreError::corrupt("vats", &key, e))?;
        if record.config.worker == WorkerKind::Subprocess {
            record.config.worker = WorkerKind::InProcess;
            txn.set(&key, &ocap_types::cbor::to_vec(&record))?;
            txn.set(format!("local.worker.v{vat}").as_bytes(), b"subprocess")?;
        }
    }
    for (key, value) in txn.scan_prefix(b"subcluster.")? {
        let mut record: SubclusterRecord = ocap_types::cbor::from_slice(&value)
            .map_err(|e| StoreError::corrupt("subclusters", &key, e))?;
        let mut changed = false;
        for (_, vat) in &mut record.config.vats.0 {
            changed |= vat.worker != WorkerKind::InProcess;
            vat.worker = WorkerKind::InProcess;
        }
        if changed {
            txn.set(&key, &ocap_types::cbor::to_vec(&record))?;
        }
    }
    Ok(())
}

/// `N` of a `v<N>.config` key.
fn vat_of_config_key(key: &[u8]) -> Option<u32> {
    let digits = key.strip_prefix(b"v")?.strip_suffix(b".config")?;
    std::str::from_utf8(digits).ok()?.parse().ok()
}
