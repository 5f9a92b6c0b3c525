//! Cluster files whose vat is hostile, run by `ocap` (issue 11): the kernel confines the
//! program whatever it is. `/bin/sh` named as a bundle cannot read the script it is given
//! (trying ends it); a Python vat that connects to 127.0.0.1, or reads `/etc/passwd` after
//! reading files inside its grant by other names, ends with the fixed reason, and the
//! operator's log (`ocap`'s stderr) names the refused call or path.

use std::path::Path;

use super::{ocap_command, output_within_deadline};

/// Writes an executable script.
fn write_script(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// Runs `ocap run` on a cluster file of one vat named `x` running `bundle`, from `dir`;
/// its stdout and stderr, after checking it failed.
fn run_failing(dir: &Path, bundle: &str) -> (String, String) {
    let cluster = dir.join("cluster.json");
    std::fs::write(
        &cluster,
        format!(r#"{{"bootstrap": "x", "vats": {{"x": {{"bundlePath": "{bundle}"}}}}}}"#),
    )
    .unwrap();
    let store = dir.join("store");
    let out = output_within_deadline(
        ocap_command()
            .current_dir(dir)
            .arg("run")
            .arg(&cluster)
            .arg("--store")
            .arg(&store),
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    assert!(!out.status.success(), "{stdout}{stderr}");
    (stdout, stderr)
}

/// The kernel runs `/bin/sh worker x` in the cluster's folder: the shell may execute, but
/// not read the `worker` script there, which would otherwise write a file; trying ends it,
/// and the log names the file (relative, and where it leads).
#[test]
fn bin_sh_as_a_bundle_is_confined() {
    let dir = tempfile::tempdir().unwrap();
    let escaped = dir.path().join("escaped");
    std::fs::write(
        dir.path().join("worker"),
        format!("echo pwned > {}\n", escaped.display()),
    )
    .unwrap();
    let (_, stderr) = run_failing(dir.path(), "/bin/sh");
    assert!(
        stderr.contains("vat attempted a forbidden system operation"),
        "{stderr}"
    );
    let worker = dir.path().canonicalize().unwrap().join("worker");
    assert!(
        stderr.contains(&format!(
            "attempted a forbidden system operation: open worker ({})",
            worker.display()
        )),
        "{stderr}"
    );
    assert!(!escaped.exists(), "{stderr}");
}

/// True (and says so) if the hostile Python vats cannot run: their scripts name
/// `/usr/bin/python3` itself, which the confinement grants.
fn skipped_without_python() -> bool {
    let missing = !Path::new("/usr/bin/python3").is_file();
    if missing {
        println!("skipped: no /usr/bin/python3 for the hostile Python vat");
    }
    missing
}

#[test]
fn a_python_vat_that_connects_ends_and_the_log_names_the_call() {
    if skipped_without_python() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vat.py");
    write_script(
        &script,
        "#!/usr/bin/python3\nimport socket\nsocket.create_connection(('127.0.0.1', 9))\n",
    );
    let (_, stderr) = run_failing(dir.path(), "./vat.py");
    assert!(
        stderr.contains("vat attempted a forbidden system operation"),
        "{stderr}"
    );
    assert!(
        stderr.contains("attempted a forbidden system operation: socket ("),
        "{stderr}"
    );
}

/// The Python vat reads its own script by a relative name and through a symlink in its
/// folder, and a file of its standard library relative to an open directory: all inside
/// the grant, let through. Then it reads `/etc/passwd`, which ends it; the log names that
/// path (and no earlier one: those were let through).
#[test]
fn a_python_vat_that_reads_outside_its_grant_ends_and_the_log_names_the_path() {
    if skipped_without_python() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vat.py");
    write_script(
        &script,
        "#!/usr/bin/python3\n\
         import os\n\
         open('vat.py').read()\n\
         open('link.py').read()\n\
         lib = os.open(os.path.dirname(os.__file__), os.O_RDONLY | os.O_DIRECTORY)\n\
         os.close(os.open('os.py', os.O_RDONLY, dir_fd=lib))\n\
         open('/etc/passwd').read()\n",
    );
    std::os::unix::fs::symlink("vat.py", dir.path().join("link.py")).unwrap();
    let (_, stderr) = run_failing(dir.path(), "./vat.py");
    assert!(
        stderr.contains("vat attempted a forbidden system operation"),
        "{stderr}"
    );
    assert!(
        stderr.contains("attempted a forbidden system operation: open /etc/passwd"),
        "{stderr}"
    );
}
