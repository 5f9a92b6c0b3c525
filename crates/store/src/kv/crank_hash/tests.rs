//! The crank hash: what a crank's digest covers, and that the chain is the same whatever
//! the durability mode and across a reopen.

use std::time::Duration;

use tempfile::TempDir;

use super::CrankDigest;
use crate::kv::{Durability, Store, StoreConfig};
use crate::tables::KernelStore;

const GROUP_NEVER: Durability = Durability::Group {
    max_cranks: u32::MAX,
    max_delay: Duration::MAX,
};

fn open(dir: &TempDir, durability: Durability) -> KernelStore {
    let config = StoreConfig {
        durability,
        ..StoreConfig::default()
    };
    KernelStore::new(Store::open_with(dir.path(), &config).unwrap())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// One crank's writes: `(key, Some(value))` sets, `(key, None)` deletes.
type Writes<'a> = &'a [(&'a str, Option<&'a str>)];

fn crank(store: &mut KernelStore, writes: Writes<'_>) {
    store.start_crank().unwrap();
    for (key, value) in writes {
        match value {
            Some(value) => store
                .kv_mut()
                .set(key.as_bytes(), value.as_bytes())
                .unwrap(),
            None => store.kv_mut().delete(key.as_bytes()).unwrap(),
        }
    }
    store.end_crank().unwrap();
}

/// Three cranks that rewrite one key (group commit coalesces it) and delete another.
const SCENARIO: &[Writes<'static>] = &[
    &[("queue.run.tail", Some("1")), ("a", Some("x"))],
    &[("queue.run.tail", Some("2")), ("b", Some("y"))],
    &[("queue.run.tail", Some("3")), ("a", None)],
];

fn chain_of(durability: Durability) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, durability);
    for writes in SCENARIO {
        crank(&mut store, writes);
    }
    hex(&store.crank_hash().unwrap())
}

#[test]
fn a_new_store_starts_the_chain_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir, Durability::EveryCrank);
    assert_eq!(store.crank_hash().unwrap(), [0; 32]);
}

#[test]
fn the_chain_is_the_same_with_every_crank_and_group_commits() {
    let every = chain_of(Durability::EveryCrank);
    assert_eq!(every, chain_of(GROUP_NEVER));
    assert_eq!(every, chain_of(Durability::GROUP));
}

#[test]
fn the_chain_matches_its_golden_head() {
    // The algorithm is part of the disk format (docs/store.md "Crank hash"): if this
    // changes, the change is deliberate, needs a schema step, and the new head goes here
    // (docs/store.md has a Python check that computes the same head independently).
    assert_eq!(
        chain_of(Durability::EveryCrank),
        "f3974bd1a28f81b0132fe1914316f5d3a0ecf788236fce8f939d898ede5e6830"
    );
}

#[test]
fn a_digest_sees_each_key_once_in_key_order_with_its_last_value() {
    let digest = |writes: Writes<'_>| {
        let dir = tempfile::tempdir().unwrap();
        let mut store = open(&dir, Durability::EveryCrank);
        store.start_crank().unwrap();
        for (key, value) in writes {
            store
                .kv_mut()
                .set(key.as_bytes(), value.unwrap().as_bytes())
                .unwrap();
        }
        open_crank_digest(&store)
    };
    let sorted = digest(&[("a", Some("1")), ("b", Some("2"))]);
    assert!(sorted.is_some());
    assert_eq!(sorted, digest(&[("b", Some("2")), ("a", Some("1"))]));
    assert_eq!(
        sorted,
        digest(&[("a", Some("0")), ("b", Some("2")), ("a", Some("1"))])
    );
    assert_ne!(sorted, digest(&[("a", Some("1")), ("b", Some("3"))]));
    // Lengths are framed: moving a byte from the key to the value changes the digest.
    assert_ne!(digest(&[("ab", Some("c"))]), digest(&[("a", Some("bc"))]));
    // This machine's choices (`local.` keys) are left out; a crank of nothing else has none.
    assert_eq!(
        sorted,
        digest(&[("a", Some("1")), ("local.w", Some("x")), ("b", Some("2"))])
    );
    assert_eq!(digest(&[("local.w", Some("x"))]), None);
}

/// A key written before and after a savepoint is in the undo log twice (once per undo
/// epoch); the digest still sees it once, with its last value.
#[test]
fn a_key_written_on_both_sides_of_a_savepoint_is_digested_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, Durability::EveryCrank);
    store.start_crank().unwrap();
    store.kv_mut().set(b"a", b"0").unwrap();
    store.kv_mut().set(b"b", b"2").unwrap();
    let _kept = store.kv_mut().savepoint().unwrap();
    store.kv_mut().set(b"a", b"1").unwrap();
    let model: std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>> = [
        (b"a".to_vec(), Some(b"1".to_vec())),
        (b"b".to_vec(), Some(b"2".to_vec())),
    ]
    .into();
    assert_eq!(open_crank_digest(&store), Some(reference_digest(&model)));
}

#[test]
fn rolled_back_writes_and_empty_cranks_leave_the_chain_alone() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, Durability::EveryCrank);
    crank(&mut store, &[("a", Some("1"))]);
    let head = store.crank_hash().unwrap();
    store.start_crank().unwrap();
    let start = store.savepoint().unwrap();
    store.kv_mut().set(b"b", b"2").unwrap();
    store.rollback_to(start).unwrap();
    assert_eq!(open_crank_digest(&store), None);
    store.end_crank().unwrap();
    assert_eq!(store.crank_hash().unwrap(), head);
    crank(&mut store, &[]);
    assert_eq!(store.crank_hash().unwrap(), head);
}

#[test]
fn the_head_survives_a_reopen_and_the_chain_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = open(&dir, GROUP_NEVER);
        crank(&mut store, SCENARIO[0]);
        crank(&mut store, SCENARIO[1]);
        store.kv_mut().flush().unwrap();
    }
    let mut store = open(&dir, Durability::EveryCrank);
    crank(&mut store, SCENARIO[2]);
    assert_eq!(
        hex(&store.crank_hash().unwrap()),
        chain_of(Durability::EveryCrank)
    );
}

/// The digest as docs/store.md defines it, over a crank's last value of each key.
fn reference_digest(last: &std::collections::BTreeMap<Vec<u8>, Option<Vec<u8>>>) -> [u8; 32] {
    let mut stream = Vec::new();
    for (key, value) in last {
        stream.extend_from_slice(&(key.len() as u32).to_be_bytes());
        stream.extend_from_slice(key);
        match value {
            Some(value) => {
                stream.push(1);
                stream.extend_from_slice(&(value.len() as u64).to_be_bytes());
                stream.extend_from_slice(value);
            }
            None => stream.push(0),
        }
    }
    *blake3::hash(&stream).as_bytes()
}

/// The writes digest of `store`'s open crank, as the kernel takes it.
fn open_crank_digest(store: &KernelStore) -> Option<CrankDigest> {
    store
        .kv()
        .crank_writes_digest(b"crankHash", b"local.")
        .unwrap()
}

#[test]
fn keys_sharing_long_prefixes_are_ordered_bytewise() {
    // Keys longer than 16 bytes that differ only past byte 16, keys that are prefixes of
    // others, keys ending in zero bytes: the digest's fast ordering must agree with a
    // plain byte order on all of them.
    let keys = crate::kv::tests::KEYS_SHARING_LONG_PREFIXES;
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(&dir, Durability::EveryCrank);
    store.start_crank().unwrap();
    let mut model = std::collections::BTreeMap::new();
    for (idx, key) in keys.iter().enumerate() {
        let value = if idx % 5 == 3 {
            store.kv_mut().delete(key).unwrap();
            None
        } else {
            let value = format!("value {idx}").into_bytes();
            store.kv_mut().set(key, &value).unwrap();
            Some(value)
        };
        model.insert(key.to_vec(), value);
    }
    assert_eq!(open_crank_digest(&store), Some(reference_digest(&model)));
}
