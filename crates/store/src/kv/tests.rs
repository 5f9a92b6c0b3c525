//! Unit tests for the byte store: crank and savepoint rules, merged scans and the keys it
//! refuses; committing and the store's life are in `tests/commit.rs`.

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
fn a_read_after_a_commit_sees_the_committed_value_not_a_cached_one() {
    for durability in [
        Durability::EveryCrank,
        Durability::Group {
            max_cranks: 2,
            max_delay: std::time::Duration::from_secs(3600),
        },
    ] {
        let (_dir, mut store) = fresh(durability);
        crank(&mut store, &[("k", Some("old")), ("other", Some("x"))]);
        store.flush().unwrap();
        // Read from LMDB twice (the second from the read cache)...
        for _ in 0..2 {
            assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"old"[..]));
        }
        // ...then changed and committed: reads see the new value, and its deletion.
        crank(&mut store, &[("k", Some("new"))]);
        store.flush().unwrap();
        assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"new"[..]));
        crank(&mut store, &[("k", None)]);
        store.flush().unwrap();
        assert_eq!(store.get(b"k").unwrap(), None, "{durability:?}");
        assert_eq!(store.get(b"other").unwrap().as_deref(), Some(&b"x"[..]));
    }
}

/// Keys longer than 16 bytes that differ only past byte 16, keys that are prefixes of
/// others, keys ending in zero bytes, one key twice: the store's fast orderings (by a
/// 16-byte prefix, bytes only within ties) must agree with plain byte order on them.
pub(super) const KEYS_SHARING_LONG_PREFIXES: &[&[u8]] = &[
    b"v1.vs.some.long.key.b",
    b"v1.vs.some.long.key.a",
    b"v1.vs.some.long.key",
    b"v1.vs.some.long.ke",
    b"v1.vs.some.long.key.a\0",
    b"v1.vs.some.long.key.a\0\x01",
    b"ab",
    b"ab\0",
    b"a",
    b"\xff\xff",
    b"kp12.rc",
    b"kp12",
    b"kp1",
    b"v1.vs.some.long.key.b",
];

#[test]
fn scans_order_keys_sharing_long_prefixes_bytewise() {
    let (_dir, mut store) = fresh(Durability::Group {
        max_cranks: 1000,
        max_delay: std::time::Duration::from_secs(3600),
    });
    store.start_crank().unwrap();
    for key in KEYS_SHARING_LONG_PREFIXES {
        store.set(key, b"v").unwrap();
    }
    let expected: Vec<Vec<u8>> = KEYS_SHARING_LONG_PREFIXES
        .iter()
        .map(|k| k.to_vec())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let scanned = |store: &Store| -> Vec<Vec<u8>> {
        let entries = store.scan_prefix(b"").unwrap();
        entries.into_iter().map(|(key, _)| key).collect()
    };
    assert_eq!(scanned(&store), expected, "from the overlay");
    store.end_crank().unwrap();
    store.flush().unwrap();
    assert_eq!(scanned(&store), expected, "from LMDB");
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

mod commit;

/// Keys a vat could choose so that an unseeded multiply-rotate hash (the scheme the store
/// used before) gives them all one hash, whatever comes before them: in each pair of
/// 8-byte words, flipping the first word's top bit and the second word's bit 4 leaves the
/// hash unchanged.
fn keys_colliding_under_multiply_rotate(n_bits: u32) -> Vec<Vec<u8>> {
    (0..1u64 << n_bits)
        .map(|i| {
            let mut key = b"v1.vs.xx".to_vec();
            for bit in 0..n_bits {
                let (mut first, mut second) = (0x4141_4141_4141_4141u64, 0x4242_4242_4242_4242u64);
                if i >> bit & 1 == 1 {
                    first ^= 1 << 63;
                    second ^= 1 << 4;
                }
                key.extend_from_slice(&first.to_le_bytes());
                key.extend_from_slice(&second.to_le_bytes());
            }
            key
        })
        .collect()
}

#[test]
fn keys_a_vat_crafts_to_collide_spread_over_the_stores_hash() {
    let keys = keys_colliding_under_multiply_rotate(12);
    // They do collide under the old scheme...
    let multiply_rotate = |key: &[u8]| {
        key.chunks(8).fold(0u64, |h, chunk| {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95)
        })
    };
    let old: std::collections::BTreeSet<u64> = keys.iter().map(|k| multiply_rotate(k)).collect();
    assert_eq!(
        old.len(),
        1,
        "the crafted keys share one multiply-rotate hash"
    );
    // ...and not under the store's seeded hash.
    let hash = super::overlay::KeyHash::default();
    let new: std::collections::BTreeSet<u64> = keys.iter().map(|k| hash.of(k)).collect();
    assert_eq!(new.len(), keys.len(), "every crafted key has its own hash");
    // Each store draws its own seed.
    let other = super::overlay::KeyHash::default();
    assert_ne!(hash.of(&keys[0]), other.of(&keys[0]));
}
