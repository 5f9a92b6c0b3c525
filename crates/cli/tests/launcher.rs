//! `ocap-launch`, the confinement launcher installed beside `ocap`: it confines and runs
//! the program it is given exactly as `ocap confine-launch` does, and refuses any other
//! command line without running anything. (That `ocap` confines its workers through it:
//! `tests/own_vats`, whose `ocap` has it beside.)
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};

use ocap_kernel::{Facilities, LAUNCH_FAILED, LAUNCHER_COMMAND};

/// `ocap-launch confine-launch` with the kernel's default limits, running `sh -c script`
/// (a killed or hung launcher is not possible here: `sh` exits either way).
fn launch_sh(script: &str) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ocap-launch"))
        .args([LAUNCHER_COMMAND, "--memory", "1073741824", "--files", "64"])
        .args(["--", "/bin/sh", "-c", script])
        .output()
        .unwrap()
}

/// Whether this system confines at all (else the launcher refuses, tested elsewhere).
fn confinable() -> bool {
    let facilities = Facilities::probe();
    facilities.landlock && facilities.seccomp
}

#[test]
fn runs_the_program_confined() {
    if !confinable() {
        eprintln!("skipped: no Landlock or seccomp here");
        return;
    }
    let out = launch_sh("echo confined");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"confined\n");

    // Creating a file is refused (seccomp ends the process), and nothing is created.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("written");
    let out = launch_sh(&format!("echo x > {}", file.display()));
    assert!(!out.status.success(), "{out:?}");
    assert!(!file.exists());
}

#[test]
fn refuses_any_other_command_line() {
    for args in [&[][..], &["worker", "counter"][..], &[LAUNCHER_COMMAND][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_ocap-launch"))
            .args(args)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(i32::from(LAUNCH_FAILED)),
            "{args:?}"
        );
        assert!(out.stdout.is_empty(), "{args:?}: {out:?}");
    }
}
