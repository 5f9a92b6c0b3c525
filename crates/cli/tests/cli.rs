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

/// How long one `ocap` run in these tests may take before it is killed and the test fails.
const DEADLINE: std::time::Duration = std::time::Duration::from_secs(120);

/// Runs `command` with `stdin` as its standard input and pipes for its output, killing it
/// (and failing) past [`DEADLINE`].
fn output_within_deadline(mut command: Command, stdin: &[u8]) -> std::process::Output {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        // The command may exit without reading it all; that is its business.
        let _ = input.write_all(&stdin);
    });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            pipe.read_to_end(&mut bytes).unwrap();
            bytes
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("ocap did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    writer.join().unwrap();
    std::process::Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

fn alice_bob() -> Vec<u8> {
    std::fs::read(repo_root().join("examples/alice-bob.json")).unwrap()
}

#[test]
fn run_dash_reads_the_cluster_from_stdin() {
    let mut command = ocap_command();
    command.args(["run", "-"]);
    let out = output_within_deadline(command, &alice_bob());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "alice got: hello, alice, from bob"
    );
}

#[test]
fn run_dash_refuses_invalid_stdin_as_a_usage_error() {
    let mut command = ocap_command();
    command.args(["run", "-"]);
    let out = output_within_deadline(command, b"{ not json");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("invalid cluster config"), "{stderr}");
}

#[test]
fn run_json_prints_the_result_as_a_json_value() {
    let mut command = ocap_command();
    command.args(["run", "-", "--json"]);
    let out = output_within_deadline(command, &alice_bob());
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["body"], "alice got: hello, alice, from bob");
    assert_eq!(json["slots"], serde_json::json!([]));
}

/// A piped standard error gets plain text: no ANSI escapes, and (debug being on) a line
/// for each crank and each delivery, in the default in-process mode and with workers.
#[test]
fn debug_log_on_a_pipe_has_no_colour_and_shows_cranks_and_deliveries() {
    for example in [
        "examples/alice-bob.json",
        "examples/alice-bob-subprocess.json",
    ] {
        let mut command = ocap_command();
        command
            .args(["run", "-"])
            .env("OCAP_LOG", "debug")
            .env_remove("RUST_LOG");
        let cluster = std::fs::read(repo_root().join(example)).unwrap();
        let out = output_within_deadline(command, &cluster);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        assert!(
            !stderr.contains('\u{1b}'),
            "colour codes in a pipe: {stderr}"
        );
        assert!(stderr.contains("crank crank=1"), "{example}: {stderr}");
        assert!(stderr.contains("delivery vat=v1"), "{example}: {stderr}");
    }
}

#[test]
fn rust_log_is_honoured_when_ocap_log_is_unset() {
    let run = |ocap_log: Option<&str>, rust_log: &str| {
        let mut command = ocap_command();
        command.args(["run", "-"]).env("RUST_LOG", rust_log);
        match ocap_log {
            Some(level) => command.env("OCAP_LOG", level),
            None => command.env_remove("OCAP_LOG"),
        };
        let out = output_within_deadline(command, &alice_bob());
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(None, "debug").contains("crank crank=1"));
    // OCAP_LOG, when set, wins.
    assert!(!run(Some("error"), "debug").contains("crank crank=1"));
    assert!(run(None, "error").is_empty());
}

#[test]
fn bench_quick_json_reports_every_case_with_its_figures() {
    let mut command = ocap_command();
    command.args(["bench", "--quick", "--json", "--n", "5"]);
    let out = output_within_deadline(command, b"");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(json["cpus"].as_u64().unwrap() >= 1);
    let results = json["results"].as_array().unwrap();
    // 3 cases x in-process and subprocess x group and every-crank.
    assert_eq!(results.len(), 12, "{json}");
    for row in results {
        assert_eq!(row["n"], 5, "{row}");
        assert!(row["cranks"].as_u64().unwrap() >= 5, "{row}");
        assert!(row["seconds"].as_f64().unwrap() > 0.0, "{row}");
        assert!(row["cranksPerSec"].as_f64().unwrap() > 0.0, "{row}");
        let host = row["case"] == "host-burst";
        assert_eq!(row["ackP50Ms"].is_f64(), host, "{row}");
        assert_eq!(row["ackP99Ms"].is_f64(), host, "{row}");
    }
    let names = |field: &str| {
        let mut seen: Vec<String> = results
            .iter()
            .map(|r| r[field].as_str().unwrap().to_owned())
            .collect();
        seen.sort();
        seen.dedup();
        seen
    };
    assert_eq!(names("case"), ["burst", "host-burst", "pingpong"]);
    assert_eq!(names("vats"), ["in-process", "subprocess"]);
    assert_eq!(names("durability"), ["every-crank", "group"]);
}

/// `ocap run` with the operator's confinement flags on the subprocess example.
fn run_subprocess_example(flags: &[&str]) -> std::process::Output {
    ocap_command()
        .arg("run")
        .args(flags)
        .arg(repo_root().join("examples/alice-bob-subprocess.json"))
        .output()
        .unwrap()
}

#[test]
fn confinement_flags_reach_the_workers_and_only_the_operator_loosens_them() {
    // 1 MiB of address space is too little to load a worker: the flag is applied.
    let out = run_subprocess_example(&["--timeout", "20", "--vat-memory", "1"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Failed to launch vat v1 (alice)"),
        "{stderr}"
    );
    // Trusted vat code and `--unconfined` run without the limit.
    for flags in [
        &[
            "--vat-memory",
            "1",
            "--trust-vat",
            "alice",
            "--trust-vat",
            "bob",
        ][..],
        &["--vat-memory", "1", "--unconfined"][..],
        &["--confine-where-possible", "--vat-read", "/usr/share"][..],
    ] {
        let out = run_subprocess_example(flags);
        assert!(
            out.status.success(),
            "{flags:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "alice got: hello, alice, from bob"
        );
    }
}
