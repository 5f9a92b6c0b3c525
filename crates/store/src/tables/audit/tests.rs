//! Unit tests of the refcount audit: a store built with the kernel's accounting passes;
//! each kind of corruption (a count off by one either way, a dangling c-list entry, a
//! c-list whose directions disagree, a queue left behind) is reported with its kref and
//! numbers, as the operator will read it.

use ocap_types::{
    CapData, EndpointId, ExportId, KObjectId, KPromiseId, KRef, Message, RunQueueItem, VRef, Value,
    VatId,
};

use ocap_types::VatConfig;

use crate::tables::keys;
use crate::{KernelStore, Owner, Store, VatRecord};

fn vat(n: u32) -> EndpointId {
    EndpointId::Vat(VatId(n))
}

fn export(n: u64) -> VRef {
    VRef::ExportObject(ExportId::Ephemeral(n))
}

/// The audit's report as an operator reads it.
#[track_caller]
fn check(store: &KernelStore) -> String {
    store.check().unwrap().to_string()
}

const CONSISTENT: &str = "consistent: every count matches its references";

/// A store written the way the kernel writes it (the holds of spec §14.2 taken by hand),
/// with the krefs the tests poke at.
struct World {
    _dir: tempfile::TempDir,
    store: KernelStore,
    /// Exported by v1 as `o+0`, imported by v2 as `o-1`; target of a queued send.
    root: KObjectId,
    /// Exported by v1 as `o+1`; a slot of the queued send and of kp1's value; pinned.
    gift: KObjectId,
    /// Exported by v1 as `p+1`, imported by v2 as `p-1`; fulfilled with `gift`; a notify
    /// to v2 waits.
    settled: KPromiseId,
    /// The host's result promise of the queued send (no decider).
    result: KPromiseId,
    /// Exported by v1 as `p+2`, unresolved; a message waits in its queue.
    pending: KPromiseId,
}

impl World {
    fn new() -> World {
        let dir = tempfile::tempdir().unwrap();
        let mut store = KernelStore::new(Store::open(dir.path()).unwrap());
        store.start_crank().unwrap();
        let s = &mut store;
        let (v1, v2) = (vat(1), vat(2));
        // Both vats are live: a live vat may decide promises.
        for n in [1, 2] {
            let record = VatRecord {
                name: format!("vat{n}"),
                config: VatConfig::named("code"),
                subcluster: None,
                bundle_hash: None,
            };
            s.put_vat(VatId(n), &record).unwrap();
        }

        // v1's root is held by its export entry; v2's import holds it too.
        let root = s.export_root(v1).unwrap();
        let gift = s.create_object(Owner::Endpoint(v1)).unwrap();
        s.add_clist_entry(v1, gift.into(), export(1)).unwrap();
        s.add_clist_entry(v2, root.into(), VRef::ImportObject(1))
            .unwrap();
        s.incref(root.into()).unwrap();

        // v1 exports p+1 (decider baseline + its c-list entry) and fulfils it with gift.
        let settled = s.create_promise(Some(Owner::Endpoint(v1))).unwrap();
        s.incref(settled.into()).unwrap();
        s.add_clist_entry(v1, settled.into(), VRef::ExportPromise(1))
            .unwrap();
        // v2 imports it (an import holds a promise too) and subscribes.
        s.incref(settled.into()).unwrap();
        s.add_clist_entry(v2, settled.into(), VRef::ImportPromise(1))
            .unwrap();
        s.add_subscriber(settled, v2).unwrap();
        s.incref(gift.into()).unwrap();
        let value = CapData::new(&Value::Null, vec![KRef::Object(gift)]);
        let (_, subscribers) = s.settle_promise(settled, false, value).unwrap();
        assert_eq!(subscribers, vec![v2]);

        // The host sends root.go(gift) with a result promise of its own.
        let result = s.create_promise(None).unwrap();
        s.queue_init("run").unwrap();
        let message = Message {
            methargs: CapData::new(&Value::Null, vec![KRef::Object(gift)]),
            result: Some(KRef::Promise(result)),
        };
        enqueue_send(s, KRef::Object(root), message);
        s.incref(settled.into()).unwrap();
        let notify = RunQueueItem::Notify {
            endpoint: v2,
            promise: settled,
        };
        s.queue_push("run", &ocap_types::cbor::to_vec(&notify))
            .unwrap();

        // A message waits on an unresolved promise v1 exported.
        let pending = s.create_promise(Some(Owner::Endpoint(v1))).unwrap();
        s.incref(pending.into()).unwrap();
        s.add_clist_entry(v1, pending.into(), VRef::ExportPromise(2))
            .unwrap();
        s.incref(pending.into()).unwrap();
        s.incref(root.into()).unwrap();
        let waiting = Message {
            methargs: CapData::new(&Value::Null, vec![KRef::Object(root)]),
            result: None,
        };
        s.promise_queue_push(pending, &waiting, None).unwrap();

        s.pin_object(gift).unwrap();
        let service = s.create_object(Owner::Kernel).unwrap();
        s.pin_object(service).unwrap();
        s.put_kernel_service("clock", service).unwrap();

        World {
            _dir: dir,
            store,
            root,
            gift,
            settled,
            result,
            pending,
        }
    }
}

/// Takes the holds of a send and appends it to the run queue (`enqueue_send`'s work).
fn enqueue_send(store: &mut KernelStore, target: KRef, message: Message<KRef>) {
    store.incref(target).unwrap();
    if let Some(result) = message.result {
        store.incref(result).unwrap();
    }
    for slot in &message.methargs.slots {
        store.incref(*slot).unwrap();
    }
    let item = RunQueueItem::Send {
        target,
        message,
        sender: None,
    };
    store
        .queue_push("run", &ocap_types::cbor::to_vec(&item))
        .unwrap();
}

#[test]
fn a_store_kept_by_the_accounting_rules_is_consistent() {
    let world = World::new();
    assert_eq!(check(&world.store), CONSISTENT);
    assert!(world.store.check().unwrap().is_empty());
}

#[test]
fn an_empty_store_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let store = KernelStore::new(Store::open(dir.path()).unwrap());
    assert_eq!(check(&store), CONSISTENT, "readable outside a crank");
}

#[test]
fn a_promise_count_one_short_is_reported_with_its_holders() {
    let mut world = World::new();
    world.store.decref(world.settled.into()).unwrap();
    let report = world.store.check().unwrap();
    assert_eq!(report.mismatches.len(), 1);
    let mismatch = &report.mismatches[0];
    assert_eq!(mismatch.kref, KRef::Promise(world.settled));
    assert!(mismatch.is_deficit());
    assert_eq!(report.deficits().count(), 1);
    assert_eq!(
        report.to_string(),
        "kp1: stored 2, recounted 3 (too low); held by: v1 c-list p+1, \
         v2 c-list p-1, run queue #2 notify to v2"
    );
}

#[test]
fn an_import_holds_its_object_reachable_until_dropped_and_recognizable_until_retired() {
    let mut world = World::new();
    let root = world.root;
    // v2 drops its import: the entry stays, recognizable only, and so does the count.
    world
        .store
        .clear_reachable_flag(vat(2), root.into())
        .unwrap();
    assert_eq!(check(&world.store), CONSISTENT);
    // It retires it too: the entry and its recognizable unit go.
    world.store.delete_clist_entry(vat(2), root.into()).unwrap();
    assert_eq!(check(&world.store), CONSISTENT);
    // One drop more than there were imports: the queued send and the waiting message
    // still hold the root, but its reachable count no longer covers them.
    world.store.decref_reachable(root).unwrap();
    assert_eq!(
        check(&world.store),
        "ko1: stored 2,3, recounted 3,3 (too low); held by: \
         v1 c-list o+0, kp3 queue #1 slot, run queue #1 send target"
    );
}

#[test]
fn a_count_above_its_references_is_reported_as_a_leak() {
    let mut world = World::new();
    world.store.incref(world.gift.into()).unwrap();
    world.store.incref(world.result.into()).unwrap();
    let report = world.store.check().unwrap();
    assert_eq!(report.deficits().count(), 0);
    assert_eq!(
        report.to_string(),
        "ko2: stored 4,4, recounted 3,3 (too high); held by: v1 c-list o+1, \
         value of kp1, run queue #1 send slot, pin\n\
         kp2: stored 3, recounted 2 (too high); held by: decider baseline, \
         run queue #1 send result"
    );
}

#[test]
fn a_dangling_clist_entry_is_reported_but_a_stale_object_import_is_not() {
    let mut world = World::new();
    let ghost = KObjectId(99);
    world
        .store
        .add_clist_entry(vat(2), ghost.into(), export(5))
        .unwrap();
    world
        .store
        .add_clist_entry(
            vat(2),
            KRef::Promise(KPromiseId(98)),
            VRef::ImportPromise(9),
        )
        .unwrap();
    assert_eq!(
        check(&world.store),
        "ko99: no record, but named by v2 c-list o+5\n\
         kp98: no record, but named by v2 c-list p-9"
    );
    let report = world.store.check().unwrap();
    assert_eq!(report.dangling.len(), 2);
    assert_eq!(report.dangling[0].kref, KRef::Object(ghost));

    // An object collected while still recognizable is deleted at once and its importers
    // are told to retire it (spec §14.4): until they are, the import names no record.
    world
        .store
        .forget_clist_entry(vat(2), ghost.into(), export(5))
        .unwrap();
    world
        .store
        .forget_clist_entry(
            vat(2),
            KRef::Promise(KPromiseId(98)),
            VRef::ImportPromise(9),
        )
        .unwrap();
    world
        .store
        .add_clist_entry(vat(2), ghost.into(), VRef::ImportObject(7))
        .unwrap();
    assert_eq!(check(&world.store), CONSISTENT);
}

#[test]
fn a_deleted_promise_still_named_is_dangling_everywhere_it_is_named() {
    let mut world = World::new();
    world.store.delete_promise(world.pending).unwrap();
    // Deleting the promise deleted its queue without releasing the waiting message's hold
    // on the root: the root is now counted one above its references.
    assert_eq!(
        check(&world.store),
        "ko1: stored 4,4, recounted 3,3 (too high); held by: v1 c-list o+0, \
         v2 c-list o-1, run queue #1 send target\n\
         kp3: no record, but named by v1 c-list p+2"
    );
    world.store.decref(world.root.into()).unwrap();
    assert_eq!(
        check(&world.store),
        "kp3: no record, but named by v1 c-list p+2"
    );
}

#[test]
fn a_clist_whose_directions_disagree_is_reported() {
    let mut world = World::new();
    // v2's vref side of `o-1` now names the gift, while its kref side still says root.
    world.store.kv_mut().set(b"v2.c.o-1", b"ko2").unwrap();
    assert_eq!(
        check(&world.store),
        "v2 c-list: o-1 names ko2, but ko2 names nothing\n\
         v2 c-list: ko1 names o-1, but o-1 names ko2"
    );
}

#[test]
fn ownership_and_exports_must_agree() {
    let mut world = World::new();
    let gift = world.gift;
    let mut record = world.store.object(gift).unwrap().unwrap();
    record.owner = Some(Owner::Endpoint(vat(2)));
    world.store.put_object(gift, &record).unwrap();
    assert_eq!(
        check(&world.store),
        "ko2: exported by v1 as o+1, but owned by v2\n\
         ko2: owned by v2, whose c-list does not export it"
    );
}

#[test]
fn a_queue_left_behind_by_a_settled_promise_is_reported() {
    let mut world = World::new();
    let name = world.settled.to_string();
    world.store.queue_init(&name).unwrap();
    world.store.queue_push(&name, b"junk").unwrap();
    let error = world.store.check().unwrap_err();
    assert!(
        error.to_string().contains("queue.kp1.1"),
        "an undecodable queued message is corrupt: {error}"
    );

    world.store.queue_delete(&name).unwrap();
    world.store.queue_init(&name).unwrap();
    assert_eq!(
        check(&world.store),
        "queue \"kp1\" belongs to a settled promise"
    );
}

#[test]
fn a_queue_of_a_promise_recorded_as_never_queued_on_is_reported() {
    let mut world = World::new();
    let promise = world.store.create_promise(None).unwrap();
    assert_eq!(check(&world.store), CONSISTENT);
    // A queue made behind the record's back (not through `promise_queue_push`): settling
    // would never look for it.
    let name = promise.to_string();
    world.store.queue_init(&name).unwrap();
    assert_eq!(
        check(&world.store),
        format!(
            "queue \"{name}\" belongs to a promise whose record says nothing ever waited on it"
        )
    );
}

#[test]
fn a_clist_holding_a_promise_its_record_rules_out_is_reported() {
    let mut world = World::new();
    let promise = world.store.create_promise(None).unwrap();
    let kref = KRef::Promise(promise);
    world
        .store
        .add_clist_entry(vat(1), kref, VRef::ExportPromise(9))
        .unwrap();
    world.store.incref(kref).unwrap();
    assert_eq!(check(&world.store), CONSISTENT);
    // An entry in v2's c-list written behind `add_clist_entry`'s back: the record still
    // says only v1's c-list holds the promise, so importing it into v2 would add a second
    // entry.
    let import = VRef::ImportPromise(5);
    let kv = &mut world.store.kv;
    kv.set(&keys::clist(vat(2), import), &keys::part(kref))
        .unwrap();
    kv.set(&keys::clist(vat(2), kref), &keys::flagged(true, import))
        .unwrap();
    world.store.incref(kref).unwrap();
    assert_eq!(
        check(&world.store),
        format!("{promise}: held by v2's c-list, but its record says only v1's")
    );
}

#[test]
fn a_lone_queue_bound_is_left_to_the_audit_by_settling() {
    let mut world = World::new();
    let promise = world.store.create_promise(None).unwrap();
    let name = promise.to_string();
    world.store.queue_init(&name).unwrap();
    // Damage: the head is gone, the tail stays. Settling looks for the head only (the
    // kernel writes both bounds or neither) and finds no queue...
    world
        .store
        .kv
        .delete(&crate::tables::keys::queue_head(&name))
        .unwrap();
    let (messages, _) = world
        .store
        .settle_promise(promise, false, CapData::new(&Value::Null, vec![]))
        .unwrap();
    assert!(messages.is_empty());
    // ...and the audit reports the damage.
    let error = world.store.check().unwrap_err();
    assert!(
        error.to_string().contains("queue head/tail missing"),
        "a lone tail is reported: {error}"
    );
}

#[test]
fn a_kernel_service_must_be_pinned() {
    let mut world = World::new();
    let service = world.store.kernel_service("clock").unwrap().unwrap();
    world.store.unpin_object(service).unwrap();
    assert_eq!(
        check(&world.store),
        "ko3: the object of kernel service \"clock\" is not pinned"
    );
}

#[test]
fn an_unresolved_promise_decided_by_a_vat_that_is_not_live_is_reported() {
    let mut world = World::new();
    // Deleting v1's record without terminating it leaves kp3 with a decider that can
    // never settle it (termination would have rejected it).
    world.store.delete_vat(VatId(1)).unwrap();
    assert_eq!(
        check(&world.store),
        "kp3: unresolved, decided by v1, which is not a live vat"
    );
    // The kernel and nobody are valid deciders.
    world
        .store
        .set_decider(world.pending, Some(Owner::Kernel))
        .unwrap();
    assert_eq!(check(&world.store), CONSISTENT);
    world.store.set_decider(world.pending, None).unwrap();
    assert_eq!(check(&world.store), CONSISTENT);
}

#[test]
fn the_importer_index_must_match_the_clists() {
    let mut world = World::new();
    let key = crate::tables::keys::importer(world.root, vat(2));
    world.store.kv.delete(&key).unwrap();
    assert_eq!(
        check(&world.store),
        "ko1: v2 imports it, but the importer index does not say so"
    );
    world.store.kv.set(&key, b"").unwrap();
    world
        .store
        .kv
        .set(&crate::tables::keys::importer(world.gift, vat(2)), b"")
        .unwrap();
    assert_eq!(
        check(&world.store),
        "ko2: the importer index names v2, whose c-list does not import it"
    );
}
