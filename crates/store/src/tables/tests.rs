//! Unit tests of the kernel tables: records round-trip, c-lists both ways, id allocation
//! across rollbacks, the vat-store namespace against hostile keys, and the GC set.

use ocap_types::{
    ByteBuf, CapData, Checkpoint, EndpointId, KObjectId, KRef, Message, VRef, Value, VatConfig,
    VatId,
};

use super::keys;
use crate::{
    GcAction, GcKind, KernelStore, Owner, PromiseState, Record, Store, StoreError, VatRecord,
};

fn store() -> (tempfile::TempDir, KernelStore) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KernelStore::new(Store::open(dir.path()).unwrap());
    store.start_crank().unwrap();
    (dir, store)
}

fn vat(n: u32) -> EndpointId {
    EndpointId::Vat(VatId(n))
}

#[test]
fn ids_are_never_reused_after_a_rollback() {
    let (_dir, mut store) = store();
    let s = store.savepoint().unwrap();
    let first = store.create_object(Owner::Kernel).unwrap();
    let promise = store.create_promise(None).unwrap();
    store.rollback_to(s).unwrap();
    assert_eq!(
        store.object(first).unwrap(),
        None,
        "the rollback undid the record"
    );
    let second = store.create_object(Owner::Kernel).unwrap();
    let promise2 = store.create_promise(None).unwrap();
    assert!(second > first, "{second} reuses {first}");
    assert!(promise2 > promise);
    store.end_crank().unwrap();
}

#[test]
fn reads_after_a_rollback_see_the_restored_state() {
    let (_dir, mut store) = store();
    let object = store.create_object(Owner::Endpoint(vat(1))).unwrap();
    let promise = store.create_promise(Some(Owner::Endpoint(vat(1)))).unwrap();
    let s = store.savepoint().unwrap();
    store.incref(KRef::Object(object)).unwrap();
    store.revoke(object).unwrap();
    store.add_subscriber(promise, vat(2)).unwrap();
    store
        .settle_promise(promise, false, CapData::data(&Value::Int(1)))
        .unwrap();
    store
        .add_gc_actions(&[GcAction {
            endpoint: vat(1),
            kind: GcKind::DropExport,
            object,
        }])
        .unwrap();
    store.schedule_reap(vat(1)).unwrap();
    store.mark_terminated(vat(3)).unwrap();
    store.rollback_to(s).unwrap();
    let record = store.object(object).unwrap().unwrap();
    assert_eq!((record.counts.reachable, record.revoked), (0, false));
    let promise = store.promise(promise).unwrap().unwrap();
    assert_eq!(
        promise.state,
        PromiseState::Unresolved {
            decider: Some(Owner::Endpoint(vat(1))),
            subscribers: vec![],
        }
    );
    assert!(store.gc_actions().unwrap().is_empty());
    assert!(store.reap_queue().unwrap().is_empty());
    assert!(store.terminated_vats().unwrap().is_empty());
    assert!(
        store.take_maybe_free().is_empty(),
        "maybe-free set dropped with the rollback"
    );
    store.end_crank().unwrap();
}

#[test]
fn clist_maps_both_ways_and_scans_per_endpoint() {
    let (_dir, mut store) = store();
    let object = KRef::Object(store.create_object(Owner::Endpoint(vat(2))).unwrap());
    let import = VRef::ImportObject(store.allocate_import(vat(1), false).unwrap());
    store.add_clist_entry(vat(1), object, import).unwrap();
    store
        .add_clist_entry(vat(10), object, VRef::ImportObject(1))
        .unwrap();
    assert_eq!(store.clist_kref(vat(1), import).unwrap(), Some(object));
    let entry = store.clist_entry(vat(1), object).unwrap().unwrap();
    assert_eq!((entry.vref, entry.reachable), (import, true));
    assert_eq!(store.clist_entries(vat(1)).unwrap(), vec![(import, object)]);
    assert!(store.clear_reachable_flag(vat(1), object).unwrap());
    assert!(
        !store
            .clist_entry(vat(1), object)
            .unwrap()
            .unwrap()
            .reachable
    );
    store.delete_clist_entry(vat(1), object).unwrap();
    assert_eq!(store.clist_kref(vat(1), import).unwrap(), None);
    assert_eq!(
        store.clist_entries(vat(10)).unwrap().len(),
        1,
        "v10 is not under v1."
    );
    store.end_crank().unwrap();
}

#[test]
fn hostile_vatstore_keys_stay_inside_their_vat() {
    let (_dir, mut store) = store();
    let v1 = VatId(1);
    let v2 = VatId(2);
    store
        .put_vat(
            v2,
            &VatRecord {
                name: "victim".to_owned(),
                config: VatConfig::named("x"),
                subcluster: None,
                bundle_hash: None,
            },
        )
        .unwrap();
    store
        .apply_checkpoint(
            v2,
            &Checkpoint {
                sets: vec![("secret".to_owned(), ByteBuf(b"v2".to_vec()))],
                deletes: vec![],
            },
            u64::MAX,
        )
        .unwrap()
        .unwrap();
    let hostile = [
        "../v2.vs.secret",
        "\u{0}v2.vs.secret",
        "x\nv2.vs.secret",
        ".v2.vs.secret",
        "",
        "v2.config",
        "n.ko",
        "queue.run.head",
    ];
    let checkpoint = Checkpoint {
        sets: hostile
            .iter()
            .map(|k| ((*k).to_owned(), ByteBuf(b"evil".to_vec())))
            .collect(),
        deletes: vec!["secret".to_owned(), "../v2.vs.secret".to_owned()],
    };
    store
        .apply_checkpoint(v1, &checkpoint, u64::MAX)
        .unwrap()
        .unwrap();
    for key in hostile.iter().filter(|k| **k != "../v2.vs.secret") {
        assert_eq!(
            store.vatstore_get(v1, key).unwrap(),
            Some(b"evil".to_vec()),
            "{key:?}"
        );
    }
    assert_eq!(store.vatstore_get(v1, "../v2.vs.secret").unwrap(), None);
    assert_eq!(
        store.vatstore_get(v2, "secret").unwrap(),
        Some(b"v2".to_vec())
    );
    assert!(store.vat(v2).unwrap().is_some());
    assert_eq!(store.read_u64(b"n.ko").unwrap(), None);
    for (key, _) in store.vatstore_entries(v1).unwrap() {
        assert!(hostile.contains(&key.as_str()), "{key:?}");
    }
    for (key, value) in store.kv().scan_prefix(b"").unwrap() {
        if value == b"evil" {
            assert!(
                key.starts_with(b"v1.vs."),
                "{}",
                String::from_utf8_lossy(&key)
            );
        }
    }
    store.end_crank().unwrap();
}

#[test]
fn refcounts_clamp_at_zero_and_report_maybe_free() {
    let (_dir, mut store) = store();
    let object = store.create_object(Owner::Endpoint(vat(1))).unwrap();
    store.decref(KRef::Object(object)).unwrap();
    store.decref(KRef::Object(object)).unwrap();
    let counts = store.object(object).unwrap().unwrap().counts;
    assert_eq!((counts.reachable, counts.recognizable), (0, 0));
    assert!(store.take_maybe_free().contains(&KRef::Object(object)));
    store.end_crank().unwrap();
}

/// A promise released to zero is reported for collection, whether its record is in the
/// crank's cache or not; taking a hold, or releasing one that leaves others, is not.
#[test]
fn a_promise_released_to_zero_is_reported_maybe_free() {
    let (_dir, mut store) = store();
    let promise = store.create_promise(None).unwrap();
    let kref = KRef::Promise(promise);
    store.incref(kref).unwrap();
    store.decref(kref).unwrap();
    assert!(store.take_maybe_free().is_empty(), "1 hold left");
    store.decref(kref).unwrap();
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 0);
    assert_eq!(store.take_maybe_free(), [kref].into());
    // Clamped at zero, and reported again.
    store.decref(kref).unwrap();
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 0);
    assert_eq!(store.take_maybe_free(), [kref].into());
    store.incref(kref).unwrap();
    assert!(
        store.take_maybe_free().is_empty(),
        "a hold taken is not a release"
    );
    store.end_crank().unwrap();
    // Not cached (a new crank): read from the store, released, reported.
    store.start_crank().unwrap();
    store.decref(kref).unwrap();
    assert_eq!(store.take_maybe_free(), [kref].into());
    store.end_crank().unwrap();
}

/// A change to a record the cache holds must reach the store even after a savepoint wrote
/// the cache back (the entry was then up to date, and the change makes it lag again):
/// a promise's, changed in place, and an object's, replaced.
#[test]
fn a_cached_promise_changed_after_a_savepoint_reaches_the_store() {
    let (_dir, mut store) = store();
    let promise = store.create_promise(None).unwrap();
    let object = store.create_object(Owner::Kernel).unwrap();
    store.incref(KRef::Promise(promise)).unwrap();
    store.incref(KRef::Object(object)).unwrap();
    let _sp = store.savepoint().unwrap();
    store.incref(KRef::Promise(promise)).unwrap();
    store.set_decider(promise, Some(Owner::Kernel)).unwrap();
    store.incref(KRef::Object(object)).unwrap();
    store.end_crank().unwrap();
    let record = store.promise(promise).unwrap().unwrap();
    assert_eq!(record.refcount, 3);
    assert_eq!(record.decider(), Some(Owner::Kernel));
    assert_eq!(store.object(object).unwrap().unwrap().counts.reachable, 2);
}

/// Nothing waits on a settled promise: queueing on one is refused, whether its record is
/// cached or read from the store.
#[test]
fn a_settled_promise_takes_no_queued_message() {
    let (_dir, mut store) = store();
    let target = store.create_object(Owner::Kernel).unwrap();
    let message = Message::new("late", vec![], vec![KRef::Object(target)], None);
    let promise = store.create_promise(None).unwrap();
    store
        .settle_promise(promise, false, CapData::new(&Value::Null, vec![]))
        .unwrap();
    let refused = |store: &mut KernelStore| {
        matches!(
            store.promise_queue_push(promise, &message, None),
            Err(StoreError::DeletedQueue { .. })
        )
    };
    assert!(refused(&mut store));
    store.end_crank().unwrap();
    store.start_crank().unwrap();
    assert!(refused(&mut store));
    assert_eq!(store.queue_bounds(&promise.to_string()).unwrap(), None);
    store.end_crank().unwrap();
}

#[test]
fn pins_are_a_multiset_that_holds_the_object() {
    let (_dir, mut store) = store();
    let object = store.create_object(Owner::Kernel).unwrap();
    store.pin_object(object).unwrap();
    store.pin_object(object).unwrap();
    assert_eq!(store.pinned_objects().unwrap(), vec![object, object]);
    assert_eq!(store.object(object).unwrap().unwrap().counts.reachable, 2);
    store.unpin_object(object).unwrap();
    store.unpin_object(object).unwrap();
    store.unpin_object(object).unwrap();
    assert!(store.pinned_objects().unwrap().is_empty());
    assert_eq!(store.object(object).unwrap().unwrap().counts.reachable, 0);
    assert!(matches!(
        store.pin_object(KObjectId(999)),
        Err(StoreError::NotFound(Record::Object(KObjectId(999))))
    ));
    store.end_crank().unwrap();
}

/// A new promise's record says no message ever waited on it, so that settling it skips
/// the queue lookup; the first queued message must change that, or settling would strand
/// the message. Rewrites of the record for other reasons keep what it says.
#[test]
fn the_first_message_queued_on_a_promise_is_found_when_it_settles() {
    let (_dir, mut store) = store();
    let target = store.create_object(Owner::Kernel).unwrap();
    let promise = store.create_promise(Some(Owner::Endpoint(vat(1)))).unwrap();
    let queueless = |store: &KernelStore| store.promise_facts(promise).unwrap().queueless();
    assert!(queueless(&store));
    // Decider, subscribers and count rewrite the record and keep the flag.
    store
        .set_decider(promise, Some(Owner::Endpoint(vat(2))))
        .unwrap();
    store.add_subscriber(promise, vat(1)).unwrap();
    store.incref(KRef::Promise(promise)).unwrap();
    store.end_crank().unwrap();
    store.start_crank().unwrap();
    assert!(queueless(&store));
    let record = store.promise(promise).unwrap().unwrap();

    let message = Message::new("hello", vec![], vec![KRef::Object(target)], None);
    store
        .promise_queue_push(promise, &message, Some(vat(1)))
        .unwrap();
    assert!(!queueless(&store));
    assert_eq!(store.promise(promise).unwrap().unwrap(), record);
    let (waiting, subscribers) = store
        .settle_promise(promise, false, CapData::new(&Value::Null, vec![]))
        .unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].message, message);
    assert_eq!(subscribers, vec![vat(1)]);

    assert_eq!(store.queue_bounds(&promise.to_string()).unwrap(), None);
    store.end_crank().unwrap();
}

/// A promise's record knows which c-lists can hold it while only one does, so that a
/// vat that cannot hold it is spared a c-list lookup; every c-list entry added for it must
/// widen what the record allows, never narrow it.
#[test]
fn a_promise_record_allows_exactly_the_clists_that_were_given_it() {
    let (_dir, mut store) = store();
    let may = |store: &KernelStore, ep, id| store.clist_may_hold_promise(ep, id).unwrap();
    let promise = store.create_promise(None).unwrap();
    assert!(!may(&store, vat(1), promise) && !may(&store, vat(2), promise));

    let export = VRef::ExportPromise(7);
    store
        .add_clist_entry(vat(1), KRef::Promise(promise), export)
        .unwrap();
    assert!(may(&store, vat(1), promise));
    assert!(!may(&store, vat(2), promise));
    // What the record knows outlives other rewrites of it, and the end of the crank.
    store
        .set_decider(promise, Some(Owner::Endpoint(vat(1))))
        .unwrap();
    store.add_subscriber(promise, vat(3)).unwrap();
    store.incref(KRef::Promise(promise)).unwrap();
    store.end_crank().unwrap();
    store.start_crank().unwrap();
    assert!(!may(&store, vat(2), promise) && !may(&store, vat(3), promise));
    assert_eq!(
        store.promise(promise).unwrap().unwrap().decider(),
        Some(Owner::Endpoint(vat(1)))
    );

    let import = VRef::ImportPromise(store.allocate_import(vat(2), true).unwrap());
    store
        .add_clist_entry(vat(2), KRef::Promise(promise), import)
        .unwrap();
    assert!(may(&store, vat(1), promise) && may(&store, vat(2), promise));
    // Two holders: the record no longer narrows anything.
    assert!(may(&store, vat(3), promise));
    assert!(store.promise_facts(promise).unwrap().queueless());
    store.end_crank().unwrap();
}

/// What a promise's record knows is stored in it, read back from it, and kept when the
/// record is rewritten in a later crank, for each thing it can know.
#[test]
fn what_a_promise_record_knows_survives_the_store_and_a_rewrite() {
    use super::promises::Facts;
    let (_dir, mut store) = store();
    let tag = |store: &KernelStore, id| store.kv().get(&keys::promise(id)).unwrap().unwrap()[4];
    let unheld = store.create_promise(None).unwrap();
    let held_by_one = store.create_promise(None).unwrap();
    let held_by_two = store.create_promise(None).unwrap();
    let queued_on = store.create_promise(None).unwrap();
    for (ep, n) in [(vat(1), 1), (vat(2), 2)] {
        store
            .add_clist_entry(ep, KRef::Promise(held_by_two), VRef::ImportPromise(n))
            .unwrap();
    }
    store
        .add_clist_entry(vat(1), KRef::Promise(held_by_one), VRef::ImportPromise(3))
        .unwrap();
    let target = store.create_object(Owner::Kernel).unwrap();
    let message = Message::new("m", vec![], vec![KRef::Object(target)], None);
    store.promise_queue_push(queued_on, &message, None).unwrap();
    store.end_crank().unwrap();
    let expected = [
        (unheld, Facts::Unheld, 4),
        (held_by_one, Facts::HeldBy(vat(1)), 5),
        (held_by_two, Facts::Queueless, 3),
        (queued_on, Facts::None, 0),
    ];
    for round in 0..2 {
        store.start_crank().unwrap();
        for (id, facts, stored_tag) in expected {
            assert_eq!(
                store.promise_facts(id).unwrap(),
                facts,
                "round {round}: {id}"
            );
            assert_eq!(tag(&store, id), stored_tag, "round {round}: {id}");
            // A rewrite for another reason, through a decoded record.
            store.add_subscriber(id, vat(3 + round)).unwrap();
        }
        store.end_crank().unwrap();
    }
    // A settled record knows nothing more, even while the crank still caches it.
    store.start_crank().unwrap();
    store
        .settle_promise(held_by_one, false, CapData::new(&Value::Null, vec![]))
        .unwrap();
    assert_eq!(store.promise_facts(held_by_one).unwrap(), Facts::None);
    assert!(store.clist_may_hold_promise(vat(2), held_by_one).unwrap());
    store.end_crank().unwrap();
}

/// Settling a promise that was never made is refused and writes nothing: a record
/// written for it would be overwritten when its id is allocated.
#[test]
fn settling_an_unknown_promise_is_refused() {
    let (_dir, mut store) = store();
    let next = ocap_types::KPromiseId(1);
    assert!(matches!(
        store.settle_read_promise(next, vec![], false, CapData::new(&Value::Null, vec![])),
        Err(StoreError::NotFound(Record::Promise(id))) if id == next
    ));
    assert_eq!(store.promise(next).unwrap(), None);
    assert_eq!(store.create_promise(None).unwrap(), next);
    let record = store.promise(next).unwrap().unwrap();
    assert!(record.is_unresolved());
    assert_eq!(record.refcount, 1);
    store.end_crank().unwrap();
}

/// A host message's result is made pinned in one step; it must leave what making it and
/// then pinning it leaves: the same record, refcount and pin, in the cache and on disk.
#[test]
fn a_promise_made_pinned_is_stored_as_one_made_then_pinned() {
    let (_dir, mut store) = store();
    let two_steps = store.create_promise(None).unwrap();
    store.pin_promise(two_steps).unwrap();
    let one_step = store.create_pinned_promise(None).unwrap();
    let record = |store: &KernelStore, id| store.promise(id).unwrap().unwrap();
    assert_eq!(record(&store, one_step), record(&store, two_steps));
    assert_eq!(record(&store, one_step).refcount, 2);
    let pins = |store: &KernelStore| store.kv().scan_prefix(b"pin.").unwrap();
    assert_eq!(
        pins(&store),
        vec![
            (
                format!("pin.{}", KRef::Promise(two_steps)).into_bytes(),
                b"1".to_vec()
            ),
            (
                format!("pin.{}", KRef::Promise(one_step)).into_bytes(),
                b"1".to_vec()
            ),
        ]
    );
    store.end_crank().unwrap();
    // Stored, each is one key (schema 8): its record, refcount (u32 LE) first, and no
    // `kpN.rc` beside it.
    let stored = |store: &KernelStore, id: ocap_types::KPromiseId| {
        let kref = KRef::Promise(id);
        (
            store.kv().get(format!("{kref}").as_bytes()).unwrap(),
            store.kv().get(format!("{kref}.rc").as_bytes()).unwrap(),
        )
    };
    assert_eq!(stored(&store, one_step), stored(&store, two_steps));
    let (record_bytes, refcount_key) = stored(&store, one_step);
    assert_eq!(record_bytes.unwrap()[..4], 2u32.to_le_bytes());
    assert_eq!(refcount_key, None);
    // Unpinned once, each is held once: by being made.
    store.start_crank().unwrap();
    assert!(store.unpin(KRef::Promise(one_step)).unwrap());
    assert_eq!(record(&store, one_step).refcount, 1);
    assert!(!store.unpin(KRef::Promise(one_step)).unwrap());
    store.end_crank().unwrap();
}

#[test]
fn gc_actions_are_a_sorted_set() {
    let (_dir, mut store) = store();
    let action = |ep, kind, n| GcAction {
        endpoint: vat(ep),
        kind,
        object: KObjectId(n),
    };
    store
        .add_gc_actions(&[
            action(2, GcKind::RetireImport, 5),
            action(10, GcKind::DropExport, 1),
            action(2, GcKind::DropExport, 5),
            action(2, GcKind::DropExport, 5),
        ])
        .unwrap();
    let text: Vec<String> = store
        .gc_actions()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        text,
        [
            "v10 dropExport ko1",
            "v2 dropExport ko5",
            "v2 retireImport ko5"
        ]
    );
    store.end_crank().unwrap();
}

#[test]
fn gc_actions_are_removed_one_key_each() {
    let (_dir, mut store) = store();
    let action = |n| GcAction {
        endpoint: vat(1),
        kind: GcKind::DropExport,
        object: KObjectId(n),
    };
    store.add_gc_actions(&[action(1), action(2)]).unwrap();
    store.remove_gc_actions(&[action(1), action(3)]).unwrap();
    assert_eq!(store.gc_actions().unwrap(), [action(2)]);
    store.remove_gc_actions(&[action(2)]).unwrap();
    assert!(store.gc_actions().unwrap().is_empty());
    assert!(store.kv().scan_prefix(b"gcAction").unwrap().is_empty());
    store.end_crank().unwrap();
}

#[test]
fn the_reap_queue_is_fifo_without_duplicates_and_leaves_no_keys_once_empty() {
    let (_dir, mut store) = store();
    store.schedule_reap(vat(2)).unwrap();
    store.schedule_reap(vat(1)).unwrap();
    store.schedule_reap(vat(2)).unwrap();
    assert_eq!(store.reap_queue().unwrap(), [vat(2), vat(1)]);
    assert_eq!(store.next_reap().unwrap(), Some(vat(2)));
    store.schedule_reap(vat(2)).unwrap();
    assert_eq!(store.reap_queue().unwrap(), [vat(1), vat(2)]);
    assert_eq!(store.next_reap().unwrap(), Some(vat(1)));
    assert_eq!(store.next_reap().unwrap(), Some(vat(2)));
    assert_eq!(store.next_reap().unwrap(), None);
    assert!(store.kv().scan_prefix(b"reap").unwrap().is_empty());
    store.end_crank().unwrap();
}

#[test]
fn records_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (object, promise) = {
        let mut store = KernelStore::new(Store::open(dir.path()).unwrap());
        store.start_crank().unwrap();
        let object = store.create_object(Owner::Endpoint(vat(1))).unwrap();
        store.revoke(object).unwrap();
        let promise = store.create_promise(None).unwrap();
        store
            .settle_promise(
                promise,
                true,
                CapData::new(
                    &Value::Slot {
                        index: 0,
                        iface: None,
                    },
                    vec![KRef::Object(object)],
                ),
            )
            .unwrap();
        store.end_crank().unwrap();
        (object, promise)
    };
    let store = KernelStore::new(Store::open(dir.path()).unwrap());
    assert!(store.object(object).unwrap().unwrap().revoked);
    let record = store.promise(promise).unwrap().unwrap();
    assert!(
        matches!(record.state, PromiseState::Rejected(ref v) if v.slots == vec![KRef::Object(object)])
    );
}

#[test]
fn corrupt_records_are_typed_errors() {
    let (_dir, mut store) = store();
    store.kv_mut().set(b"ko7", b"\x09garbage").unwrap();
    assert!(matches!(
        store.object(KObjectId(7)),
        Err(StoreError::Corrupt { .. })
    ));
    // A promise record (schema 8) is a 4-byte count and then a state of at least a tag
    // byte: shorter, or with a state that does not decode, every read of it is refused,
    // the count alone included, and so is the write-back of a cached count into it.
    let kp7 = ocap_types::KPromiseId(7);
    for bad in [&b""[..], b"\x01\0", b"\x01\0\0\0", b"\x01\0\0\0\x09"] {
        store.kv_mut().set(b"kp7", bad).unwrap();
        let corrupt = |res: Result<_, StoreError>| matches!(res, Err(StoreError::Corrupt { .. }));
        assert!(corrupt(store.promise(kp7).map(drop)), "{bad:?}");
        assert!(corrupt(store.promise_state(kp7).map(drop)), "{bad:?}");
        assert!(
            corrupt(store.clist_may_hold_promise(vat(1), kp7).map(drop)),
            "{bad:?}"
        );
        if bad.len() < 5 {
            assert!(corrupt(store.promise_refcount(kp7).map(drop)), "{bad:?}");
            assert!(corrupt(store.put_promise_refcount(kp7, 2)), "{bad:?}");
        }
    }
    store.end_crank().unwrap();
}

#[test]
fn hand_built_keys_match_the_display_text() {
    use super::keys::{self, KeyPart};
    for text in [
        "o+0",
        "o-17",
        "p+3",
        "p-12345",
        "o+d10/1",
        "o+v3/4:0",
        "o+18446744073709551615",
    ] {
        let vref: VRef = text.parse().unwrap();
        let mut buf = Vec::new();
        vref.push_to(&mut buf);
        assert_eq!(buf, text.as_bytes());
    }
    for text in ["ko0", "ko7", "kp10", "kp18446744073709551615"] {
        let kref: KRef = text.parse().unwrap();
        let mut buf = Vec::new();
        kref.push_to(&mut buf);
        assert_eq!(buf, text.as_bytes());
    }
    assert_eq!(&*keys::clist(vat(12), VRef::ROOT), b"v12.c.o+0");
    assert_eq!(&*keys::promise(ocap_types::KPromiseId(9)), b"kp9");
    let remote = EndpointId::Remote(ocap_types::RemoteId(4));
    assert_eq!(&*keys::clist_prefix(remote), b"r4.c.");
}

#[test]
fn vatstore_usage_counts_keys_and_values_and_refuses_growth_past_the_limit() {
    let (_dir, mut store) = store();
    let vat = VatId(1);
    let set = |pairs: &[(&str, &str)]| Checkpoint {
        sets: pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), ByteBuf(v.as_bytes().to_vec())))
            .collect(),
        deletes: vec![],
    };
    assert_eq!(store.vatstore_usage(vat).unwrap(), 0);
    store
        .apply_checkpoint(vat, &set(&[("ab", "1234"), ("c", "5")]), 8)
        .unwrap()
        .unwrap();
    assert_eq!(store.vatstore_usage(vat).unwrap(), 8);
    // Rewriting a key counts its new size only; growth past the limit writes nothing.
    assert_eq!(
        store
            .apply_checkpoint(vat, &set(&[("ab", "12345")]), 8)
            .unwrap(),
        Err(9)
    );
    assert_eq!(
        store.vatstore_get(vat, "ab").unwrap(),
        Some(b"1234".to_vec())
    );
    assert_eq!(store.vatstore_usage(vat).unwrap(), 8);
    // Shrinking is always allowed, even past a lowered limit.
    let shrink = Checkpoint {
        sets: vec![("ab".to_owned(), ByteBuf(b"1".to_vec()))],
        deletes: vec!["c".to_owned()],
    };
    store.apply_checkpoint(vat, &shrink, 1).unwrap().unwrap();
    assert_eq!(store.vatstore_usage(vat).unwrap(), 3);
    // A key set and deleted in one checkpoint ends deleted, and counts nothing.
    let both = Checkpoint {
        sets: vec![("d".to_owned(), ByteBuf(b"xyz".to_vec()))],
        deletes: vec!["d".to_owned()],
    };
    store.apply_checkpoint(vat, &both, 3).unwrap().unwrap();
    assert_eq!(store.vatstore_get(vat, "d").unwrap(), None);
    assert_eq!(store.vatstore_usage(vat).unwrap(), 3);
    // The count agrees with a scan of the vat's store.
    let scanned: usize = store
        .vatstore_entries(vat)
        .unwrap()
        .iter()
        .map(|(k, v)| k.len() + v.0.len())
        .sum();
    assert_eq!(scanned, 3);
    store.end_crank().unwrap();
}

#[test]
fn deleting_a_promise_entry_releases_the_hold_it_took() {
    let (_dir, mut store) = store();
    // v1 exports the promise: its entry holds it (on top of the decider baseline).
    let promise = store.create_promise(Some(Owner::Endpoint(vat(1)))).unwrap();
    let kref = KRef::Promise(promise);
    store.incref(kref).unwrap();
    store
        .add_clist_entry(vat(1), kref, VRef::ExportPromise(1))
        .unwrap();
    // v2 imports it, which holds it too.
    store.incref(kref).unwrap();
    store
        .add_clist_entry(vat(2), kref, VRef::ImportPromise(1))
        .unwrap();
    // v1 settles it: the decider baseline goes, and nothing replaces it.
    store
        .settle_promise(promise, false, CapData::data(&Value::Int(1)))
        .unwrap();
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 2);
    store.delete_clist_entry(vat(2), kref).unwrap();
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 1);
    assert!(store.check().unwrap().is_empty());
    store.delete_clist_entry(vat(1), kref).unwrap();
    assert_eq!(store.promise(promise).unwrap().unwrap().refcount, 0);
    store.end_crank().unwrap();
}

#[test]
fn the_terminated_list_is_read_afresh_after_a_rollback() {
    // terminated_vats skips the read while it knows the list is empty: a rollback of a
    // mark, a mark, and an unmark must each show.
    let (_dir, mut store) = store();
    assert!(store.terminated_vats().unwrap().is_empty());
    let start = store.savepoint().unwrap();
    store.mark_terminated(vat(2)).unwrap();
    assert_eq!(store.terminated_vats().unwrap(), vec![vat(2)]);
    store.rollback_to(start).unwrap();
    assert!(store.terminated_vats().unwrap().is_empty());
    store.mark_terminated(vat(3)).unwrap();
    store.end_crank().unwrap();
    assert_eq!(store.terminated_vats().unwrap(), vec![vat(3)]);
    store.start_crank().unwrap();
    let start = store.savepoint().unwrap();
    store.unmark_terminated(vat(3)).unwrap();
    assert!(store.terminated_vats().unwrap().is_empty());
    store.rollback_to(start).unwrap();
    assert_eq!(store.terminated_vats().unwrap(), vec![vat(3)]);
    store.end_crank().unwrap();
}

#[test]
fn a_path_vats_record_keeps_its_executable_and_hash_and_others_encode_as_before() {
    let (_dir, mut store) = store();
    let path_vat = VatRecord {
        name: "counter".to_owned(),
        config: VatConfig::at_path("/opt/vats/counter-vat"),
        subcluster: None,
        bundle_hash: Some(format!("blake3:{}", "ab".repeat(32))),
    };
    store.put_vat(VatId(1), &path_vat).unwrap();
    let read = store.vat(VatId(1)).unwrap().unwrap();
    assert_eq!(read.bundle_hash, path_vat.bundle_hash);
    assert_eq!(
        read.config.executable(),
        Some(std::path::Path::new("/opt/vats/counter-vat"))
    );

    // A registered vat's record has neither field: its bytes (and so the crank hash of
    // clusters of registered vats) are what they were before path vats existed.
    let named = VatRecord {
        name: "alice".to_owned(),
        config: VatConfig::named("alice"),
        subcluster: None,
        bundle_hash: None,
    };
    store.put_vat(VatId(2), &named).unwrap();
    let bytes = store
        .kv
        .get(&super::keys::vat_record(VatId(2)))
        .unwrap()
        .unwrap();
    for absent in [&b"bundle_hash"[..], b"bundlePath"] {
        assert!(!bytes.windows(absent.len()).any(|w| w == absent));
    }
    let path_bytes = store
        .kv
        .get(&super::keys::vat_record(VatId(1)))
        .unwrap()
        .unwrap();
    assert!(path_bytes.windows(11).any(|w| w == b"bundle_hash"));
}
