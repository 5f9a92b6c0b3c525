//! Garbage collection, in one place (spec §6.4, §10.1, §12.5.5, §14): everything the kernel
//! does to find and free what nothing holds any more. The tables it reads and writes (the
//! GC action set, the reap queue, the terminated list) are the store's
//! (`ocap_store`'s `tables/gc.rs`); delivering a GC item to a vat is the vat manager's.
//!
//! - **End-of-crank collection** ([`collect_garbage`]): every kref whose count reached zero
//!   in the crank is looked at once more; unreachable promises are deleted, and owners and
//!   importers of unreachable objects get GC actions.
//! - **Picking GC work** ([`next_gc_item`]): the first still-valid group of actions of one
//!   endpoint and one kind becomes a single `dropExports` / `retireExports` /
//!   `retireImports` item.
//! - **After a GC delivery** ([`after_gc_delivery`]): dropped exports lose their reachable
//!   flag, retired imports their c-list entry.
//! - **Terminated-vat cleanup** ([`cleanup_step`]): spread over cranks with bounded work.
//!
//! Invariant: one cleanup step touches at most `budget` c-list entries of the oldest
//! terminated vat, in c-list order (exports `o+`, imports `o-`, then promises), so a vat
//! that held a million references cannot stall one crank. A step deletes what it handled,
//! so the next step resumes where it stopped by reading the c-list from its start again;
//! only when the c-list is empty are the vat's remaining keys deleted and the vat taken off
//! the terminated list. Everything here runs inside the caller's crank and rolls back with
//! it.

use ocap_store::{GcAction, GcKind, KernelStore, Owner, PromiseState, StoreError};
use ocap_types::{EndpointId, KObjectId, KPromiseId, KRef, RunQueueItem};

// Picking GC work.

fn still_valid(store: &KernelStore, action: &GcAction) -> Result<bool, StoreError> {
    let kref = KRef::Object(action.object);
    let entry = store.clist_entry(action.endpoint, kref)?;
    if action.kind == GcKind::RetireImport {
        return Ok(entry.is_some());
    }
    let Some(record) = store.object(action.object)? else {
        return Ok(false);
    };
    let Some(entry) = entry else {
        return Ok(false);
    };
    Ok(match action.kind {
        GcKind::DropExport => record.counts.reachable == 0 && entry.reachable,
        _ => record.counts.reachable == 0 && record.counts.recognizable == 0,
    })
}

/// Takes the next GC item out of the action set, dropping actions that are no longer valid.
/// Only the actions of the groups it looked at are removed from the set.
pub(crate) fn next_gc_item(store: &mut KernelStore) -> Result<Option<RunQueueItem>, StoreError> {
    let actions = store.gc_actions()?;
    if actions.is_empty() {
        return Ok(None);
    }
    let mut endpoints: Vec<_> = actions.iter().map(|a| a.endpoint).collect();
    endpoints.dedup();
    let mut found = None;
    let mut consumed = Vec::new();
    'outer: for endpoint in endpoints {
        for kind in [
            GcKind::DropExport,
            GcKind::RetireExport,
            GcKind::RetireImport,
        ] {
            let group: Vec<GcAction> = actions
                .iter()
                .filter(|a| a.endpoint == endpoint && a.kind == kind)
                .copied()
                .collect();
            if group.is_empty() {
                continue;
            }
            consumed.extend_from_slice(&group);
            let mut objects = Vec::new();
            for action in &group {
                if still_valid(store, action)? {
                    objects.push(action.object);
                }
            }
            if !objects.is_empty() {
                objects.sort_by_key(KObjectId::to_string);
                found = Some(match kind {
                    GcKind::DropExport => RunQueueItem::DropExports { endpoint, objects },
                    GcKind::RetireExport => RunQueueItem::RetireExports { endpoint, objects },
                    GcKind::RetireImport => RunQueueItem::RetireImports { endpoint, objects },
                });
                break 'outer;
            }
        }
    }
    store.remove_gc_actions(&consumed)?;
    Ok(found)
}

/// The bookkeeping after a GC item was delivered to `ep` (spec §10.1): dropped exports lose
/// their reachable flag and retired imports their c-list entry.
pub(crate) fn after_gc_delivery(
    store: &mut KernelStore,
    ep: EndpointId,
    kind: GcKind,
    objects: &[KRef],
) -> Result<(), StoreError> {
    for kref in objects {
        match kind {
            GcKind::DropExport => {
                store.clear_reachable_flag(ep, *kref)?;
            }
            // Nothing names the object any more (every import holds it, and a root is held
            // by its export entry), so the owner's entry and the object go.
            GcKind::RetireExport => {
                if let Some(entry) = store.clist_entry(ep, *kref)? {
                    store.forget_clist_entry(ep, *kref, entry.vref)?;
                }
                if let KRef::Object(id) = kref {
                    store.delete_object(*id)?;
                }
            }
            GcKind::RetireImport => store.delete_clist_entry(ep, *kref)?,
        }
    }
    Ok(())
}

// End-of-crank collection.

/// Processes the crank's maybe-free set, including krefs it adds while running. (Empty
/// subclusters are deleted when their last vat is terminated.)
pub(crate) fn collect_garbage(store: &mut KernelStore) -> Result<(), StoreError> {
    let mut actions = Vec::new();
    loop {
        let batch = store.take_maybe_free();
        if batch.is_empty() {
            break;
        }
        for kref in batch {
            match kref {
                KRef::Promise(id) => collect_promise(store, id)?,
                KRef::Object(id) => collect_object(store, id, &mut actions)?,
            }
        }
    }
    store.add_gc_actions(&actions)?;
    Ok(())
}

fn collect_promise(store: &mut KernelStore, id: KPromiseId) -> Result<(), StoreError> {
    let Some(record) = store.promise(id)? else {
        return Ok(());
    };
    if record.refcount > 0 {
        return Ok(());
    }
    if let PromiseState::Fulfilled(value) | PromiseState::Rejected(value) = &record.state {
        for slot in &value.slots {
            store.decref(*slot)?;
        }
        return store.delete_settled_promise(id);
    }
    store.delete_promise(id)
}

fn collect_object(
    store: &mut KernelStore,
    id: KObjectId,
    actions: &mut Vec<GcAction>,
) -> Result<(), StoreError> {
    let Some(mut record) = store.object(id)? else {
        return Ok(());
    };
    if record.counts.reachable > 0 {
        return Ok(());
    }
    let kref = KRef::Object(id);
    match record.owner {
        Some(Owner::Kernel) => return Ok(()),
        Some(Owner::Endpoint(ep)) if !store.terminated_vats()?.contains(&ep) => {
            let entry = store.clist_entry(ep, kref)?;
            if entry.is_some_and(|e| e.reachable) {
                actions.push(GcAction {
                    endpoint: ep,
                    kind: GcKind::DropExport,
                    object: id,
                });
            }
            if record.counts.recognizable == 0 {
                actions.push(GcAction {
                    endpoint: ep,
                    kind: GcKind::RetireExport,
                    object: id,
                });
            }
            return Ok(());
        }
        Some(Owner::Endpoint(ep)) => {
            // The owner is terminated but not cleaned up: abandon the export now.
            if let Some(entry) = store.clist_entry(ep, kref)? {
                store.orphan_export(ep, kref, entry.vref)?;
            }
            let Some(orphaned) = store.object(id)? else {
                return Ok(());
            };
            record = orphaned;
        }
        None => {}
    }
    if record.counts.recognizable > 0 {
        retire_kernel_object(store, id, actions)
    } else {
        store.delete_object(id)
    }
}

/// Tells every endpoint that imports the object to retire it, then deletes it (spec
/// §14.4). The importers come from the store's importer index: the work is proportional to
/// them, not to the number of vats.
fn retire_kernel_object(
    store: &mut KernelStore,
    id: KObjectId,
    actions: &mut Vec<GcAction>,
) -> Result<(), StoreError> {
    for ep in store.importers(id)? {
        actions.push(GcAction {
            endpoint: ep,
            kind: GcKind::RetireImport,
            object: id,
        });
    }
    store.delete_object(id)
}

// Terminated-vat cleanup.

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
) -> Result<Option<CleanupReport>, StoreError> {
    let Some(ep) = store.terminated_vats()?.first().copied() else {
        return Ok(None);
    };
    let entries = store.first_clist_entries(ep, budget)?;
    let mut report = CleanupReport::default();
    for (vref, kref) in &entries {
        let (vref, kref) = (*vref, *kref);
        match (vref.is_export(), kref) {
            (true, KRef::Object(_)) => {
                store.orphan_export(ep, kref, vref)?;
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

fn finish(store: &mut KernelStore, ep: EndpointId) -> Result<(), StoreError> {
    store.delete_endpoint_keys(ep)?;
    store.unmark_terminated(ep)?;
    Ok(())
}
