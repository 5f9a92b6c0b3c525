//! Soak: a kernel under long traffic runs in constant space (issue 13). Each case runs two
//! in-process `tester` vats in group mode, in chunks of host calls whose results the host
//! releases once read:
//!
//! - `pingpong TOTAL CHUNK`: vat a calls b's `echo` TOTAL times, one after the other;
//! - `trade TOTAL CHUNK`: a and b trade TOTAL times, each trade a fresh object and a fresh
//!   promise each way (see the tester's `trade_many`), and every vat is reaped after each
//!   chunk so that the objects dropped are collected.
//!
//! After each chunk it prints the store's keys, the bytes its B-tree uses, the file's
//! high-water mark and the process's resident memory; at the end the slope (least squares
//! over the samples after the first two, the warm-up) in keys and B-tree bytes per round
//! trip, and how much the resident memory moved after the warm-up. The goal is a slope of
//! 0 (it was 6 keys, about 358 B, per ping-pong round trip before settled promises were
//! collected).
//!
//! `restart ENTRIES` measures something else the same issue asks for: the restart of a vat
//! in a worker process whose vat store holds ENTRIES baggage entries (filled 50,000 per
//! delivery), five times, each until its first answer.
//!
//! `cargo bench -p ocap-tests --bench soak` runs both soak cases with 10⁵ round trips
//! (`--quick`: 10⁴); `cargo bench -p ocap-tests --bench soak -- pingpong 1000000 50000` runs
//! one case as given, `-- restart 1000000` the restart.

#![allow(clippy::unwrap_used)] // a benchmark: any failure is a panic with its cause

use std::time::Instant;

use ocap_kernel::Durability;
use ocap_tests::{TestKernel, WAIT, cluster, config, decode, roots, worker_program};
use ocap_types::{ClusterConfig, KRef, Value, VatConfig, WorkerKind};

/// One measurement after a chunk.
struct Sample {
    round_trips: u64,
    keys: u64,
    tree_bytes: u64,
    file_bytes: u64,
    rss_kib: u64,
    anon_kib: u64,
}

/// A field of `/proc/self/status` in KiB (0 where there is none).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn sample(test: &TestKernel, round_trips: u64) -> Sample {
    let (keys, usage) = test
        .kernel
        .inspect(|s| {
            Ok::<_, ocap_store::StoreError>((s.kv().scan_prefix(b"")?.len(), s.kv().usage()?))
        })
        .unwrap()
        .unwrap();
    let page = u64::from(usage.page_size);
    Sample {
        round_trips,
        keys: keys as u64,
        tree_bytes: usage.tree_pages * page,
        file_bytes: usage.file_pages * page,
        rss_kib: status_kib("VmRSS:"),
        anon_kib: status_kib("RssAnon:"),
    }
}

/// The least-squares slope of `y` against the round trips.
fn slope(samples: &[Sample], y: impl Fn(&Sample) -> f64) -> f64 {
    let n = samples.len() as f64;
    let x = |s: &Sample| s.round_trips as f64;
    let (mx, my) = (
        samples.iter().map(x).sum::<f64>() / n,
        samples.iter().map(&y).sum::<f64>() / n,
    );
    let cov: f64 = samples.iter().map(|s| (x(s) - mx) * (y(s) - my)).sum();
    let var: f64 = samples.iter().map(|s| (x(s) - mx).powi(2)).sum();
    if var == 0.0 { 0.0 } else { cov / var }
}

/// One host call of `chunk` round trips of `case`, its result released.
fn chunk(test: &TestKernel, case: &str, a: KRef, b: KRef, chunk: u64) {
    let n = i64::try_from(chunk).expect("a chunk fits an i64");
    let slot = Value::Slot {
        index: 0,
        iface: None,
    };
    let (method, args) = match case {
        "pingpong" => ("call_many", vec![slot, Value::str("echo"), Value::Int(n)]),
        _ => ("trade_many", vec![slot, Value::Int(n)]),
    };
    let handle = test
        .kernel
        .queue_message_with_slots(a, method, args, vec![b])
        .unwrap();
    assert_eq!(decode(&handle.wait(WAIT * 30).unwrap()), Value::Int(n));
    assert!(
        test.kernel
            .release(KRef::Promise(handle.promise().unwrap()))
            .unwrap()
    );
    if case == "trade" {
        // A reap makes importers drop, owners are told, and their next reap lets go.
        for _ in 0..3 {
            test.kernel.reap_vats().unwrap();
            test.kernel.run_until_idle(WAIT).unwrap();
        }
    }
}

fn run(case: &str, total: u64, size: u64) {
    let mut config = config();
    config.durability = Durability::GROUP;
    let test = TestKernel::with_config(config);
    test.launch(&cluster(&[("a", "tester"), ("b", "tester")]));
    let all = roots(&test.kernel);
    let (a, b) = (all[0].1, all[1].1);
    let started = Instant::now();
    let mut samples = Vec::new();
    let mut done = 0;
    while done < total {
        let size = size.min(total - done);
        chunk(&test, case, a, b, size);
        done += size;
        let s = sample(&test, done);
        println!(
            "{case}: {:>9} round trips: {:>6} keys, B-tree {:>8} B, file {:>9} B, RSS {:>7} KiB (anon {:>7} KiB)",
            s.round_trips, s.keys, s.tree_bytes, s.file_bytes, s.rss_kib, s.anon_kib
        );
        samples.push(s);
    }
    let secs = started.elapsed().as_secs_f64();
    let steady = if samples.len() > 3 {
        &samples[2..]
    } else {
        &samples[..]
    };
    let (first, last) = (&steady[0], &steady[steady.len() - 1]);
    println!(
        "{case}: {total} round trips in {secs:.1} s; after warm-up, per round trip: {:.6} keys, {:.4} B of B-tree, {:.4} B of file; RSS {:+} KiB, anon {:+} KiB (from {} to {} round trips)",
        slope(steady, |s| s.keys as f64),
        slope(steady, |s| s.tree_bytes as f64),
        slope(steady, |s| s.file_bytes as f64),
        last.rss_kib as i64 - first.rss_kib as i64,
        last.anon_kib as i64 - first.anon_kib as i64,
        first.round_trips,
        last.round_trips,
    );
    test.assert_refcounts_consistent();
    println!("{case}: refcount audit clean");
}

fn restart(entries: u64) {
    let mut config = config();
    config.durability = Durability::GROUP;
    config.workers.program = Some(worker_program());
    let test = TestKernel::with_config(config);
    let vat = VatConfig::named("tester").with_worker(WorkerKind::Subprocess);
    test.launch(
        &ClusterConfig::builder("big")
            .vat("big", vat)
            .build()
            .unwrap(),
    );
    let (vat, root) = roots(&test.kernel)[0];
    let ask = |method: &str, args: Vec<Value>| {
        let handle = test.kernel.queue_message(root, method, args).unwrap();
        let answer = decode(&handle.wait(WAIT * 30).unwrap());
        test.kernel
            .release(KRef::Promise(handle.promise().unwrap()))
            .unwrap();
        answer
    };
    let mut from = 0;
    while from < entries {
        let n = 50_000.min(entries - from);
        let args = vec![Value::Int(from as i64), Value::Int(n as i64)];
        assert_eq!(ask("fill", args), Value::Int(n as i64));
        from += n;
    }
    let bytes = test
        .kernel
        .inspect(move |s| s.vatstore_usage(vat))
        .unwrap()
        .unwrap();
    let mut times: Vec<f64> = (0..5)
        .map(|_| {
            let started = Instant::now();
            test.kernel.restart_vat(vat).unwrap();
            let last = format!("k{}", entries - 1);
            assert_eq!(
                ask("load", vec![Value::str(last)]),
                Value::Int(entries as i64 - 1)
            );
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "restart: worker vat with {entries} vat-store entries ({bytes} B): restart until its first answer {:.0} ms (median of 5; {:.0}..{:.0} ms)",
        times[2], times[0], times[4]
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let quick = std::env::args().any(|a| a == "--quick");
    match args.as_slice() {
        [case, entries] if case == "restart" => restart(entries.parse().expect("ENTRIES")),
        [case, total, size] => run(
            case,
            total.parse().expect("TOTAL"),
            size.parse().expect("CHUNK"),
        ),
        [] => {
            let total = if quick { 10_000 } else { 100_000 };
            run("pingpong", total, total / 20);
            run("trade", total / 10, total / 200);
        }
        _ => panic!("usage: soak [--quick] [pingpong|trade TOTAL CHUNK | restart ENTRIES]"),
    }
}
