//! Crank-loop benchmark with in-process vats: ping-pong (N sequential round trips between
//! two vats, two cranks each), burst (one vat sends N messages in one delivery, then awaits
//! every answer: 2N cranks), and host-burst (N host messages queued through the API, then
//! awaited: measures the host API as well), in both durability modes. Reports cranks per second and the process's peak RSS.
//!
//! `cargo bench -p ocap-kernel --bench crank_loop` runs N = 10^4 and 10^5; `-- --quick` runs
//! N = 10^4 only. Each case runs in a fresh child process so that peak RSS is its own.
//!
//! Cases ending in `-sub` run both vats as subprocess workers (this same executable, as
//! `crank_loop worker pingpong`); `lifecycle` first reports the peak RSS of the process
//! holding 10 in-process vats after launch and some traffic (goal: under 64 MiB), then
//! times launching a 10-vat subcluster of subprocess vats, shutting the kernel down and
//! reopening it (which restarts all 10). Subprocess vats are confined (this executable is
//! their launcher too); `OCAP_BENCH_UNCONFINED=1` runs them unconfined, for comparison.
//! `OCAP_BENCH_GROUP_CRANKS=K` bounds group commits by K cranks alone, for callgrind runs
//! (docs/performance.md).

use std::process::Command;
use std::time::{Duration, Instant};

use ocap_kernel::{
    ConfineMode, Durability, Kernel, KernelConfig, LAUNCH_FAILED, LAUNCHER_COMMAND, VatRegistry,
    launch_main,
};
use ocap_types::{ClusterConfig, Value, VatConfig, VatLimits, VatRuntime, WorkerKind};

// The allocator is a choice of the binary, not of the library crates (issue 14): mimalloc
// takes about a sixth off the instructions per crank (docs/performance.md). Remove these
// two lines to measure with the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The ping-pong vat, shared with `ocap bench` (`bench-pingpong` in
/// `crates/example-vats/src/bench.rs`): `start(peer, n)` pings `peer` n times in sequence,
/// `burst(peer, n)` all at once, then answers; `ping()` answers "pong".
fn pingpong() -> Box<dyn VatRuntime> {
    let (_, construct) = ocap_example_vats::registry()
        .into_iter()
        .find(|(name, _)| *name == "bench-pingpong")
        .expect("the example vats include bench-pingpong");
    construct()
}

/// The bench vats' limits for `n` messages: `burst(peer, n)` makes 2n syscalls (a send and
/// a subscribe each) in one delivery and has n messages queued at once, past the defaults
/// from n = 50 000 on.
fn bench_limits(n: i64) -> VatLimits {
    let n = u64::try_from(n).unwrap_or(0);
    let defaults = VatLimits::default();
    let syscalls = u32::try_from(n.saturating_mul(2).saturating_add(16)).unwrap_or(u32::MAX);
    defaults
        .with_syscalls_per_delivery(defaults.syscalls_per_delivery.max(syscalls))
        .with_queued_messages(defaults.queued_messages.max(n.saturating_add(16)))
}

/// `OCAP_BENCH_GROUP_CRANKS=K` bounds a group commit by K cranks alone (no time bound):
/// under valgrind the default 50 ms bound makes a group a few dozen cranks, as many as the
/// machine's speed allows, so the instructions per crank would move with the load.
fn group_durability() -> Durability {
    match std::env::var("OCAP_BENCH_GROUP_CRANKS") {
        Ok(k) => Durability::Group {
            max_cranks: k.parse().expect("OCAP_BENCH_GROUP_CRANKS is a crank count"),
            max_delay: Duration::from_secs(24 * 3600),
        },
        Err(_) => Durability::GROUP,
    }
}

fn kernel_config(group: bool) -> KernelConfig {
    let mut registry = VatRegistry::new();
    registry.register("pingpong", pingpong);
    let mut config = KernelConfig::new(registry);
    config.durability = if group {
        group_durability()
    } else {
        Durability::EveryCrank
    };
    // Subprocess vats run in this executable (see `main`), which is also their confinement
    // launcher unless `OCAP_BENCH_LAUNCHER` names another (`target/release/ocap-launch`);
    // `OCAP_BENCH_UNCONFINED=1` measures them unconfined.
    let exe = std::env::current_exe().expect("exe");
    config.workers.program = Some(exe.clone());
    config.workers.confinement.launcher =
        Some(std::env::var_os("OCAP_BENCH_LAUNCHER").map_or(exe, std::path::PathBuf::from));
    if std::env::var_os("OCAP_BENCH_UNCONFINED").is_some() {
        config.workers.confinement.mode = ConfineMode::Never;
    }
    config
}

/// `n_vats` ping-pong vats named `v0`, `v1`, …; `v0` is bootstrapped; limits that fit `n`
/// messages.
fn pingpong_cluster(n_vats: usize, worker: WorkerKind, n: i64) -> ClusterConfig {
    (0..n_vats)
        .fold(ClusterConfig::builder("v0"), |cluster, i| {
            cluster.vat(
                format!("v{i}"),
                VatConfig::named("pingpong")
                    .with_worker(worker)
                    .with_limits(bench_limits(n)),
            )
        })
        .build()
        .expect("a valid cluster")
}

/// Launches 10 in-process vats, has five pairs of them ping each other `n` times, and
/// leaves the kernel running: the cranks it ran.
fn run_in_process_vats(kernel: &Kernel, n: i64) -> u64 {
    kernel
        .launch_subcluster(&pingpong_cluster(10, WorkerKind::InProcess, n))
        .expect("launch");
    let roots: Vec<_> = kernel
        .vat_ids()
        .expect("vats")
        .into_iter()
        .map(|vat| kernel.vat_root(vat).expect("root").expect("root"))
        .collect();
    let before = kernel.crank_count().expect("count");
    let handles: Vec<_> = roots
        .chunks(2)
        .map(|pair| {
            let args = vec![
                Value::Slot {
                    index: 0,
                    iface: None,
                },
                Value::Int(n),
            ];
            kernel
                .queue_message_with_slots(pair[0], "start", args, vec![pair[1]])
                .expect("queue")
        })
        .collect();
    for handle in handles {
        handle.wait(Duration::from_secs(600)).expect("done");
    }
    kernel
        .run_until_idle(Duration::from_secs(600))
        .expect("idle");
    kernel.crank_count().expect("count") - before
}

/// Launches 10 subprocess vats, shuts down, reopens: the three durations.
fn run_lifecycle(group: bool) -> [Duration; 3] {
    let dir = tempfile::tempdir().expect("tempdir");
    let kernel = Kernel::open(dir.path(), kernel_config(group)).expect("open");
    let start = Instant::now();
    kernel
        .launch_subcluster(&pingpong_cluster(10, WorkerKind::Subprocess, 0))
        .expect("launch");
    let launch = start.elapsed();
    let start = Instant::now();
    kernel.shutdown().expect("shutdown");
    let shutdown = start.elapsed();
    let start = Instant::now();
    let kernel = Kernel::open(dir.path(), kernel_config(group)).expect("reopen");
    let reopen = start.elapsed();
    assert_eq!(kernel.vat_ids().expect("vats").len(), 10);
    kernel.shutdown().expect("shutdown");
    [launch, shutdown, reopen]
}

fn run_case(case: &str, n: i64, group: bool) -> (u64, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let (case, worker) = match case.strip_suffix("-sub") {
        Some(base) => (base, WorkerKind::Subprocess),
        None => (case, WorkerKind::InProcess),
    };
    let kernel = Kernel::open(dir.path(), kernel_config(group)).expect("open");
    let cluster = pingpong_cluster(2, worker, n);
    let launched = kernel.launch_subcluster(&cluster).expect("launch");
    let vats = kernel.vat_ids().expect("vats");
    let a = launched.root;
    let b = kernel.vat_root(vats[1]).expect("root").expect("root");
    let wait = Duration::from_secs(3600);
    let before = kernel.crank_count().expect("count");
    let start = Instant::now();
    match case {
        "pingpong" | "burst" => {
            let method = if case == "burst" { "burst" } else { "start" };
            let args = vec![
                Value::Slot {
                    index: 0,
                    iface: None,
                },
                Value::Int(n),
            ];
            let handle = kernel
                .queue_message_with_slots(a, method, args, vec![b])
                .expect("queue");
            handle.wait(wait).expect("done");
        }
        _ => {
            let handles: Vec<_> = (0..n)
                .map(|_| kernel.queue_message(b, "ping", vec![]).expect("queue"))
                .collect();
            for handle in handles {
                handle.wait(wait).expect("pong");
            }
        }
    }
    kernel.run_until_idle(wait).expect("idle");
    let elapsed = start.elapsed();
    let cranks = kernel.crank_count().expect("count") - before;
    kernel.shutdown().expect("shutdown");
    (cranks, elapsed)
}

/// A `kB` field of /proc/self/status (`VmHWM`: peak RSS; `RssAnon`: heap and stacks now,
/// without the store's memory-mapped file).
fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `crank_loop confine-launch …`: this executable confines its workers (see
/// `kernel_config`). Returns only if it is not run as the launcher.
fn launch_if_asked() {
    let mut launcher_args = std::env::args_os().skip(1);
    if launcher_args
        .next()
        .is_some_and(|first| first == LAUNCHER_COMMAND)
    {
        // Returns only if the worker could not be confined (it said why on stderr).
        let _failed = launch_main(launcher_args);
        std::process::exit(i32::from(LAUNCH_FAILED));
    }
}

fn main() {
    launch_if_asked();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).is_some_and(|a| a == "worker") {
        ocap_vat::worker::serve_stdio(pingpong()).expect("serve");
        return;
    }
    if let Some(pos) = args.iter().position(|a| a == "--case") {
        let case = &args[pos + 1];
        if case == "lifecycle" {
            // First, before any subprocess vat: the peak RSS of 10 in-process vats.
            let dir = tempfile::tempdir().expect("tempdir");
            let group = args[pos + 3] == "group";
            let kernel = Kernel::open(dir.path(), kernel_config(group)).expect("open");
            let cranks = run_in_process_vats(&kernel, 1000);
            println!(
                "{case:<14} {:<6} 10 in-process vats, {cranks} cranks: peak RSS {:.1} MiB  anon {:.1} MiB",
                args[pos + 3],
                status_kib("VmHWM:") as f64 / 1024.0,
                status_kib("RssAnon:") as f64 / 1024.0,
            );
            kernel.shutdown().expect("shutdown");
            drop(dir);
            let [launch, shutdown, reopen] = run_lifecycle(group);
            println!(
                "{case:<14} {:<6} 10 subprocess vats: launch {:.1} ms, shutdown {:.1} ms, reopen {:.1} ms",
                args[pos + 3],
                launch.as_secs_f64() * 1e3,
                shutdown.as_secs_f64() * 1e3,
                reopen.as_secs_f64() * 1e3,
            );
            return;
        }
        let n: i64 = args[pos + 2].parse().expect("n");
        let group = args[pos + 3] == "group";
        let (cranks, elapsed) = run_case(case, n, group);
        let rate = cranks as f64 / elapsed.as_secs_f64();
        println!(
            "{case:<14} {:<6} n={n:<7} cranks={cranks:<7} {:>9.0} cranks/s  peak RSS {:>4} MiB  anon {:>4} MiB",
            args[pos + 3],
            rate,
            status_kib("VmHWM:") / 1024,
            status_kib("RssAnon:") / 1024,
        );
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let sizes: &[i64] = if quick { &[10_000] } else { &[10_000, 100_000] };
    let exe = std::env::current_exe().expect("exe");
    for mode in ["group", "every"] {
        let cases = [
            "pingpong",
            "burst",
            "host-burst",
            "pingpong-sub",
            "burst-sub",
            "host-burst-sub",
        ];
        for case in cases {
            for n in sizes {
                // Every-crank mode syncs each crank: keep it to the smaller size.
                if mode == "every" && *n > 10_000 {
                    continue;
                }
                let status = Command::new(&exe)
                    .args(["--case", case, &n.to_string(), mode])
                    .status()
                    .expect("run case");
                assert!(status.success(), "case {case} {n} {mode} failed");
            }
        }
        let status = Command::new(&exe)
            .args(["--case", "lifecycle", "10", mode])
            .status()
            .expect("run case");
        assert!(status.success(), "case lifecycle {mode} failed");
    }
}
