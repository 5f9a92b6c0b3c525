//! The supervisor's judgement, on calls "made" by this test process: the path is read from
//! its own memory through `/proc/<pid>/mem`, as the supervisor reads a worker's.

use std::ffi::CString;
use std::path::{Path, PathBuf};

use super::{Verdict, Watched, judge};
use crate::confine::seccomp::Notification;

/// A program in a temporary directory, with a library directory beside it granted.
struct Setup {
    dir: tempfile::TempDir,
    watched: Watched,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let program = dir.path().join("program");
    std::fs::write(&program, "not a program").unwrap();
    let library = dir.path().join("library");
    std::fs::create_dir(&library).unwrap();
    std::fs::write(library.join("module"), "").unwrap();
    std::fs::write(dir.path().join("secret"), "").unwrap();
    let watched = Watched::new(&program, &[library]);
    Setup { dir, watched }
}

/// The verdict on `nr` with `path` (and `flags` for an open) made by this process.
fn verdict(watched: &Watched, nr: libc::c_long, dirfd: i32, path: &Path, flags: i32) -> Verdict {
    let text = CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    let pointer = text.as_ptr() as u64;
    let dirfd = u64::from(u32::from_ne_bytes(dirfd.to_ne_bytes()));
    let flags = u64::from(u32::from_ne_bytes(flags.to_ne_bytes()));
    let args = match nr {
        libc::SYS_openat => [dirfd, pointer, flags, 0, 0, 0],
        _ => [pointer, 0, 0, 0, 0, 0],
    };
    let call = Notification {
        id: 0,
        tid: std::process::id(),
        nr,
        args,
    };
    judge(&call, std::process::id(), Some(watched))
}

fn open(watched: &Watched, path: &Path) -> Verdict {
    verdict(
        watched,
        libc::SYS_openat,
        libc::AT_FDCWD,
        path,
        libc::O_RDONLY,
    )
}

#[test]
fn opens_inside_the_grant_by_any_name_are_let_through() {
    let Setup { dir, watched } = setup();
    let root = dir.path();
    assert_eq!(open(&watched, &root.join("program")), Verdict::LetThrough);
    assert_eq!(
        open(&watched, &root.join("library/module")),
        Verdict::LetThrough
    );
    assert_eq!(
        open(&watched, &root.join("library/../program")),
        Verdict::LetThrough
    );
    let link = root.join("link");
    std::os::unix::fs::symlink(root.join("library/module"), &link).unwrap();
    assert_eq!(open(&watched, &link), Verdict::LetThrough);
    // Relative to an open directory.
    let library = std::fs::File::open(root.join("library")).unwrap();
    use std::os::fd::AsRawFd;
    let relative = verdict(
        &watched,
        libc::SYS_openat,
        library.as_raw_fd(),
        Path::new("module"),
        libc::O_RDONLY,
    );
    assert_eq!(relative, Verdict::LetThrough);
    // What does not exist is Landlock's (or the file system's) to refuse.
    assert_eq!(open(&watched, &root.join("missing")), Verdict::LetThrough);
}

#[test]
fn opens_and_execs_outside_the_grant_are_forbidden_and_named() {
    let Setup { dir, watched } = setup();
    let secret = dir.path().canonicalize().unwrap().join("secret");
    assert_eq!(
        open(&watched, &secret),
        Verdict::Forbidden(format!("open {}", secret.display()))
    );
    // Through a symlink and `..`: named as given, and where it leads.
    let sneaky = dir.path().join("library/../secret");
    assert_eq!(
        open(&watched, &sneaky),
        Verdict::Forbidden(format!("open {} ({})", sneaky.display(), secret.display()))
    );
    // The library directory may be read, not executed from.
    let module = dir.path().join("library/module");
    assert!(matches!(
        verdict(&watched, libc::SYS_execve, 0, &module, 0),
        Verdict::Forbidden(what) if what.starts_with("exec ")
    ));
    let program = dir.path().join("program");
    assert_eq!(
        verdict(&watched, libc::SYS_execve, 0, &program, 0),
        Verdict::LetThrough
    );
    // Another process's files, but not its own.
    assert!(matches!(
        open(&watched, Path::new("/proc/1/environ")),
        Verdict::Forbidden(_)
    ));
    assert_eq!(
        open(&watched, Path::new("/proc/self/maps")),
        Verdict::LetThrough
    );
}

#[test]
fn writing_is_forbidden_and_other_calls_are_named() {
    let Setup { dir, watched } = setup();
    let program = dir.path().join("program");
    let flags = libc::O_WRONLY | libc::O_CREAT;
    assert!(matches!(
        verdict(&watched, libc::SYS_openat, libc::AT_FDCWD, &program, flags),
        Verdict::Forbidden(what) if what.starts_with("openat (") && what.contains("for writing")
    ));
    assert_eq!(
        verdict(&watched, libc::SYS_socket, 0, &PathBuf::new(), 0),
        Verdict::Forbidden(format!("socket ({})", libc::SYS_socket))
    );
}

/// `/dev/fd/N` names the caller's descriptor N; the supervisor runs in the kernel's process,
/// where the same name is the kernel's descriptor, so such names are left to Landlock
/// rather than judged (a vat reopening its own pipe must not be killed for a file the
/// kernel has open). Here the "vat" holds a file outside the grant on that descriptor.
#[test]
fn names_that_mean_the_caller_itself_are_not_resolved_in_the_kernel() {
    let Setup { dir, watched } = setup();
    let secret = std::fs::File::open(dir.path().join("secret")).unwrap();
    use std::os::fd::AsRawFd;
    let fd = secret.as_raw_fd();
    assert_eq!(
        open(&watched, &dir.path().join("secret")),
        Verdict::Forbidden(format!("open {}", dir.path().join("secret").display()))
    );
    for name in [
        format!("/dev/fd/{fd}"),
        format!("/proc/self/fd/{fd}"),
        format!("/proc/self/../self/fd/{fd}"),
        "/dev/stdin".to_owned(),
    ] {
        assert_eq!(
            open(&watched, Path::new(&name)),
            Verdict::LetThrough,
            "{name}"
        );
    }
}
