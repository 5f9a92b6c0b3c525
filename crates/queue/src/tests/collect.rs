//! End-of-crank collection and savepoints inside a crank: the cases the mutation run
//! (docs/mutants.md) found unprotected.

use ocap_store::{GcAction, GcKind, Owner};
use ocap_types::{ExportId, KRef, VRef};

use super::{enqueue, queue, send, vat};
use crate::{Mode, QueueError};

#[test]
fn a_promise_released_and_held_again_in_one_crank_survives_its_collection() {
    let (_dir, mut state) = queue();
    let ((promise, survived), _) = state
        .transaction(|crank| -> Result<_, QueueError> {
            let store = crank.store_mut();
            let promise = store.create_promise(None)?;
            let kref = KRef::Promise(promise);
            // At 0 it is noted as maybe free; a new hold in the same crank keeps it.
            store.decref(kref)?;
            store.incref(kref)?;
            crank.collect_garbage()?;
            Ok((promise, crank.store().promise(promise)?))
        })
        .unwrap();
    let survived = survived.expect("a held promise is not collected");
    assert_eq!(survived.refcount, 1);
    assert!(state.store().promise(promise).unwrap().is_some());
}

#[test]
fn a_promise_nothing_holds_at_the_end_of_the_crank_is_collected() {
    let (_dir, mut state) = queue();
    let (promise, _) = state
        .transaction(|crank| -> Result<_, QueueError> {
            let store = crank.store_mut();
            let promise = store.create_promise(None)?;
            store.decref(KRef::Promise(promise))?;
            crank.collect_garbage()?;
            Ok(promise)
        })
        .unwrap();
    assert_eq!(state.store().promise(promise).unwrap(), None);
}

#[test]
fn an_export_of_a_terminated_vat_not_yet_cleaned_up_is_orphaned_when_its_last_holder_drops_it() {
    let (_dir, mut state) = queue();
    let (object, _) = state
        .transaction(|crank| -> Result<_, QueueError> {
            let store = crank.store_mut();
            let object = store.create_object(Owner::Endpoint(vat(1)))?;
            let kref = KRef::Object(object);
            store.add_clist_entry(vat(1), kref, VRef::ExportObject(ExportId::Ephemeral(5)))?;
            store.add_clist_entry(vat(2), kref, VRef::ImportObject(1))?;
            store.incref(kref)?;
            // v1 is terminated; its c-list waits for the cleanup steps.
            store.mark_terminated(vat(1))?;
            Ok(object)
        })
        .unwrap();
    state
        .transaction(|crank| -> Result<_, QueueError> {
            // v2 drops its import: nothing reaches the object, v2 still recognizes it.
            crank.store_mut().decref_reachable(object)?;
            crank.collect_garbage()
        })
        .unwrap();
    let store = state.store();
    // Nothing is planned for the dead owner; the importer is told to retire, and the
    // object is gone.
    assert_eq!(
        store.gc_actions().unwrap(),
        vec![GcAction {
            endpoint: vat(2),
            kind: GcKind::RetireImport,
            object,
        }]
    );
    assert_eq!(store.object(object).unwrap(), None);
    assert_eq!(
        store
            .clist_entry(vat(1), KRef::Object(object))
            .unwrap()
            .map(|e| e.vref),
        None,
        "the dead owner's export entry is gone"
    );
}

#[test]
fn a_rollback_to_a_savepoint_undoes_what_came_after_it_and_keeps_what_came_before() {
    let (_dir, mut state) = queue();
    enqueue(&mut state, 1, "committed");
    let mut crank = state.begin().unwrap();
    let kept = crank.store_mut().create_object(Owner::Kernel).unwrap();
    let (target, message) = send(2, "before");
    crank
        .enqueue_send(target, message, None, Mode::Immediate)
        .unwrap();
    assert_eq!(crank.run_queue_len().unwrap(), 2);
    let savepoint = crank.savepoint().unwrap();
    let undone = crank.store_mut().create_object(Owner::Kernel).unwrap();
    let (target, message) = send(3, "after, queued");
    crank
        .enqueue_send(target, message, None, Mode::Immediate)
        .unwrap();
    let (target, message) = send(4, "after, buffered");
    crank
        .enqueue_send(target, message, None, Mode::Buffered)
        .unwrap();
    assert_eq!(crank.run_queue_len().unwrap(), 3);
    crank.rollback_to(savepoint).unwrap();
    assert_eq!(crank.run_queue_len().unwrap(), 2);
    assert!(crank.store().object(kept).unwrap().is_some());
    assert_eq!(crank.store().object(undone).unwrap(), None);
    crank.flush_buffer().unwrap();
    let mut methods = Vec::new();
    while let Some(item) = crank.next_item().unwrap() {
        if let ocap_types::RunQueueItem::Send { message, .. } = item {
            methods.push(message.method_and_args().unwrap().0.to_owned());
        }
    }
    assert_eq!(
        methods,
        ["committed", "before"],
        "nothing after the savepoint"
    );
}

#[test]
fn a_cleanup_step_reports_what_it_did_and_cleanup_all_counts_the_vats_it_finished() {
    let (_dir, mut state) = queue();
    let ((), _) = state
        .transaction(|crank| -> Result<_, QueueError> {
            let store = crank.store_mut();
            for n in [1, 2] {
                let ep = vat(n);
                let export = store.create_object(Owner::Endpoint(ep))?;
                store.add_clist_entry(
                    ep,
                    KRef::Object(export),
                    VRef::ExportObject(ExportId::Ephemeral(1)),
                )?;
                let import = store.create_object(Owner::Kernel)?;
                store.add_clist_entry(ep, KRef::Object(import), VRef::ImportObject(1))?;
                store.incref(KRef::Object(import))?;
                let promise = store.create_promise(Some(Owner::Endpoint(ep)))?;
                store.add_clist_entry(ep, KRef::Promise(promise), VRef::ExportPromise(1))?;
                store.mark_terminated(ep)?;
            }
            Ok(())
        })
        .unwrap();
    let (reports, _) = state
        .transaction(|crank| -> Result<_, QueueError> {
            let first = crank.cleanup_next_terminated()?;
            let finished = crank.cleanup_all_terminated()?;
            Ok((first, finished))
        })
        .unwrap();
    assert_eq!(
        reports,
        (
            Some(crate::CleanupReport {
                exports: 1,
                imports: 1,
                promises: 1,
                finished: true,
            }),
            1
        ),
        "the first step cleans v1 up whole; cleaning up all finishes v2"
    );
    assert!(state.store().terminated_vats().unwrap().is_empty());
}
