//! Each denial ends the vat with a fixed reason (docs/confinement.md, "What ends a vat"):
//! the `hostile` vat resolves its result and flushes that resolution to the kernel, then
//! attacks. The call must be rejected with the fixed reason (so the resolution was rolled
//! back with the rest of the delivery), the vat must be gone, and a second vat must keep
//! running with its committed count.

use std::time::Duration;

use ocap_kernel::KernelConfig;
use ocap_tests::{TestKernel, WAIT, call, cluster, config, roots};
use ocap_types::{KRef, Value, VatId, WorkerKind};

const FORBIDDEN: &str = "vat attempted a forbidden system operation";
const OUT_OF_MEMORY: &str = "vat exceeded its memory limit";

/// A kernel with a `keep` probe that has counted once and a hostile vat, both in workers.
struct Hostile {
    test: TestKernel,
    keep: KRef,
    vat: VatId,
    root: KRef,
}

fn start(config: KernelConfig) -> Hostile {
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    test.launch(&cluster(&[("keep", "probe"), ("h", "hostile")]));
    let vats = roots(&test.kernel);
    let ((_, keep), (vat, root)) = (vats[0], vats[1]);
    assert_eq!(call(&test.kernel, keep, "count", vec![]), Ok(Value::Int(1)));
    Hostile {
        test,
        keep,
        vat,
        root,
    }
}

/// `attack(what)` ends the hostile vat with `reason`; its delivery is rolled back and the
/// other vat and its committed count live on.
#[track_caller]
fn assert_ends(config: KernelConfig, what: &str, reason: &str) {
    let hostile = start(config);
    let kernel = &hostile.test.kernel;
    let text = call(kernel, hostile.root, "attack", vec![Value::str(what)]).unwrap_err();
    assert_eq!(
        text,
        format!("[KERNEL:VAT_FATAL:INTERNAL_ERROR] {reason}"),
        "{what}"
    );
    kernel.run_until_idle(WAIT).unwrap();
    assert!(!kernel.vat_ids().unwrap().contains(&hostile.vat), "{what}");
    assert_eq!(
        call(kernel, hostile.keep, "count", vec![]),
        Ok(Value::Int(2)),
        "{what}"
    );
    hostile.test.assert_refcounts_consistent();
}

fn short_time_limit() -> KernelConfig {
    let mut config = config();
    config.workers.delivery_timeout = Duration::from_millis(1000);
    config
}

#[test]
fn connecting_to_localhost_ends_the_vat() {
    assert_ends(config(), "connect", FORBIDDEN);
}

#[test]
fn spawning_a_process_ends_the_vat() {
    assert_ends(config(), "spawn", FORBIDDEN);
}

#[test]
fn allocating_10_gib_ends_the_vat_over_its_memory_limit() {
    assert_ends(config(), "hog", OUT_OF_MEMORY);
}

#[test]
fn spinning_forever_ends_the_vat_at_the_time_limit() {
    assert_ends(
        short_time_limit(),
        "spin",
        "vat worker exceeded the delivery time limit of 1000 ms",
    );
}

/// The stderr thread drains the pipe a line at a time (at most 8 KiB each), so the worker
/// never blocks on it and the kernel holds no more than a line: the time limit ends it.
#[test]
fn writing_to_stderr_forever_ends_the_vat_at_the_time_limit() {
    assert_ends(
        short_time_limit(),
        "shout",
        "vat worker exceeded the delivery time limit of 1000 ms",
    );
}

#[test]
fn closing_the_output_mid_frame_ends_the_vat() {
    assert_ends(config(), "hangup", "vat worker closed its output");
}

#[test]
fn opening_a_file_for_writing_ends_the_vat() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("escaped");
    let hostile = start(config());
    let kernel = &hostile.test.kernel;
    let text = call(
        kernel,
        hostile.root,
        "write",
        vec![Value::str(target.to_str().unwrap())],
    )
    .unwrap_err();
    assert_eq!(
        text,
        format!("[KERNEL:VAT_FATAL:INTERNAL_ERROR] {FORBIDDEN}")
    );
    assert!(!target.exists());
    assert_eq!(
        call(kernel, hostile.keep, "count", vec![]),
        Ok(Value::Int(2))
    );
}

/// The allowlist hands every open and exec to the supervisor, which lets through those
/// inside the Landlock grant (`a_confined_worker_reads_inside_its_grant_by_any_name`): one
/// outside it ends the vat like any refused call.
#[test]
fn reading_a_file_outside_the_grant_ends_the_vat() {
    assert_ends(config(), "read", FORBIDDEN);
}

#[test]
fn executing_a_program_outside_the_grant_ends_the_vat() {
    assert_ends(config(), "exec", FORBIDDEN);
}

/// `attack-first` connects in `main`, before it serves the protocol: the start fails with
/// the fixed reason, and a vat launched before lives on.
#[test]
fn a_worker_whose_main_attacks_before_the_sdk_never_starts() {
    let run = |trusted: bool| {
        let mut config = config();
        if trusted {
            config
                .workers
                .confinement
                .trusted
                .insert("attack-first".to_owned());
        }
        let test = TestKernel::open(config, WorkerKind::Subprocess);
        let keep = test.launch(&cluster(&[("keep", "probe")])).root;
        let result = test.try_launch(&cluster(&[("x", "attack-first")]));
        assert_eq!(call(&test.kernel, keep, "count", vec![]), Ok(Value::Int(1)));
        result
            .map(drop)
            .map_err(|error| ocap_tests::error_chain(&error))
    };
    let confined = run(false).unwrap_err();
    assert!(confined.contains(FORBIDDEN), "{confined}");
    run(true).unwrap();
}

/// A launcher that does not hand over a listener as the kernel asked never gets to run
/// the program: the start fails, and the launcher is killed.
#[test]
fn a_launcher_that_does_not_hand_over_its_listener_fails_the_start() {
    let mut config = config();
    config.workers.confinement.launcher =
        Some(ocap_tests::repo_root().join("tests/fixtures/confine/mute-launcher.sh"));
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    let error = test.try_launch(&cluster(&[("h", "hostile")])).unwrap_err();
    let text = ocap_tests::error_chain(&error);
    assert!(
        text.contains("the confinement launcher said something else"),
        "{text}"
    );
    assert!(test.kernel.vat_ids().unwrap().is_empty());
}
