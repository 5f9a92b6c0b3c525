//! Crank commits per second for a kernel-like crank of 10 writes (64-byte values), through
//! the store and through raw heed doing the same puts (the floor), in both durability
//! modes: every crank synced, and 1000 cranks per synced commit.
//!
//! Run: `cargo bench -p ocap-store --bench crank` (add `-- --quick` for a short run).
//! Throughput is in elements per second, one element being one crank.
//!
//! With `OCAP_BENCH_DEEP=1` (or `raw-first`, to time raw heed first at each size) both
//! modes also run on deep trees: `<mode>/store/deep-<n>` and `<mode>/raw_heed/deep-<n>` for
//! n = 0 (an empty store), 10^5 and 10^6 kernel-like keys filled before timing (the fill is
//! not timed; 10^6 keys take a few seconds and give a B-tree of depth 4). Each
//! contender starts from its own byte-identical copy of the filled store, and its crank
//! overwrites keys spread over the whole tree, so every commit copies several root-to-leaf
//! paths. Filter with e.g. `-- 'every_crank/.*/deep'`. On a noisy disk,
//! `OCAP_BENCH_DEEP=pairs` times the same deep cases without criterion, in alternating
//! blocks of the two contenders open side by side, and prints medians and ratios;
//! `OCAP_BENCH_DEEP=pairs-control` does the same with raw heed in the store's place, to
//! show the method's own bias.

#![expect(
    missing_docs,
    reason = "criterion_group! generates an undocumented pub fn"
)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput, measurement::WallTime};
use criterion::{criterion_group, criterion_main};
use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RwTxn};
use ocap_store::{Durability, Store, StoreConfig};

/// Live objects the workload cycles through, so the database stays the same size however
/// many cranks criterion runs.
const WORKING_SET: u64 = 10_000;
const MAP_SIZE: usize = 1 << 30;
const GROUP_CRANKS: u64 = 1000;

/// Keys filled before timing in the deep cases (`OCAP_BENCH_DEEP=1`), with their labels.
const DEEP_SIZES: [(u64, &str); 3] = [
    (0, "deep-0"),
    (100_000, "deep-1e5"),
    (1_000_000, "deep-1e6"),
];
/// Keys the fill writes per crank (one synced commit each).
const FILL_CRANK_KEYS: u64 = 100_000;
/// Key families of the fill: vat-store entries, objects, promises, c-list entries.
const FAMILIES: u64 = 4;
/// Writes of a deep crank that overwrite keys spread over the whole filled tree, one per
/// family; the crank's other writes are the ordinary crank's first ones.
const SPREAD_WRITES: usize = 4;

/// Builds the 10 keys a crank writes, like a kernel delivering one message: run-queue head
/// and tail and the enqueued item, an object and a promise record, two c-list entries.
/// A deep crank (`spread` set) replaces the last four with one key of each fill family,
/// chosen pseudo-randomly among `spread` ids, so that they land all over the tree.
struct CrankKeys {
    keys: Vec<Vec<u8>>,
    spread: Option<u64>,
}

impl CrankKeys {
    fn new() -> Self {
        CrankKeys {
            keys: (0..10).map(|_| Vec::with_capacity(32)).collect(),
            spread: None,
        }
    }

    /// The keys of a crank on a store filled with `filled` keys by [`fill_store`].
    fn deep(filled: u64) -> Self {
        CrankKeys {
            spread: Some((filled / FAMILIES).max(WORKING_SET)),
            ..CrankKeys::new()
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
        if let Some(spread) = self.spread {
            let first = self.keys.len() - SPREAD_WRITES;
            for (family, key) in (0..).zip(&mut self.keys[first..]) {
                let idx = mix(crank_no * FAMILIES + family) % spread;
                fill_key(key, family, idx);
            }
        }
        &self.keys
    }
}

/// splitmix64's finaliser: a fixed pseudo-random spread, the same for every contender.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The key of fill family `family` for id `idx`, named as the kernel names them.
fn fill_key(key: &mut Vec<u8>, family: u64, idx: u64) {
    key.clear();
    let vat = idx % 20 + 1;
    let res = match family {
        0 => write!(key, "v{vat}.vs.{idx}"),
        1 => write!(key, "ko{idx}.owner"),
        2 => write!(key, "kp{idx}.state"),
        _ => write!(key, "v{vat}.c.o-{idx}"),
    };
    res.expect("writing to a Vec cannot fail");
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
    // SAFETY: a directory of its own (fresh, or a copy of a filled store), opened once by
    // this benchmark.
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

/// Registers `f` as `name`, or as `name/param` for a deep case, so that the ordinary cases
/// keep their names.
fn bench(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    param: Option<&str>,
    f: impl FnMut(&mut criterion::Bencher<'_>),
) {
    match param {
        None => group.bench_function(name, f),
        Some(param) => group.bench_function(BenchmarkId::new(name, param), f),
    };
}

/// Cranks through the store opened at `dir`, each ended as `durability` says.
fn bench_store(
    group: &mut BenchmarkGroup<'_, WallTime>,
    param: Option<&str>,
    dir: &Path,
    durability: Durability,
    keys: CrankKeys,
) {
    let mut store = open_store(dir, durability);
    bench_cranks(group, "store", param, store_cranks(&mut store, keys));
}

/// The same puts through raw heed at `dir`, as [`raw_cranks`] commits them.
fn bench_raw(
    group: &mut BenchmarkGroup<'_, WallTime>,
    param: Option<&str>,
    dir: &Path,
    every: bool,
    keys: CrankKeys,
) {
    let (env, db) = open_raw(dir);
    bench_cranks(group, "raw_heed", param, raw_cranks(&env, db, every, keys));
}

/// Times `crank`, numbering the cranks from 1.
fn bench_cranks(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    param: Option<&str>,
    mut crank: Box<dyn FnMut(u64) + '_>,
) {
    let mut crank_no = 0;
    bench(group, name, param, |b| {
        b.iter(|| {
            crank_no += 1;
            crank(crank_no);
        });
    });
}

fn group_durability() -> Durability {
    Durability::Group {
        max_cranks: GROUP_CRANKS as u32,
        max_delay: std::time::Duration::from_secs(3600),
    }
}

fn every_crank(c: &mut Criterion) {
    let mut group = c.benchmark_group("every_crank");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);

    let dir = tempfile::tempdir().expect("tempdir");
    bench_store(
        &mut group,
        None,
        dir.path(),
        Durability::EveryCrank,
        CrankKeys::new(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    bench_raw(&mut group, None, dir.path(), true, CrankKeys::new());
    group.finish();
}

fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("group");
    group.throughput(Throughput::Elements(1));

    let dir = tempfile::tempdir().expect("tempdir");
    bench_store(
        &mut group,
        None,
        dir.path(),
        group_durability(),
        CrankKeys::new(),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    bench_raw(&mut group, None, dir.path(), false, CrankKeys::new());
    group.finish();
}

/// A store filled with `keys` keys, kept for the cases to copy.
struct Filled {
    dir: tempfile::TempDir,
    keys: u64,
}

/// Fills a new store with `keys` keys of the four families, ids in order within each,
/// values of 64 to 200 bytes, `FILL_CRANK_KEYS` per synced crank.
fn fill_store(keys: u64) -> Filled {
    let dir = tempfile::tempdir().expect("tempdir");
    let started = Instant::now();
    let mut store = open_store(dir.path(), Durability::EveryCrank);
    let mut key = Vec::with_capacity(32);
    let mut value = [0xa5; 200];
    let mut next = 0;
    while next < keys {
        let end = (next + FILL_CRANK_KEYS).min(keys);
        store.start_crank().expect("start");
        for n in next..end {
            fill_key(&mut key, n % FAMILIES, n / FAMILIES);
            let len = 64 + usize::try_from(mix(n) % 137).expect("below 137");
            value[..8].copy_from_slice(&n.to_le_bytes());
            store.set(&key, &value[..len]).expect("set");
        }
        store.end_crank().expect("end");
        next = end;
    }
    store.close().expect("close");
    let (env, db) = open_raw(dir.path());
    let rtxn = env.read_txn().expect("txn");
    let stat = db.stat(&rtxn).expect("stat");
    let file = std::fs::metadata(data_file(dir.path())).expect("data.mdb");
    eprintln!(
        "filled {keys} keys in {:.1?}: {} entries, B-tree depth {}, {} branch and {} leaf pages, data.mdb {} MiB",
        started.elapsed(),
        stat.entries,
        stat.depth,
        stat.branch_pages,
        stat.leaf_pages,
        file.len() >> 20,
    );
    drop(rtxn);
    env.prepare_for_closing().wait();
    Filled { dir, keys }
}

fn data_file(dir: &Path) -> PathBuf {
    dir.join("data.mdb")
}

impl Filled {
    /// A new directory holding a byte-identical, synced copy of the filled store, so that
    /// every contender starts from the same file with nothing left to write back.
    fn copy(&self) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        let to = data_file(dir.path());
        std::fs::copy(data_file(self.dir.path()), &to).expect("copy data.mdb");
        std::fs::File::open(&to)
            .and_then(|file| file.sync_all())
            .expect("sync the copy");
        dir
    }
}

/// Both modes on an empty store and on stores filled with 10^5 and 10^6 keys, when
/// `OCAP_BENCH_DEEP` is `1` (store first, then raw heed, at each size) or `raw-first`
/// (raw heed first): alternate the two between runs to even out a drifting disk.
fn deep(c: &mut Criterion) {
    let raw_first = match std::env::var("OCAP_BENCH_DEEP").as_deref() {
        Ok("1") => false,
        Ok("raw-first") => true,
        Ok(mode @ ("pairs" | "pairs-control")) => {
            for (keys, label) in DEEP_SIZES {
                deep_pairs(&fill_store(keys), label, mode == "pairs-control");
            }
            return;
        }
        _ => return,
    };
    for (keys, label) in DEEP_SIZES {
        let filled = fill_store(keys);
        let param = Some(label);

        let mut group = c.benchmark_group("every_crank");
        group.throughput(Throughput::Elements(1));
        group.sample_size(20);
        in_order(
            &mut group,
            raw_first,
            |group| {
                let dir = filled.copy();
                let crank_keys = CrankKeys::deep(filled.keys);
                bench_store(group, param, dir.path(), Durability::EveryCrank, crank_keys);
            },
            |group| {
                let dir = filled.copy();
                bench_raw(group, param, dir.path(), true, CrankKeys::deep(filled.keys));
            },
        );
        group.finish();

        let mut group = c.benchmark_group("group");
        group.throughput(Throughput::Elements(1));
        in_order(
            &mut group,
            raw_first,
            |group| {
                let dir = filled.copy();
                let crank_keys = CrankKeys::deep(filled.keys);
                bench_store(group, param, dir.path(), group_durability(), crank_keys);
            },
            |group| {
                let dir = filled.copy();
                bench_raw(
                    group,
                    param,
                    dir.path(),
                    false,
                    CrankKeys::deep(filled.keys),
                );
            },
        );
        group.finish();
    }
}

/// Runs the store's case and raw heed's, raw heed's first if `raw_first`.
fn in_order<'a>(
    group: &mut BenchmarkGroup<'a, WallTime>,
    raw_first: bool,
    store: impl FnOnce(&mut BenchmarkGroup<'a, WallTime>),
    raw: impl FnOnce(&mut BenchmarkGroup<'a, WallTime>),
) {
    if raw_first {
        raw(group);
        store(group);
    } else {
        store(group);
        raw(group);
    }
}

/// Blocks of `pairs` mode per contender, and cranks per block in each durability mode.
const PAIR_BLOCKS: usize = 40;
const PAIR_EVERY_CRANKS: u64 = 100;
const PAIR_GROUP_CRANKS: u64 = 2 * GROUP_CRANKS;

/// `OCAP_BENCH_DEEP=pairs`: the deep cases timed in alternating blocks, store then raw heed
/// then raw heed then store..., both open side by side on copies of `filled`, so that the
/// two meet the same disk at (nearly) the same time. Prints each contender's median rate
/// and the median of the per-block-pair ratios. With `control`, a second raw heed takes the
/// store's place: the ratios it prints show the method's own bias and spread.
fn deep_pairs(filled: &Filled, label: &str, control: bool) {
    let first = if control { "raw heed A" } else { "store" };
    for (mode, cranks) in [
        ("every_crank", PAIR_EVERY_CRANKS),
        ("group", PAIR_GROUP_CRANKS),
    ] {
        let every = mode == "every_crank";
        let (first_dir, raw_dir) = (filled.copy(), filled.copy());
        let durability = if every {
            Durability::EveryCrank
        } else {
            group_durability()
        };
        let mut store = (!control).then(|| open_store(first_dir.path(), durability));
        let first_raw = control.then(|| open_raw(first_dir.path()));
        let first_cranks = match (&mut store, &first_raw) {
            (Some(store), _) => store_cranks(store, CrankKeys::deep(filled.keys)),
            (None, Some((env, db))) => raw_cranks(env, *db, every, CrankKeys::deep(filled.keys)),
            (None, None) => unreachable!("one of the two is open"),
        };
        let (env, db) = open_raw(raw_dir.path());
        let raw = raw_cranks(&env, db, every, CrankKeys::deep(filled.keys));
        pairs(mode, label, first, cranks, first_cranks, raw);
    }
}

/// One store crank per call, numbered by the argument.
fn store_cranks<'s>(store: &'s mut Store, mut keys: CrankKeys) -> Box<dyn FnMut(u64) + 's> {
    Box::new(move |n| store_crank(store, &mut keys, n))
}

/// One crank's puts through raw heed per call: a synced write transaction each (`every`),
/// or a nested one inside a top-level one committed every `GROUP_CRANKS` cranks.
fn raw_cranks<'e>(
    env: &'e Env,
    db: Database<Bytes, Bytes>,
    every: bool,
    mut keys: CrankKeys,
) -> Box<dyn FnMut(u64) + 'e> {
    if every {
        return Box::new(move |n| {
            let mut wtxn = env.write_txn().expect("txn");
            raw_puts(db, &mut wtxn, &mut keys, n);
            wtxn.commit().expect("commit");
        });
    }
    let mut block = Some(env.write_txn().expect("txn"));
    Box::new(move |n| {
        let top = block.as_mut().expect("a block txn is open");
        let mut nested = env.nested_write_txn(top).expect("nested txn");
        raw_puts(db, &mut nested, &mut keys, n);
        nested.commit().expect("nested commit");
        if n % GROUP_CRANKS == 0 {
            block
                .take()
                .expect("a block txn is open")
                .commit()
                .expect("commit");
            block = Some(env.write_txn().expect("txn"));
        }
    })
}

/// Times `PAIR_BLOCKS` blocks of `cranks` cranks of each contender, alternating which goes
/// first, after one untimed block each; prints the medians.
fn pairs(
    mode: &str,
    label: &str,
    first: &str,
    cranks: u64,
    mut store: Box<dyn FnMut(u64) + '_>,
    mut raw: Box<dyn FnMut(u64) + '_>,
) {
    let mut crank_no = 0;
    // Each contender's CPU time and bytes written, summed over its timed blocks: unlike the
    // rates, these barely move with the disk's and the other tenants' moods.
    let mut used = [Usage::default(); 2];
    let block = |run: &mut dyn FnMut(u64), first: u64, used: Option<&mut Usage>| {
        let before = Usage::now();
        let started = Instant::now();
        for n in first..first + cranks {
            run(n + 1);
        }
        let rate = cranks as f64 / started.elapsed().as_secs_f64();
        if let Some(used) = used {
            used.add_since(&before);
        }
        rate
    };
    block(&mut store, crank_no, None);
    block(&mut raw, crank_no, None);
    crank_no += cranks;
    let mut store_rates = Vec::with_capacity(PAIR_BLOCKS);
    let mut raw_rates = Vec::with_capacity(PAIR_BLOCKS);
    for pair in 0..PAIR_BLOCKS {
        let [store_used, raw_used] = &mut used;
        if pair % 2 == 0 {
            store_rates.push(block(&mut store, crank_no, Some(store_used)));
            raw_rates.push(block(&mut raw, crank_no, Some(raw_used)));
        } else {
            raw_rates.push(block(&mut raw, crank_no, Some(raw_used)));
            store_rates.push(block(&mut store, crank_no, Some(store_used)));
        }
        crank_no += cranks;
    }
    let mut ratios: Vec<f64> = store_rates
        .iter()
        .zip(&raw_rates)
        .map(|(s, r)| s / r)
        .collect();
    let (store_rate, raw_rate) = (median(&mut store_rates), median(&mut raw_rates));
    let ratio = median(&mut ratios);
    let (low, high) = (ratios[PAIR_BLOCKS / 4], ratios[PAIR_BLOCKS * 3 / 4]);
    println!(
        "pairs {mode}/{label}: {first} {store_rate:.0} cranks/s, raw heed {raw_rate:.0} cranks/s \
         (medians of {PAIR_BLOCKS} blocks of {cranks}), {first}/raw {ratio:.3} \
         (median of the block pairs' ratios, quartiles {low:.3}-{high:.3})"
    );
    let timed = (PAIR_BLOCKS as u64 * cranks) as f64;
    let [store_used, raw_used] = used;
    println!(
        "usage {mode}/{label}: {first} {:.1} µs CPU and {:.0} bytes written a crank, \
         raw heed {:.1} µs and {:.0} bytes ({first}/raw CPU {:.3}, bytes {:.3})",
        store_used.cpu_ns as f64 / timed / 1e3,
        store_used.written as f64 / timed,
        raw_used.cpu_ns as f64 / timed / 1e3,
        raw_used.written as f64 / timed,
        store_used.cpu_ns as f64 / raw_used.cpu_ns.max(1) as f64,
        store_used.written as f64 / raw_used.written.max(1) as f64,
    );
}

/// What the bench's thread used: CPU time (the first field of
/// `/proc/thread-self/schedstat`, in ns) and bytes handed to `write`-like calls (`wchar`
/// of `/proc/thread-self/io`: LMDB writes its pages with `pwrite`). Zero where the files
/// are missing.
#[derive(Debug, Default, Clone, Copy)]
struct Usage {
    cpu_ns: u64,
    written: u64,
}

impl Usage {
    fn now() -> Usage {
        let field = |path: &str, pick: &dyn Fn(&str) -> Option<u64>| {
            std::fs::read_to_string(path)
                .ok()
                .and_then(|text| pick(&text))
                .unwrap_or(0)
        };
        Usage {
            cpu_ns: field("/proc/thread-self/schedstat", &|text| {
                text.split_whitespace().next()?.parse().ok()
            }),
            written: field("/proc/thread-self/io", &|text| {
                text.lines()
                    .find_map(|line| line.strip_prefix("wchar:"))?
                    .trim()
                    .parse()
                    .ok()
            }),
        }
    }

    fn add_since(&mut self, before: &Usage) {
        let now = Usage::now();
        self.cpu_ns += now.cpu_ns.saturating_sub(before.cpu_ns);
        self.written += now.written.saturating_sub(before.written);
    }
}

/// The median of `values`, which it sorts.
fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

criterion_group!(benches, every_crank, group_commit, deep);
criterion_main!(benches);
