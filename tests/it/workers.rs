//! Vat workers (spec §12.3, §12.7, §21.20): the kernel survives workers that die, break the
//! frame protocol or hang, and a worker answers frames without a kernel.
//!
//! These tests are subprocess-only by nature and choose their worker kind themselves, so
//! the `modes` test does not run this module a second time. The scenarios themselves run
//! with both worker kinds through `modes` (see `ocap_tests::default_workers`).

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ocap_kernel::Kernel;
use ocap_tests::{
    TestKernel, WAIT, call, cluster, has_ref_shaped_text, rejection, repo_root, roots,
};
use ocap_types::{
    Delivery, DeliveryOutcome, FrameError, FrameReader, FrameWriter, KRef, KernelFrame, Message,
    StartHeader, Syscall, VRef, Value, VatId, VatLog, WorkerFrame, WorkerKind,
};

fn process_exists(pid: i64) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

fn pid_of(kernel: &Kernel, root: KRef) -> i64 {
    call(kernel, root, "pid", vec![]).unwrap().as_int().unwrap()
}

#[test]
fn the_worker_program_is_the_one_cargo_built() {
    assert_eq!(
        ocap_tests::worker_program(),
        Path::new(env!("CARGO_BIN_EXE_ocap-test-worker"))
    );
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
    test.assert_refcounts_consistent();
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
    test.assert_refcounts_consistent();
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
        test.assert_refcounts_consistent();
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
        let text = ocap_tests::error_chain(&err);
        assert!(text.starts_with("Failed to launch vat v1 (a)"), "{text}");
        assert!(text.contains(expected), "{program:?}: {text}");
        assert!(kernel.vat_ids().unwrap().is_empty());
    }
}

/// Issue 11: a worker built against another protocol version is refused with a typed
/// error naming both versions, and the launch fails as a whole.
#[test]
fn a_worker_of_another_protocol_version_fails_the_launch_with_both_versions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let hello: String =
        ocap_types::encode_frame(&WorkerFrame::Hello(ocap_types::Hello { protocol: 9 }))
            .unwrap()
            .iter()
            .map(|b| format!("\\{b:03o}"))
            .collect();
    let worker = dir.path().join("worker-v9");
    std::fs::write(
        &worker,
        format!("#!/bin/sh\nhead -c 4 >/dev/null\nprintf '{hello}'\nexit 1\n"),
    )
    .unwrap();
    std::fs::set_permissions(&worker, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut config = ocap_tests::config();
    config.workers.program = Some(worker);
    // A shell script: this tests the protocol, not confinement.
    config.workers.confinement.mode = ocap_kernel::ConfineMode::Never;
    let store = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(store.path(), config).unwrap();
    let mut cluster = cluster(&[("a", "probe"), ("b", "probe")]);
    cluster.vats.0[1].1.worker = WorkerKind::Subprocess;
    let err = kernel.launch_subcluster(&cluster).unwrap_err();
    let ocap_kernel::KernelError::Vat(ocap_vat_manager::VatError::Launch { cause, .. }) = &err
    else {
        panic!("{err:?}");
    };
    assert!(
        matches!(
            **cause,
            ocap_vat_manager::VatError::ProtocolVersion {
                worker: 9,
                kernel: 1,
                ..
            }
        ),
        "{cause:?}"
    );
    let text = ocap_tests::error_chain(&err);
    assert!(
        text.contains("vat worker speaks protocol version 9, this kernel speaks 1"),
        "{text}"
    );
    assert!(kernel.vat_ids().unwrap().is_empty(), "nothing launched");
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
        KernelFrame::Start(StartHeader {
            protocol: 1,
            name: "a".to_owned(),
            parameters: Value::Null,
            state_entries: 0,
            state_bytes: 0,
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
        WorkerFrame::Hello(hello),
        WorkerFrame::Done(started),
        WorkerFrame::Syscall(Syscall::Resolve(resolutions)),
        WorkerFrame::Done(delivered),
    ] = answers.as_slice()
    else {
        panic!("{answers:?}");
    };
    assert_eq!(hello.protocol, ocap_types::PROTOCOL_VERSION);
    assert_eq!(*started, DeliveryOutcome::default());
    assert_eq!(*delivered, DeliveryOutcome::default());
    assert_eq!(resolutions[0].promise, "p-1".parse::<VRef>().unwrap());
    assert_eq!(resolutions[0].data.decode().unwrap(), Value::str("fizz"));
    assert!(child.wait().unwrap().success(), "Shutdown ends the worker");
}
