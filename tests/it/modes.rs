//! One suite, both worker kinds: this binary runs with vats where `OCAP_TEST_WORKERS` says
//! (in the kernel's process unless it says `subprocess`), and the test here runs the whole
//! binary once more, the other way. So `cargo test` runs every scenario with vats in
//! process and as subprocesses.
//!
//! A test that cannot run both ways says so where it chooses its worker kind; the
//! worker-failure tests in `workers` are subprocess-only by nature, and the second run
//! skips them with the `tidy` rules (see [`SKIPPED`]).

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ocap_tests::{
    TestKernel, WAIT, WORKERS_VAR, cluster, decode, default_workers, parse_workers, workers_name,
};
use ocap_types::WorkerKind;

/// How long the second run may take before it is killed and the test fails. The suite takes
/// seconds either way; `OCAP_SLOW_TESTS` runs more property cases.
const SUITE_LIMIT: Duration = Duration::from_secs(600);

/// This test, which the second run skips.
const SELF: &str = "modes::the_whole_suite_passes_with_the_other_worker_kind";

/// Modules whose tests do not depend on the default worker kind (they start no kernel, or
/// choose the worker kind themselves): the second run would repeat them as they are.
const SKIPPED: [&str; 3] = ["tidy::", "workers::", "crank_log::"];

/// Test threads of the second run. It shares two cores with the rest of this run, and its
/// subprocess vats are mostly waiting on each other.
const THREADS: &str = "2";

fn other(workers: WorkerKind) -> WorkerKind {
    match workers {
        WorkerKind::InProcess => WorkerKind::Subprocess,
        WorkerKind::Subprocess => WorkerKind::InProcess,
    }
}

/// Reads a child's output on a thread, so that a full pipe cannot stall it.
fn collect(mut stream: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error ends the output early; what came before is still worth showing.
        let _ = stream.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

/// Waits for `child` until `limit`; kills and reaps it when time is up (`None`).
fn wait_with_limit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The report of the failed run: from its `failures:` section on, or all of it.
fn failures(stdout: &str) -> &str {
    stdout
        .find("\nfailures:\n")
        .map_or(stdout, |at| &stdout[at + 1..])
}

#[test]
fn the_whole_suite_passes_with_the_other_worker_kind() {
    let workers = other(default_workers());
    let name = workers_name(workers);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--test-threads", THREADS, "--skip", SELF])
        .args(SKIPPED.iter().flat_map(|module| ["--skip", module]))
        .env(WORKERS_VAR, name)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    let status = wait_with_limit(&mut child, SUITE_LIMIT);
    let (stdout, stderr) = (stdout.join().unwrap(), stderr.join().unwrap());
    let Some(status) = status else {
        panic!(
            "the suite with {WORKERS_VAR}={name} did not finish within {SUITE_LIMIT:?}\n\
             {stdout}\n{stderr}"
        );
    };
    assert!(
        status.success(),
        "the suite with {WORKERS_VAR}={name} failed ({status}); to run it alone: \
         {WORKERS_VAR}={name} cargo test -p ocap-tests --test it\n{}\n{stderr}",
        failures(&stdout)
    );
    // It ran the scenarios: the harness reports them (and no filter dropped them all).
    let summary = stdout
        .lines()
        .find(|line| line.starts_with("test result: ok."))
        .unwrap_or_else(|| panic!("no summary in:\n{stdout}"));
    let passed: usize = summary
        .trim_start_matches("test result: ok. ")
        .split(' ')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{summary}"));
    assert!(passed >= 50, "{summary}");
    eprintln!("{WORKERS_VAR}={name}: {summary}");
}

/// The parameterisation itself: vats launched the ordinary way run where
/// `OCAP_TEST_WORKERS` says, each subprocess vat in a process of its own.
#[test]
fn vats_run_where_the_environment_says() {
    let test = TestKernel::new();
    assert_eq!(test.workers(), default_workers());
    test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
    let pids: Vec<i64> = test
        .kernel
        .vat_ids()
        .unwrap()
        .into_iter()
        .map(|vat| {
            let root = test.kernel.vat_root(vat).unwrap().unwrap();
            let answer = test.kernel.queue_message(root, "pid", vec![]).unwrap();
            decode(&answer.wait(WAIT).unwrap()).as_int().unwrap()
        })
        .collect();
    let [a, b] = pids[..] else { panic!("{pids:?}") };
    let kernel_pid = i64::from(std::process::id());
    match default_workers() {
        WorkerKind::InProcess => assert_eq!((a, b), (kernel_pid, kernel_pid)),
        WorkerKind::Subprocess => {
            assert!(a != kernel_pid && b != kernel_pid && a != b, "{a} {b}");
            for pid in [a, b] {
                assert!(Path::new(&format!("/proc/{pid}")).exists(), "{pid}");
            }
        }
    }
}

#[test]
fn worker_kind_names_read_back() {
    for workers in [WorkerKind::InProcess, WorkerKind::Subprocess] {
        assert_eq!(parse_workers(workers_name(workers)), Some(workers));
    }
    assert_eq!(parse_workers("in-process"), Some(WorkerKind::InProcess));
    assert_eq!(parse_workers("subprocesses"), None);
}
