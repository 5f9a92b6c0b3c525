//! Host operations on vats and subclusters that run between cranks (spec §12.5, §12.6,
//! §15.1, §15.7, §17): restart, subcluster termination, the debug garbage collection,
//! reaping, pins, and the queries that describe vats and subclusters.
//!
//! Invariant: each operation runs on the kernel thread between two cranks, in transactions
//! of its own, and fires the host subscriptions of whatever it settled once they committed.

use ocap_queue::KernelQueue;
use ocap_store::SubclusterRecord;
use ocap_types::{ClusterConfig, EndpointId, KRef, SubclusterId, VRef, VatConfig, VatId};
use ocap_vat_manager::{VatError, VatManager};

use crate::core::Core;
use crate::error::KernelError;

/// A subcluster, as the host sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct SubclusterInfo {
    /// Its id.
    pub id: SubclusterId,
    /// The config it was launched from.
    pub config: ClusterConfig,
    /// Its live vats by name, in launch order.
    pub vats: Vec<(String, VatId)>,
}

impl SubclusterInfo {
    fn new(id: SubclusterId, record: SubclusterRecord) -> Self {
        SubclusterInfo {
            id,
            config: record.config,
            vats: record.vats,
        }
    }

    /// The id of the vat named `name`.
    pub fn vat(&self, name: &str) -> Option<VatId> {
        self.vats.iter().find(|(n, _)| n == name).map(|(_, v)| *v)
    }
}

/// A running vat, as the host sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct VatInfo {
    /// Its id.
    pub id: VatId,
    /// Its name in its subcluster.
    pub name: String,
    /// How it was built.
    pub config: VatConfig,
    /// The subcluster it belongs to.
    pub subcluster: Option<SubclusterId>,
}

fn subcluster_missing() -> KernelError {
    KernelError::NotFound("Subcluster does not exist.".to_owned())
}

/// Restarts a vat (spec §12.6): its worker is stopped without rejecting or deleting
/// anything, and a fresh incarnation is started from its stored record and its whole vat
/// store; bootstrap is not run again. A vat whose record exists but whose worker is not
/// running (an earlier restart failed) is started. A failure leaves the vat stopped, its
/// state untouched, so the restart can be tried again.
pub(crate) fn restart_vat(
    core: &mut Core,
    queue: &mut KernelQueue,
    vat: VatId,
) -> Result<(), KernelError> {
    let record = queue.store().vat(vat)?.ok_or(VatError::NoSuchVat(vat))?;
    core.vats.forget(vat);
    tracing::info!(%vat, "restarting vat");
    queue.start_crank()?;
    match core.vats.run_vat(queue, vat, &record) {
        Ok(()) => {
            // Work the new incarnation emitted while starting joins the run queue.
            queue.flush_buffer()?;
            let settled = queue.end_crank()?;
            core.fire_settled(queue, &settled);
            Ok(())
        }
        Err(error) => {
            queue.abort_crank()?;
            queue.end_crank()?;
            Err(error.into())
        }
    }
}

/// Terminates a subcluster (spec §15.1): its vats in reverse launch order, each followed by
/// the debug garbage collection, then its record.
pub(crate) fn terminate_subcluster(
    core: &mut Core,
    queue: &mut KernelQueue,
    id: SubclusterId,
) -> Result<(), KernelError> {
    let record = queue
        .store()
        .subcluster(id)?
        .ok_or_else(subcluster_missing)?;
    for (_, vat) in record.vats.iter().rev() {
        if core.vats.is_running(*vat) {
            let settled = core.vats.terminate(queue, *vat, None)?;
            core.fire_settled(queue, &settled);
        }
        collect_garbage(queue)?;
    }
    queue.start_crank()?;
    queue.store_mut().delete_subcluster(id)?;
    queue.end_crank()?;
    tracing::info!(subcluster = %id, "subcluster terminated");
    Ok(())
}

/// The debug `collectGarbage` (spec §17): cleans up every terminated vat completely, then
/// runs the end-of-crank garbage collection, in one transaction.
pub(crate) fn collect_garbage(queue: &mut KernelQueue) -> Result<(), KernelError> {
    queue.start_crank()?;
    let res = VatManager::cleanup_all_terminated(queue)
        .map_err(KernelError::from)
        .and_then(|_| crate::gc::collect_garbage(queue).map_err(KernelError::from));
    if res.is_err() {
        queue.abort_crank()?;
    }
    queue.end_crank()?;
    res
}

/// Schedules a `bringOutYourDead` for every running vat (spec §6.5, §14.6).
pub(crate) fn reap_vats(core: &Core, queue: &mut KernelQueue) -> Result<(), KernelError> {
    queue.start_crank()?;
    let mut res = Ok(());
    for vat in core.vats.running() {
        res = queue.store_mut().schedule_reap(EndpointId::Vat(vat));
        if res.is_err() {
            break;
        }
    }
    if res.is_err() {
        queue.abort_crank()?;
    }
    queue.end_crank()?;
    Ok(res?)
}

/// The vat's root object; `Vat does not exist.` when it has none.
fn root_of(queue: &KernelQueue, vat: VatId) -> Result<KRef, KernelError> {
    queue
        .store()
        .clist_kref(EndpointId::Vat(vat), VRef::ROOT)?
        .ok_or_else(|| VatError::NoSuchVat(vat).into())
}

/// Pins the vat's root (spec §4.5) and returns it.
pub(crate) fn pin_vat_root(queue: &mut KernelQueue, vat: VatId) -> Result<KRef, KernelError> {
    let root = root_of(queue, vat)?;
    let KRef::Object(object) = root else {
        return Err(VatError::NoSuchVat(vat).into());
    };
    queue.start_crank()?;
    let res = queue.store_mut().pin_object(object);
    if res.is_err() {
        queue.abort_crank()?;
    }
    queue.end_crank()?;
    res?;
    Ok(root)
}

/// Removes one pin of the vat's root (a no-op if it is not pinned).
pub(crate) fn unpin_vat_root(queue: &mut KernelQueue, vat: VatId) -> Result<(), KernelError> {
    let root = root_of(queue, vat)?;
    let KRef::Object(object) = root else {
        return Err(VatError::NoSuchVat(vat).into());
    };
    queue.start_crank()?;
    let res = queue.store_mut().unpin_object(object);
    if res.is_err() {
        queue.abort_crank()?;
    }
    queue.end_crank()?;
    Ok(res?)
}

/// Every subcluster, in id order.
pub(crate) fn subclusters(queue: &KernelQueue) -> Result<Vec<SubclusterInfo>, KernelError> {
    Ok(queue
        .store()
        .subclusters()?
        .into_iter()
        .map(|(id, record)| SubclusterInfo::new(id, record))
        .collect())
}

/// One subcluster, `None` if unknown.
pub(crate) fn subcluster(
    queue: &KernelQueue,
    id: SubclusterId,
) -> Result<Option<SubclusterInfo>, KernelError> {
    Ok(queue
        .store()
        .subcluster(id)?
        .map(|record| SubclusterInfo::new(id, record)))
}

/// The vats of a subcluster, in launch order.
pub(crate) fn subcluster_vats(
    queue: &KernelQueue,
    id: SubclusterId,
) -> Result<Vec<VatId>, KernelError> {
    let record = queue
        .store()
        .subcluster(id)?
        .ok_or_else(subcluster_missing)?;
    Ok(record.vats.into_iter().map(|(_, vat)| vat).collect())
}

/// The running vats, in id order, with their records.
pub(crate) fn vats(core: &Core, queue: &KernelQueue) -> Result<Vec<VatInfo>, KernelError> {
    let mut out = Vec::new();
    for id in core.vats.running() {
        if let Some(record) = queue.store().vat(id)? {
            out.push(VatInfo {
                id,
                name: record.name,
                config: record.config,
                subcluster: record.subcluster,
            });
        }
    }
    Ok(out)
}
