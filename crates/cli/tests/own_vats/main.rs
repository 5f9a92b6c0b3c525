//! Vats of one's own, run by the stock `ocap` binary (issue 11): the template crate
//! `examples/counter-vat`, built as a user builds it, and a worker in another language
//! (`examples/python-vat`), each driven end to end through `ocap`.
#![allow(clippy::unwrap_used)]

mod hostile;
mod python;
mod template;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The longest a command of these tests may take before it is killed (a hang guard; the
/// template's first build is the slow one).
const DEADLINE: Duration = Duration::from_secs(900);

/// `ocap`, with a default store of its own (never the user's).
fn ocap_command() -> Command {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "own-vats-data-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&data);
    let mut command = Command::new(env!("CARGO_BIN_EXE_ocap"));
    command.env("XDG_DATA_HOME", data);
    command
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf()
}

/// Runs `command` to its end, killing it after [`DEADLINE`].
fn output_within_deadline(command: &mut Command) -> Output {
    let mut child: Child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + DEADLINE;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > until {
            child.kill().unwrap();
            panic!("{command:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Runs `ocap ARGS`, asserting it succeeds; its standard output.
fn ocap_ok(args: &[&str]) -> String {
    let out = output_within_deadline(ocap_command().args(args));
    assert!(
        out.status.success(),
        "ocap {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
