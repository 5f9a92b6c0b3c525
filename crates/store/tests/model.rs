//! Model check of the store: random sequences of writes, savepoints, rollbacks, releases,
//! crank boundaries, aborted cranks, flushes and reopens, applied both to the store and to an in-memory
//! model (a `BTreeMap` plus a stack of savepoint snapshots), compared after every step
//! through `get` on every key, full and prefix scans, and `next_entry`.
//!
//! Reopen is modelled on `Store`'s `Drop`: an open crank is discarded and every ended
//! crank survives, in both durability modes (dropping commits what a group still holds).
//! Losing unflushed cranks to a crash is the crash test's subject (`tests/crash.rs`).

// Helpers outside #[test] functions do not get clippy's test exemption; a failed unwrap
// here is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use ocap_store::{CrankError, Durability, Savepoint, Store, StoreConfig, StoreError};
use proptest::prelude::*;

type Map = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone)]
enum Op {
    Set(Vec<u8>, u8),
    Delete(Vec<u8>),
    /// Takes a savepoint and keeps it under this name (forgetting what the name held).
    Savepoint(&'static str),
    /// Rolls back to the savepoint kept under this name, if any, stale or not.
    RollbackTo(&'static str),
    Release(&'static str),
    StartCrank,
    EndCrank,
    AbortCrank,
    Flush,
    Reopen,
    Scan(Vec<u8>),
    NextEntry(Vec<u8>, Vec<u8>, bool),
}

/// What an operation returned, as far as the model predicts it.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    WriteOutsideCrank,
    NotInCrank(&'static str),
    AlreadyInCrank,
    InCrank(&'static str),
    NoSuchSavepoint,
    /// The name holds no savepoint: nothing was called.
    NoHandle,
}

impl From<Result<(), StoreError>> for Outcome {
    fn from(res: Result<(), StoreError>) -> Self {
        match res {
            Ok(()) => Outcome::Ok,
            Err(StoreError::Crank(misuse)) => Outcome::from(Err(misuse)),
            Err(other) => panic!("unexpected store error: {other}"),
        }
    }
}

impl From<Result<(), CrankError>> for Outcome {
    fn from(res: Result<(), CrankError>) -> Self {
        match res {
            Ok(()) => Outcome::Ok,
            Err(CrankError::WriteOutsideCrank) => Outcome::WriteOutsideCrank,
            Err(CrankError::NotInCrank { operation }) => Outcome::NotInCrank(operation),
            Err(CrankError::AlreadyInCrank) => Outcome::AlreadyInCrank,
            Err(CrankError::InCrank { operation }) => Outcome::InCrank(operation),
            Err(CrankError::NoSuchSavepoint) => Outcome::NoSuchSavepoint,
            Err(other) => panic!("unexpected crank error: {other}"),
        }
    }
}

/// Keys over a two-letter alphabet, 1 to 3 long: 14 keys, so writes collide and prefix
/// scans cut through the middle of the keyspace.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 1..=3)
}

fn prefix() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(prop::sample::select(vec![b'a', b'b']), 0..=2)
}

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["s", "t", "u"])
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (key(), any::<u8>()).prop_map(|(k, v)| Op::Set(k, v)),
        2 => key().prop_map(Op::Delete),
        2 => name().prop_map(Op::Savepoint),
        2 => name().prop_map(Op::RollbackTo),
        1 => name().prop_map(Op::Release),
        3 => Just(Op::StartCrank),
        3 => Just(Op::EndCrank),
        1 => Just(Op::AbortCrank),
        1 => Just(Op::Flush),
        1 => Just(Op::Reopen),
        1 => prefix().prop_map(Op::Scan),
        1 => (prefix(), prefix(), any::<bool>()).prop_map(|(p, f, i)| Op::NextEntry(p, f, i)),
    ]
}

fn durability() -> impl Strategy<Value = Durability> {
    prop_oneof![
        Just(Durability::EveryCrank),
        (1u32..5).prop_map(|max_cranks| Durability::Group {
            max_cranks,
            max_delay: Duration::MAX,
        }),
        Just(Durability::Group {
            max_cranks: u32::MAX,
            max_delay: Duration::ZERO,
        }),
        Just(Durability::GROUP),
    ]
}

#[derive(Debug, Default)]
struct Model {
    /// The state after the last ended crank (committed or waiting for a group commit).
    ended: Map,
    /// The state seen now: `ended` plus the open crank's writes.
    current: Map,
    /// Open savepoints: id and snapshot.
    savepoints: Vec<(u64, Map)>,
    /// The savepoint id each name holds.
    handles: BTreeMap<&'static str, u64>,
    next_id: u64,
    in_crank: bool,
}

impl Model {
    fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Set(_, _) | Op::Delete(_) if !self.in_crank => Outcome::WriteOutsideCrank,
            Op::Set(key, value) => {
                self.current.insert(key.clone(), vec![*value]);
                Outcome::Ok
            }
            Op::Delete(key) => {
                self.current.remove(key);
                Outcome::Ok
            }
            Op::Savepoint(_) if !self.in_crank => Outcome::NotInCrank("createCrankSavepoint"),
            Op::Savepoint(name) => {
                let id = self.next_id;
                self.next_id += 1;
                self.handles.insert(name, id);
                self.savepoints.push((id, self.current.clone()));
                Outcome::Ok
            }
            Op::RollbackTo(name) | Op::Release(name) if !self.handles.contains_key(name) => {
                Outcome::NoHandle
            }
            Op::RollbackTo(_) if !self.in_crank => Outcome::NotInCrank("rollbackCrank"),
            Op::Release(_) if !self.in_crank => Outcome::NotInCrank("releaseSavepoint"),
            Op::RollbackTo(name) | Op::Release(name) => {
                let id = self.handles[name];
                let Some(idx) = self.savepoints.iter().position(|(i, _)| *i == id) else {
                    return Outcome::NoSuchSavepoint;
                };
                let (_, snapshot) = self.savepoints.swap_remove(idx);
                if matches!(op, Op::RollbackTo(_)) {
                    self.current = snapshot;
                }
                self.savepoints.truncate(idx);
                Outcome::Ok
            }
            Op::StartCrank if self.in_crank => Outcome::AlreadyInCrank,
            Op::StartCrank => {
                self.in_crank = true;
                Outcome::Ok
            }
            Op::EndCrank if !self.in_crank => Outcome::NotInCrank("endCrank"),
            Op::EndCrank => {
                self.in_crank = false;
                self.savepoints.clear();
                self.ended = self.current.clone();
                Outcome::Ok
            }
            Op::AbortCrank if !self.in_crank => Outcome::NotInCrank("abortCrank"),
            Op::AbortCrank => {
                self.in_crank = false;
                self.savepoints.clear();
                self.current = self.ended.clone();
                Outcome::Ok
            }
            Op::Flush if self.in_crank => Outcome::InCrank("flush"),
            Op::Flush | Op::Scan(_) | Op::NextEntry(..) => Outcome::Ok,
            Op::Reopen => {
                self.in_crank = false;
                self.savepoints.clear();
                self.current = self.ended.clone();
                Outcome::Ok
            }
        }
    }

    fn scan(&self, prefix: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        self.current
            .iter()
            .filter(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    fn next_entry(
        &self,
        prefix: &[u8],
        from: &[u8],
        inclusive: bool,
    ) -> Option<(Vec<u8>, Vec<u8>)> {
        self.current
            .iter()
            .find(|(k, _)| {
                k.starts_with(prefix)
                    && if inclusive {
                        k.as_slice() >= from
                    } else {
                        k.as_slice() > from
                    }
            })
            .map(|(k, v)| (k.clone(), v.clone()))
    }
}

fn open(path: &Path, durability: Durability) -> Store {
    let config = StoreConfig {
        durability,
        ..StoreConfig::default()
    };
    Store::open_with(path, &config).unwrap()
}

fn all_keys() -> Vec<Vec<u8>> {
    let mut keys = vec![Vec::new()];
    for len in 1..=3 {
        for bits in 0..1u32 << len {
            keys.push(
                (0..len)
                    .map(|i| if bits >> i & 1 == 1 { b'b' } else { b'a' })
                    .collect(),
            );
        }
    }
    keys
}

fn check_same(store: &Store, model: &Model, step: usize, op: &Op) -> Result<(), TestCaseError> {
    for key in all_keys() {
        prop_assert_eq!(
            store.get(&key).unwrap(),
            model.current.get(&key).cloned(),
            "step {} {:?}: get {:?}",
            step,
            op,
            String::from_utf8_lossy(&key)
        );
        prop_assert_eq!(
            store.contains(&key).unwrap(),
            model.current.contains_key(&key)
        );
    }
    prop_assert_eq!(
        store.scan_prefix(b"").unwrap(),
        model.scan(b""),
        "step {} {:?}: full scan",
        step,
        op
    );
    prop_assert_eq!(store.in_crank(), model.in_crank);
    prop_assert_eq!(store.open_savepoints(), model.savepoints.len());
    Ok(())
}

/// The model's first `limit` entries under `prefix` from `from` on, as `Store::scan_from`.
fn first_from(
    model: &Model,
    prefix: &[u8],
    from: &[u8],
    inclusive: bool,
    limit: usize,
) -> Vec<(Vec<u8>, Vec<u8>)> {
    model
        .scan(prefix)
        .into_iter()
        .filter(|(key, _)| {
            if inclusive {
                key.as_slice() >= from
            } else {
                key.as_slice() > from
            }
        })
        .take(limit)
        .collect()
}

/// The store's reads (`scan_prefix`, `next_entry`, `scan_from`) against the model's.
fn check_reads(store: &Store, model: &Model, step: usize, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Scan(prefix) => {
            prop_assert_eq!(
                store.scan_prefix(prefix).unwrap(),
                model.scan(prefix),
                "step {}: {:?}",
                step,
                op
            );
        }
        Op::NextEntry(prefix, from, inclusive) => {
            prop_assert_eq!(
                store.next_entry(prefix, from, *inclusive).unwrap(),
                model.next_entry(prefix, from, *inclusive),
                "step {}: {:?}",
                step,
                op
            );
            // The bounded scan from the same point: the first few entries in order.
            prop_assert_eq!(
                store.scan_from(prefix, from, *inclusive, 3).unwrap(),
                first_from(model, prefix, from, *inclusive, 3),
                "step {}: {:?} (scan_from)",
                step,
                op
            );
        }
        _ => {}
    }
    Ok(())
}

fn run(durability: Durability, ops: &[Op]) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut store = open(dir.path(), durability);
    let mut model = Model::default();
    let mut handles: BTreeMap<&'static str, Savepoint> = BTreeMap::new();
    for (step, op) in ops.iter().enumerate() {
        let generation = store.generation();
        let got: Outcome = match op {
            Op::Set(key, value) => store.set(key, &[*value]).into(),
            Op::Delete(key) => store.delete(key).into(),
            Op::Savepoint(name) => store
                .savepoint()
                .map(|savepoint| {
                    handles.insert(name, savepoint);
                })
                .into(),
            Op::RollbackTo(name) => match handles.get(name) {
                Some(savepoint) => store.rollback_to(*savepoint).into(),
                None => Outcome::NoHandle,
            },
            Op::Release(name) => match handles.get(name) {
                Some(savepoint) => store.release(*savepoint).into(),
                None => Outcome::NoHandle,
            },
            Op::StartCrank => store.start_crank().into(),
            Op::EndCrank => store.end_crank().into(),
            Op::AbortCrank => store.abort_crank().into(),
            Op::Flush => store.flush().into(),
            Op::Reopen => {
                drop(store);
                store = open(dir.path(), durability);
                Outcome::Ok
            }
            Op::Scan(_) | Op::NextEntry(..) => {
                check_reads(&store, &model, step, op)?;
                Outcome::Ok
            }
        };
        let expected = model.apply(op);
        prop_assert_eq!(&got, &expected, "step {}: {:?}", step, op);
        if matches!(op, Op::RollbackTo(_) | Op::AbortCrank) && got == Outcome::Ok {
            prop_assert!(
                store.generation() > generation,
                "rollback must bump the generation"
            );
        }
        let flushed = matches!(op, Op::Flush) && got == Outcome::Ok
            || matches!(op, Op::EndCrank) && durability == Durability::EveryCrank;
        if flushed {
            prop_assert!(
                !store.has_unflushed(),
                "step {}: {:?} left cranks unflushed",
                step,
                op
            );
        }
        check_same(&store, &model, step, op)?;
    }
    // Whatever happened, a reopen shows exactly the ended cranks.
    drop(store);
    let store = open(dir.path(), durability);
    prop_assert_eq!(
        store.scan_prefix(b"").unwrap(),
        model.ended.into_iter().collect::<Vec<_>>()
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_model(durability in durability(), ops in prop::collection::vec(op(), 1..80)) {
        run(durability, &ops)?;
    }
}

/// One batch of a [`commits_over_many_pages_match_the_model`] round: keys drawn from a
/// keyspace of many LMDB pages, values of sizes that make pages split, overwrites that
/// grow and shrink, and deletions of keys present and absent.
fn many_page_batch() -> impl Strategy<Value = Vec<(u16, Option<u16>)>> {
    prop::collection::vec(
        (0..6000u16, prop::option::weighted(0.6, 0..400u16)),
        200..2500,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Commits write their keys in order through one LMDB cursor, which looks near its
    /// last key before it descends the tree (`write_sorted`): over a keyspace of many
    /// pages, with splits, merges and deletions of absent keys in one commit, what is
    /// stored must still be exactly what was written, after each commit and after a
    /// reopen.
    #[test]
    fn commits_over_many_pages_match_the_model(
        batches in prop::collection::vec(many_page_batch(), 1..6),
        reopen_after in prop::collection::vec(any::<bool>(), 6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let group = Durability::Group { max_cranks: 1_000_000, max_delay: Duration::from_secs(3600) };
        let mut store = open(dir.path(), group);
        let mut model = Map::new();
        for (round, batch) in batches.iter().enumerate() {
            store.start_crank().unwrap();
            for &(n, size) in batch {
                // Decimal without padding, as the kernel's ids: `k10` sorts before `k9`.
                let key = format!("k{n}").into_bytes();
                match size {
                    Some(size) => {
                        let value = vec![(n % 251) as u8 ^ (size % 7) as u8; usize::from(size)];
                        store.set(&key, &value).unwrap();
                        model.insert(key, value);
                    }
                    None => {
                        store.delete(&key).unwrap();
                        model.remove(&key);
                    }
                }
            }
            store.end_crank().unwrap();
            store.flush().unwrap();
            if reopen_after[round] {
                drop(store);
                store = open(dir.path(), group);
            }
            let stored: Vec<_> = store.scan_prefix(b"").unwrap().into_iter().collect();
            let expected: Vec<_> = model.clone().into_iter().collect();
            prop_assert_eq!(stored.len(), expected.len(), "round {}: entry count", round);
            prop_assert!(stored == expected, "round {}: stored entries differ from the model", round);
        }
    }
}
