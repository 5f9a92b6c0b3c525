//! `examples/python-vat`, a worker written from `docs/vat-protocol.md` alone in Python
//! (standard library only), run by `ocap` like any vat executable: its bootstrap sends to a
//! vat compiled into `ocap` and awaits the answer; its count survives a kernel reopen.
//! Skipped (and says so) where there is no `python3`.

use std::process::Command;

use super::{ocap_command, ocap_ok, output_within_deadline, repo_root};

fn python3_present() -> bool {
    Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|out| out.status.success())
}

#[test]
fn ocap_runs_the_python_vat() {
    if !python3_present() {
        println!("skipped: python3 is not installed, so the Python vat cannot run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let store = store.to_str().unwrap();
    let cluster = repo_root().join("examples/python-vat/cluster.json");
    let out = output_within_deadline(ocap_command().args([
        "run",
        cluster.to_str().unwrap(),
        "--store",
        store,
    ]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "python got: hello, python, from bob"
    );
    // Each command reopens the store's kernel, which relaunches the Python worker.
    for expected in ["1", "2"] {
        let answer = ocap_ok(&["send", "ko1", "increment", "--wait", "--store", store]);
        assert_eq!(answer.lines().next(), Some(expected), "{answer}");
    }
    let out = output_within_deadline(
        ocap_command().args(["send", "ko1", "nope", "--wait", "--store", store]),
    );
    assert_eq!(out.status.code(), Some(2), "a rejection");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no method nope"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
