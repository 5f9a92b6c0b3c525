//! The refcount cache against the store: savepoints, rollbacks and aborts see the counts
//! as if every change had been written at once, and the crank leaves them in the store.

use ocap_types::{KRef, VatId};

use super::super::keys;
use crate::{KernelStore, Owner, Store};

fn store() -> (tempfile::TempDir, KernelStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = KernelStore::new(Store::open(dir.path()).unwrap());
    (dir, store)
}

/// A store holding, from one ended crank, an object of v1 and an undecided promise.
fn store_with_object_and_promise() -> (
    tempfile::TempDir,
    KernelStore,
    ocap_types::KObjectId,
    ocap_types::KPromiseId,
) {
    let (dir, mut store) = store();
    store.start_crank().unwrap();
    let owner = Owner::Endpoint(ocap_types::EndpointId::Vat(VatId(1)));
    let object = store.create_object(owner).unwrap();
    let promise = store.create_promise(None).unwrap();
    store.end_crank().unwrap();
    (dir, store, object, promise)
}

/// The promise's refcount as the byte store holds it: the first 4 bytes of its record.
fn stored_count(store: &KernelStore, id: ocap_types::KPromiseId) -> Option<u32> {
    let bytes = store.kv().get(&keys::promise(id)).unwrap()?;
    Some(u32::from_le_bytes(bytes[..4].try_into().unwrap()))
}

#[test]
fn counts_survive_a_savepoint_and_a_rollback_undoes_only_what_followed_it() {
    let (_dir, mut store, object, promise) = store_with_object_and_promise();

    store.start_crank().unwrap();
    store.incref(KRef::Promise(promise)).unwrap();
    store.incref(KRef::Object(object)).unwrap();
    let sp = store.savepoint().unwrap();
    // The savepoint holds the changes made before it.
    assert_eq!(stored_count(&store, promise), Some(2));
    store.incref(KRef::Promise(promise)).unwrap();
    store.decref(KRef::Object(object)).unwrap();
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 3);
    assert_eq!(store.object(object).unwrap().unwrap().counts.reachable, 0);
    store.rollback_to(sp).unwrap();
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 2);
    assert_eq!(store.object(object).unwrap().unwrap().counts.reachable, 1);
    store.incref(KRef::Promise(promise)).unwrap();
    store.end_crank().unwrap();
    // The end of the crank wrote them back.
    assert_eq!(stored_count(&store, promise), Some(3));

    store.start_crank().unwrap();
    store.decref(KRef::Promise(promise)).unwrap();
    store.abort_crank().unwrap();
    store.start_crank().unwrap();
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 3);
    // A record written directly replaces the cached one.
    store.incref(KRef::Object(object)).unwrap();
    store.revoke(object).unwrap();
    let record = store.object(object).unwrap().unwrap();
    assert!(record.revoked);
    assert_eq!(record.counts.reachable, 2);
    store.decref(KRef::Promise(promise)).unwrap();
    store.delete_promise(promise).unwrap();
    store.end_crank().unwrap();
    assert_eq!(
        stored_count(&store, promise),
        None,
        "a deleted record stays deleted"
    );
    assert!(store.object(object).unwrap().unwrap().revoked);
}

#[test]
fn a_crank_that_touches_more_krefs_than_the_cache_holds_keeps_every_count() {
    let (_dir, mut store) = store();
    store.start_crank().unwrap();
    let promises: Vec<_> = (0..20)
        .map(|_| store.create_promise(None).unwrap())
        .collect();
    for (i, id) in promises.iter().enumerate() {
        for _ in 0..i {
            store.incref(KRef::Promise(*id)).unwrap();
        }
    }
    store.end_crank().unwrap();
    for (i, id) in promises.iter().enumerate() {
        let expected = u32::try_from(i).unwrap() + 1;
        assert_eq!(stored_count(&store, *id), Some(expected));
        assert_eq!(store.promise(*id).unwrap().unwrap().refcount, expected);
    }
}

#[test]
fn a_settled_promise_is_deleted_without_its_queue_which_settling_removed() {
    let (_dir, mut store) = store();
    store.start_crank().unwrap();
    let promise = store.create_promise(None).unwrap();
    let waiting = ocap_types::Message {
        methargs: ocap_types::CapData::data(&ocap_types::Value::Null),
        result: None,
    };
    store.promise_queue_push(promise, &waiting, None).unwrap();
    let (messages, _) = store
        .settle_promise(
            promise,
            false,
            ocap_types::CapData::data(&ocap_types::Value::Int(1)),
        )
        .unwrap();
    assert_eq!(messages.len(), 1);
    store.delete_settled_promise(promise).unwrap();
    store.end_crank().unwrap();
    assert_eq!(store.promise(promise).unwrap(), None);
    let left = store.kv().scan_prefix(b"").unwrap();
    let names: Vec<_> = left
        .iter()
        .map(|(k, _)| k.escape_ascii().to_string())
        .collect();
    // Only the counter and the crank hash are left: no record, no queue.
    assert_eq!(names, ["crankHash", "n.kp"]);
}

#[test]
fn a_refcount_change_outside_a_crank_is_refused_not_cached() {
    let (_dir, mut store, object, promise) = store_with_object_and_promise();
    for kref in [KRef::Object(object), KRef::Promise(promise)] {
        assert!(
            matches!(
                store.incref(kref),
                Err(crate::StoreError::Crank(
                    crate::CrankError::WriteOutsideCrank
                ))
            ),
            "{kref}"
        );
    }
    assert_eq!(store.object(object).unwrap().unwrap().counts.reachable, 0);
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 1);
}
