//! `examples/counter-vat`, the template of a vat crate: built with cargo as its README
//! says (offline and `--locked`: its path dependencies and its own Cargo.lock, pinned to
//! the workspace's versions), run with `ocap run` on the template's own cluster file, then
//! relaunched from the store alone, and refused once rebuilt until upgraded.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ocap_command, ocap_ok, output_within_deadline, repo_root};

/// Builds the template once per target directory (later runs only check it is fresh),
/// in the dev profile, into a target directory of its own under the workspace's: the
/// template is a workspace of its own and must not wait on the workspace's build lock.
fn build_template() -> PathBuf {
    let target = Path::new(env!("CARGO_TARGET_TMPDIR")).join("counter-vat-template");
    let out = output_within_deadline(
        Command::new(env!("CARGO"))
            .args(["build", "--locked", "--offline", "--quiet"])
            .current_dir(repo_root().join("examples/counter-vat"))
            .env("CARGO_TARGET_DIR", &target),
    );
    assert!(
        out.status.success(),
        "building examples/counter-vat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    target.join("debug/counter-vat")
}

/// A copy of the template's folder as a user has it after `cargo build --release`: its
/// cluster file, and the executable where that file names it.
fn template_folder(executable: &Path) -> tempfile::TempDir {
    let folder = tempfile::tempdir().unwrap();
    let template = repo_root().join("examples/counter-vat");
    std::fs::copy(
        template.join("cluster.json"),
        folder.path().join("cluster.json"),
    )
    .unwrap();
    let release = folder.path().join("target/release");
    std::fs::create_dir_all(&release).unwrap();
    std::fs::copy(executable, release.join("counter-vat")).unwrap();
    folder
}

#[test]
fn the_template_vat_runs_with_ocap_and_relaunches_from_the_store() {
    let executable = build_template();
    let folder = template_folder(&executable);
    let cluster = folder.path().join("cluster.json");
    let store = folder.path().join("store");
    let store = store.to_str().unwrap();

    // The cluster names the executable relative to itself; run from elsewhere.
    let out = output_within_deadline(
        ocap_command()
            .args(["run", cluster.to_str().unwrap(), "--store", store])
            .current_dir(std::env::temp_dir()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "counter at 1, peer at 10"
    );

    // A later command opens the store's kernel, which relaunches both vats on its own;
    // the async method calls the peer (10 + 10) and adds its answer (1 + 20).
    let answer = ocap_ok(&["send", "ko1", "add_peer", "--wait", "--store", store]);
    assert_eq!(answer.lines().next(), Some("21"), "{answer}");

    // A rebuilt executable is refused (both vats stop; the store still opens) ...
    let exe = folder.path().join("target/release/counter-vat");
    let mut bytes = std::fs::read(&exe).unwrap();
    bytes.extend_from_slice(b"rebuilt");
    std::fs::remove_file(&exe).unwrap();
    std::fs::write(&exe, &bytes).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let vats = ocap_ok(&["vats", "--store", store]);
    assert!(
        vats.contains("changed since the vat was launched or last upgraded"),
        "{vats}"
    );
    // ... until the operator upgrades the vats to it; their state carries over.
    let exe = exe.to_str().unwrap();
    ocap_ok(&["upgrade", "v1", exe, "--store", store]);
    ocap_ok(&["upgrade", "v2", exe, "--store", store]);
    let answer = ocap_ok(&["send", "ko1", "count", "--wait", "--store", store]);
    assert_eq!(answer.lines().next(), Some("21"), "{answer}");
}
