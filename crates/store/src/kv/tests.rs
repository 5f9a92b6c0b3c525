//! Unit tests for the byte store: crank and savepoint rules, merged scans, commits, failed
//! commits, group-commit bounds, growth and drop.

use std::time::Duration;

use tempfile::TempDir;

use super::{Durability, SCHEMA_KEY, Store, StoreConfig};
use crate::error::{CrankError, OpenError, StoreError};

const GROUP_NEVER: Durability = Durability::Group {
    max_cranks: u32::MAX,
    max_delay: Duration::MAX,
};

fn open(dir: &TempDir, durability: Durability) -> Store {
    let config = StoreConfig {
        durability,
        ..StoreConfig::default()
    };
    Store::open_with(dir.path(), &config).unwrap()
}

fn fresh(durability: Durability) -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, durability);
    (dir, store)
}

/// What LMDB itself holds for `key`, ignoring the overlay.
fn committed(store: &Store, key: &[u8]) -> Option<Vec<u8>> {
    store
        .with_reader(|txn| Ok(store.db.get(txn, key)?.map(<[u8]>::to_vec)))
        .unwrap()
}

fn text(entries: Vec<(Vec<u8>, Vec<u8>)>) -> String {
    entries
        .iter()
        .map(|(k, v)| format!("{}={}", k.escape_ascii(), v.escape_ascii()))
        .collect::<Vec<_>>()
        .join(" ")
}

fn crank(store: &mut Store, writes: &[(&str, Option<&str>)]) {
    store.start_crank().unwrap();
    for (key, value) in writes {
        match value {
            Some(value) => store.set(key.as_bytes(), value.as_bytes()).unwrap(),
            None => store.delete(key.as_bytes()).unwrap(),
        }
    }
    store.end_crank().unwrap();
}

fn get(store: &Store, key: &str) -> Option<String> {
    store
        .get(key.as_bytes())
        .unwrap()
        .map(|v| String::from_utf8(v).unwrap())
}

#[test]
fn writes_outside_a_crank_are_rejected_and_change_nothing() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    assert!(matches!(
        store.set(b"a", b"1"),
        Err(StoreError::Crank(CrankError::WriteOutsideCrank))
    ));
    assert!(matches!(
        store.delete(b"a"),
        Err(StoreError::Crank(CrankError::WriteOutsideCrank))
    ));
    assert_eq!(store.get(b"a").unwrap(), None);
    assert!(store.overlay.is_empty());
    assert!(!store.has_unflushed());
}

#[test]
fn crank_misuse_is_a_typed_error() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    fn not_in_crank(res: Result<(), impl Into<StoreError>>) -> &'static str {
        match res.map_err(Into::into) {
            Err(StoreError::Crank(CrankError::NotInCrank { operation })) => operation,
            other => panic!("expected NotInCrank, got {other:?}"),
        }
    }
    assert_eq!(
        not_in_crank(store.savepoint().map(drop)),
        "createCrankSavepoint"
    );
    store.start_crank().unwrap();
    let old = store.savepoint().unwrap();
    store.end_crank().unwrap();
    assert_eq!(not_in_crank(store.rollback_to(old)), "rollbackCrank");
    assert_eq!(not_in_crank(store.release(old)), "releaseSavepoint");
    assert_eq!(not_in_crank(store.abort_crank()), "abortCrank");
    assert_eq!(not_in_crank(store.end_crank()), "endCrank");
    assert_eq!(
        CrankError::NotInCrank {
            operation: "endCrank"
        }
        .to_string(),
        "endCrank outside of crank"
    );

    store.start_crank().unwrap();
    store.set(b"a", b"1").unwrap();
    let err = store.start_crank().unwrap_err();
    assert_eq!(err, CrankError::AlreadyInCrank);
    assert_eq!(err.to_string(), "startCrank while already in a crank");
    // The refused start left the open crank and its writes alone.
    assert!(store.in_crank());
    assert_eq!(get(&store, "a").as_deref(), Some("1"));
    store.end_crank().unwrap();
    assert_eq!(committed(&store, b"a"), Some(b"1".to_vec()));
}

#[test]
fn flush_inside_a_crank_is_an_error_and_commits_nothing() {
    let (_dir, mut store) = fresh(GROUP_NEVER);
    crank(&mut store, &[("a", Some("1"))]);
    store.start_crank().unwrap();
    store.set(b"b", b"2").unwrap();
    assert!(matches!(
        store.flush(),
        Err(StoreError::Crank(CrankError::InCrank {
            operation: "flush"
        }))
    ));
    assert!(!store.commit_due());
    assert_eq!(committed(&store, b"a"), None);
    assert_eq!(committed(&store, b"b"), None);
    store.end_crank().unwrap();
    store.flush().unwrap();
    assert_eq!(committed(&store, b"a"), Some(b"1".to_vec()));
    assert_eq!(committed(&store, b"b"), Some(b"2".to_vec()));
}

#[test]
fn a_stale_savepoint_is_refused() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    store.start_crank().unwrap();
    let earlier = store.savepoint().unwrap();
    store.end_crank().unwrap();
    store.start_crank().unwrap();
    // A savepoint of an earlier crank names nothing in this one, even at the same depth.
    let now = store.savepoint().unwrap();
    assert_ne!(earlier, now);
    assert!(matches!(
        store.rollback_to(earlier),
        Err(CrankError::NoSuchSavepoint)
    ));
    assert!(matches!(
        store.release(earlier),
        Err(CrankError::NoSuchSavepoint)
    ));
    assert_eq!(store.open_savepoints(), 1);
    assert_eq!(
        CrankError::NoSuchSavepoint.to_string(),
        "no such savepoint: it was released, rolled back to, or belongs to another crank"
    );
    store.end_crank().unwrap();
}

#[test]
fn nested_rollback_keeps_outer_work() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    store.start_crank().unwrap();
    let outer = store.savepoint().unwrap();
    store.set(b"a", b"outer").unwrap();
    let inner = store.savepoint().unwrap();
    store.set(b"a", b"inner").unwrap();
    store.set(b"b", b"inner").unwrap();
    store.rollback_to(inner).unwrap();
    assert_eq!(get(&store, "a").as_deref(), Some("outer"));
    assert_eq!(get(&store, "b"), None);
    assert_eq!(store.open_savepoints(), 1);
    store.rollback_to(outer).unwrap();
    assert_eq!(get(&store, "a"), None);
    assert!(store.overlay.is_empty());
    assert_eq!(store.open_savepoints(), 0);
    store.end_crank().unwrap();
    assert!(!store.has_unflushed());
}

#[test]
fn rollback_to_an_outer_savepoint_discards_the_inner_ones() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    store.start_crank().unwrap();
    store.set(b"a", b"0").unwrap();
    let first = store.savepoint().unwrap();
    store.set(b"a", b"1").unwrap();
    let second = store.savepoint().unwrap();
    store.set(b"a", b"2").unwrap();
    let _later = store.savepoint().unwrap();
    store.rollback_to(first).unwrap();
    assert_eq!(get(&store, "a").as_deref(), Some("0"));
    assert_eq!(store.open_savepoints(), 0);
    assert!(matches!(
        store.rollback_to(second),
        Err(CrankError::NoSuchSavepoint)
    ));
    assert!(matches!(
        store.rollback_to(first),
        Err(CrankError::NoSuchSavepoint)
    ));
    store.end_crank().unwrap();
    assert_eq!(committed(&store, b"a"), Some(b"0".to_vec()));
}

#[test]
fn release_keeps_writes_and_forgets_later_savepoints() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    store.start_crank().unwrap();
    let a = store.savepoint().unwrap();
    store.set(b"x", b"1").unwrap();
    let b = store.savepoint().unwrap();
    store.set(b"y", b"2").unwrap();
    let c = store.savepoint().unwrap();
    let generation = store.generation();
    store.release(b).unwrap();
    assert_eq!(store.generation(), generation);
    assert_eq!(store.open_savepoints(), 1);
    // Rollback after release: the released savepoints are gone ...
    assert!(matches!(
        store.rollback_to(b),
        Err(CrankError::NoSuchSavepoint)
    ));
    assert!(matches!(
        store.rollback_to(c),
        Err(CrankError::NoSuchSavepoint)
    ));
    assert_eq!(get(&store, "y").as_deref(), Some("2"));
    // ... and their writes now belong to the enclosing savepoint.
    store.rollback_to(a).unwrap();
    assert_eq!(get(&store, "x"), None);
    assert_eq!(get(&store, "y"), None);
    store.end_crank().unwrap();
    assert!(!store.has_unflushed());
}

#[test]
fn released_writes_commit_with_the_crank() {
    let (dir, mut store) = fresh(Durability::EveryCrank);
    store.start_crank().unwrap();
    let a = store.savepoint().unwrap();
    store.set(b"x", b"1").unwrap();
    store.release(a).unwrap();
    store.end_crank().unwrap();
    drop(store);
    let store = open(&dir, Durability::EveryCrank);
    assert_eq!(get(&store, "x").as_deref(), Some("1"));
}

#[test]
fn rollback_restores_committed_values_and_deletions() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    crank(&mut store, &[("k", Some("committed")), ("gone", Some("x"))]);
    store.start_crank().unwrap();
    store.set(b"k", b"before").unwrap();
    store.delete(b"gone").unwrap();
    let sp = store.savepoint().unwrap();
    let generation = store.generation();
    store.delete(b"k").unwrap();
    store.set(b"k", b"after").unwrap();
    store.set(b"gone", b"back").unwrap();
    store.set(b"new", b"1").unwrap();
    store.rollback_to(sp).unwrap();
    assert!(store.generation() > generation);
    assert_eq!(get(&store, "k").as_deref(), Some("before"));
    assert_eq!(get(&store, "gone"), None);
    assert!(!store.contains(b"gone").unwrap());
    assert_eq!(get(&store, "new"), None);
    store.end_crank().unwrap();
    assert_eq!(committed(&store, b"k"), Some(b"before".to_vec()));
    assert_eq!(committed(&store, b"gone"), None);
}

#[test]
fn end_crank_releases_open_savepoints() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    store.start_crank().unwrap();
    let sp = store.savepoint().unwrap();
    store.set(b"a", b"1").unwrap();
    store.end_crank().unwrap();
    assert_eq!(store.open_savepoints(), 0);
    assert!(store.undo.is_empty());
    assert_eq!(committed(&store, b"a"), Some(b"1".to_vec()));
    store.start_crank().unwrap();
    assert!(matches!(
        store.rollback_to(sp),
        Err(CrankError::NoSuchSavepoint)
    ));
    store.end_crank().unwrap();
}

#[test]
fn an_aborted_crank_keeps_nothing_and_earlier_cranks_stay() {
    let (_dir, mut store) = fresh(GROUP_NEVER);
    crank(&mut store, &[("kept", Some("1"))]);
    store.start_crank().unwrap();
    let _sp = store.savepoint().unwrap();
    store.set(b"kept", b"2").unwrap();
    store.set(b"new", b"3").unwrap();
    let generation = store.generation();
    store.abort_crank().unwrap();
    assert!(!store.in_crank());
    assert!(store.generation() > generation);
    assert_eq!(store.open_savepoints(), 0);
    assert_eq!(get(&store, "kept").as_deref(), Some("1"));
    assert_eq!(get(&store, "new"), None);
    store.flush().unwrap();
    assert_eq!(committed(&store, b"kept"), Some(b"1".to_vec()));
    assert_eq!(committed(&store, b"new"), None);
}

#[test]
fn scans_merge_overlay_over_lmdb_in_byte_order() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    crank(
        &mut store,
        &[
            ("a", Some("db")),
            ("a1", Some("db")),
            ("a2", Some("db")),
            ("a3", Some("db")),
            ("b1", Some("db")),
        ],
    );
    store.start_crank().unwrap();
    for (key, value) in [
        ("a0", Some("ov")),
        ("a2", None),
        ("a25", Some("ov")),
        ("a3", Some("ov")),
    ] {
        match value {
            Some(value) => store.set(key.as_bytes(), value.as_bytes()).unwrap(),
            None => store.delete(key.as_bytes()).unwrap(),
        }
    }
    store.delete(b"b1").unwrap();
    store.delete(b"b2").unwrap();
    assert_eq!(
        text(store.scan_prefix(b"a").unwrap()),
        "a=db a0=ov a1=db a25=ov a3=ov"
    );
    assert_eq!(text(store.scan_prefix(b"b").unwrap()), "");
    assert_eq!(
        text(store.scan_prefix(b"").unwrap()),
        "a=db a0=ov a1=db a25=ov a3=ov"
    );
    assert_eq!(text(store.scan_prefix(b"a2").unwrap()), "a25=ov");
    assert_eq!(text(store.scan_prefix(b"c").unwrap()), "");

    let next = |prefix: &str, from: &str, inclusive: bool| {
        store
            .next_entry(prefix.as_bytes(), from.as_bytes(), inclusive)
            .unwrap()
            .map(|(k, v)| text(vec![(k, v)]))
            .unwrap_or_default()
    };
    assert_eq!(next("a", "", true), "a=db");
    assert_eq!(next("a", "", false), "a=db");
    assert_eq!(next("a", "a", true), "a=db");
    assert_eq!(next("a", "a", false), "a0=ov");
    assert_eq!(next("a", "a1", false), "a25=ov");
    assert_eq!(next("a", "a2", true), "a25=ov");
    assert_eq!(next("a", "a3", true), "a3=ov");
    assert_eq!(next("a", "a3", false), "");
    assert_eq!(next("a", "b", true), "");
    assert_eq!(next("b", "a", true), "");
    assert_eq!(next("", "", false), "a=db");
    assert_eq!(next("", "a25", false), "a3=ov");
    let long_from = format!("a1{}", "0".repeat(2000));
    assert_eq!(next("a", &long_from, true), "a25=ov");
    store.end_crank().unwrap();
    assert_eq!(
        text(store.scan_prefix(b"").unwrap()),
        "a=db a0=ov a1=db a25=ov a3=ov"
    );
}

#[test]
fn keys_the_store_cannot_hold_are_refused() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    store.start_crank().unwrap();
    let max = store.max_key_size;
    assert_eq!(max, 511);
    for key in [
        Vec::new(),
        vec![b'k'; max + 1],
        b"\0mine".to_vec(),
        SCHEMA_KEY.to_vec(),
    ] {
        assert!(matches!(
            store.set(&key, b"v"),
            Err(StoreError::InvalidKey { .. })
        ));
        assert!(matches!(
            store.delete(&key),
            Err(StoreError::InvalidKey { .. })
        ));
        assert_eq!(store.get(&key).unwrap(), None);
        assert!(!store.contains(&key).unwrap());
    }
    store.set(&vec![b'k'; max], b"longest").unwrap();
    store.set(b"\x01", b"lowest").unwrap();
    store.end_crank().unwrap();
    assert_eq!(
        store.get(&vec![b'k'; max]).unwrap(),
        Some(b"longest".to_vec())
    );
    // The schema version is in LMDB but not in the kernel's keyspace.
    let version = crate::SCHEMA_VERSION.to_string().into_bytes();
    assert_eq!(committed(&store, SCHEMA_KEY), Some(version));
    let all = store.scan_prefix(b"").unwrap();
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, b"\x01");
    assert_eq!(store.scan_prefix(b"\0").unwrap(), Vec::new());
    assert_eq!(
        store.next_entry(b"", b"\0", true).unwrap().unwrap().0,
        b"\x01"
    );
    assert_eq!(store.next_entry(b"\0", b"", true).unwrap(), None);
}

#[test]
fn a_failed_commit_keeps_the_cranks_pending_for_retry() {
    let (dir, mut store) = fresh(Durability::EveryCrank);
    store.fail_commits = 1;
    store.start_crank().unwrap();
    store.set(b"a", b"1").unwrap();
    assert!(matches!(store.end_crank(), Err(StoreError::Backend(_))));
    assert!(!store.in_crank());
    assert!(store.has_unflushed());
    assert_eq!(get(&store, "a").as_deref(), Some("1"));
    assert_eq!(committed(&store, b"a"), None);
    // The next crank builds on the pending one and its commit carries both.
    crank(&mut store, &[("b", Some("2"))]);
    assert!(!store.has_unflushed());
    assert_eq!(committed(&store, b"a"), Some(b"1".to_vec()));
    assert_eq!(committed(&store, b"b"), Some(b"2".to_vec()));

    store.fail_commits = 1;
    crank_expecting_failure(&mut store, "c");
    assert!(matches!(store.flush(), Ok(())));
    assert!(!store.has_unflushed());
    drop(store);
    let store = open(&dir, Durability::EveryCrank);
    assert_eq!(text(store.scan_prefix(b"").unwrap()), "a=1 b=2 c=3");
}

fn crank_expecting_failure(store: &mut Store, key: &str) {
    store.start_crank().unwrap();
    store.set(key.as_bytes(), b"3").unwrap();
    assert!(store.end_crank().is_err());
    assert!(store.has_unflushed());
}

#[test]
fn group_commit_waits_for_max_cranks() {
    let durability = Durability::Group {
        max_cranks: 3,
        max_delay: Duration::MAX,
    };
    let (_dir, mut store) = fresh(durability);
    crank(&mut store, &[("a", Some("1"))]);
    crank(&mut store, &[("b", Some("2"))]);
    assert!(store.has_unflushed());
    assert_eq!(committed(&store, b"a"), None);
    assert!(!store.commit_due());
    // A crank without writes does not count towards the bound.
    store.start_crank().unwrap();
    store.end_crank().unwrap();
    crank(&mut store, &[("c", Some("3"))]);
    assert!(!store.has_unflushed());
    for key in [b"a", b"b", b"c"] {
        assert!(committed(&store, key).is_some());
    }
}

#[test]
fn group_commit_honours_max_delay() {
    let zero_delay = Durability::Group {
        max_cranks: u32::MAX,
        max_delay: Duration::ZERO,
    };
    let (_dir, mut store) = fresh(zero_delay);
    crank(&mut store, &[("a", Some("1"))]);
    assert!(!store.has_unflushed());
    assert_eq!(committed(&store, b"a"), Some(b"1".to_vec()));

    let (_dir, mut store) = fresh(GROUP_NEVER);
    crank(&mut store, &[("a", Some("1"))]);
    assert!(store.has_unflushed());
    assert!(!store.commit_due());
    store.durability = zero_delay;
    assert!(store.commit_due());
    store.flush().unwrap();
    assert!(!store.has_unflushed());
    assert_eq!(committed(&store, b"a"), Some(b"1".to_vec()));
    assert!(!store.commit_due());
}

#[test]
fn group_commit_is_due_after_enough_bytes() {
    let (_dir, mut store) = fresh(GROUP_NEVER);
    let value = vec![7u8; 1 << 20];
    let mut n_cranks = 0;
    loop {
        store.start_crank().unwrap();
        store
            .set(format!("big{n_cranks}").as_bytes(), &value)
            .unwrap();
        store.end_crank().unwrap();
        n_cranks += 1;
        if !store.has_unflushed() || n_cranks > 100 {
            break;
        }
    }
    assert_eq!(n_cranks, super::GROUP_MAX_BYTES / value.len());
    assert!(!store.has_unflushed());
    assert_eq!(
        committed(&store, b"big0").map(|v| v.len()),
        Some(value.len())
    );
}

#[test]
fn every_crank_mode_commits_before_end_crank_returns() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    crank(&mut store, &[("a", Some("1")), ("b", Some("2"))]);
    assert!(!store.has_unflushed());
    assert_eq!(committed(&store, b"a"), Some(b"1".to_vec()));
    crank(&mut store, &[("a", None)]);
    assert_eq!(committed(&store, b"a"), None);
    // A crank whose writes were all rolled back commits nothing.
    store.start_crank().unwrap();
    let start = store.savepoint().unwrap();
    store.set(b"c", b"3").unwrap();
    store.rollback_to(start).unwrap();
    store.end_crank().unwrap();
    assert!(store.overlay.is_empty());
    assert!(!store.has_unflushed());
}

fn grow_and_reopen(durability: Durability) {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        durability,
        initial_map_size: 1 << 20,
    };
    let mut store = Store::open_with(dir.path(), &config).unwrap();
    let initial = store.env.info().map_size;
    assert_eq!(initial, 1 << 20);
    let value = |key_idx: u32| format!("{key_idx:0>1024}").into_bytes();
    // 8,000 keys of 1 KiB: about 8 times the initial map, in cranks of 100 keys.
    for crank_idx in 0..80 {
        store.start_crank().unwrap();
        for key_idx in crank_idx * 100..(crank_idx + 1) * 100 {
            store
                .set(format!("key{key_idx:05}").as_bytes(), &value(key_idx))
                .unwrap();
        }
        store.end_crank().unwrap();
    }
    store.flush().unwrap();
    assert!(store.env.info().map_size >= 8 * initial);
    drop(store);
    let store = Store::open_with(dir.path(), &config).unwrap();
    let all = store.scan_prefix(b"key").unwrap();
    assert_eq!(all.len(), 8000);
    for (key_idx, (key, val)) in (0..).zip(&all) {
        assert_eq!(key, format!("key{key_idx:05}").as_bytes());
        assert_eq!(val, &value(key_idx));
    }
}

#[test]
fn map_grows_when_full_every_crank() {
    grow_and_reopen(Durability::EveryCrank);
}

#[test]
fn map_grows_when_full_group() {
    grow_and_reopen(Durability::GROUP);
}

#[test]
fn drop_discards_the_open_crank_and_commits_ended_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, GROUP_NEVER);
    crank(&mut store, &[("ended", Some("1")), ("both", Some("ended"))]);
    store.start_crank().unwrap();
    store.set(b"open", b"2").unwrap();
    store.set(b"both", b"open").unwrap();
    store.delete(b"ended").unwrap();
    assert_eq!(committed(&store, b"ended"), None);
    drop(store);
    let store = open(&dir, GROUP_NEVER);
    assert_eq!(text(store.scan_prefix(b"").unwrap()), "both=ended ended=1");
}

#[test]
fn close_commits_ended_cranks_and_reports_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, GROUP_NEVER);
    crank(&mut store, &[("a", Some("1"))]);
    store.close().unwrap();
    let mut store = open(&dir, GROUP_NEVER);
    assert_eq!(get(&store, "a").as_deref(), Some("1"));
    crank(&mut store, &[("b", Some("2"))]);
    store.fail_commits = 2; // close, then the drop that follows it
    assert!(matches!(store.close(), Err(StoreError::Backend(_))));
    let store = open(&dir, GROUP_NEVER);
    assert_eq!(text(store.scan_prefix(b"").unwrap()), "a=1");
}

#[test]
fn reads_work_without_the_long_lived_reader() {
    let (_dir, mut store) = fresh(Durability::EveryCrank);
    crank(&mut store, &[("a", Some("1"))]);
    store.reader = None;
    assert_eq!(get(&store, "a").as_deref(), Some("1"));
    assert_eq!(text(store.scan_prefix(b"").unwrap()), "a=1");
    crank(&mut store, &[("b", Some("2"))]);
    assert!(store.reader.is_some());
}

#[test]
fn a_store_is_open_once_per_process() {
    let (dir, store) = fresh(Durability::EveryCrank);
    match Store::open(dir.path()) {
        Err(OpenError::InUse { path, pid }) => {
            assert_eq!(path, dir.path());
            assert_eq!(pid, Some(std::process::id()));
        }
        other => panic!("expected InUse, got {other:?}"),
    }
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    store.close().unwrap();
    Store::open(dir.path()).unwrap();
}

#[test]
fn a_closed_store_is_unlocked_even_where_a_forked_child_shares_the_lock_file() {
    // A worker process that another thread forks shares every open file of this process
    // until it execs, the lock file included: closing the store must still release it.
    let (dir, store) = fresh(Durability::EveryCrank);
    let child_copy = store.lock.shared_file();
    drop(store);
    drop(Store::open(dir.path()).expect("reopened while the fork's copy is open"));
    drop(child_copy);
}

#[test]
fn store_is_send() {
    fn assert_send<T: Send>() {}
    assert_send::<Store>();
}

/// Holds 10 million keys with the default configuration. Slow: runs only when
/// `OCAP_SLOW_TESTS` is set (`OCAP_SLOW_TESTS=1 cargo test -p ocap-store --release --lib
/// ten_million -- --nocapture`).
#[test]
fn ten_million_keys_fit_with_the_default_configuration() {
    if std::env::var_os("OCAP_SLOW_TESTS").is_none() {
        return;
    }
    const N_KEYS: u32 = 10_000_000;
    const PER_CRANK: u32 = 10_000;
    let started = std::time::Instant::now();
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        durability: Durability::GROUP,
        ..StoreConfig::default()
    };
    let mut store = Store::open_with(dir.path(), &config).unwrap();
    for crank_idx in 0..N_KEYS / PER_CRANK {
        store.start_crank().unwrap();
        for key_idx in crank_idx * PER_CRANK..(crank_idx + 1) * PER_CRANK {
            store
                .set(
                    format!("ko{key_idx}.owner").as_bytes(),
                    &key_idx.to_le_bytes(),
                )
                .unwrap();
        }
        store.end_crank().unwrap();
    }
    store.close().unwrap();
    let written = started.elapsed();
    let file_size = std::fs::metadata(dir.path().join("data.mdb"))
        .unwrap()
        .len();
    let store = Store::open_with(dir.path(), &config).unwrap();
    let mut n_seen = 0u32;
    let mut from = b"ko".to_vec();
    for probe in [0, 1, 4_999_999, N_KEYS - 1] {
        assert_eq!(
            store.get(format!("ko{probe}.owner").as_bytes()).unwrap(),
            Some(probe.to_le_bytes().to_vec())
        );
    }
    while let Some((key, _)) = store.next_entry(b"ko", &from, false).unwrap() {
        n_seen += 1;
        from = key;
        if n_seen == 1000 {
            break;
        }
    }
    assert_eq!(n_seen, 1000);
    let n_entries = store.with_reader(|txn| Ok(store.db.len(txn)?)).unwrap();
    assert_eq!(n_entries, u64::from(N_KEYS) + 1); // + the schema version
    println!(
        "10M keys: written and committed in {written:?}, data.mdb {file_size} bytes ({} MiB), map {} MiB",
        file_size >> 20,
        store.env.info().map_size >> 20
    );
}
