//! Picking GC work (spec §6.4): the first still-valid group of actions of one endpoint and
//! one kind becomes a single `dropExports` / `retireExports` / `retireImports` item.

use ocap_store::{GcAction, GcKind, KernelStore, StoreError};
use ocap_types::{KObjectId, KRef, RunQueueItem};

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
pub(crate) fn next_gc_item(store: &mut KernelStore) -> Result<Option<RunQueueItem>, StoreError> {
    let mut actions = store.gc_actions()?;
    if actions.is_empty() {
        return Ok(None);
    }
    let mut endpoints: Vec<_> = actions.iter().map(|a| a.endpoint).collect();
    endpoints.dedup();
    let mut found = None;
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
            actions.retain(|a| !(a.endpoint == endpoint && a.kind == kind));
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
    store.set_gc_actions(&actions)?;
    Ok(found)
}
