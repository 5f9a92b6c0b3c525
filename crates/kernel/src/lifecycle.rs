//! Host operations on vats and subclusters that run between cranks (spec §12.5, §12.6,
//! §15.1, §15.7, §17): restart, subcluster termination, the debug garbage collection,
//! reaping, pins, and the queries that describe vats and subclusters.
//!
//! Invariant: each operation runs on the kernel thread between two cranks, in one
//! transaction of its own ([`KernelState::transaction`], which keeps nothing on error), and
//! fires the host subscriptions of whatever it settled once it committed.

use ocap_queue::{Crank, KernelState};
use ocap_store::SubclusterRecord;
use ocap_types::{
    ClusterConfig, EndpointId, KObjectId, KRef, SubclusterId, VRef, VatConfig, VatId,
};
use ocap_vat_manager::VatError;

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

/// Restarts a vat (spec §12.6): its worker is stopped without rejecting or deleting
/// anything, and a fresh incarnation is started from its stored record and its whole vat
/// store; bootstrap is not run again. A vat whose record exists but whose worker is not
/// running (an earlier restart failed) is started. A failure leaves the vat stopped, its
/// state untouched, so the restart can be tried again.
pub(crate) fn restart_vat(
    core: &mut Core,
    state: &mut KernelState,
    vat: VatId,
) -> Result<(), KernelError> {
    let record = state.store().vat(vat)?.ok_or(VatError::NoSuchVat(vat))?;
    core.vats.forget(vat);
    tracing::info!(%vat, "restarting vat");
    // Work the new incarnation emitted while starting joins the run queue.
    match state.transaction(|crank| core.vats.run_vat(crank, vat, &record)) {
        Ok(((), settled)) => {
            core.start_failures.remove(&vat);
            core.fire_settled(state, &settled);
            Ok(())
        }
        Err(error) => {
            core.start_failures.insert(vat, error.to_string());
            Err(error.into())
        }
    }
}

/// Terminates a subcluster (spec §15.1), in one transaction: its vats in reverse launch
/// order, each followed by the debug garbage collection, then its record. Which vats are
/// live is the store's word: a vat whose worker could not be started is terminated too.
pub(crate) fn terminate_subcluster(
    core: &mut Core,
    state: &mut KernelState,
    id: SubclusterId,
) -> Result<(), KernelError> {
    let ((), settled) = state.transaction(|crank| -> Result<(), KernelError> {
        let record = crank
            .store()
            .subcluster(id)?
            .ok_or(KernelError::NoSuchSubcluster(id))?;
        for (_, vat) in record.vats.iter().rev() {
            if crank.store().vat(*vat)?.is_some() {
                core.vats.terminate(crank, *vat, None)?;
                core.start_failures.remove(vat);
            }
            cleanup_and_collect(crank)?;
        }
        crank.store_mut().delete_subcluster(id)?;
        Ok(())
    })?;
    core.fire_settled(state, &settled);
    tracing::info!(subcluster = %id, "subcluster terminated");
    Ok(())
}

/// The debug `collectGarbage` (spec §17): cleans up every terminated vat completely, then
/// runs the end-of-crank garbage collection, in one transaction.
pub(crate) fn collect_garbage(state: &mut KernelState) -> Result<(), KernelError> {
    state.transaction(cleanup_and_collect)?;
    Ok(())
}

fn cleanup_and_collect(crank: &mut Crank<'_>) -> Result<(), KernelError> {
    crank.cleanup_all_terminated()?;
    crank.collect_garbage()?;
    Ok(())
}

/// Schedules a `bringOutYourDead` for every running vat (spec §6.5, §14.6).
/// Schedules a `bringOutYourDead` for one running vat.
pub(crate) fn reap_vat(
    core: &Core,
    state: &mut KernelState,
    vat: VatId,
) -> Result<(), KernelError> {
    if !core.vats.is_running(vat) {
        return Err(VatError::NoSuchVat(vat).into());
    }
    state.transaction(|crank| -> Result<(), KernelError> {
        Ok(crank.store_mut().schedule_reap(EndpointId::Vat(vat))?)
    })?;
    Ok(())
}

pub(crate) fn reap_vats(core: &Core, state: &mut KernelState) -> Result<(), KernelError> {
    state.transaction(|crank| -> Result<(), KernelError> {
        for vat in core.vats.running() {
            crank.store_mut().schedule_reap(EndpointId::Vat(vat))?;
        }
        Ok(())
    })?;
    Ok(())
}

/// Removes one pin from `kref` and collects, in the same transaction, what nothing holds
/// any more; false if it was not pinned.
pub(crate) fn release(state: &mut KernelState, kref: KRef) -> Result<bool, KernelError> {
    let (released, _) = state.transaction(|crank| -> Result<bool, KernelError> {
        let released = crank.store_mut().unpin(kref)?;
        crank.collect_garbage()?;
        Ok(released)
    })?;
    Ok(released)
}

/// The vat's root object; `Vat does not exist.` when it has none.
fn root_of(state: &KernelState, vat: VatId) -> Result<KObjectId, KernelError> {
    match state.store().clist_kref(EndpointId::Vat(vat), VRef::ROOT)? {
        Some(KRef::Object(object)) => Ok(object),
        _ => Err(VatError::NoSuchVat(vat).into()),
    }
}

/// Pins the vat's root (spec §4.5) and returns it.
pub(crate) fn pin_vat_root(state: &mut KernelState, vat: VatId) -> Result<KRef, KernelError> {
    let object = root_of(state, vat)?;
    state.transaction(|crank| -> Result<(), KernelError> {
        Ok(crank.store_mut().pin_object(object)?)
    })?;
    Ok(KRef::Object(object))
}

/// Removes one pin of the vat's root (a no-op if it is not pinned).
pub(crate) fn unpin_vat_root(state: &mut KernelState, vat: VatId) -> Result<(), KernelError> {
    let object = root_of(state, vat)?;
    state.transaction(|crank| -> Result<(), KernelError> {
        Ok(crank.store_mut().unpin_object(object)?)
    })?;
    Ok(())
}

/// Every subcluster, in id order.
pub(crate) fn subclusters(state: &KernelState) -> Result<Vec<SubclusterInfo>, KernelError> {
    Ok(state
        .store()
        .subclusters()?
        .into_iter()
        .map(|(id, record)| SubclusterInfo::new(id, record))
        .collect())
}

/// One subcluster, `None` if unknown.
pub(crate) fn subcluster(
    state: &KernelState,
    id: SubclusterId,
) -> Result<Option<SubclusterInfo>, KernelError> {
    Ok(state
        .store()
        .subcluster(id)?
        .map(|record| SubclusterInfo::new(id, record)))
}

/// The vats of a subcluster, in launch order.
pub(crate) fn subcluster_vats(
    state: &KernelState,
    id: SubclusterId,
) -> Result<Vec<VatId>, KernelError> {
    let record = state
        .store()
        .subcluster(id)?
        .ok_or(KernelError::NoSuchSubcluster(id))?;
    Ok(record.vats.into_iter().map(|(_, vat)| vat).collect())
}

/// The running vats, in the order their workers were (re)started, with their records.
pub(crate) fn vats(core: &Core, state: &KernelState) -> Result<Vec<VatInfo>, KernelError> {
    let mut out = Vec::new();
    for id in core.vats.running() {
        if let Some(record) = state.store().vat(id)? {
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

/// The live vats without a worker, in id order, with their last start failure.
pub(crate) fn stopped_vats(
    core: &Core,
    state: &KernelState,
) -> Result<Vec<(VatId, String)>, KernelError> {
    let mut out = Vec::new();
    for vat in state.store().vat_ids()? {
        if !core.vats.is_running(vat) {
            let reason = core.start_failures.get(&vat).cloned();
            out.push((vat, reason.unwrap_or_else(|| "not started".to_owned())));
        }
    }
    Ok(out)
}
