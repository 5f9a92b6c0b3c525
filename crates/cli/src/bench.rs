//! `ocap bench`: the project's published benchmark as a command. The cases of
//! `crates/kernel/benches/crank_loop.rs` (ping-pong, burst, host-burst) on the
//! `bench-pingpong` vat, with vats in the kernel's process and in worker processes, in
//! both durability modes: cranks per second, and for host-burst the acknowledgement
//! latency of a host message (`queue_message` until `ResultHandle::promise` returns, i.e.
//! until the message is durably queued).

#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use ocap_kernel::{
    ClusterConfig, Durability, Kernel, KernelConfig, KernelError, Value, VatConfig, VatLimits,
    WorkerKind,
};
use serde_json::{Value as Json, json};

use crate::{CliError, registry};

/// The vat every case runs (`ocap_example_vats`).
const VAT: &str = "bench-pingpong";
/// How long one case may wait for its answers.
const CASE_TIMEOUT: Duration = Duration::from_secs(3600);

/// What `ocap bench` runs.
#[derive(Debug, Clone, Default)]
pub struct BenchOptions {
    /// Small sizes (a quick look, not a measurement).
    pub quick: bool,
    /// The size of every case, overriding the defaults.
    pub n: Option<u64>,
    /// The program subprocess vats run in (`ocap` itself); `None` skips the worker cases.
    pub worker_program: Option<PathBuf>,
}

/// One case's outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchRow {
    /// `pingpong`, `burst` or `host-burst`.
    pub case: &'static str,
    /// `in-process` or `subprocess`.
    pub vats: &'static str,
    /// `group` or `every-crank`.
    pub durability: &'static str,
    /// Messages (round trips) in the case.
    pub n: u64,
    /// Cranks the kernel ran for it.
    pub cranks: u64,
    /// Wall-clock time.
    pub elapsed: Duration,
    /// For host-burst: acknowledgement latency percentiles p50 and p99.
    pub ack: Option<(Duration, Duration)>,
}

impl BenchRow {
    /// Cranks per second.
    pub fn cranks_per_sec(&self) -> f64 {
        self.cranks as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

const CASES: [&str; 3] = ["pingpong", "burst", "host-burst"];

/// Runs every case and returns their rows, in table order.
///
/// # Errors
/// [`CliError::TempDir`] or [`CliError::Kernel`] if a case's kernel fails.
pub fn run_bench(options: &BenchOptions) -> Result<Vec<BenchRow>, CliError> {
    let mut rows = Vec::new();
    let workers: &[WorkerKind] = if options.worker_program.is_some() {
        &[WorkerKind::InProcess, WorkerKind::Subprocess]
    } else {
        &[WorkerKind::InProcess]
    };
    for group in [true, false] {
        // Every-crank mode syncs each crank: a tenth of the size keeps it short.
        let n = options.n.unwrap_or(match (options.quick, group) {
            (false, true) => 10_000,
            (false, false) | (true, true) => 1_000,
            (true, false) => 100,
        });
        for &worker in workers {
            for case in CASES {
                rows.push(run_case(case, worker, group, n, options)?);
            }
        }
    }
    Ok(rows)
}

fn run_case(
    case: &'static str,
    worker: WorkerKind,
    group: bool,
    n: u64,
    options: &BenchOptions,
) -> Result<BenchRow, CliError> {
    let dir = tempfile::tempdir().map_err(CliError::TempDir)?;
    let mut config = KernelConfig::new(registry());
    config.durability = if group {
        Durability::GROUP
    } else {
        Durability::EveryCrank
    };
    config.workers.program.clone_from(&options.worker_program);
    // `ocap-launch` beside the worker program (`ocap`) confines it, or the program itself.
    config.workers.confinement.launcher =
        options.worker_program.as_deref().map(crate::launcher_for);
    let kernel = Kernel::open(dir.path(), config)?;
    let vat = VatConfig::named(VAT)
        .with_worker(worker)
        .with_limits(limits_for(n));
    let cluster = ClusterConfig::builder("a")
        .vat("a", vat.clone())
        .vat("b", vat)
        .build()
        .map_err(|e| CliError::Parse(e.to_string()))?;
    let launched = kernel.launch_subcluster(&cluster)?;
    let info = kernel
        .subcluster(launched.subcluster)?
        .and_then(|info| info.vat("b"));
    let b = match info {
        Some(vat) => kernel.vat_root(vat)?,
        None => None,
    }
    .ok_or_else(|| CliError::Protocol("the bench cluster has no vat b".to_owned()))?;
    let before = kernel.crank_count()?;
    let start = Instant::now();
    let count = i64::try_from(n).unwrap_or(i64::MAX);
    let ack = if case == "host-burst" {
        Some(host_burst(&kernel, b, n)?)
    } else {
        let method = if case == "burst" { "burst" } else { "start" };
        let peer = Value::Slot {
            index: 0,
            iface: None,
        };
        let args = vec![peer, Value::Int(count)];
        let handle = kernel.queue_message_with_slots(launched.root, method, args, vec![b])?;
        handle.wait(CASE_TIMEOUT)?;
        None
    };
    kernel.run_until_idle(CASE_TIMEOUT)?;
    let elapsed = start.elapsed();
    let cranks = kernel.crank_count()? - before;
    kernel.shutdown()?;
    Ok(BenchRow {
        case,
        vats: match worker {
            WorkerKind::Subprocess => "subprocess",
            _ => "in-process",
        },
        durability: if group { "group" } else { "every-crank" },
        n,
        cranks,
        elapsed,
        ack,
    })
}

/// The bench vats' limits for `n` messages: `burst(peer, n)` makes 2n syscalls (a send and
/// a subscribe each) in one delivery and has n messages queued at once, past the defaults
/// from n = 50 000 on.
fn limits_for(n: u64) -> VatLimits {
    let defaults = VatLimits::default();
    let syscalls = u32::try_from(n.saturating_mul(2).saturating_add(16)).unwrap_or(u32::MAX);
    defaults
        .with_syscalls_per_delivery(defaults.syscalls_per_delivery.max(syscalls))
        .with_queued_messages(defaults.queued_messages.max(n.saturating_add(16)))
}

/// Queues `n` host pings to `target`, then waits for each in order: each message's
/// acknowledgement latency is from its `queue_message` call until its `promise()` returns
/// (it is durably queued). Acceptance is in order, so waiting in order sees each one at
/// most a loop step late. Returns p50 and p99.
fn host_burst(
    kernel: &Kernel,
    target: ocap_kernel::KRef,
    n: u64,
) -> Result<(Duration, Duration), KernelError> {
    let mut queued = Vec::new();
    for _ in 0..n {
        let at = Instant::now();
        queued.push((at, kernel.queue_message(target, "ping", vec![])?));
    }
    let mut latencies = Vec::with_capacity(queued.len());
    for (at, handle) in &queued {
        handle.promise()?;
        latencies.push(at.elapsed());
    }
    for (_, handle) in queued {
        handle.wait(CASE_TIMEOUT)?;
    }
    latencies.sort_unstable();
    Ok((percentile(&latencies, 50), percentile(&latencies, 99)))
}

/// The `pct`-th percentile of sorted `values` (nearest rank); zero if empty.
fn percentile(values: &[Duration], pct: usize) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let rank = (values.len() * pct).div_ceil(100).max(1);
    values[rank.min(values.len()) - 1]
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

/// The rows as a table for people.
pub fn bench_table(rows: &[BenchRow]) -> String {
    let mut out = format!(
        "{:<11} {:<11} {:<12} {:>7} {:>8} {:>9} {:>10} {:>9} {:>9}\n",
        "case", "vats", "durability", "n", "cranks", "seconds", "cranks/s", "ack p50", "ack p99"
    );
    for row in rows {
        let (p50, p99) = row
            .ack
            .map_or(("-".to_owned(), "-".to_owned()), |(p50, p99)| {
                (
                    format!("{:.2}ms", millis(p50)),
                    format!("{:.2}ms", millis(p99)),
                )
            });
        let _ = writeln!(
            out,
            "{:<11} {:<11} {:<12} {:>7} {:>8} {:>9.3} {:>10.0} {:>9} {:>9}",
            row.case,
            row.vats,
            row.durability,
            row.n,
            row.cranks,
            row.elapsed.as_secs_f64(),
            row.cranks_per_sec(),
            p50,
            p99
        );
    }
    out
}

/// The rows as JSON for tools: `{"cpus": n, "results": [{case, vats, durability, n, cranks,
/// seconds, cranksPerSec, ackP50Ms, ackP99Ms}]}` (the latencies null but for host-burst).
pub fn bench_json(rows: &[BenchRow]) -> Json {
    let cpus = std::thread::available_parallelism().map_or(0, usize::from);
    let results: Vec<Json> = rows
        .iter()
        .map(|row| {
            json!({"case": row.case, "vats": row.vats, "durability": row.durability,
                   "n": row.n, "cranks": row.cranks, "seconds": row.elapsed.as_secs_f64(),
                   "cranksPerSec": row.cranks_per_sec(),
                   "ackP50Ms": row.ack.map(|(p50, _)| millis(p50)),
                   "ackP99Ms": row.ack.map(|(_, p99)| millis(p99))})
        })
        .collect();
    json!({"cpus": cpus, "results": results})
}
