//! Tools' access to a store: a read-only open writes nothing, a backup is a store with the
//! same entries and never overwrites, a file walk reads every entry.

use std::fs;

use crate::error::{BackupError, OpenError, StoreError};
use crate::kv::Store;
use crate::kv::open::tests::snapshot;

/// A store at `dir` holding `n` keys, closed.
fn store_with_keys(dir: &std::path::Path, n: usize) {
    let mut store = Store::open(dir).unwrap();
    store.start_crank().unwrap();
    for i in 0..n {
        // Some values span overflow pages.
        let value = vec![b'x'; if i % 10 == 0 { 10_000 } else { 10 }];
        store.set(format!("k{i:04}").as_bytes(), &value).unwrap();
    }
    store.end_crank().unwrap();
    store.close().unwrap();
}

#[test]
fn a_read_only_store_reads_what_was_committed_and_cannot_write() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 3);
    let before = snapshot(&dir.path().join("data.mdb"));
    let mut store = Store::open_read_only(dir.path()).unwrap();
    assert_eq!(store.get(b"k0001").unwrap(), Some(b"x".repeat(10)));
    store.start_crank().unwrap();
    store.set(b"k0001", b"changed").unwrap();
    assert!(matches!(store.end_crank(), Err(StoreError::Backend(_))));
    drop(store);
    assert_eq!(snapshot(&dir.path().join("data.mdb")), before);
    assert_eq!(
        Store::open(dir.path()).unwrap().get(b"k0001").unwrap(),
        Some(b"x".repeat(10))
    );
}

#[test]
fn a_read_only_open_of_a_missing_store_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let err = Store::open_read_only(&missing).unwrap_err();
    assert!(matches!(err, OpenError::BadPath { .. }), "{err}");
    assert!(!missing.exists());
    // An empty directory is no store either, and stays empty.
    let err = Store::open_read_only(dir.path()).unwrap_err();
    assert!(matches!(err, OpenError::BadPath { .. }), "{err}");
    assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_read_only_open_is_refused_while_the_store_is_open() {
    let dir = tempfile::tempdir().unwrap();
    let _open = Store::open(dir.path()).unwrap();
    let err = Store::open_read_only(dir.path()).unwrap_err();
    assert!(matches!(err, OpenError::InUse { .. }), "{err}");
}

#[test]
fn a_backup_is_a_store_with_the_same_entries_and_every_entry_walks() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 50);
    let dest = tempfile::tempdir().unwrap();
    let backup = dest.path().join("backup");
    Store::open_read_only(dir.path())
        .unwrap()
        .backup_to(&backup)
        .unwrap();
    let original = Store::open_read_only(dir.path()).unwrap();
    let copy = Store::open_read_only(&backup).unwrap();
    assert_eq!(
        copy.scan_prefix(b"").unwrap(),
        original.scan_prefix(b"").unwrap()
    );
    drop(copy);
    let walk = Store::walk_file(&backup).unwrap();
    // The 50 keys and the schema version.
    assert_eq!(walk.entries, 51);
    assert!(walk.bytes > 5 * 10_000, "{walk:?}");
    assert!(walk.pages > 5, "{walk:?}");
}

#[test]
fn a_backup_never_writes_into_a_directory_that_is_not_empty() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 1);
    let dest = tempfile::tempdir().unwrap();
    fs::write(dest.path().join("keep.txt"), b"mine").unwrap();
    let before = snapshot(dest.path());
    let err = Store::open_read_only(dir.path())
        .unwrap()
        .backup_to(dest.path())
        .unwrap_err();
    assert!(matches!(err, BackupError::Destination { .. }), "{err}");
    assert_eq!(snapshot(dest.path()), before);
}

#[test]
fn a_walk_of_a_truncated_file_reports_it_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 50);
    let data = dir.path().join("data.mdb");
    let len = fs::metadata(&data).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let err = Store::walk_file(dir.path()).unwrap_err();
    assert!(matches!(err, OpenError::CorruptFile { .. }), "{err}");
}

#[test]
fn a_held_directory_lock_keeps_openers_out_while_the_file_is_walked() {
    let dir = tempfile::tempdir().unwrap();
    store_with_keys(dir.path(), 5);
    let lock = Store::lock_dir(dir.path()).unwrap();
    let err = Store::open(dir.path()).unwrap_err();
    assert!(matches!(err, OpenError::InUse { .. }), "{err}");
    assert_eq!(Store::walk_file(dir.path()).unwrap().entries, 6);
    let store = Store::open_read_only_locked(lock).unwrap();
    assert_eq!(store.get(b"k0004").unwrap(), Some(b"x".repeat(10)));
    drop(store);
    Store::open(dir.path()).unwrap();
}
