//! The supervisor's judgement of an `open`, `openat` or `execve` a confined worker's
//! allowlist handed it (docs/confinement.md, "Opens and execs"): inside the Landlock grant
//! the call is let through (and Landlock still decides it), outside it the vat ends.
//!
//! The judgement only adds "end the vat on the attempt"; Landlock stays the enforcement.
//! So it errs towards letting through: a path it cannot read or resolve (it does not
//! exist, the thread is gone, the memory is unreadable) is let through, and Landlock
//! refuses it if it must. A thread of the vat that changes the path after it was read
//! gets at most Landlock's `EACCES`. What must not happen is ending a vat for an open
//! Landlock allows: the path is resolved as the kernel resolves it (relative to the
//! thread's working directory or the `dirfd`, symlinks followed), and compared with the
//! grants resolved the same way, and, where the names differ (a bind mount), by the
//! identity (device and inode) of the file and its directories.

use std::ffi::OsString;
use std::fs::File;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use super::seccomp::{Notification, WRITE_FLAGS, syscall_name};

/// The longest path read from the worker's memory (`PATH_MAX`).
const MAX_PATH: usize = 4096;

/// Files outside the grant that the C library opens on its own and goes on without (its
/// locale alias table, for Python's `setlocale`; the local time zone, for `localtime`):
/// opening one of these (by this name) is let through, and Landlock refuses it as before.
/// Not files a vat could learn a secret from if they were readable; they are not.
const PROBES: &[&str] = &[
    "/usr/share/locale/locale.alias",
    "/etc/locale.alias",
    "/etc/localtime",
];

/// Directories beneath which the same holds (the time zone files `TZ` names).
const PROBE_DIRECTORIES: &[&str] = &["/usr/share/zoneinfo"];

/// A worker's grants, resolved as Landlock resolved them (`grants.rs` decides them).
#[derive(Debug, Default)]
pub(crate) struct Watched {
    /// Files it may execute (and read).
    execute: Vec<PathBuf>,
    /// Files it may read, and directories beneath which it may read.
    read: Vec<PathBuf>,
    /// The device and inode of each of `execute`.
    execute_ids: Vec<(u64, u64)>,
    /// The device and inode of each of `read` and `execute` (what may be read).
    read_ids: Vec<(u64, u64)>,
}

impl Watched {
    /// The grants of a worker running `program` with the operator's `extra` read paths.
    pub(crate) fn new(program: &Path, extra: &[PathBuf]) -> Watched {
        let grants = super::grants::grants(program, extra);
        let resolve = |paths: &[PathBuf]| -> Vec<PathBuf> {
            paths
                .iter()
                .filter_map(|path| std::fs::canonicalize(path).ok())
                .collect()
        };
        let execute = resolve(&grants.execute);
        let read = resolve(&grants.read);
        let ids = |paths: &[PathBuf]| -> Vec<(u64, u64)> {
            paths.iter().filter_map(|path| identity(path)).collect()
        };
        let execute_ids = ids(&execute);
        let mut read_ids = ids(&read);
        read_ids.extend_from_slice(&execute_ids);
        Watched {
            execute,
            read,
            execute_ids,
            read_ids,
        }
    }

    /// Whether Landlock lets the file at `path` (resolved) be read.
    fn may_read(&self, path: &Path) -> bool {
        self.read.iter().any(|granted| path.starts_with(granted))
            || self.execute.iter().any(|granted| path == granted)
            || path
                .ancestors()
                .filter_map(identity)
                .any(|id| self.read_ids.contains(&id))
    }

    /// Whether Landlock lets the file at `path` (resolved) be executed.
    fn may_execute(&self, path: &Path) -> bool {
        self.execute.iter().any(|granted| path == granted)
            || identity(path).is_some_and(|id| self.execute_ids.contains(&id))
    }
}

/// What the supervisor does with a call handed to it.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Let it run (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`); Landlock still applies.
    LetThrough,
    /// End the vat; the string names the call for the operator's log (never for the vat).
    Forbidden(String),
}

/// The verdict on `call`, made by a thread of the worker process `pid`. Only an open
/// without a write flag and an `execve` can be let through, and only with `watched` (the
/// worker's grants, where Landlock enforces them); anything else is forbidden.
pub(crate) fn judge(call: &Notification, pid: u32, watched: Option<&Watched>) -> Verdict {
    let named = || match syscall_name(call.nr) {
        Some(name) => format!("{name} ({})", call.nr),
        None => format!("system call {}", call.nr),
    };
    let [a0, a1, a2, ..] = call.args;
    // (dirfd, path pointer, open flags or None for an exec)
    let (dirfd, pointer, flags) = match call.nr {
        libc::SYS_openat => (dirfd_arg(a0), a1, Some(a2)),
        #[cfg(target_arch = "x86_64")]
        libc::SYS_open => (libc::AT_FDCWD, a0, Some(a1)),
        libc::SYS_execve => (libc::AT_FDCWD, a0, None),
        _ => return Verdict::Forbidden(named()),
    };
    let path = read_path(call.tid, pointer);
    let shown = path.as_ref().map_or_else(
        || "(unreadable path)".to_owned(),
        |path| path.to_string_lossy().escape_debug().to_string(),
    );
    // Only the low 32 bits are the `int` flags.
    let flags = flags.map(|flags| flags & 0xffff_ffff);
    if flags.is_some_and(|flags| flags & WRITE_FLAGS != 0) {
        return Verdict::Forbidden(format!("{} for writing {shown}", named()));
    }
    let Some(watched) = watched else {
        return Verdict::LetThrough;
    };
    // `O_PATH` reads nothing, and Landlock does not restrict it. `O_DIRECTORY` opens only
    // a directory (a file fails with `ENOTDIR`), whose names are no more than `stat`
    // shows; Landlock refuses listing one outside the grant (Python lists the script's).
    let seeing = (libc::O_PATH | libc::O_DIRECTORY) as u64;
    if flags.is_some_and(|flags| flags & seeing != 0) {
        return Verdict::LetThrough;
    }
    let Some(path) = path.map(PathBuf::from) else {
        return Verdict::LetThrough;
    };
    let Some(lexical) = absolute(&path, call.tid, dirfd) else {
        return Verdict::LetThrough;
    };
    // Judged before resolving, which would make `/proc/self` the kernel's own; not with a
    // `..` in it, which resolving takes care of.
    let plain = !lexical.components().any(|c| c == Component::ParentDir);
    if plain && flags.is_some() && probe(&lexical) {
        return Verdict::LetThrough;
    }
    let verb = if flags.is_some() { "open" } else { "exec" };
    if let Some(own) = introspection(&lexical, pid).filter(|_| plain) {
        return if own {
            Verdict::LetThrough
        } else {
            Verdict::Forbidden(format!("{verb} {shown}"))
        };
    }
    // Links the kernel resolves per process (`/dev/fd/3` is the caller's descriptor 3):
    // resolved here they would name the kernel's own descriptors and /proc entry, and kill
    // a vat for what the kernel holds open. They reach only the vat's own; Landlock judges.
    if SELF_LINKS.iter().any(|link| lexical.starts_with(link)) {
        return Verdict::LetThrough;
    }
    // Not there (or not reachable by us): Landlock refuses it or the call fails anyway.
    let Ok(resolved) = std::fs::canonicalize(&lexical) else {
        return Verdict::LetThrough;
    };
    // Resolving went through `/proc/self` by another way (`..`, a system link such as
    // `/etc/mtab`), which here is the kernel's: the same as above.
    if resolved.starts_with(Path::new("/proc").join(std::process::id().to_string())) {
        return Verdict::LetThrough;
    }
    let inside = match flags {
        Some(_) => introspection(&resolved, pid).unwrap_or(false) || watched.may_read(&resolved),
        None => watched.may_execute(&resolved),
    };
    if inside {
        return Verdict::LetThrough;
    }
    let resolved_shown = resolved.to_string_lossy().escape_debug().to_string();
    if resolved_shown == shown {
        Verdict::Forbidden(format!("{verb} {shown}"))
    } else {
        Verdict::Forbidden(format!("{verb} {shown} ({resolved_shown})"))
    }
}

/// Paths through which a process names itself, resolved by the kernel per process.
const SELF_LINKS: [&str; 6] = [
    "/dev/fd",
    "/dev/stdin",
    "/dev/stdout",
    "/dev/stderr",
    "/proc/self",
    "/proc/thread-self",
];

/// `openat`'s directory argument, an `int`.
fn dirfd_arg(arg: u64) -> i32 {
    i32::from_ne_bytes(u32::to_ne_bytes((arg & 0xffff_ffff) as u32))
}

/// The NUL-terminated string at `pointer` in thread `tid`'s memory (a plain read of
/// `/proc/<tid>/mem`), if it is readable and at most [`MAX_PATH`] bytes.
fn read_path(tid: u32, pointer: u64) -> Option<OsString> {
    let mem = File::open(format!("/proc/{tid}/mem")).ok()?;
    let mut text = Vec::new();
    let mut chunk = [0u8; 256];
    while text.len() < MAX_PATH {
        let offset = pointer.checked_add(u64::try_from(text.len()).ok()?)?;
        let read = mem.read_at(&mut chunk, offset).ok()?;
        let got = chunk.get(..read)?;
        if let Some(end) = got.iter().position(|&b| b == 0) {
            text.extend_from_slice(got.get(..end)?);
            return Some(OsString::from_vec(text));
        }
        if read == 0 {
            return None;
        }
        text.extend_from_slice(got);
    }
    None
}

/// `path` made absolute as the kernel would for thread `tid`: relative to its working
/// directory (`dirfd` is `AT_FDCWD`) or to the directory `dirfd` is open on. Not
/// resolved: `self` in `/proc/self` is still the worker's.
fn absolute(path: &Path, tid: u32, dirfd: i32) -> Option<PathBuf> {
    if path.is_absolute() {
        return Some(path.to_path_buf());
    }
    let base = if dirfd == libc::AT_FDCWD {
        std::fs::read_link(format!("/proc/{tid}/cwd")).ok()?
    } else {
        std::fs::read_link(format!("/proc/{tid}/fd/{dirfd}")).ok()?
    };
    base.is_absolute().then(|| base.join(path))
}

/// For a path under `/proc` or `/sys` (the kernel's own files, which the C library and
/// language runtimes look at on start and go on without): whether it is the worker's own
/// or the system's (`/proc/self`, `/proc/<its pid or a thread's>`, `/proc/meminfo`,
/// `/sys/…`: let through, Landlock refuses them) rather than another process's
/// (`/proc/1/environ`: forbidden). None for any other path.
fn introspection(path: &Path, pid: u32) -> Option<bool> {
    let mut components = path.components();
    if components.next() != Some(Component::RootDir) {
        return None;
    }
    match components.next()?.as_os_str().to_str()? {
        "sys" => Some(true),
        "proc" => {
            let Some(Component::Normal(first)) = components.next() else {
                return Some(true);
            };
            let Some(number) = first.to_str().and_then(|text| text.parse::<u32>().ok()) else {
                return Some(true);
            };
            Some(number == pid || Path::new(&format!("/proc/{pid}/task/{number}")).exists())
        }
        _ => None,
    }
}

/// Whether `path` is one of the C library's [`PROBES`].
fn probe(path: &Path) -> bool {
    PROBES.iter().any(|probe| path == Path::new(probe))
        || PROBE_DIRECTORIES.iter().any(|dir| path.starts_with(dir))
}

/// A file's device and inode.
fn identity(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path)
        .ok()
        .map(|meta| (meta.dev(), meta.ino()))
}

#[cfg(test)]
mod tests;
