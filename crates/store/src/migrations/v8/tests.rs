//! Step 7 → 8: every `kpN.rc` folds into its record `kpN`; the promises read the same
//! through the API, and a version-7 store whose promise keys do not pair up or decode is
//! refused, its files untouched.

use ocap_types::{CapData, EndpointId, KObjectId, KPromiseId, KRef, Value, VatId};

use super::super::{CURRENT, Schema};
use crate::error::{OpenError, StoreError};
use crate::kv::{Store, StoreConfig, snapshot};
use crate::tables::{KernelStore, Owner, PromiseRecord, PromiseState};

type Entry = (Vec<u8>, Vec<u8>);

/// Version 7 with no steps: what a build of that version opened stores with.
const V7: Schema<'static> = Schema {
    version: 7,
    migrations: &[],
};

fn vat(n: u32) -> EndpointId {
    EndpointId::Vat(VatId(n))
}

/// Three promises, one of each state, with different counts.
fn promises() -> Vec<(KPromiseId, PromiseRecord)> {
    let value = CapData {
        body: b"#[\"$0\"]".to_vec(),
        slots: vec![KRef::Object(KObjectId(4)), KRef::Promise(KPromiseId(2))],
    };
    vec![
        (
            KPromiseId(1),
            PromiseRecord {
                state: PromiseState::Unresolved {
                    decider: Some(Owner::Endpoint(vat(1))),
                    subscribers: vec![vat(2), vat(3)],
                },
                refcount: 3,
            },
        ),
        (
            KPromiseId(2),
            PromiseRecord {
                state: PromiseState::Fulfilled(value),
                refcount: 1,
            },
        ),
        (
            KPromiseId(10),
            PromiseRecord {
                state: PromiseState::Rejected(CapData::data(&Value::Int(7))),
                refcount: 70_000,
            },
        ),
    ]
}

/// A closed version-7 store holding `entries`, written as version 7 wrote them.
fn make_v7_store(path: &std::path::Path, entries: &[Entry]) {
    let mut old = Store::open_schema(path, &StoreConfig::default(), &V7).unwrap();
    old.start_crank().unwrap();
    for (key, value) in entries {
        old.set(key, value).unwrap();
    }
    old.end_crank().unwrap();
    old.close().unwrap();
}

/// `promise`'s two version-7 keys: `kpN` (its state) and `kpN.rc` (its count).
fn v7_keys(id: KPromiseId, record: &PromiseRecord) -> [Entry; 2] {
    [
        (format!("{id}").into_bytes(), record.state.encode()),
        (
            format!("{id}.rc").into_bytes(),
            record.refcount.to_le_bytes().to_vec(),
        ),
    ]
}

fn open_current(path: &std::path::Path) -> Result<KernelStore, OpenError> {
    Store::open_schema(path, &StoreConfig::default(), &CURRENT).map(KernelStore::new)
}

#[test]
fn step_7_to_8_folds_each_refcount_into_its_record_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let promises = promises();
    let mut entries: Vec<_> = promises
        .iter()
        .flat_map(|(id, record)| v7_keys(*id, record))
        .collect();
    // A key beside the promises' stays as it was.
    entries.push((b"pin.kp2".to_vec(), b"1".to_vec()));
    make_v7_store(dir.path(), &entries);

    let store = open_current(dir.path()).unwrap();
    for (id, record) in &promises {
        assert_eq!(store.promise(*id).unwrap().as_ref(), Some(record), "{id}");
        assert_eq!(
            store.promise_state(*id).unwrap().as_ref(),
            Some(&record.state)
        );
        assert_eq!(store.promise_refcount(*id).unwrap(), Some(record.refcount));
    }
    // Listed in key order: kp1, kp10, kp2.
    let mut in_key_order = promises.clone();
    in_key_order.sort_by_key(|(id, _)| id.to_string());
    assert_eq!(store.promises_after(None, 10).unwrap(), in_key_order);
    // Stored: one key per promise, its count (u32 LE) then its state as version 7 held it.
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let keys: Vec<String> = store
        .kv()
        .scan_prefix(b"")
        .unwrap()
        .iter()
        .map(|(k, _)| text(k))
        .collect();
    assert_eq!(keys, ["kp1", "kp10", "kp2", "pin.kp2"]);
    for (id, record) in &promises {
        let mut expected = record.refcount.to_le_bytes().to_vec();
        expected.extend_from_slice(&record.state.encode());
        assert_eq!(
            store.kv().get(format!("{id}").as_bytes()).unwrap(),
            Some(expected)
        );
    }
}

#[test]
fn step_7_to_8_gives_a_record_without_its_refcount_the_count_version_7_read() {
    let dir = tempfile::tempdir().unwrap();
    let (id, record) = promises().remove(1);
    let v7_read = PromiseRecord {
        refcount: 0,
        ..record.clone()
    };
    // Version 7's `promise` read a missing `kpN.rc` as 0.
    make_v7_store(dir.path(), &[(b"kp2".to_vec(), record.state.encode())]);
    let store = open_current(dir.path()).unwrap();
    assert_eq!(store.promise(id).unwrap(), Some(v7_read));
}

#[test]
fn step_7_to_8_refuses_promise_keys_that_do_not_pair_or_decode_and_changes_nothing() {
    let (id, record) = promises().remove(0);
    let [state, count] = v7_keys(id, &record);
    let cases: Vec<(&str, Vec<Entry>)> = vec![
        ("a refcount without its record", vec![count.clone()]),
        (
            "a refcount of 3 bytes",
            vec![state.clone(), (count.0.clone(), vec![3, 0, 0])],
        ),
        (
            "a state that does not decode",
            vec![(state.0.clone(), vec![9]), count.clone()],
        ),
        (
            "a key under kp that names no promise",
            vec![state.clone(), count.clone(), (b"kp01".to_vec(), vec![])],
        ),
    ];
    for (case, entries) in cases {
        let dir = tempfile::tempdir().unwrap();
        make_v7_store(dir.path(), &entries);
        let before = snapshot(dir.path());
        let err = open_current(dir.path()).err().unwrap();
        assert!(
            matches!(&err, OpenError::Migration { from: 7, to: 8, source, .. }
                if matches!(**source, StoreError::Corrupt { table: "promises", .. })),
            "{case}: {err:?}"
        );
        assert_eq!(snapshot(dir.path()), before, "{case}");
        // Still a version-7 store: a build of that version opens it as it was.
        let old = Store::open_schema(dir.path(), &StoreConfig::default(), &V7).unwrap();
        let found: Vec<_> = old.scan_prefix(b"").unwrap();
        let mut expected = entries.clone();
        expected.sort();
        expected.dedup_by(|a, b| a.0 == b.0);
        assert_eq!(found, expected, "{case}");
    }
}
