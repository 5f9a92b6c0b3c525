//! Step 6 → 7: a subprocess vat's kind leaves its records for `local.worker.v<N>`, and a
//! record written today is stored without its kind and read back with it.

use ocap_types::{ClusterConfig, SubclusterId, VatConfig, VatId, WorkerKind};

use super::super::{CURRENT, Schema};
use crate::kv::{Store, StoreConfig};
use crate::tables::{KernelStore, SubclusterRecord, VatRecord};

/// Version 6 with no steps: what a build of that version opened stores with.
const V6: Schema<'static> = Schema {
    version: 6,
    migrations: &[],
};

fn records(worker: WorkerKind) -> (VatRecord, VatRecord, SubclusterRecord) {
    let alice = VatConfig::named("alice").with_worker(worker);
    let bob = VatConfig::named("bob");
    let config = ClusterConfig::builder("alice")
        .vat("alice", alice.clone())
        .vat("bob", bob.clone())
        .build()
        .unwrap();
    let record = |name: &str, config: VatConfig| VatRecord {
        name: name.to_owned(),
        config,
        subcluster: Some(SubclusterId(1)),
        bundle_hash: None,
    };
    let subcluster = SubclusterRecord {
        config,
        vats: vec![("alice".to_owned(), VatId(1)), ("bob".to_owned(), VatId(2))],
    };
    (record("alice", alice), record("bob", bob), subcluster)
}

#[test]
fn step_6_to_7_moves_a_subprocess_vats_kind_out_of_its_hashed_records() {
    let dir = tempfile::tempdir().unwrap();
    let (alice, bob, subcluster) = records(WorkerKind::Subprocess);
    // A version-6 store, written as version 6 wrote it: the kind inside both records.
    let mut old = Store::open_schema(dir.path(), &StoreConfig::default(), &V6).unwrap();
    old.start_crank().unwrap();
    old.set(b"v1.config", &ocap_types::cbor::to_vec(&alice))
        .unwrap();
    old.set(b"v2.config", &ocap_types::cbor::to_vec(&bob))
        .unwrap();
    old.set(b"subcluster.s1", &ocap_types::cbor::to_vec(&subcluster))
        .unwrap();
    old.end_crank().unwrap();
    old.close().unwrap();

    let store = KernelStore::new(
        Store::open_schema(dir.path(), &StoreConfig::default(), &CURRENT).unwrap(),
    );
    // Read back, every vat is where it ran before.
    assert_eq!(store.vat(VatId(1)).unwrap(), Some(alice));
    assert_eq!(store.vat(VatId(2)).unwrap(), Some(bob));
    assert_eq!(store.subcluster(SubclusterId(1)).unwrap(), Some(subcluster));
    // Stored, the records are those of the same cluster run in process.
    let (in_alice, in_bob, in_subcluster) = records(WorkerKind::InProcess);
    let kv = store.kv();
    assert_eq!(
        kv.get(b"v1.config").unwrap(),
        Some(ocap_types::cbor::to_vec(&in_alice))
    );
    assert_eq!(
        kv.get(b"v2.config").unwrap(),
        Some(ocap_types::cbor::to_vec(&in_bob))
    );
    assert_eq!(
        kv.get(b"subcluster.s1").unwrap(),
        Some(ocap_types::cbor::to_vec(&in_subcluster))
    );
    assert_eq!(
        kv.get(b"local.worker.v1").unwrap().as_deref(),
        Some(&b"subprocess"[..])
    );
    assert_eq!(kv.get(b"local.worker.v2").unwrap(), None);
}

#[test]
fn a_vat_record_is_stored_without_its_kind_and_read_back_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KernelStore::new(
        Store::open_schema(dir.path(), &StoreConfig::default(), &CURRENT).unwrap(),
    );
    let (alice, _, subcluster) = records(WorkerKind::Subprocess);
    let (in_alice, _, in_subcluster) = records(WorkerKind::InProcess);
    store.start_crank().unwrap();
    store.put_vat(VatId(1), &alice).unwrap();
    store.put_subcluster(SubclusterId(1), &subcluster).unwrap();
    assert_eq!(store.vat(VatId(1)).unwrap(), Some(alice.clone()));
    assert_eq!(store.subcluster(SubclusterId(1)).unwrap(), Some(subcluster));
    assert_eq!(
        store.kv().get(b"v1.config").unwrap(),
        Some(ocap_types::cbor::to_vec(&in_alice))
    );
    assert_eq!(
        store.kv().get(b"subcluster.s1").unwrap(),
        Some(ocap_types::cbor::to_vec(&in_subcluster))
    );
    // Moved back in process, and deleted: no `local.` key is left behind.
    store.put_vat(VatId(1), &in_alice).unwrap();
    assert_eq!(store.kv().get(b"local.worker.v1").unwrap(), None);
    store.put_vat(VatId(1), &alice).unwrap();
    store.delete_vat(VatId(1)).unwrap();
    assert_eq!(store.kv().get(b"local.worker.v1").unwrap(), None);
    store.end_crank().unwrap();
}
