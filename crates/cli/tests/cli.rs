//! The `ocap` binary, run as a user would.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `ocap`, with a default store of its own: every command's `--store` defaults to the
/// user's store, which these tests must neither touch nor share (each `run` locks it).
fn ocap_command() -> Command {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let data = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "cli-data-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&data);
    let mut command = Command::new(env!("CARGO_BIN_EXE_ocap"));
    command.env("XDG_DATA_HOME", data);
    command
}

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .and_then(Path::parent)
        .unwrap()
}

#[test]
fn run_prints_the_bootstrap_result() {
    let out = ocap_command()
        .arg("run")
        .arg(repo_root().join("examples/alice-bob.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "alice got: hello, alice, from bob"
    );
}

#[test]
fn malformed_config_fails_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.json");
    std::fs::write(
        &path,
        r#"{"bootstrap": "nobody", "vats": {"a": {"bundleName": "bob"}}}"#,
    )
    .unwrap();
    let out = ocap_command().arg("run").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("invalid bootstrap vat name nobody"),
        "{stderr}"
    );
}

/// Each cause in an error's chain is printed once: the message says what failed, the
/// "caused by" line why (it was `cannot read <path>: <io error>` and then the same io error
/// again as its cause).
#[test]
fn an_unreadable_cluster_file_names_its_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing.json");
    let out = ocap_command().arg("run").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let cause = std::fs::read(&path).map(drop).unwrap_err().to_string();
    assert!(
        stderr.contains(&format!("cannot read {}", path.display())),
        "{stderr}"
    );
    assert_eq!(stderr.matches(&cause).count(), 1, "{stderr}");
    assert!(stderr.contains(&format!("caused by: {cause}")), "{stderr}");
}

#[test]
fn unknown_vat_code_fails_the_launch_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("unknown.json");
    std::fs::write(
        &path,
        r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "nope"}}}"#,
    )
    .unwrap();
    let out = ocap_command().arg("run").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Failed to launch vat v1 (a)"), "{stderr}");
    assert!(
        stderr.contains("no vat named \"nope\" is registered"),
        "{stderr}"
    );
}

#[test]
fn run_works_with_subprocess_vats() {
    let out = ocap_command()
        .arg("run")
        .arg(repo_root().join("examples/alice-bob-subprocess.json"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "alice got: hello, alice, from bob"
    );
}

#[test]
fn worker_answers_ping_and_exits_when_its_input_ends() {
    use std::io::Write;
    let mut child = ocap_command()
        .args(["worker", "bob"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // "Ping" as a frame; closing stdin afterwards ends the worker.
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(&[0, 0, 0, 5, 0x64, b'P', b'i', b'n', b'g'])
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(out.stdout, [0, 0, 0, 5, 0x64, b'P', b'o', b'n', b'g']);
}

#[test]
fn a_vats_limits_come_from_its_cluster_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("limited.json");
    // Alice's bootstrap sends to bob, subscribes and answers: more than one syscall.
    std::fs::write(
        &path,
        r#"{"bootstrap": "alice",
            "vats": {"alice": {"bundleName": "alice", "limits": {"syscallsPerDelivery": 1}},
                     "bob": {"bundleName": "bob"}}}"#,
    )
    .unwrap();
    let out = ocap_command().arg("run").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("vat exceeded its limit of syscalls per delivery"),
        "{stderr}"
    );
    // An unknown limit is a config error that names it.
    std::fs::write(
        &path,
        r#"{"bootstrap": "bob", "vats": {"bob": {"bundleName": "bob", "limits": {"cpu": 1}}}}"#,
    )
    .unwrap();
    let out = ocap_command().arg("run").arg(&path).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("cpu"), "{stderr}");
}

/// Runs `ocap` with `args` and returns its exit code and stderr.
fn exit_code(args: &[&std::ffi::OsStr]) -> (Option<i32>, String) {
    let out = ocap_command().args(args).output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn exit_codes_sort_failures_by_class_and_help_lists_them() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let bad = write("bad.json", r#"{"bootstrap": "nobody", "vats": {}}"#);
    let unknown = write(
        "unknown.json",
        r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "nope"}}}"#,
    );
    // Bootstrap is refused: alice's first delivery exceeds her limit.
    let rejected = write(
        "rejected.json",
        r#"{"bootstrap": "alice",
            "vats": {"alice": {"bundleName": "alice", "limits": {"syscallsPerDelivery": 1}},
                     "bob": {"bundleName": "bob"}}}"#,
    );
    let run = |path: &Path| exit_code(&["run".as_ref(), path.as_os_str()]).0;
    assert_eq!(
        run(&bad),
        Some(1),
        "an invalid cluster file is a usage error"
    );
    assert_eq!(run(&dir.path().join("missing.json")), Some(1));
    assert_eq!(run(&unknown), Some(2), "a vat that cannot start");
    assert_eq!(run(&rejected), Some(2), "a rejected bootstrap");
    assert_eq!(
        exit_code(&["bogus".as_ref()]).0,
        Some(1),
        "an unknown command"
    );
    assert_eq!(exit_code(&["vats".as_ref(), "--code".as_ref()]).0, Some(0));

    let out = ocap_command().arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Exit codes:"), "{help}");
    assert!(help.contains("4  the store is damaged"), "{help}");
}
