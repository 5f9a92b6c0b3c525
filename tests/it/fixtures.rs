//! Stores outlive versions (issue 10 item 8): the store yesterday's main wrote
//! (`tests/fixtures/store-v1`; its README lists what it holds and how it was made) opens with
//! today's code, which migrates it if it must and then finds every vat, object, promise,
//! c-list entry and vat-store entry in it, and runs its vats.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ocap_kernel::Kernel;
use ocap_store::{KernelStore, Owner, PromiseState};
use ocap_tests::{WAIT, call, config, repo_root, roots};
use ocap_types::{EndpointId, KObjectId, KPromiseId, KRef, SubclusterId, Value, VatId};

/// A copy of the fixture's `data.mdb` in a new temporary directory: the checked-in file is
/// never opened (opening makes `lock.mdb` and `ocap.lock` beside it, and may migrate it).
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("data.mdb");
    fs::copy(repo_root().join("tests/fixtures/store-v1/data.mdb"), &copy).unwrap();
    // A checkout may have made it read-only; LMDB opens it for writing.
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

fn vat(n: u32) -> VatId {
    VatId(n)
}

fn ko(n: u64) -> KRef {
    KRef::Object(KObjectId(n))
}

/// What the kernel finds in the store, as text, read on the kernel thread.
#[derive(Debug, PartialEq)]
struct Found {
    /// `ko<n> owner=<vat> <reachable>/<recognizable>` (and ` revoked`), every object.
    objects: Vec<String>,
    /// `kp<n> [<refcount>] <state>`, every promise.
    promises: Vec<String>,
    /// Per vat, `<kref> <vref>` sorted.
    clists: Vec<Vec<String>>,
    /// Per vat, its vat-store keys.
    vatstores: Vec<Vec<String>>,
    /// The queue of the unresolved `kp12`: its length.
    kp12_queue: u64,
    /// The run queue's length.
    run_queue: u64,
}

fn owner_text(owner: Option<Owner>) -> String {
    match owner {
        None => "none".to_owned(),
        Some(Owner::Kernel) => "kernel".to_owned(),
        Some(Owner::Endpoint(ep)) => ep.to_string(),
    }
}

/// Every key under `prefix` that names a record itself (not `.rc` and the like).
fn record_ids(store: &KernelStore, prefix: &[u8]) -> Vec<u64> {
    let mut ids: Vec<u64> = store
        .kv()
        .scan_prefix(prefix)
        .unwrap()
        .iter()
        .filter_map(|(key, _)| std::str::from_utf8(&key[prefix.len()..]).ok()?.parse().ok())
        .collect();
    ids.sort_unstable();
    ids
}

fn read(store: &KernelStore) -> Found {
    let objects = record_ids(store, b"ko")
        .into_iter()
        .map(|n| {
            let record = store.object(KObjectId(n)).unwrap().unwrap();
            let revoked = if record.revoked { " revoked" } else { "" };
            format!(
                "ko{n} owner={} {}/{}{revoked}",
                owner_text(record.owner),
                record.counts.reachable,
                record.counts.recognizable
            )
        })
        .collect();
    let promises = record_ids(store, b"kp")
        .into_iter()
        .map(|n| {
            let record = store.promise(KPromiseId(n)).unwrap().unwrap();
            let state = match &record.state {
                PromiseState::Unresolved {
                    decider,
                    subscribers,
                } => format!(
                    "unresolved decider={} subscribers={subscribers:?}",
                    owner_text(*decider)
                ),
                PromiseState::Fulfilled(data) => {
                    let slots: Vec<String> = data.slots.iter().map(ToString::to_string).collect();
                    let slots = slots.join(", ");
                    format!("fulfilled {:?} [{slots}]", data.decode().unwrap())
                }
                PromiseState::Rejected(data) => format!("rejected {:?}", data.decode().unwrap()),
            };
            format!("kp{n} [{}] {state}", record.refcount)
        })
        .collect();
    let vats = [vat(1), vat(2), vat(3), vat(4)];
    let clists = vats
        .iter()
        .map(|v| {
            let mut entries: Vec<String> = store
                .clist_entries(EndpointId::Vat(*v))
                .unwrap()
                .iter()
                .map(|(vref, kref)| format!("{kref} {vref}"))
                .collect();
            entries.sort();
            entries
        })
        .collect();
    let vatstores = vats
        .iter()
        .map(|v| {
            let entries = store.vatstore_entries(*v).unwrap();
            entries.into_iter().map(|(key, _)| key).collect()
        })
        .collect();
    let queue_len = |name: &str| store.queue_bounds(name).unwrap().map_or(0, |b| b.len());
    Found {
        objects,
        promises,
        clists,
        vatstores,
        kp12_queue: queue_len("kp12"),
        run_queue: queue_len("run"),
    }
}

/// What the fixture's README says it holds.
fn expected() -> Found {
    let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let sorted = |items: &[&str]| {
        let mut items = strings(items);
        items.sort();
        items
    };
    let text = |s: &str| format!("{:?} []", Value::str(s));
    let tally = Value::Slot {
        index: 0,
        iface: Some("tally".to_owned()),
    };
    // A promise's count is its c-list entries (imports and exports alike) plus,
    // for every promise settled before schema version 3, the pin the migration
    // gives it (the store cannot tell which of them a host still awaits).
    let fulfilled: [(u64, u32, String); 11] = [
        (1, 2, text("alice got: hello, alice, from bob")),
        (2, 3, text("hello, alice, from bob")),
        (3, 2, text("bootstrapped")),
        (4, 2, text("Counter incremented to: 2")),
        (5, 2, format!("{tally:?} [{}]", ko(5))),
        (6, 2, format!("{:?} []", Value::Int(5))),
        (7, 2, format!("{:?} []", Value::Undefined)),
        (8, 2, text("hello, tester, from bob")),
        (9, 3, text("hello, tester, from bob")),
        (10, 2, format!("{:?} []", Value::Int(6))),
        (11, 3, format!("{:?} []", Value::Int(6))),
    ];
    let mut promises: Vec<(u64, String)> = fulfilled
        .into_iter()
        .map(|(n, rc, value)| (n, format!("kp{n} [{rc}] fulfilled {value}")))
        .collect();
    promises.push((
        12,
        "kp12 [3] unresolved decider=v3 subscribers=[]".to_owned(),
    ));
    promises.push((
        13,
        "kp13 [2] unresolved decider=none subscribers=[]".to_owned(),
    ));
    promises.sort();
    Found {
        objects: strings(&[
            "ko1 owner=v1 1/1",
            "ko2 owner=v2 3/3",
            "ko3 owner=v3 1/1",
            "ko4 owner=v4 2/2",
            "ko5 owner=v4 2/2",
        ]),
        promises: promises.into_iter().map(|(_, text)| text).collect(),
        clists: vec![
            sorted(&["ko1 o+0", "ko2 o-1", "kp1 p-1", "kp2 p+1"]),
            sorted(&["ko2 o+0", "kp2 p-1", "kp9 p-2"]),
            sorted(&[
                "ko3 o+0", "ko4 o-1", "ko2 o-2", "ko5 o-3", "kp9 p+1", "kp11 p+2", "kp3 p-1",
                "kp7 p-2", "kp8 p-3", "kp10 p-4", "kp12 p-5",
            ]),
            sorted(&[
                "ko4 o+0",
                "ko5 o+d1/1",
                "kp4 p-1",
                "kp5 p-2",
                "kp6 p-3",
                "kp11 p-4",
            ]),
        ],
        vatstores: vec![
            strings(&["sdk.idCounters"]),
            strings(&[]),
            strings(&["baggage.greeting", "baggage.vats", "sdk.idCounters"]),
            strings(&[
                "baggage.count",
                "baggage.tally",
                "sdk.durable.1/1",
                "sdk.kind.tally",
                "sdk.nextKindId",
            ]),
        ],
        kp12_queue: 1,
        run_queue: 0,
    }
}

fn open(path: &Path) -> Kernel {
    Kernel::open(path, config()).unwrap()
}

#[test]
fn the_version_1_fixture_opens_with_every_vat_object_promise_and_vat_store_entry() {
    let dir = fixture_copy();
    let kernel = open(dir.path());
    assert_eq!(kernel.vat_ids().unwrap(), [vat(1), vat(2), vat(3), vat(4)]);
    assert!(kernel.stopped_vats().unwrap().is_empty());
    let subclusters: Vec<_> = kernel
        .subclusters()
        .unwrap()
        .into_iter()
        .map(|info| (info.id, info.config.bootstrap, info.vats))
        .collect();
    let named = |pairs: &[(&str, u32)]| -> Vec<(String, VatId)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), vat(*v)))
            .collect()
    };
    assert_eq!(
        subclusters,
        [
            (
                SubclusterId(1),
                "alice".to_owned(),
                named(&[("alice", 1), ("bob", 2)])
            ),
            (
                SubclusterId(2),
                "tester".to_owned(),
                named(&[("tester", 3), ("counter", 4)])
            ),
        ]
    );
    let names: Vec<_> = kernel.vats().unwrap().into_iter().map(|v| v.name).collect();
    assert_eq!(names, ["alice", "bob", "tester", "counter"]);
    assert_eq!(
        roots(&kernel),
        [
            (vat(1), ko(1)),
            (vat(2), ko(2)),
            (vat(3), ko(3)),
            (vat(4), ko(4))
        ]
    );
    assert_eq!(kernel.inspect(read).unwrap(), expected());
    kernel.shutdown().unwrap();
}

#[test]
fn the_version_1_fixtures_vats_answer_and_keep_their_state() {
    let dir = fixture_copy();
    let kernel = open(dir.path());
    let (bob, tester, counter, tally) = (ko(2), ko(3), ko(4), ko(5));
    let text = |s: &str| Ok(Value::str(s));
    assert_eq!(
        call(&kernel, counter, "resume", vec![]),
        text("Counter incremented to: 3")
    );
    assert_eq!(
        call(&kernel, tally, "add", vec![Value::Int(1)]),
        Ok(Value::Int(7))
    );
    assert_eq!(
        call(&kernel, bob, "hello", vec![Value::str("fixture")]),
        text("hello, fixture, from bob")
    );
    assert_eq!(
        call(&kernel, tester, "load", vec![Value::str("greeting")]),
        text("hello")
    );
    // Through the tester's old import of the counter's root (`o-1` in its c-list).
    let through_tester = kernel
        .queue_message_with_slots(
            tester,
            "call",
            vec![
                Value::Slot {
                    index: 0,
                    iface: None,
                },
                Value::str("resume"),
            ],
            vec![counter],
        )
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(
        through_tester.decode().unwrap(),
        Value::str("Counter incremented to: 4")
    );
    kernel.shutdown().unwrap();
    // The store the new code wrote opens again, with the state it left.
    let kernel = open(dir.path());
    assert_eq!(call(&kernel, counter, "count", vec![]), Ok(Value::Int(4)));
    assert_eq!(call(&kernel, tally, "total", vec![]), Ok(Value::Int(7)));
    kernel.shutdown().unwrap();
}
