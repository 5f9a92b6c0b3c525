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

/// Issue 11: the Python worker refuses a kernel of another protocol version: it announces
/// its own version in `Hello`, says why on stderr and exits non-zero, running nothing.
#[test]
fn the_python_vat_refuses_a_kernel_of_another_protocol_version() {
    if !python3_present() {
        println!("skipped: python3 is not installed, so the Python vat cannot run");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // {"Start": {"protocol": 2, "name": "x", "parameters": null, "state_entries": 0,
    // "state_bytes": 0}}
    let mut start = vec![0xa1, 0x65];
    start.extend(b"Start");
    start.extend([0xa5, 0x68]);
    start.extend(b"protocol\x02");
    start.extend(b"\x64name\x61x\x6aparameters\xf6");
    start.extend(b"\x6dstate_entries\x00\x6bstate_bytes\x00");
    let mut input = u32::try_from(start.len()).unwrap().to_be_bytes().to_vec();
    input.extend(start);
    let input_path = dir.path().join("start");
    std::fs::write(&input_path, input).unwrap();
    let vat = repo_root().join("examples/python-vat/vat.py");
    let out = output_within_deadline(
        Command::new("python3")
            .arg(vat)
            .args(["worker", "x"])
            .stdin(std::fs::File::open(&input_path).unwrap()),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the kernel speaks vat protocol version 2, this worker speaks version 1"),
        "{stderr}"
    );
    // {"Hello": {"protocol": 1}}, and nothing else.
    let mut hello = vec![0, 0, 0, 0x12, 0xa1, 0x65];
    hello.extend(b"Hello");
    hello.extend([0xa1, 0x68]);
    hello.extend(b"protocol\x01");
    assert_eq!(out.stdout, hello);
}
