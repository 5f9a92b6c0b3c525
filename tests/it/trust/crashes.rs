//! The kill sweep: a host is told only what a crash cannot lose (D22).

use super::*;

/// Kills per durability mode in the kill sweep: `OCAP_KILL_SWEEP` sets it (the slow run in
/// docs/trust.md uses 1000); 100 by default, so 200 in every run of the suite.
fn kill_sweep_kills() -> usize {
    std::env::var("OCAP_KILL_SWEEP")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100)
}

/// What an `ocap-test-kernel acks-…` process printed before it was killed: the last result
/// promise it was told was queued, and the last count it was told.
#[derive(Debug, Default)]
struct Seen {
    queued: Option<ocap_types::KPromiseId>,
    count: Option<i64>,
}

/// Runs the counting kernel process on `path` and kills it (SIGKILL) right after it reports
/// its `lines`-th line.
fn count_until_killed(path: &Path, group: bool, probe: KRef, lines: usize) -> Seen {
    let mode = if group { "acks-group" } else { "acks-every" };
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocap-test-kernel"))
        .arg(path)
        .arg(mode)
        .arg(probe.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, reports) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut seen = Seen::default();
    for _ in 0..lines {
        // The guard: a silent child fails the test instead of hanging it.
        let Ok(line) = reports.recv_timeout(WAIT) else {
            child.kill().unwrap();
            panic!("the counting kernel stopped reporting");
        };
        if let Some(kp) = line.strip_prefix("queued ") {
            seen.queued = Some(kp.parse().unwrap());
        } else if let Some(n) = line.strip_prefix("count ") {
            seen.count = Some(n.parse().unwrap());
        } else {
            child.kill().unwrap();
            panic!("the counting kernel said {line:?}");
        }
    }
    child.kill().unwrap();
    drop(reports);
    child.wait().unwrap();
    reader.join().unwrap();
    seen
}

/// Kills a kernel process that keeps counting, many times, and checks after every reopen
/// that every result and every accepted message it had told its host is in the store.
fn kill_sweep(group: bool, kills: usize) {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), config()).unwrap();
    let cluster = ocap_tests::with_workers(&cluster(&[("probe", "probe")]), WorkerKind::InProcess);
    let probe = kernel.launch_subcluster(&cluster).unwrap().root;
    let vat = kernel.vat_ids().unwrap()[0];
    kernel.shutdown().unwrap();
    let mut last = 0;
    for round in 0..kills {
        // Kill after 1 to 9 lines: after an acceptance or after a result, early or late.
        let seen = count_until_killed(dir.path(), group, probe, 1 + round % 9);
        let kernel = Kernel::open(dir.path(), config()).unwrap();
        let stored = kernel
            .inspect(move |s| s.vatstore_get(vat, "count"))
            .unwrap()
            .unwrap()
            .map_or(0, |bytes| {
                Value::from_cbor(&bytes).unwrap().as_int().unwrap()
            });
        if let Some(count) = seen.count {
            assert!(
                stored >= count,
                "round {round} (group {group}): the host saw count {count}, the store has {stored}"
            );
        }
        if let Some(promise) = seen.queued {
            let known = kernel
                .inspect(move |s| s.promise(promise))
                .unwrap()
                .unwrap();
            assert!(
                known.is_some(),
                "round {round} (group {group}): the host was told {promise} was queued; it is gone"
            );
        }
        assert!(stored >= last, "the count went back");
        last = stored;
        kernel.shutdown().unwrap();
    }
    assert!(last > 0, "the sweep never counted");
}

#[test]
fn a_host_never_sees_a_result_or_an_acceptance_that_a_crash_loses() {
    let kills = kill_sweep_kills();
    kill_sweep(false, kills);
    kill_sweep(true, kills);
}
