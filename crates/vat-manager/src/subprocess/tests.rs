//! `SubprocessRuntime` against shell-script workers that fail in exact ways. The scripts
//! are all written before any is run, so no script is executed while another thread of
//! this test still holds it open for writing.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ocap_types::{
    ByteBuf, Delivery, DeliveryOutcome, FrameWriter, MAX_FRAME_LEN, Syscall, Value, VatHost, VatId,
    VatLog, VatRuntime, VatStart, WorkerFrame, encode_frame,
};

use super::{SubprocessRuntime, WorkerConfig};
use crate::confine::{ConfineMode, Confinement};
use crate::error::VatError;

struct NoHost;

impl VatHost for NoHost {
    fn syscall(&mut self, syscall: Syscall) {
        panic!("unexpected syscall {syscall:?}");
    }
    fn log(&mut self, _: VatLog) {}
}

/// `printf` text of a `Hello` frame of this kernel's version, of a `Done` frame with an
/// empty outcome, and of a `Pong` frame.
const HELLO: &str = "\\000\\000\\000\\022\\241eHello\\241hprotocol\\001";
const DONE: &str =
    "\\000\\000\\000\\051\\241dDone\\242jcheckpoint\\242dsets\\200gdeletes\\200eerror\\366";
const PONG: &str = "\\000\\000\\000\\005dPong";

fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn start_with(program: &Path, timeout: Duration) -> (SubprocessRuntime, DeliveryOutcome) {
    let config = WorkerConfig {
        program: Some(program.to_path_buf()),
        delivery_timeout: timeout,
        confinement: unconfined(),
    };
    let mut runtime = SubprocessRuntime::spawn(&config, VatId(1), "x").unwrap();
    let outcome = runtime.start(start_frame(), &mut NoHost);
    (runtime, outcome)
}

/// These workers are shell scripts that run `sleep` and `head`: they test the protocol, not
/// confinement (`tests/it/confine.rs` does), so they run unconfined.
fn unconfined() -> Confinement {
    Confinement {
        mode: ConfineMode::Never,
        ..Confinement::default()
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn failing_workers_give_fixed_reasons_and_are_reaped() {
    let dir = tempfile::tempdir().unwrap();
    let exits = script(dir.path(), "exits", "exit 7");
    let closes = script(dir.path(), "closes", "exec 1>&-\nexec sleep 30");
    let hangs = script(dir.path(), "hangs", "exec sleep 30");
    // Both wait for the kernel's first frame before they answer.
    let pongs = script(
        dir.path(),
        "pongs",
        &format!("head -c 4 >/dev/null\nprintf '{HELLO}{PONG}'\nexec sleep 30"),
    );
    let chatty = script(
        dir.path(),
        "chatty",
        &format!("head -c 4 >/dev/null\nprintf '{HELLO}{DONE}{PONG}'\nexec sleep 30"),
    );
    let long = Duration::from_secs(20);
    let cases = [
        (&exits, long, "vat worker exited (status 7)"),
        (&closes, long, "vat worker closed its output"),
        (
            &hangs,
            Duration::from_millis(100),
            "vat worker exceeded the delivery time limit of 100 ms",
        ),
        (&pongs, long, "vat worker sent an unexpected frame"),
    ];
    for (program, timeout, reason) in cases {
        let started = Instant::now();
        let (mut runtime, outcome) = start_with(program, timeout);
        assert_eq!(outcome, DeliveryOutcome::failed(reason));
        assert!(started.elapsed() < Duration::from_secs(10), "{reason}");
        let pid = runtime.pid();
        assert!(!alive(pid), "{reason}: killed and reaped at once");
        // Every later call fails the same way, without waiting.
        let again = runtime.deliver(Delivery::BringOutYourDead, &mut NoHost);
        assert_eq!(again, DeliveryOutcome::failed(reason));
    }
    // A frame after `Done` is found before the next delivery is sent.
    let (mut runtime, outcome) = start_with(&chatty, long);
    assert_eq!(outcome, DeliveryOutcome::default());
    assert_eq!(
        runtime.deliver(Delivery::BringOutYourDead, &mut NoHost),
        DeliveryOutcome::failed("vat worker sent a frame outside a delivery")
    );
    assert!(!alive(runtime.pid()));
    // A healthy-looking worker is killed and reaped when its runtime is dropped.
    let config = WorkerConfig {
        program: Some(hangs),
        delivery_timeout: long,
        confinement: unconfined(),
    };
    let runtime = SubprocessRuntime::spawn(&config, VatId(2), "x").unwrap();
    let pid = runtime.pid();
    assert!(alive(pid));
    drop(runtime);
    assert!(!alive(pid), "dropped: killed and reaped");
}

/// A worker of another protocol version (or of none: an older one) fails its start with a
/// reason naming both versions, is reaped, and says which version it spoke.
#[test]
fn a_worker_of_another_protocol_version_fails_its_start() {
    let dir = tempfile::tempdir().unwrap();
    let hello_2 =
        printf_text(&encode_frame(&WorkerFrame::Hello(ocap_types::Hello { protocol: 2 })).unwrap());
    let newer = script(
        dir.path(),
        "newer",
        &format!("head -c 4 >/dev/null\nprintf '{hello_2}'\nexit 1"),
    );
    // A worker from before versions answers the start with `Done` alone.
    let older = script(
        dir.path(),
        "older",
        &format!("head -c 4 >/dev/null\nprintf '{DONE}'\nexec sleep 30"),
    );
    let cases = [
        (
            &newer,
            2,
            "vat worker speaks protocol version 2, this kernel speaks 1",
        ),
        (
            &older,
            0,
            "vat worker speaks protocol version 0, this kernel speaks 1",
        ),
    ];
    for (program, version, reason) in cases {
        let (runtime, outcome) = start_with(program, Duration::from_secs(20));
        assert_eq!(outcome, DeliveryOutcome::failed(reason));
        assert_eq!(runtime.protocol_mismatch(), Some(version));
        assert!(!alive(runtime.pid()), "{reason}: killed and reaped");
    }
}

#[test]
fn spawn_without_a_usable_program_is_a_start_error() {
    let cases = [
        (None, "no worker program is set"),
        (
            Some(PathBuf::from("/nonexistent/ocap-worker")),
            "cannot start the vat worker program",
        ),
    ];
    for (program, expected) in cases {
        let config = WorkerConfig {
            program,
            confinement: unconfined(),
            ..WorkerConfig::default()
        };
        match SubprocessRuntime::spawn(&config, VatId(3), "x") {
            Err(VatError::Start { vat, message }) => {
                assert_eq!(vat, VatId(3));
                assert!(message.contains(expected), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn default_time_limit_is_thirty_seconds() {
    assert_eq!(
        WorkerConfig::default().delivery_timeout,
        Duration::from_secs(30)
    );
    assert_eq!(WorkerConfig::default().program, None);
}

/// `printf` text of `bytes`, in octal escapes.
fn printf_text(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:03o}")).collect()
}

fn start_frame() -> VatStart {
    VatStart {
        name: "x".to_owned(),
        parameters: Value::Null,
        state: Vec::new(),
    }
}

#[test]
fn a_worker_that_exits_while_its_child_holds_its_output_is_reported_as_exited() {
    let dir = tempfile::tempdir().unwrap();
    // The background `sleep` inherits the worker's output and outlives the time limit.
    let exits = script(dir.path(), "exits", "sleep 6 &\nexit 5");
    let started = Instant::now();
    let (runtime, outcome) = start_with(&exits, Duration::from_secs(3));
    assert_eq!(
        outcome,
        DeliveryOutcome::failed("vat worker exited (status 5)")
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(!alive(runtime.pid()));
}

#[test]
fn a_time_limit_of_duration_max_is_no_limit() {
    let dir = tempfile::tempdir().unwrap();
    let answers = script(
        dir.path(),
        "answers",
        &format!("head -c 4 >/dev/null\nprintf '{HELLO}{DONE}'\nexec sleep 30"),
    );
    let (runtime, outcome) = start_with(&answers, Duration::MAX);
    assert_eq!(outcome, DeliveryOutcome::default());
    assert!(alive(runtime.pid()));
}

#[test]
fn a_delivery_error_from_the_worker_is_replaced_by_a_fixed_reason() {
    let dir = tempfile::tempdir().unwrap();
    let mut start = FrameWriter::new(Vec::new());
    start.write_start(&start_frame()).unwrap();
    let start_len = start.get_mut().len();
    let failed = encode_frame(&WorkerFrame::Done(DeliveryOutcome::failed(
        "ko1 is at /etc/passwd",
    )))
    .unwrap();
    // Answers the start, then waits for the delivery and reports the error.
    let leaky = script(
        dir.path(),
        "leaky",
        &format!(
            "head -c {start_len} >/dev/null\nprintf '{HELLO}{DONE}'\nhead -c 4 >/dev/null\n\
             printf '{}'\nexec sleep 30",
            printf_text(&failed)
        ),
    );
    let (mut runtime, outcome) = start_with(&leaky, Duration::from_secs(20));
    assert_eq!(outcome, DeliveryOutcome::default());
    let delivered = runtime.deliver(Delivery::BringOutYourDead, &mut NoHost);
    assert_eq!(
        delivered,
        DeliveryOutcome::failed("vat worker reported a delivery error")
    );
}

#[test]
fn a_vat_store_entry_too_large_for_a_frame_fails_the_start_with_a_fixed_reason() {
    let dir = tempfile::tempdir().unwrap();
    // Reads its input until the kernel is done with it, keeping its output open.
    let counts = script(dir.path(), "counts", "wc -c > /dev/null\nexec sleep 30");
    let config = WorkerConfig {
        program: Some(counts),
        delivery_timeout: Duration::from_secs(20),
        confinement: unconfined(),
    };
    let mut runtime = SubprocessRuntime::spawn(&config, VatId(4), "x").unwrap();
    // Only a vat that once ran in process with a larger value limit can have one.
    let mut start = start_frame();
    start.state = vec![("k".to_owned(), ByteBuf(vec![0; MAX_FRAME_LEN]))];
    let outcome = runtime.start(start, &mut NoHost);
    assert_eq!(
        outcome,
        DeliveryOutcome::failed("the vat store holds an entry over the frame size limit")
    );
    assert!(!alive(runtime.pid()));
    // That no byte of such a start is written is the frame writer's own test
    // (`ocap_types` frame tests: an entry over the limit writes nothing).
}

/// A worker process started for `prespawn` whose start never comes (the launch failed
/// before it) is killed and reaped when dropped, not left behind.
#[test]
fn a_worker_begun_and_dropped_unfinished_is_killed_and_reaped() {
    let config = WorkerConfig {
        program: Some(PathBuf::from("/bin/sleep")),
        delivery_timeout: Duration::from_secs(5),
        confinement: unconfined(),
    };
    let sleep = Path::new("/bin/sleep");
    let begun = SubprocessRuntime::begin_program(&config, VatId(1), "x", sleep, &["30"]).unwrap();
    let pid = begun.child.0.as_ref().unwrap().id();
    let proc = PathBuf::from(format!("/proc/{pid}"));
    assert!(proc.exists());
    drop(begun);
    assert!(!proc.exists(), "the process is killed and reaped");
}
