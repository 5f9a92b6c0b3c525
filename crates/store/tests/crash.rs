//! Crash test: a child process (this test binary, re-executed) runs cranks in a loop, each
//! writing ten keys that must agree (all hold the crank number), a counter and one log key;
//! the parent SIGKILLs it at random moments, reopens the store and checks that the state is
//! exactly that after some whole crank, never older than what the child reported durable:
//! every ended crank in every-crank mode, every flushed crank in group mode.
//!
//! Runs as a `harness = false` test because it owns `main`: with `OCAP_STORE_CRASH_CHILD`
//! set it is the child. `OCAP_CRASH_SEED` picks the kill schedule (printed on every run).

// A harness-less test is not compiled with cfg(test), so clippy's test exemption does not
// apply; a failed unwrap here is a failed test, as anywhere else in tests.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ocap_store::{Durability, Store, StoreConfig};

const CHILD_ENV: &str = "OCAP_STORE_CRASH_CHILD";
const SEED_ENV: &str = "OCAP_CRASH_SEED";
const KILLS_PER_MODE: u32 = 40;
const N_KEYS: usize = 10;
/// In group mode the child flushes explicitly every this many cranks.
const FLUSH_EVERY: u64 = 37;
/// How long a child may take to end its first crank.
const CHILD_START_LIMIT: Duration = Duration::from_secs(30);
/// The whole test fails rather than hang past this.
const WATCHDOG: Duration = Duration::from_secs(180);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    EveryCrank,
    Group,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::EveryCrank => "every",
            Mode::Group => "group",
        }
    }

    fn config(self) -> StoreConfig {
        let durability = match self {
            Mode::EveryCrank => Durability::EveryCrank,
            Mode::Group => Durability::Group {
                max_cranks: 20,
                max_delay: Duration::from_millis(10),
            },
        };
        StoreConfig {
            durability,
            ..StoreConfig::default()
        }
    }
}

/// splitmix64: a seeded schedule without a dependency.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % bound
    }
}

fn counter(store: &Store) -> u64 {
    store
        .get(b"counter")
        .unwrap()
        .map_or(0, |v| String::from_utf8(v).unwrap().parse().unwrap())
}

/// The child: cranks until killed, reporting each ended (and, in group mode, flushed) crank.
fn child(mode: Mode, dir: &Path) -> ! {
    let mut store = Store::open_with(dir, &mode.config()).expect("child: open");
    let mut out = std::io::stdout().lock();
    let mut crank_no = counter(&store) + 1;
    loop {
        let value = crank_no.to_string();
        store.start_crank().unwrap();
        let start = store.savepoint().unwrap();
        // Writes that are rolled back must never be seen, crash or not.
        for key_idx in 0..N_KEYS / 2 {
            store
                .set(format!("k{key_idx}").as_bytes(), b"rolled back")
                .unwrap();
        }
        store.rollback_to(start).unwrap();
        let _start = store.savepoint().unwrap();
        for key_idx in 0..N_KEYS {
            store
                .set(format!("k{key_idx}").as_bytes(), value.as_bytes())
                .unwrap();
        }
        store
            .set(format!("log.{crank_no:08}").as_bytes(), value.as_bytes())
            .unwrap();
        store.set(b"counter", value.as_bytes()).unwrap();
        store.end_crank().unwrap();
        writeln!(out, "ended {crank_no}").unwrap();
        out.flush().unwrap();
        if mode == Mode::Group && crank_no.is_multiple_of(FLUSH_EVERY) {
            store.flush().unwrap();
            writeln!(out, "flushed {crank_no}").unwrap();
            out.flush().unwrap();
        }
        crank_no += 1;
    }
}

/// Reopens the store and checks it holds exactly the state after crank `counter`.
fn check_whole_crank(dir: &Path, mode: Mode) -> u64 {
    let store = Store::open_with(dir, &mode.config()).expect("reopen after kill");
    let crank_no = counter(&store);
    let expected = (crank_no > 0).then(|| crank_no.to_string().into_bytes());
    for key_idx in 0..N_KEYS {
        assert_eq!(
            store.get(format!("k{key_idx}").as_bytes()).unwrap(),
            expected,
            "{mode:?}: key k{key_idx} disagrees with counter {crank_no}"
        );
    }
    let log = store.scan_prefix(b"log.").unwrap();
    let want: Vec<_> = (1..=crank_no)
        .map(|n| {
            (
                format!("log.{n:08}").into_bytes(),
                n.to_string().into_bytes(),
            )
        })
        .collect();
    assert!(
        log == want,
        "{mode:?}: the log does not match counter {crank_no}"
    );
    crank_no
}

struct Report {
    last_ended: Option<u64>,
    last_flushed: Option<u64>,
}

/// Runs the child for a while, kills it, and returns what it reported.
/// With `wait_for_a_crank`, the random sleep starts once the child has ended a crank;
/// without, it starts at spawn, so some kills land while the child opens the store.
fn run_and_kill(mode: Mode, dir: &Path, wait_for_a_crank: bool, sleep: Duration) -> Report {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .env(CHILD_ENV, format!("{}:{}", mode.name(), dir.display()))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().unwrap();
    let (lines_tx, lines_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    if wait_for_a_crank {
        // A guard, not a schedule: a child that ends no crank within it has failed.
        match lines_rx.recv_timeout(CHILD_START_LIMIT) {
            Ok(line) => lines.push(line),
            Err(err) => {
                let _ = child.kill();
                panic!("{mode:?}: the child ended no crank within {CHILD_START_LIMIT:?}: {err}");
            }
        }
    }
    std::thread::sleep(sleep);
    if let Some(status) = child.try_wait().unwrap() {
        let mut stderr = String::new();
        std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
        panic!("{mode:?}: the child exited by itself ({status}): {stderr}");
    }
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reap the child");
    // The child is dead, so its stdout is closed and the reader ends.
    reader.join().expect("stdout reader");
    let mut report = Report {
        last_ended: None,
        last_flushed: None,
    };
    lines.extend(lines_rx.try_iter());
    for line in lines {
        let (kind, n) = line.split_once(' ').expect("child output: `<kind> <n>`");
        let n: u64 = n.parse().expect("child output: a crank number");
        match kind {
            "ended" => report.last_ended = Some(n),
            "flushed" => report.last_flushed = Some(n),
            other => panic!("unexpected child output {other:?}"),
        }
    }
    report
}

fn run_mode(mode: Mode, rng: &mut Rng) -> (u32, u64) {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open_with(dir.path(), &mode.config()).unwrap());
    let mut floor = 0; // the state seen after the previous kill: durable, never to be lost
    let mut n_kills_mid_run = 0;
    for _ in 0..KILLS_PER_MODE {
        let wait_for_a_crank = rng.below(4) != 0;
        let sleep = Duration::from_millis(rng.below(30));
        let report = run_and_kill(mode, dir.path(), wait_for_a_crank, sleep);
        let crank_no = check_whole_crank(dir.path(), mode);
        let durable = match mode {
            Mode::EveryCrank => report.last_ended,
            Mode::Group => report.last_flushed,
        };
        let durable = durable.unwrap_or(0).max(floor);
        assert!(
            crank_no >= durable,
            "{mode:?}: state is crank {crank_no}, but crank {durable} was reported durable"
        );
        let newest = report.last_ended.unwrap_or(floor);
        assert!(
            crank_no <= newest + 1,
            "{mode:?}: state is crank {crank_no}, but the child only ended {newest}"
        );
        if report.last_ended.is_some() {
            n_kills_mid_run += 1;
        }
        floor = crank_no;
    }
    (n_kills_mid_run, floor)
}

fn main() {
    if let Some(spec) = std::env::var_os(CHILD_ENV) {
        let spec = spec.into_string().expect("child spec is UTF-8");
        let (mode, dir) = spec.split_once(':').expect("child spec: <mode>:<dir>");
        let mode = if mode == Mode::Group.name() {
            Mode::Group
        } else {
            Mode::EveryCrank
        };
        child(mode, Path::new(dir));
    }
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        eprintln!("crash test: watchdog fired after {WATCHDOG:?}");
        std::process::exit(2);
    });
    let seed = std::env::var(SEED_ENV)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x0cab_5eed);
    println!("crash test: {SEED_ENV}={seed}");
    let started = Instant::now();
    let mut rng = Rng(seed);
    for mode in [Mode::EveryCrank, Mode::Group] {
        let (n_mid_run, final_crank) = run_mode(mode, &mut rng);
        println!(
            "crash test: {mode:?}: {KILLS_PER_MODE} kills ({n_mid_run} after cranks had ended), state consistent every time, reached crank {final_crank}"
        );
        assert!(
            n_mid_run >= KILLS_PER_MODE / 2,
            // Three kills in four wait for a crank first (seeded), so this holds unless the
            // schedule or the child is broken.
            "{mode:?}: too few kills landed while cranks were running"
        );
    }
    println!("crash test: ok in {:?}", started.elapsed());
}
