//! The kernel's side of confinement: which command a worker is started with for each mode
//! and facility, and the grants and filters the launcher derives. (The launcher's effect
//! on a worker is tested from outside, in `tests/it/confine.rs`.)

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::{ConfineError, ConfineMode, Confinement, Facilities, command, grants, seccomp};

fn confinement(mode: ConfineMode, withhold: Facilities) -> Confinement {
    Confinement {
        mode,
        launcher: Some(PathBuf::from("/opt/launcher")),
        withhold,
        ..Confinement::default()
    }
}

/// The command line for `/bin/sh worker x`, as text.
fn check(confinement: &Confinement) -> Result<String, ConfineError> {
    let args = [OsStr::new("worker"), OsStr::new("x")];
    let command = command(confinement, "x", Path::new("/bin/sh"), &args, true)?.command;
    let mut line = vec![command.get_program().to_string_lossy().into_owned()];
    line.extend(
        command
            .get_args()
            .map(|arg| arg.to_string_lossy().into_owned()),
    );
    Ok(line.join(" "))
}

#[test]
fn a_confined_worker_starts_through_the_launcher_with_its_policy() {
    let mut config = confinement(ConfineMode::Always, Facilities::NONE);
    config.read_paths.push(PathBuf::from("/opt/python"));
    if Facilities::probe() != Facilities::ALL {
        // This system cannot confine: the refusal is tested below.
        return;
    }
    assert_eq!(
        check(&config).unwrap(),
        "/opt/launcher confine-launch --memory 1073741824 --files 64 --read /opt/python \
         --notify -- /bin/sh worker x"
    );
}

#[test]
fn a_missing_facility_is_refused_unless_the_operator_allows_it() {
    let withhold = Facilities {
        landlock: true,
        seccomp: false,
    };
    match check(&confinement(ConfineMode::Always, withhold)) {
        Err(ConfineError::Unsupported { missing }) => assert_eq!(missing, "Landlock"),
        other => panic!("{other:?}"),
    }
    let line = check(&confinement(ConfineMode::WherePossible, Facilities::ALL)).unwrap();
    assert!(
        line.ends_with("--no-landlock --no-seccomp -- /bin/sh worker x"),
        "{line}"
    );
}

#[test]
fn trusted_code_and_mode_never_run_the_program_itself() {
    let mut trusted = confinement(ConfineMode::Always, Facilities::ALL);
    trusted.trusted.insert("x".to_owned());
    assert_eq!(check(&trusted).unwrap(), "/bin/sh worker x");
    let never = confinement(ConfineMode::Never, Facilities::ALL);
    assert_eq!(check(&never).unwrap(), "/bin/sh worker x");
}

#[test]
fn no_launcher_and_no_program_are_refused() {
    let mut config = confinement(ConfineMode::WherePossible, Facilities::NONE);
    config.launcher = None;
    assert!(matches!(check(&config), Err(ConfineError::NoLauncher)));
    let args = [OsStr::new("worker")];
    let missing = command(&config, "x", Path::new("/nonexistent/worker"), &args, true);
    assert!(matches!(missing, Err(ConfineError::Program(_))));
}

#[test]
fn a_script_is_granted_its_interpreter_and_an_executable_its_loader() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vat.sh");
    std::fs::write(&script, "#!/bin/sh -e\nexit 0\n").unwrap();
    let extra = [dir.path().to_path_buf()];
    let granted = grants::grants(&script, &extra);
    assert_eq!(
        granted.execute[..2],
        [script.clone(), PathBuf::from("/bin/sh")]
    );
    // `/bin/sh` is a dynamically linked ELF file here: its loader comes next.
    let loader = granted.execute.get(2).expect("the shell's loader");
    assert!(loader.to_string_lossy().contains("ld-"), "{loader:?}");
    assert!(granted.read.contains(&dir.path().to_path_buf()));
    assert!(
        !granted
            .read
            .iter()
            .any(|path| path.starts_with("/etc/passwd"))
    );
}

#[test]
fn a_script_run_by_env_is_granted_the_program_env_finds() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("vat.sh");
    std::fs::write(&script, "#!/usr/bin/env -S sh -e\nexit 0\n").unwrap();
    let granted = grants::grants(&script, &[]);
    assert!(granted.execute.contains(&PathBuf::from("/usr/bin/env")));
    assert!(
        granted.execute.contains(&PathBuf::from("/bin/sh")),
        "{granted:?}"
    );
}

#[test]
fn the_seccomp_filters_compile_for_this_architecture() {
    if seccomp::ARCH_SUPPORTED {
        for refusal in [
            seccomp::Refusal::Notify { files: true },
            seccomp::Refusal::Notify { files: false },
            seccomp::Refusal::Kill,
        ] {
            let [not_implemented, allowed] = seccomp::filters(refusal).unwrap();
            assert!(!not_implemented.is_empty());
            assert!(allowed.len() > not_implemented.len());
        }
    }
}

/// The allowlist refuses with the action asked for, and nowhere with the `errno` it was
/// compiled with.
#[test]
fn the_allowlist_refuses_by_notifying_or_killing() {
    if !seccomp::ARCH_SUPPORTED {
        return;
    }
    let returns = |refusal| {
        let [_, allowed] = seccomp::filters(refusal).unwrap();
        allowed
            .iter()
            .filter(|i| i.code == 0x06)
            .map(|i| i.k)
            .collect::<Vec<u32>>()
    };
    let notify = returns(seccomp::Refusal::Notify { files: true });
    assert!(notify.contains(&libc::SECCOMP_RET_USER_NOTIF));
    assert!(!notify.contains(&libc::SECCOMP_RET_ERRNO.wrapping_add(4095)));
    assert!(
        !notify
            .iter()
            .any(|k| k & 0xffff_0000 == libc::SECCOMP_RET_ERRNO)
    );
    let kill = returns(seccomp::Refusal::Kill);
    assert!(kill.contains(&libc::SECCOMP_RET_KILL_PROCESS));
    assert!(!kill.contains(&libc::SECCOMP_RET_USER_NOTIF));
}
