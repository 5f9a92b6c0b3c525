//! Cleanup of terminated vats (spec §12.5.5), spread over cranks with bounded work.
//!
//! Invariant: one step touches at most `budget` c-list entries of the oldest terminated
//! vat, in c-list order (exports `o+`, imports `o-`, then promises), so a vat that held a
//! million references cannot stall one crank. A step deletes what it handled, so the next
//! step resumes where it stopped by reading the c-list from its start again; only when the
//! c-list is empty are the vat's remaining keys deleted and the vat taken off the
//! terminated list. Every step runs inside the caller's crank and rolls back with it.

use ocap_store::KernelStore;
use ocap_types::{EndpointId, KRef};

use crate::error::VatError;

/// At most this many c-list entries are cleaned up per crank.
pub const CLEANUP_BUDGET: usize = 64;

/// What one cleanup step did to a terminated vat's promises and objects.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CleanupReport {
    /// Exports orphaned.
    pub exports: usize,
    /// Imports released.
    pub imports: usize,
    /// Promise entries released.
    pub promises: usize,
    /// True when the vat is fully cleaned up and off the terminated list.
    pub finished: bool,
}

/// Cleans up at most `budget` c-list entries of the oldest terminated vat; `None` when no
/// vat is waiting for cleanup.
pub(crate) fn cleanup_step(
    store: &mut KernelStore,
    budget: usize,
) -> Result<Option<CleanupReport>, VatError> {
    let Some(ep) = store.terminated_vats()?.first().copied() else {
        return Ok(None);
    };
    let entries = store.first_clist_entries(ep, budget)?;
    let mut report = CleanupReport::default();
    for (vref, kref) in &entries {
        let (vref, kref) = (*vref, *kref);
        match (vref.is_export(), kref) {
            (true, KRef::Object(id)) => {
                // Orphan the export and release the owner baseline.
                if let Some(mut record) = store.object(id)? {
                    record.owner = None;
                    store.put_object(id, &record)?;
                }
                store.forget_clist_entry(ep, kref, vref)?;
                store.decref(kref)?;
                report.exports += 1;
            }
            (false, KRef::Object(_)) => {
                store.delete_clist_entry(ep, kref)?;
                report.imports += 1;
            }
            (_, KRef::Promise(id)) => {
                let decided = store.promise(id)?.and_then(|r| r.decider()) == Some(ep.into());
                store.delete_clist_entry(ep, kref)?;
                if decided {
                    store.decref(kref)?;
                }
                report.promises += 1;
            }
        }
    }
    if entries.len() < budget {
        finish(store, ep)?;
        report.finished = true;
    }
    tracing::debug!(%ep, ?report, "terminated vat cleanup step");
    Ok(Some(report))
}

fn finish(store: &mut KernelStore, ep: EndpointId) -> Result<(), VatError> {
    store.delete_endpoint_keys(ep)?;
    store.unmark_terminated(ep)?;
    Ok(())
}
