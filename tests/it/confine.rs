//! Confinement of worker processes (docs/confinement.md): a confined worker cannot read
//! outside its grant, write, open a socket, start a process or map more than its memory
//! limit, whatever its program (the `hostile` vat in `ocap-test-worker`, a shell script that
//! attacks before it speaks the protocol, a Python interpreter); the operator's opt-outs run
//! it unconfined; a system without Landlock or seccomp (simulated with
//! `Confinement::withhold`) makes a confined vat refuse to start with a typed error. What
//! a denial does to the vat (it ends it, with a fixed reason) is in `deny`. Every vat here
//! is a subprocess vat, in both modes of the suite: in-process vats are trusted code and
//! are not confined.

mod deny;

use std::error::Error;
use std::process::Command;

use ocap_kernel::{ConfineError, ConfineMode, Facilities, KRef, KernelConfig, KernelError};
use ocap_tests::{TestKernel, call, cluster, config, repo_root, worker_program};
use ocap_types::{Value, WorkerKind};

/// A kernel running one `hostile` vat in a worker, with `config`; the vat's root.
fn hostile(config: KernelConfig) -> (TestKernel, KRef) {
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    let mut cluster = cluster(&[("h", "hostile")]);
    cluster.vats.0[0].1.worker = WorkerKind::Subprocess;
    let root = test.launch(&cluster).root;
    (test, root)
}

fn attempt(test: &TestKernel, root: KRef, method: &str, arg: Value) -> String {
    match call(&test.kernel, root, method, vec![arg]) {
        Ok(Value::Str(text)) => text,
        other => panic!("{method}: {other:?}"),
    }
}

fn path(path: &std::path::Path) -> Value {
    Value::str(path.to_str().unwrap())
}

/// The typed confinement error in `error`'s causes.
fn confine_error(error: &KernelError) -> Option<&ConfineError> {
    let mut source: Option<&(dyn Error + 'static)> = Some(error);
    while let Some(cause) = source {
        if let Some(found) = cause.downcast_ref::<ConfineError>() {
            return Some(found);
        }
        source = cause.source();
    }
    None
}

/// The supervisor lets through the opens inside the grant however they are named: by the
/// path, relative to the working directory, through a symlink from outside the grant.
/// (Reading outside it ends the vat: `deny`.)
#[test]
fn a_confined_worker_reads_inside_its_grant_by_any_name() {
    let (test, root) = hostile(config());
    let program = worker_program().canonicalize().unwrap();
    assert_eq!(attempt(&test, root, "read", path(&program)), "ok");
    // The worker's working directory is the test's.
    let cwd = std::env::current_dir().unwrap();
    let up = "../".repeat(cwd.components().count().saturating_sub(1));
    let relative = format!("{up}{}", program.strip_prefix("/").unwrap().display());
    assert_eq!(attempt(&test, root, "read", Value::str(&relative)), "ok");
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join("link");
    std::os::unix::fs::symlink(&program, &link).unwrap();
    assert_eq!(attempt(&test, root, "read", path(&link)), "ok");
    // A library directory is granted whole.
    let library = ["/usr/lib", "/lib"]
        .iter()
        .filter_map(|dir| std::fs::read_dir(dir).ok())
        .flat_map(|entries| entries.flatten())
        .map(|entry| entry.path())
        .find(|path| path.is_file())
        .unwrap();
    assert_eq!(attempt(&test, root, "read", path(&library)), "ok");
    // The vat is still there.
    assert_eq!(attempt(&test, root, "alloc", Value::Int(1)), "ok");
}

#[test]
fn a_confined_worker_cannot_map_more_than_its_memory_limit() {
    let mut config = config();
    config.workers.confinement.memory_limit = 256 << 20;
    let (test, root) = hostile(config);
    assert_eq!(attempt(&test, root, "alloc", Value::Int(512)), "refused");
    assert_eq!(attempt(&test, root, "alloc", Value::Int(16)), "ok");
}

#[test]
fn a_confined_worker_has_only_its_standard_descriptors() {
    let (test, root) = hostile(config());
    assert_eq!(
        attempt(&test, root, "descriptors", Value::Undefined),
        "none"
    );
}

/// A descriptor the launcher's parent left open without close-on-exec (here: a shell's
/// `exec 5<`) is open in the launcher, and Landlock does not cover reading an open file:
/// the launcher must close it before the program runs.
#[test]
fn an_inherited_descriptor_does_not_reach_the_worker() {
    let launcher = worker_program();
    let launcher = launcher.to_str().unwrap();
    let read_fd_5 = "read -r line <&5 && echo leaked || echo closed";
    let run = |confined: bool| {
        let inner = if confined {
            format!(
                "{launcher} confine-launch --memory 1073741824 --files 64 -- /bin/sh -c '{read_fd_5}'"
            )
        } else {
            format!("/bin/sh -c '{read_fd_5}'")
        };
        let output = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec 5</etc/passwd; {inner}"))
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    assert_eq!(run(false).trim(), "leaked");
    assert_eq!(run(true).trim(), "closed");
}

/// Even running as root (which may raise a hard limit), a worker cannot raise its limits:
/// seccomp lets it read them only, and trying ends it (by `SIGSYS`, run by hand with no
/// kernel to hand a listener to).
#[test]
fn a_confined_worker_cannot_raise_its_limits() {
    let output = Command::new(worker_program())
        .args([
            "confine-launch",
            "--memory",
            "268435456",
            "--files",
            "64",
            "--",
        ])
        .args(["/bin/sh", "-c", "ulimit -v; ulimit -v 524288; echo raised"])
        .output()
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.split_whitespace().collect::<Vec<_>>(), ["262144"]);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(output.status.signal(), Some(31), "{:?}", output.status);
}

#[test]
fn a_trusted_vat_runs_unconfined() {
    let mut config = config();
    config
        .workers
        .confinement
        .trusted
        .insert("hostile".to_owned());
    let (test, root) = hostile(config);
    assert_eq!(
        attempt(&test, root, "read", Value::str("/etc/passwd")),
        "ok"
    );
    assert_eq!(attempt(&test, root, "spawn", Value::str("/bin/true")), "ok");
}

#[test]
fn the_operator_can_run_every_worker_unconfined() {
    let mut config = config();
    config.workers.confinement.mode = ConfineMode::Never;
    let (test, root) = hostile(config);
    assert_eq!(
        attempt(&test, root, "read", Value::str("/etc/passwd")),
        "ok"
    );
}

#[test]
fn without_landlock_a_confined_vat_refuses_to_start_with_a_typed_error() {
    let mut config = config();
    config.workers.confinement.withhold = Facilities {
        landlock: true,
        seccomp: false,
    };
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    let mut cluster = cluster(&[("h", "hostile")]);
    cluster.vats.0[0].1.worker = WorkerKind::Subprocess;
    let error = test.try_launch(&cluster).unwrap_err();
    assert!(
        matches!(
            confine_error(&error),
            Some(ConfineError::Unsupported {
                missing: "Landlock"
            })
        ),
        "{error:?}"
    );
    assert!(test.kernel.vat_ids().unwrap().is_empty());
}

#[test]
fn without_seccomp_a_confined_vat_refuses_to_start() {
    let mut config = config();
    config.workers.confinement.withhold = Facilities::ALL;
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    let mut cluster = cluster(&[("h", "hostile")]);
    cluster.vats.0[0].1.worker = WorkerKind::Subprocess;
    let error = test.try_launch(&cluster).unwrap_err();
    assert!(
        matches!(
            confine_error(&error),
            Some(ConfineError::Unsupported {
                missing: "Landlock and seccomp"
            })
        ),
        "{error:?}"
    );
}

#[test]
fn where_possible_a_vat_runs_with_the_layers_the_system_has() {
    let mut config = config();
    config.workers.confinement.mode = ConfineMode::WherePossible;
    config.workers.confinement.withhold = Facilities {
        landlock: true,
        seccomp: false,
    };
    let (test, root) = hostile(config);
    // No Landlock: files are open to it; seccomp still ends it for a socket.
    assert_eq!(
        attempt(&test, root, "read", Value::str("/etc/passwd")),
        "ok"
    );
    assert_eq!(
        call(&test.kernel, root, "connect", vec![Value::Undefined]),
        Err(
            "[KERNEL:VAT_FATAL:INTERNAL_ERROR] vat attempted a forbidden system operation"
                .to_owned()
        )
    );
}

#[test]
fn a_confined_vat_without_a_launcher_refuses_to_start() {
    let mut config = config();
    config.workers.confinement.launcher = None;
    config.workers.program = Some(worker_program());
    let kernel_dir = tempfile::tempdir().unwrap();
    let kernel = ocap_kernel::Kernel::open(kernel_dir.path(), config).unwrap();
    let mut cluster = cluster(&[("h", "hostile")]);
    cluster.vats.0[0].1.worker = WorkerKind::Subprocess;
    let error = kernel.launch_subcluster(&cluster).unwrap_err();
    assert!(
        matches!(confine_error(&error), Some(ConfineError::NoLauncher)),
        "{error:?}"
    );
}

/// The script tries to read `/etc/passwd`, open `/dev/null` for writing and run
/// `/bin/true` before anything else, exiting 10, 11 or 12 at the first that works.
fn attack_first(trusted: bool) -> String {
    let mut config = config();
    config.workers.program = Some(repo_root().join("tests/fixtures/confine/attack-first.sh"));
    if trusted {
        config.workers.confinement.trusted.insert("x".to_owned());
    }
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    let mut cluster = cluster(&[("x", "x")]);
    cluster.vats.0[0].1.worker = WorkerKind::Subprocess;
    ocap_tests::error_chain(&test.try_launch(&cluster).unwrap_err())
}

#[test]
fn a_shell_script_worker_is_confined_before_its_first_line() {
    let confined = attack_first(false);
    // Reading is refused (Landlock); opening for writing ends it.
    assert!(
        confined.contains("vat attempted a forbidden system operation"),
        "{confined}"
    );
    // The same script, trusted, reads the file at once: the refusals were confinement's.
    let trusted = attack_first(true);
    assert!(
        trusted.contains("vat worker exited (status 10)"),
        "{trusted}"
    );
}

#[test]
fn bin_sh_as_the_worker_program_is_confined_the_same_way() {
    let script =
        std::fs::read_to_string(repo_root().join("tests/fixtures/confine/attack-first.sh"))
            .unwrap();
    let output = Command::new(worker_program())
        .args([
            "confine-launch",
            "--memory",
            "1073741824",
            "--files",
            "64",
            "--",
        ])
        .args(["/bin/sh", "-c", &script])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Run by hand, the launcher has no kernel to hand a listener to: a refused call (the
    // open for writing) kills the shell by SIGSYS. The read before it was refused.
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        output.status.signal(),
        Some(31),
        "{:?}: {stderr}",
        output.status
    );
    assert!(
        stderr.to_lowercase().contains("permission denied"),
        "{stderr}"
    );
}

#[test]
fn a_python_interpreter_runs_confined_with_its_prefix_granted() {
    let Ok(output) = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable); print(sys.prefix)"])
        .output()
    else {
        eprintln!("python3 is not installed: the Python case is skipped");
        return;
    };
    let text = String::from_utf8(output.stdout).unwrap();
    let mut lines = text.lines();
    let (Some(python), Some(prefix)) = (lines.next(), lines.next()) else {
        eprintln!("python3 did not name itself: the Python case is skipped");
        return;
    };
    let script = "import json\n\
                  try:\n    open('/etc/passwd')\n    print('read')\n\
                  except PermissionError:\n    print('denied')\n";
    let output = Command::new(worker_program())
        .args(["confine-launch", "--memory", "1073741824", "--files", "64"])
        .args(["--read", prefix, "--", python, "-c", script])
        .env_clear()
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "denied", "{stderr}");
}

#[test]
fn a_script_run_by_env_python3_runs_confined_with_the_system_library() {
    if !["/bin/python3", "/usr/bin/python3"]
        .iter()
        .any(|path| std::path::Path::new(path).is_file())
    {
        eprintln!("no system python3 in /bin or /usr/bin: the env-python case is skipped");
        return;
    }
    let script = repo_root().join("tests/fixtures/confine/env-python.py");
    let output = Command::new(worker_program())
        .args([
            "confine-launch",
            "--memory",
            "1073741824",
            "--files",
            "64",
            "--",
        ])
        .arg(script)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        "\"denied\"",
        "{stderr}"
    );
}
