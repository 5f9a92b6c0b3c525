//! Vat workers (spec §12.3, §12.7, §21.20): the same scenarios run with every vat in the
//! kernel's process and in worker processes of their own, and the kernel survives workers
//! that die, break the frame protocol or hang.

use std::error::Error;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ocap_cli::{RunOptions, render, run_cluster};
use ocap_kernel::{Kernel, KernelError};
use ocap_tests::{TestKernel, WAIT, cluster, decode, has_ref_shaped_text, repo_root};
use ocap_types::{
    Delivery, DeliveryOutcome, FrameError, FrameReader, FrameWriter, KRef, KernelFrame, Message,
    Syscall, VRef, Value, VatId, VatLog, VatStart, WorkerFrame, WorkerKind,
};

const MODES: [WorkerKind; 2] = [WorkerKind::InProcess, WorkerKind::Subprocess];

/// Runs `scenario` on a fresh kernel in each mode; a failure's output names the mode.
fn in_both_modes(scenario: impl Fn(&TestKernel)) {
    for workers in MODES {
        eprintln!("--- workers: {workers:?}");
        let test = TestKernel::with_workers(workers);
        scenario(&test);
    }
}

fn rejection(err: KernelError) -> String {
    match err {
        KernelError::Rejected(rejection) => rejection.message().to_owned(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

fn roots(kernel: &Kernel) -> Vec<(VatId, KRef)> {
    kernel
        .vat_ids()
        .unwrap()
        .into_iter()
        .map(|vat| (vat, kernel.vat_root(vat).unwrap().unwrap()))
        .collect()
}

fn call(kernel: &Kernel, target: KRef, method: &str, args: Vec<Value>) -> Result<Value, String> {
    kernel
        .queue_message(target, method, args)
        .unwrap()
        .wait(WAIT)
        .map(|data| decode(&data))
        .map_err(rejection)
}

/// An error and its causes, joined with ": ".
fn chain(error: &dyn Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn process_exists(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn pid_of(kernel: &Kernel, root: KRef) -> i64 {
    call(kernel, root, "pid", vec![]).unwrap().as_int().unwrap()
}

// --- The same scenarios, both ways -------------------------------------------------------

#[test]
fn alice_bob_greet_each_other() {
    in_both_modes(|test| {
        let launched = test.launch(&cluster(&[("alice", "alice"), ("bob", "bob")]));
        assert_eq!(
            decode(&launched.bootstrap_result),
            Value::str("alice got: hello, alice, from bob")
        );
        let bob = roots(&test.kernel)[1].1;
        assert_eq!(
            call(&test.kernel, bob, "hello", vec![Value::str("carol")]),
            Ok(Value::str("hello, carol, from bob"))
        );
        test.kernel.run_until_idle(WAIT).unwrap();
    });
}

#[test]
fn vats_run_where_they_are_configured() {
    in_both_modes(|test| {
        test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
        let vats = roots(&test.kernel);
        let (a, b) = (
            pid_of(&test.kernel, vats[0].1),
            pid_of(&test.kernel, vats[1].1),
        );
        let kernel_pid = i64::from(std::process::id());
        match test.workers() {
            WorkerKind::InProcess => assert_eq!((a, b), (kernel_pid, kernel_pid)),
            WorkerKind::Subprocess => {
                assert!(a != kernel_pid && b != kernel_pid && a != b, "{a} {b}");
                assert!(process_exists(a) && process_exists(b));
            }
        }
    });
}

#[test]
fn aborted_delivery_does_not_undo_an_earlier_delivery() {
    in_both_modes(|test| {
        test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
        let vats = roots(&test.kernel);
        let (vat_a, a) = vats[0];
        let b = vats[1].1;
        let counted = test.kernel.queue_message(a, "count", vec![]).unwrap();
        let panicked = test.kernel.queue_message(b, "panic", vec![]).unwrap();
        assert_eq!(decode(&counted.wait(WAIT).unwrap()), Value::Int(1));
        let text = rejection(panicked.wait(WAIT).unwrap_err());
        assert_eq!(
            text,
            "[KERNEL:VAT_FATAL:INTERNAL_ERROR] vat panicked: probe was asked to panic"
        );
        let stored = test
            .kernel
            .inspect(move |s| s.vatstore_get(vat_a, "count"))
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(Value::from_cbor(&stored).unwrap(), Value::Int(1));
        assert_eq!(call(&test.kernel, a, "count", vec![]), Ok(Value::Int(2)));
    });
}

#[test]
fn a_vat_terminated_in_its_crank_rejects_its_result_and_the_others_go_on() {
    let cases = [
        (
            "panic",
            "[KERNEL:VAT_FATAL:INTERNAL_ERROR] vat panicked: probe was asked to panic",
        ),
        (
            "crash",
            "[KERNEL:VAT_FATAL:INTERNAL_ERROR] probe crashed on purpose",
        ),
        (
            "forge",
            "[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL] Syscall translation error: prepare to die",
        ),
        (
            "resolve_twice",
            "[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL] Syscall translation error: prepare to die",
        ),
        // A failure exit rejects with the vat's own reason.
        ("exit", "probe exits"),
    ];
    in_both_modes(|test| {
        test.launch(&cluster(&[
            ("a", "probe"),
            ("b", "probe"),
            ("c", "probe"),
            ("d", "probe"),
            ("e", "probe"),
            ("keep", "probe"),
        ]));
        let vats = roots(&test.kernel);
        let keep = vats[5];
        for ((method, expected), (vat, root)) in cases.iter().zip(&vats) {
            let args = if *method == "exit" {
                vec![Value::Bool(true)]
            } else {
                vec![]
            };
            assert_eq!(
                call(&test.kernel, *root, method, args),
                Err((*expected).to_owned()),
                "{method}"
            );
            test.kernel.run_until_idle(WAIT).unwrap();
            assert!(!test.kernel.vat_ids().unwrap().contains(vat), "{method}");
            assert_eq!(
                call(&test.kernel, keep.1, "echo", vec![Value::str("hi")]),
                Ok(Value::str("hi")),
                "{method}"
            );
        }
        assert_eq!(test.kernel.vat_ids().unwrap(), vec![keep.0]);
    });
}

#[test]
fn clean_exit_rejects_what_the_vat_decided() {
    in_both_modes(|test| {
        let launched = test.launch(&cluster(&[("a", "probe")]));
        assert_eq!(
            call(
                &test.kernel,
                launched.root,
                "exit",
                vec![Value::Bool(false)]
            ),
            Err("[KERNEL:VAT_TERMINATED] Vat termination: probe exits".to_owned())
        );
        assert!(test.kernel.vat_ids().unwrap().is_empty());
    });
}

#[test]
fn rejected_and_fulfilled_results_reach_the_host() {
    in_both_modes(|test| {
        let launched = test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
        let b = roots(&test.kernel)[1].1;
        let root = launched.root;
        assert_eq!(
            call(&test.kernel, root, "fail", vec![Value::str("boom")]),
            Err("boom".to_owned())
        );
        assert_eq!(
            call(&test.kernel, root, "echo", vec![Value::str("fine")]),
            Ok(Value::str("fine"))
        );
        // A result that travels through a second vat.
        let forwarded = test
            .kernel
            .queue_message_with_slots(
                root,
                "forward",
                vec![
                    Value::Slot {
                        index: 0,
                        iface: None,
                    },
                    Value::str("data"),
                ],
                vec![b],
            )
            .unwrap();
        assert_eq!(decode(&forwarded.wait(WAIT).unwrap()), Value::Int(42));
    });
}

#[test]
fn vat_logs_reach_the_kernel_log_sink() {
    for workers in MODES {
        let (tx, logs) = mpsc::channel();
        let mut config = ocap_tests::config();
        config.log_sink = Some(Arc::new(move |vat: VatId, log: &VatLog| {
            let _ = tx.send((vat, log.message.clone()));
        }));
        let test = TestKernel::open(config, workers);
        let launched = test.launch(&cluster(&[("a", "probe")]));
        assert_eq!(
            call(&test.kernel, launched.root, "sleep", vec![Value::Int(0)]),
            Ok(Value::str("slept"))
        );
        let vat = test.kernel.vat_ids().unwrap()[0];
        assert_eq!(
            logs.recv_timeout(WAIT).unwrap(),
            (vat, "sleeping".to_owned()),
            "{workers:?}"
        );
    }
}

// --- Subprocess workers only ----------------------------------------------------------------

#[test]
fn the_worker_program_is_the_one_cargo_built() {
    assert_eq!(
        ocap_tests::worker_program(),
        Path::new(env!("CARGO_BIN_EXE_ocap-test-worker"))
    );
}

#[test]
fn cluster_file_with_subprocess_vats_runs() {
    let options = RunOptions {
        worker_program: Some(ocap_tests::worker_program()),
        ..RunOptions::default()
    };
    let path = repo_root().join("examples/alice-bob-subprocess.json");
    let result = run_cluster(&path, &options).unwrap();
    assert_eq!(render(&result), "alice got: hello, alice, from bob");
}

/// A kernel with subprocess probes `a` and `b` whose log lines come out of `logs`.
fn subprocess_probes(
    configure: impl FnOnce(&mut ocap_kernel::KernelConfig),
) -> (TestKernel, mpsc::Receiver<(VatId, String)>) {
    let (tx, logs) = mpsc::channel();
    let mut config = ocap_tests::config();
    config.log_sink = Some(Arc::new(move |vat: VatId, log: &VatLog| {
        let _ = tx.send((vat, log.message.clone()));
    }));
    configure(&mut config);
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
    (test, logs)
}

/// Checks that `vat` is gone with `reason` in its rejections, and that the other vat
/// (`other`) still answers.
fn assert_terminated(test: &TestKernel, vat: VatId, text: &str, reason: &str, other: KRef) {
    assert_eq!(text, format!("[KERNEL:VAT_FATAL:INTERNAL_ERROR] {reason}"));
    assert!(!has_ref_shaped_text(text), "{text}");
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(!test.kernel.vat_ids().unwrap().contains(&vat));
    assert_eq!(
        call(&test.kernel, other, "echo", vec![Value::str("still here")]),
        Ok(Value::str("still here"))
    );
}

#[test]
fn kill_9_of_a_worker_mid_delivery_terminates_only_its_vat() {
    let (test, logs) = subprocess_probes(|_| {});
    let vats = roots(&test.kernel);
    let ((vat_a, a), (_, b)) = (vats[0], vats[1]);
    let pid = pid_of(&test.kernel, a);
    let sleeping = test
        .kernel
        .queue_message(a, "sleep", vec![Value::Int(60_000)])
        .unwrap();
    // The worker is inside the delivery once its log line has arrived.
    loop {
        let (vat, line) = logs.recv_timeout(WAIT).unwrap();
        if vat == vat_a && line == "sleeping" {
            break;
        }
    }
    let status = Command::new("sh")
        .args(["-c", "kill -9 \"$1\"", "sh", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let text = rejection(sleeping.wait(WAIT).unwrap_err());
    assert_terminated(&test, vat_a, &text, "vat worker exited (signal 9)", b);
    assert!(!process_exists(pid), "the worker was reaped");
}

#[test]
fn a_worker_over_the_delivery_time_limit_is_killed() {
    let (test, _logs) = subprocess_probes(|config| {
        config.workers.delivery_timeout = Duration::from_millis(1000);
    });
    let vats = roots(&test.kernel);
    let ((vat_a, a), (_, b)) = (vats[0], vats[1]);
    let pid = pid_of(&test.kernel, a);
    let started = Instant::now();
    let text = call(&test.kernel, a, "sleep", vec![Value::Int(60_000)]).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_terminated(
        &test,
        vat_a,
        &text,
        "vat worker exceeded the delivery time limit of 1000 ms",
        b,
    );
    assert!(!process_exists(pid), "the worker was killed and reaped");
}

#[test]
fn a_worker_that_breaks_the_protocol_is_terminated_with_a_clear_reason() {
    let cases = [
        ("bad-frame", "vat worker sent a malformed frame"),
        (
            "huge-frame",
            "vat worker sent an oversized frame (2147483647 bytes, limit 16777216)",
        ),
        ("exit-now", "vat worker exited (status 3)"),
    ];
    for (code, reason) in cases {
        let test = TestKernel::with_workers(WorkerKind::Subprocess);
        test.launch(&cluster(&[("keep", "probe"), ("bad", code)]));
        let vats = roots(&test.kernel);
        let ((_, keep), (vat_bad, bad)) = (vats[0], vats[1]);
        let text = call(&test.kernel, bad, "anything", vec![]).unwrap_err();
        assert_terminated(&test, vat_bad, &text, reason, keep);
    }
}

#[test]
fn launch_fails_clearly_without_a_usable_worker_program() {
    let cases = [
        (
            Some(repo_root().join("no-such-worker-program")),
            "probe",
            "cannot start the vat worker program",
        ),
        (
            None,
            "probe",
            "the vat is configured to run in a subprocess but no worker program is set",
        ),
        (
            Some(ocap_tests::worker_program()),
            "nope",
            "no vat named \"nope\" is registered",
        ),
    ];
    for (program, code, expected) in cases {
        let mut config = ocap_tests::config();
        config.workers.program = program.clone();
        let dir = tempfile::tempdir().unwrap();
        let kernel = Kernel::open(dir.path(), config).unwrap();
        let mut cluster = cluster(&[("a", code)]);
        cluster.vats.0[0].1.worker = WorkerKind::Subprocess;
        let err = kernel.launch_subcluster(&cluster).unwrap_err();
        let text = chain(&err);
        assert!(text.starts_with("Failed to launch vat v1 (a)"), "{text}");
        assert!(text.contains(expected), "{program:?}: {text}");
        assert!(kernel.vat_ids().unwrap().is_empty());
    }
}

#[test]
fn a_restarted_kernel_relaunches_subprocess_vats_with_their_state() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let mut config = ocap_tests::config();
        config.workers.program = Some(ocap_tests::worker_program());
        Kernel::open(dir.path(), config).unwrap()
    };
    let kernel = open();
    let mut config = cluster(&[("a", "probe")]);
    config.vats.0[0].1.worker = WorkerKind::Subprocess;
    let root = kernel.launch_subcluster(&config).unwrap().root;
    assert_eq!(call(&kernel, root, "count", vec![]), Ok(Value::Int(1)));
    assert_eq!(call(&kernel, root, "count", vec![]), Ok(Value::Int(2)));
    let old_pid = pid_of(&kernel, root);
    kernel.shutdown().unwrap();
    assert!(
        !process_exists(old_pid),
        "shutdown killed and reaped the worker"
    );
    let kernel = open();
    assert_eq!(call(&kernel, root, "count", vec![]), Ok(Value::Int(3)));
    let new_pid = pid_of(&kernel, root);
    assert_ne!(new_pid, old_pid);
    drop(kernel);
    assert!(
        !process_exists(new_pid),
        "dropping the kernel reaped the worker"
    );
}

/// Spec §21.20: a worker driven directly, without a kernel.
#[test]
fn worker_answers_frames_on_its_standard_streams() {
    let mut child = Command::new(ocap_tests::worker_program())
        .args(["worker", "probe"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = FrameWriter::new(child.stdin.take().unwrap());
    let message = Message::new(
        "echo",
        vec![Value::str("fizz")],
        vec![],
        Some("p-1".parse().unwrap()),
    );
    let frames = [
        KernelFrame::Ping,
        KernelFrame::Start(VatStart {
            name: "a".to_owned(),
            parameters: Value::Null,
            state: Vec::new(),
        }),
        KernelFrame::Deliver(Delivery::Message {
            target: VRef::ROOT,
            message,
        }),
        KernelFrame::Shutdown,
    ];
    for frame in &frames {
        input.write(frame).unwrap();
    }
    input.flush().unwrap();
    // Read on a thread so that a silent worker fails the test instead of hanging it.
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut reader = FrameReader::new(stdout);
        let mut answers = Vec::new();
        loop {
            match reader.read::<WorkerFrame>() {
                Ok(frame) => answers.push(frame),
                Err(FrameError::Eof) => break,
                Err(e) => panic!("{e}"),
            }
        }
        let _ = tx.send(answers);
    });
    let answers = rx.recv_timeout(WAIT).unwrap();
    let [
        WorkerFrame::Pong,
        WorkerFrame::Done(started),
        WorkerFrame::Syscall(Syscall::Resolve(resolutions)),
        WorkerFrame::Done(delivered),
    ] = answers.as_slice()
    else {
        panic!("{answers:?}");
    };
    assert_eq!(*started, DeliveryOutcome::default());
    assert_eq!(*delivered, DeliveryOutcome::default());
    assert_eq!(resolutions[0].promise, "p-1".parse::<VRef>().unwrap());
    assert_eq!(resolutions[0].data.decode().unwrap(), Value::str("fizz"));
    assert!(child.wait().unwrap().success(), "Shutdown ends the worker");
}
