//! Crank commits per second for a kernel-like crank of 10 writes (64-byte values), through
//! the store and through raw heed doing the same puts (the floor), in both durability
//! modes: every crank synced, and 1000 cranks per synced commit.
//!
//! Run: `cargo bench -p ocap-store --bench crank` (add `-- --quick` for a short run).
//! Throughput is in elements per second, one element being one crank.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::io::Write;
use std::path::Path;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RwTxn};
use ocap_store::{Durability, Store, StoreConfig};

/// Live objects the workload cycles through, so the database stays the same size however
/// many cranks criterion runs.
const WORKING_SET: u64 = 10_000;
const MAP_SIZE: usize = 1 << 30;
const GROUP_CRANKS: u64 = 1000;

/// Builds the 10 keys a crank writes, like a kernel delivering one message: run-queue head
/// and tail and the enqueued item, an object and a promise record, two c-list entries.
struct CrankKeys {
    keys: Vec<Vec<u8>>,
}

impl CrankKeys {
    fn new() -> Self {
        CrankKeys {
            keys: (0..10).map(|_| Vec::with_capacity(32)).collect(),
        }
    }

    fn fill(&mut self, crank_no: u64) -> &[Vec<u8>] {
        let id = crank_no % WORKING_SET;
        for (key_idx, key) in self.keys.iter_mut().enumerate() {
            key.clear();
            let res = match key_idx {
                0 => write!(key, "queue.run.head"),
                1 => write!(key, "queue.run.tail"),
                2 => write!(key, "queue.run.{id}"),
                3 => write!(key, "ko{id}.owner"),
                4 => write!(key, "ko{id}.refCount"),
                5 => write!(key, "kp{id}.state"),
                6 => write!(key, "kp{id}.decider"),
                7 => write!(key, "kp{id}.value"),
                8 => write!(key, "v1.c.ko{id}"),
                _ => write!(key, "v1.c.o+{id}"),
            };
            res.expect("writing to a Vec cannot fail");
        }
        &self.keys
    }
}

fn value(crank_no: u64) -> [u8; 64] {
    let mut value = [0x5a; 64];
    value[..8].copy_from_slice(&crank_no.to_le_bytes());
    value
}

fn store_crank(store: &mut Store, keys: &mut CrankKeys, crank_no: u64) {
    let value = value(crank_no);
    store.start_crank().expect("start");
    let _start = store.savepoint().expect("savepoint");
    for key in keys.fill(crank_no) {
        store.set(key, &value).expect("set");
    }
    store.end_crank().expect("end");
}

fn open_store(dir: &Path, durability: Durability) -> Store {
    let config = StoreConfig {
        durability,
        initial_map_size: MAP_SIZE,
    };
    Store::open_with(dir, &config).expect("open store")
}

fn open_raw(dir: &Path) -> (Env, Database<Bytes, Bytes>) {
    let mut options = EnvOpenOptions::new();
    options.map_size(MAP_SIZE).max_dbs(4);
    // SAFETY: a fresh directory, opened once by this benchmark.
    #[allow(unsafe_code)]
    let env = unsafe { options.open(dir) }.expect("open env");
    let mut wtxn = env.write_txn().expect("txn");
    let db = env.create_database(&mut wtxn, None).expect("db");
    wtxn.commit().expect("commit");
    (env, db)
}

fn raw_puts(db: Database<Bytes, Bytes>, txn: &mut RwTxn<'_>, keys: &mut CrankKeys, n: u64) {
    let value = value(n);
    for key in keys.fill(n) {
        db.put(txn, key, &value).expect("put");
    }
}

fn every_crank(c: &mut Criterion) {
    let mut group = c.benchmark_group("every_crank");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);

    let dir = tempfile::tempdir().expect("tempdir");
    let mut store = open_store(dir.path(), Durability::EveryCrank);
    let mut keys = CrankKeys::new();
    let mut crank_no = 0;
    group.bench_function("store", |b| {
        b.iter(|| {
            crank_no += 1;
            store_crank(&mut store, &mut keys, crank_no);
        });
    });
    drop(store);

    let dir = tempfile::tempdir().expect("tempdir");
    let (env, db) = open_raw(dir.path());
    let mut crank_no = 0;
    group.bench_function("raw_heed", |b| {
        b.iter(|| {
            crank_no += 1;
            let mut wtxn = env.write_txn().expect("txn");
            raw_puts(db, &mut wtxn, &mut keys, crank_no);
            wtxn.commit().expect("commit");
        });
    });
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("group");
    group.throughput(Throughput::Elements(1));

    let dir = tempfile::tempdir().expect("tempdir");
    let durability = Durability::Group {
        max_cranks: GROUP_CRANKS as u32,
        max_delay: std::time::Duration::from_secs(3600),
    };
    let mut store = open_store(dir.path(), durability);
    let mut keys = CrankKeys::new();
    let mut crank_no = 0;
    group.bench_function("store", |b| {
        b.iter(|| {
            crank_no += 1;
            store_crank(&mut store, &mut keys, crank_no);
        });
    });
    drop(store);

    let dir = tempfile::tempdir().expect("tempdir");
    let (env, db) = open_raw(dir.path());
    let mut crank_no = 0;
    let mut block = Some(env.write_txn().expect("txn"));
    group.bench_function("raw_heed", |b| {
        b.iter(|| {
            crank_no += 1;
            let top = block.as_mut().expect("a block txn is open");
            let mut nested = env.nested_write_txn(top).expect("nested txn");
            raw_puts(db, &mut nested, &mut keys, crank_no);
            nested.commit().expect("nested commit");
            if crank_no % GROUP_CRANKS == 0 {
                block
                    .take()
                    .expect("a block txn is open")
                    .commit()
                    .expect("commit");
                block = Some(env.write_txn().expect("txn"));
            }
        });
    });
    group.finish();
}

criterion_group!(benches, every_crank, group_commit);
criterion_main!(benches);
