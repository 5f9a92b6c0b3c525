//! The migration framework, through tables of toy steps: steps run in order, each seeing
//! the ones before, all in one transaction with the version bump, once; a failing step or
//! commit leaves the files byte-identical; newer stores are refused; and the version-1
//! fixture (`tests/fixtures/store-v1`) goes through a step like any store.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use heed::types::Bytes;
use heed::{Database, EnvOpenOptions};
use ocap_types::VatId;

use super::{CURRENT, MIGRATIONS, Migration, MigrationTxn, SCHEMA_VERSION, Schema};
use crate::error::{OpenError, StoreError};
use crate::kv::{fault, snapshot};
use crate::{KernelStore, Store, StoreConfig};

/// Step 1 → 2: renames every `a.<k>` to `b.<k>`, and appends `1` to `log`.
fn rename_a_to_b(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    for (key, value) in txn.scan_prefix(b"a.")? {
        txn.delete(&key)?;
        let mut renamed = b"b.".to_vec();
        renamed.extend_from_slice(&key[2..]);
        txn.set(&renamed, &value)?;
    }
    append_log(txn, b'1')
}

/// Step 2 → 3: renames every `b.<k>` to `c.<k>` with its value upper-cased (so it only
/// finds anything once step 1 ran, and sees step 1's writes), and appends `2` to `log`.
fn rename_b_to_c(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    for (key, value) in txn.scan_prefix(b"b.")? {
        txn.delete(&key)?;
        let mut renamed = b"c.".to_vec();
        renamed.extend_from_slice(&key[2..]);
        txn.set(&renamed, &value.to_ascii_uppercase())?;
    }
    append_log(txn, b'2')
}

fn append_log(txn: &mut MigrationTxn<'_>, step: u8) -> Result<(), StoreError> {
    let mut log = txn.get(b"log")?.unwrap_or_default();
    log.push(step);
    txn.set(b"log", &log)
}

/// A step that writes, then fails the way a step finding bad bytes would.
fn fail_after_writing(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    txn.set(b"c.half", b"done")?;
    Err(StoreError::corrupt("toy", b"b.1", "injected failure"))
}

fn write_reserved_key(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    txn.set(b"\0schemaVersion", b"99")
}

const STEP_1: Migration = Migration {
    from: 1,
    what: "rename a.* to b.*",
    run: rename_a_to_b,
};
const STEP_2: Migration = Migration {
    from: 2,
    what: "rename b.* to c.*, upper-case",
    run: rename_b_to_c,
};
const TOY: Schema<'static> = Schema {
    version: 3,
    migrations: &[STEP_1, STEP_2],
};
const TOY_V2: Schema<'static> = Schema {
    version: 2,
    migrations: &[STEP_1],
};

fn open_schema(path: &Path, schema: &Schema<'_>) -> Result<Store, OpenError> {
    Store::open_schema(path, &StoreConfig::default(), schema)
}

/// Version 1 with no steps: what a build of that version opened stores with.
const V1: Schema<'static> = Schema {
    version: 1,
    migrations: &[],
};

/// A closed store of version 1 holding `entries`.
fn make_v1_store(path: &Path, entries: &[(&[u8], &[u8])]) {
    let mut store = open_schema(path, &V1).unwrap();
    store.start_crank().unwrap();
    for (key, value) in entries {
        store.set(key, value).unwrap();
    }
    store.end_crank().unwrap();
    store.close().unwrap();
}

const V1_ENTRIES: &[(&[u8], &[u8])] = &[(b"a.1", b"one"), (b"a.2", b"two"), (b"z", b"kept")];

/// Every user key of a closed store and its value, as text.
fn contents(path: &Path, schema: &Schema<'_>) -> Vec<(String, String)> {
    let store = open_schema(path, schema).unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let res = store
        .scan_prefix(b"")
        .unwrap()
        .iter()
        .map(|(k, v)| (text(k), text(v)))
        .collect();
    store.close().unwrap();
    res
}

/// The schema version a closed store records, read with LMDB directly.
fn stored_version(path: &Path) -> String {
    let mut options = EnvOpenOptions::new();
    options.max_dbs(2);
    // SAFETY: the store is closed; this test is its only user.
    #[allow(unsafe_code)]
    let env = unsafe { options.open(path) }.unwrap();
    let rtxn = env.read_txn().unwrap();
    let db: Database<Bytes, Bytes> = env.open_database(&rtxn, None).unwrap().unwrap();
    let version = db.get(&rtxn, b"\0schemaVersion").unwrap().unwrap();
    String::from_utf8(version.to_vec()).unwrap()
}

fn pairs(entries: &[(&str, &str)]) -> Vec<(String, String)> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn this_builds_table_is_a_chain_ending_at_schema_version() {
    assert_eq!(CURRENT.version, SCHEMA_VERSION);
    for pair in MIGRATIONS.windows(2) {
        assert_eq!(
            pair[0].from + 1,
            pair[1].from,
            "{} then {}",
            pair[0].what,
            pair[1].what
        );
    }
    if let Some(last) = MIGRATIONS.last() {
        assert_eq!(
            last.from + 1,
            SCHEMA_VERSION,
            "the last step reaches the version"
        );
    }
    // Every version that was ever written can still be opened.
    for version in 1..=SCHEMA_VERSION {
        let steps = CURRENT.steps_from(version).expect("a path to the version");
        assert_eq!(steps.len() as u32, SCHEMA_VERSION - version);
    }
}

#[test]
fn steps_are_found_only_along_a_complete_chain() {
    let found = |schema: &Schema<'_>, version| {
        schema
            .steps_from(version)
            .map(|steps| steps.iter().map(|s| s.from).collect::<Vec<_>>())
    };
    assert_eq!(found(&TOY, 1), Some(vec![1, 2]));
    assert_eq!(found(&TOY, 2), Some(vec![2]));
    assert_eq!(found(&TOY, 3), Some(vec![]));
    assert_eq!(found(&TOY, 4), None, "newer");
    assert_eq!(found(&TOY, 0), None, "no step from 0");
    let gap = Schema {
        version: 4,
        migrations: &[STEP_1, Migration { from: 3, ..STEP_2 }],
    };
    assert_eq!(found(&gap, 1), None, "no step from 2");
    assert_eq!(found(&gap, 3), Some(vec![3]));
    let short = Schema {
        version: 3,
        migrations: &[STEP_1],
    };
    assert_eq!(found(&short, 1), None, "the steps stop below the version");
}

#[test]
fn a_new_store_is_created_at_the_schemas_version_without_running_steps() {
    let dir = tempfile::tempdir().unwrap();
    open_schema(dir.path(), &TOY).unwrap().close().unwrap();
    assert_eq!(stored_version(dir.path()), "3");
    assert_eq!(contents(dir.path(), &TOY), pairs(&[]), "no step ran");
}

#[test]
fn an_old_store_runs_every_pending_step_in_order_and_only_once() {
    let dir = tempfile::tempdir().unwrap();
    make_v1_store(dir.path(), V1_ENTRIES);
    assert_eq!(stored_version(dir.path()), "1");
    let migrated = pairs(&[("c.1", "ONE"), ("c.2", "TWO"), ("log", "12"), ("z", "kept")]);
    assert_eq!(contents(dir.path(), &TOY), migrated);
    assert_eq!(stored_version(dir.path()), "3");
    // Reopening finds the store at the version: no step runs again.
    assert_eq!(contents(dir.path(), &TOY), migrated);
    assert_eq!(stored_version(dir.path()), "3");
}

#[test]
fn a_store_between_versions_runs_only_the_remaining_steps() {
    let dir = tempfile::tempdir().unwrap();
    make_v1_store(dir.path(), V1_ENTRIES);
    let at_2 = pairs(&[("b.1", "one"), ("b.2", "two"), ("log", "1"), ("z", "kept")]);
    assert_eq!(contents(dir.path(), &TOY_V2), at_2);
    assert_eq!(stored_version(dir.path()), "2");
    let at_3 = pairs(&[("c.1", "ONE"), ("c.2", "TWO"), ("log", "12"), ("z", "kept")]);
    assert_eq!(contents(dir.path(), &TOY), at_3);
    assert_eq!(stored_version(dir.path()), "3");
}

#[test]
fn a_failing_step_names_itself_and_leaves_the_files_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    make_v1_store(dir.path(), V1_ENTRIES);
    let failing = Schema {
        version: 3,
        migrations: &[
            STEP_1,
            Migration {
                from: 2,
                what: "fails",
                run: fail_after_writing,
            },
        ],
    };
    let before = snapshot(dir.path());
    let err = open_schema(dir.path(), &failing).unwrap_err();
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the refused open changed the files"
    );
    match &err {
        OpenError::Migration {
            from: 2,
            to: 3,
            source,
            ..
        } => assert!(
            matches!(**source, StoreError::Corrupt { table: "toy", .. }),
            "{source:?}"
        ),
        other => panic!("expected Migration from 2 to 3, got {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("from schema version 2 to 3"), "{text}");
    // The step's error is the source, not repeated in the message.
    assert!(!text.contains("injected failure"), "{text}");
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert!(source.is_some_and(|s| s.contains("injected failure")));
    // Still a version-1 store, whole: the good table migrates it.
    assert_eq!(stored_version(dir.path()), "1");
    assert_eq!(
        contents(dir.path(), &TOY),
        pairs(&[("c.1", "ONE"), ("c.2", "TWO"), ("log", "12"), ("z", "kept")])
    );
}

#[test]
fn a_failed_commit_of_the_steps_leaves_the_files_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    make_v1_store(dir.path(), V1_ENTRIES);
    let before = snapshot(dir.path());
    fault::fail_next_commit();
    let err = open_schema(dir.path(), &TOY).unwrap_err();
    assert!(
        matches!(err, OpenError::Migration { from: 1, to: 3, .. }),
        "{err:?}"
    );
    assert_eq!(
        snapshot(dir.path()),
        before,
        "the failed commit changed the files"
    );
    assert_eq!(stored_version(dir.path()), "1");
    assert_eq!(
        contents(dir.path(), &TOY).len(),
        4,
        "migrated on the next open"
    );
}

#[test]
fn a_store_newer_than_the_build_is_refused_untouched() {
    /// One version past this build's, whatever it is.
    fn log_3(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
        append_log(txn, b'3')
    }
    let newer = CURRENT.version.max(TOY.version) + 1;
    let steps: Vec<Migration> = [STEP_1, STEP_2]
        .into_iter()
        .chain((3..newer).map(|from| Migration {
            from,
            what: "log",
            run: log_3,
        }))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    make_v1_store(dir.path(), V1_ENTRIES);
    let ahead = Schema {
        version: newer,
        migrations: &steps,
    };
    open_schema(dir.path(), &ahead).unwrap().close().unwrap();
    let before = snapshot(dir.path());
    let found = newer.to_string();
    for schema in [CURRENT, TOY, TOY_V2] {
        match open_schema(dir.path(), &schema).unwrap_err() {
            OpenError::SchemaVersion { found: f, expected } => {
                assert_eq!((f.as_str(), expected), (found.as_str(), schema.version));
            }
            other => panic!("expected SchemaVersion, got {other:?}"),
        }
        assert_eq!(snapshot(dir.path()), before);
    }
}

#[test]
fn a_step_cannot_reach_the_stores_own_keys() {
    fn look_for_reserved(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
        assert_eq!(txn.get(b"\0schemaVersion")?, None);
        assert!(txn.scan_prefix(b"\0")?.is_empty());
        assert!(txn.scan_prefix(b"")?.iter().all(|(k, _)| k[0] != 0));
        Ok(())
    }
    let dir = tempfile::tempdir().unwrap();
    make_v1_store(dir.path(), V1_ENTRIES);
    let before = snapshot(dir.path());
    let writer = Schema {
        version: 2,
        migrations: &[Migration {
            from: 1,
            what: "writes the version itself",
            run: write_reserved_key,
        }],
    };
    let err = open_schema(dir.path(), &writer).unwrap_err();
    assert!(
        matches!(&err, OpenError::Migration { source, .. }
            if matches!(**source, StoreError::InvalidKey { .. })),
        "{err:?}"
    );
    assert_eq!(snapshot(dir.path()), before);
    let reader = Schema {
        version: 2,
        migrations: &[Migration {
            from: 1,
            what: "looks",
            run: look_for_reserved,
        }],
    };
    open_schema(dir.path(), &reader).unwrap().close().unwrap();
    assert_eq!(stored_version(dir.path()), "2");
}

/// The store the commit 46665b6 made (see its README), copied into a temporary directory.
fn fixture_copy() -> tempfile::TempDir {
    let fixture: PathBuf = [env!("CARGO_MANIFEST_DIR"), "../../tests/fixtures/store-v1"]
        .iter()
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("data.mdb");
    fs::copy(fixture.join("data.mdb"), &copy).unwrap();
    // A checkout may have made it read-only; LMDB opens it for writing.
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o600)).unwrap();
    dir
}

/// A step a real layout change could have been instead of a lazily derived key: stores
/// every vat's vat-store byte count under `<vat>.vsu`.
fn store_vatstore_usage(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    for (key, _) in txn.scan_prefix(b"vats.")? {
        let vat = String::from_utf8_lossy(&key[b"vats.".len()..]).into_owned();
        let prefix = format!("{vat}.vs.");
        let usage: usize = txn
            .scan_prefix(prefix.as_bytes())?
            .iter()
            .map(|(k, v)| k.len() - prefix.len() + v.len())
            .sum();
        txn.set(
            format!("{vat}.vsu").as_bytes(),
            &(usage as u64).to_le_bytes(),
        )?;
    }
    Ok(())
}

/// How many of `entries` are promise records (`kpN`) and how many their counts (`kpN.rc`).
fn promise_keys(entries: &[(Vec<u8>, Vec<u8>)]) -> (usize, usize) {
    let promise = entries.iter().filter(|(k, _)| k.starts_with(b"kp"));
    let n_counts = promise.clone().filter(|(k, _)| k.ends_with(b".rc")).count();
    (promise.count() - n_counts, n_counts)
}

#[test]
fn the_version_1_fixture_goes_through_a_step_and_keeps_every_key() {
    let vats = [VatId(1), VatId(2), VatId(3), VatId(4)];
    let read = |store: Store| {
        let store = KernelStore::new(store);
        let keys = store.kv().scan_prefix(b"").unwrap();
        let usage: Vec<u64> = vats
            .iter()
            .map(|vat| store.vatstore_usage(*vat).unwrap())
            .collect();
        (keys, usage)
    };
    let plain = fixture_copy();
    let (keys, lazy_usage) = read(open_schema(plain.path(), &V1).unwrap());
    assert_eq!(keys.len(), 113, "the fixture's keys (README)");
    assert_eq!(
        stored_version(plain.path()),
        "1",
        "opening at version 1 wrote no version"
    );
    // This build's open migrates it. It has no GC actions, reaps or pins, so step 1 → 2
    // changes no key; step 2 → 3 adds each promise's import entries to its count and pins
    // every settled promise; step 3 → 4 recounts the objects (their importers count, their
    // owner baseline is gone); after that the audit finds every count (and the importer
    // index) right; step 7 → 8 folds each promise's count into its record.
    let current = fixture_copy();
    let store = KernelStore::new(Store::open(current.path()).unwrap());
    let report = store.check().unwrap();
    assert!(report.is_empty(), "{report}");
    let migrated_keys = store.kv().scan_prefix(b"").unwrap();
    let changed: Vec<String> = migrated_keys
        .iter()
        .filter(|entry| !keys.contains(entry))
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .filter(|k| !(k.starts_with("pin.kp") || k.starts_with("kp")))
        .collect();
    // Step 7 → 8 folds each count into its record: one key per promise.
    assert_eq!(promise_keys(&keys), (13, 13), "records, counts (README)");
    assert_eq!(promise_keys(&migrated_keys), (13, 0));
    // ko2 (bob's root, imported by alice and the tester) and ko4 (the counter's root,
    // imported by the tester) gain their importers; the others' counts stay. Step 4 → 5
    // indexes every object import; step 5 → 6 starts the crank hash chain.
    assert_eq!(
        changed,
        [
            "crankHash",
            "imp.ko2.v1",
            "imp.ko2.v3",
            "imp.ko4.v3",
            "imp.ko5.v3",
            "ko2",
            "ko4"
        ],
        "only counts, pins, the importer index and the crank hash change"
    );
    assert_eq!(
        store.pinned_promises().unwrap().len(),
        11,
        "the settled promises"
    );
    drop(store);
    assert_eq!(stored_version(current.path()), SCHEMA_VERSION.to_string());

    let migrated = fixture_copy();
    let with_usage = Schema {
        version: 2,
        migrations: &[Migration {
            from: 1,
            what: "store vat-store usage",
            run: store_vatstore_usage,
        }],
    };
    let (after, stored_usage) = read(open_schema(migrated.path(), &with_usage).unwrap());
    assert_eq!(stored_version(migrated.path()), "2");
    assert_eq!(stored_usage, lazy_usage);
    let added: Vec<_> = after
        .iter()
        .filter(|entry| !keys.contains(entry))
        .map(|(k, _)| String::from_utf8_lossy(k).into_owned())
        .collect();
    assert_eq!(added, ["v1.vsu", "v2.vsu", "v3.vsu", "v4.vsu"]);
    assert_eq!(
        after.len(),
        keys.len() + 4,
        "every other key kept as it was"
    );
}

/// Step 1 → 2 on a version-1 store with all three blobs: this build's open finds the same
/// GC actions, reap queue and pins through the API, stored as keys, and the blobs gone.
#[test]
fn step_1_to_2_turns_the_gc_reap_and_pin_blobs_into_keys() {
    let dir = tempfile::tempdir().unwrap();
    make_v1_store(
        dir.path(),
        &[
            (
                b"gcActions",
                b"v1 dropExport ko5\nv1 retireImport ko3\nv10 dropExport ko1",
            ),
            (b"reapQueue", b"v3,v1,v2"),
            (b"pinnedObjects", b"ko3,ko3,ko7"),
            (b"z", b"kept"),
        ],
    );
    let mut store = KernelStore::new(Store::open(dir.path()).unwrap());
    let actions: Vec<String> = store
        .gc_actions()
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        actions,
        [
            "v1 dropExport ko5",
            "v1 retireImport ko3",
            "v10 dropExport ko1"
        ]
    );
    let v = |n| ocap_types::EndpointId::Vat(VatId(n));
    assert_eq!(store.reap_queue().unwrap(), [v(3), v(1), v(2)]);
    let ko = ocap_types::KObjectId;
    assert_eq!(store.pinned_objects().unwrap(), [ko(3), ko(3), ko(7)]);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
    let keys: Vec<(String, String)> = store
        .kv()
        .scan_prefix(b"")
        .unwrap()
        .iter()
        .map(|(k, v)| (text(k), text(v)))
        .collect();
    let zeros = "\0".repeat(32);
    assert_eq!(
        keys,
        pairs(&[
            ("crankHash", zeros.as_str()),
            ("gcAction.v1 dropExport ko5", ""),
            ("gcAction.v1 retireImport ko3", ""),
            ("gcAction.v10 dropExport ko1", ""),
            ("pin.ko3", "2"),
            ("pin.ko7", "1"),
            ("reapQueue.00000000000000000001", "v3"),
            ("reapQueue.00000000000000000002", "v1"),
            ("reapQueue.00000000000000000003", "v2"),
            ("reapQueueNext", "4"),
            ("reapQueued.v1", ""),
            ("reapQueued.v2", ""),
            ("reapQueued.v3", ""),
            ("z", "kept"),
        ])
    );
    // The queue goes on from where the blob left it: no duplicates, FIFO.
    store.start_crank().unwrap();
    store.schedule_reap(v(1)).unwrap();
    store.schedule_reap(v(4)).unwrap();
    assert_eq!(store.next_reap().unwrap(), Some(v(3)));
    assert_eq!(store.reap_queue().unwrap(), [v(1), v(2), v(4)]);
    store.end_crank().unwrap();
    drop(store);
    assert_eq!(stored_version(dir.path()), SCHEMA_VERSION.to_string());
}

#[test]
fn step_1_to_2_refuses_a_blob_that_does_not_parse_and_changes_nothing() {
    for (key, value) in [
        (
            &b"gcActions"[..],
            &b"v1 dropExport ko5\nv1 eatExport ko3"[..],
        ),
        (b"reapQueue", b"v1,,x"),
        (b"pinnedObjects", b"ko1,kp2"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        make_v1_store(dir.path(), &[(key, value)]);
        let before = snapshot(dir.path());
        let err = Store::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, OpenError::Migration { from: 1, to: 2, source, .. }
                if matches!(**source, StoreError::Corrupt { .. })),
            "{err:?}"
        );
        assert_eq!(snapshot(dir.path()), before);
        assert_eq!(stored_version(dir.path()), "1");
    }
}
