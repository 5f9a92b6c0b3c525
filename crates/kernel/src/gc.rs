//! End-of-crank garbage collection (spec §14.3): every kref whose count reached zero in the
//! crank is looked at once more; unreachable promises are deleted, and owners and importers
//! of unreachable objects get GC actions.

use ocap_queue::{Crank, QueueError};
use ocap_store::{GcAction, GcKind, KernelStore, Owner, PromiseState, StoreError};
use ocap_types::{EndpointId, KObjectId, KRef};

/// Processes the crank's maybe-free set, including krefs it adds while running. (Empty
/// subclusters are deleted when their last vat is terminated.)
pub(crate) fn collect_garbage(crank: &mut Crank<'_>) -> Result<(), QueueError> {
    let store = crank.store_mut();
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

fn collect_promise(store: &mut KernelStore, id: ocap_types::KPromiseId) -> Result<(), StoreError> {
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
                store.forget_clist_entry(ep, kref, entry.vref)?;
            }
            record.owner = None;
            store.put_object(id, &record)?;
        }
        None => {}
    }
    if record.counts.recognizable > 0 {
        retire_kernel_object(store, id, actions)
    } else {
        store.delete_object(id)
    }
}

/// Tells every vat that imports the object to retire it, then deletes it (spec §14.4).
fn retire_kernel_object(
    store: &mut KernelStore,
    id: KObjectId,
    actions: &mut Vec<GcAction>,
) -> Result<(), StoreError> {
    for vat in store.vat_ids()? {
        let ep = EndpointId::Vat(vat);
        if let Some(entry) = store.clist_entry(ep, KRef::Object(id))?
            && !entry.vref.is_export()
        {
            actions.push(GcAction {
                endpoint: ep,
                kind: GcKind::RetireImport,
                object: id,
            });
        }
    }
    store.delete_object(id)
}
