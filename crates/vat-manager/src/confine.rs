//! Confinement of worker processes: the kernel's side ([`Confinement`], the launcher command
//! line a worker is started with) and the launcher's ([`launch_main`]).
//!
//! Invariant: no vat code runs before its process is confined. The kernel does not start a
//! confined worker's program itself: it starts a trusted launcher of ours
//! (`<launcher> confine-launch <policy> -- <program> <args>`), which limits its own
//! resources, marks every inherited descriptor but 0, 1 and 2 close-on-exec, restricts
//! the file system with Landlock, installs a seccomp-bpf allowlist (with no-new-privileges)
//! and only then `exec`s the worker's program, which inherits all of it. Why a launcher and
//! not a `pre_exec` hook: the workspace denies `unsafe`, and `pre_exec` is unsafe; `exec` is
//! not. A launcher that fails to apply any layer it was asked for exits with status
//! [`LAUNCH_FAILED`] instead of running the program: never fail open. Which layers are
//! asked for is decided here, from the operator's [`ConfineMode`] and the OS's
//! [`Facilities`]; a vat the OS cannot confine as asked refuses to start with
//! [`ConfineError::Unsupported`]. Only the operator loosens any of it (the kernel config,
//! never a cluster file).

mod grants;
mod launch;
mod probe;
mod seccomp;
mod watch;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

pub use launch::{LAUNCH_FAILED, launch_main};
pub use probe::Facilities;
pub(crate) use seccomp::{let_through, receive, still_waiting};
pub(crate) use watch::{Verdict, Watched, judge};

/// The first argument that makes a launcher program (`ocap`, or any binary whose `main`
/// hands such a command line to [`launch_main`]) act as the launcher.
pub const LAUNCHER_COMMAND: &str = "confine-launch";

/// The launcher's message that hands its seccomp listener to the kernel (with `--notify`):
/// these bytes on its standard output, then the listener's descriptor number in the
/// launcher, a big-endian `u32`.
pub(crate) const LISTENER_MAGIC: [u8; 4] = *b"ocL1";

/// What a launcher writes instead of [`LISTENER_MAGIC`] when the system refuses it a
/// listener (a filter above the kernel holds one already, `EBUSY`; a kernel before 5.0,
/// `EINVAL`), followed by the error number, a big-endian `u32`; it then exits, having run
/// nothing of the vat's, and the kernel starts its workers in the mode without one.
pub(crate) const NO_LISTENER_MAGIC: [u8; 4] = *b"ocN1";

/// The kernel's answer on the launcher's standard input once it holds the listener.
pub(crate) const LISTENER_TAKEN: u8 = b'+';

/// How much the operator confines worker processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ConfineMode {
    /// Every worker is confined with Landlock, seccomp and resource limits; on an OS that
    /// lacks Landlock or seccomp a confined vat refuses to start ([`ConfineError::Unsupported`]).
    #[default]
    Always,
    /// Like `Always`, but where the OS lacks Landlock or seccomp the worker runs without
    /// that layer (with the others), and a warning is logged: the operator's permission to
    /// run less confined on such an OS.
    WherePossible,
    /// No worker is confined: the operator trusts all vat code.
    Never,
}

/// How worker processes are confined. Build it from [`Confinement::default`] (confined
/// always, no launcher: set one) and set its fields.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Confinement {
    /// How much workers are confined.
    pub mode: ConfineMode,
    /// The launcher program, run as `<launcher> confine-launch <policy> -- <program>
    /// <args>` (the `ocap` binary is one: it passes its own path). Without it a confined
    /// vat refuses to start ([`ConfineError::NoLauncher`]).
    pub launcher: Option<PathBuf>,
    /// Vat code (the code name a vat is spawned with) the operator trusts: it runs
    /// unconfined, environment and all.
    pub trusted: BTreeSet<String>,
    /// The address space a worker may map, in bytes (`RLIMIT_AS`; 1 GiB by default).
    pub memory_limit: u64,
    /// The most descriptors a worker may have open (`RLIMIT_NOFILE`; 64 by default).
    pub open_files: u64,
    /// Directories or files a worker may read besides its program, its loader and the
    /// system's library directories: an interpreter's library (e.g. the prefix of a
    /// Python installation) for script workers. Nothing is ever writable.
    pub read_paths: Vec<PathBuf>,
    /// Facilities to treat as missing although the OS has them: a hook for tests of the
    /// refusal path. It only ever takes facilities away, so it cannot loosen confinement.
    pub withhold: Facilities,
}

impl Default for Confinement {
    /// Confined always, no launcher, nothing trusted, 1 GiB of address space, 64 files.
    fn default() -> Self {
        Confinement {
            mode: ConfineMode::Always,
            launcher: None,
            trusted: BTreeSet::new(),
            memory_limit: 1 << 30,
            open_files: 64,
            read_paths: Vec::new(),
            withhold: Facilities::NONE,
        }
    }
}

/// Why a worker cannot be started confined as the operator asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfineError {
    /// The OS lacks a facility confinement needs, and the operator has not allowed running
    /// without it ([`ConfineMode::WherePossible`]) nor trusted the vat.
    #[error(
        "this system lacks {missing}, so the vat worker cannot be confined; the operator may \
         allow confinement where possible or trust this vat"
    )]
    Unsupported {
        /// What is missing (`Landlock`, `seccomp`, or both).
        missing: &'static str,
    },
    /// The worker's program cannot be used (checked before the launcher is started, so
    /// that a missing program is reported as such).
    #[error("cannot start the vat worker program: {0}")]
    Program(#[source] std::io::Error),
    /// Confinement is asked for but no launcher program is configured.
    #[error("the vat worker must be confined but no confinement launcher is configured")]
    NoLauncher,
}

/// How a worker is started: its command, and whether the launcher first hands the kernel
/// the listener of its seccomp allowlist (see `launch.rs`, `hand_over`).
#[derive(Debug)]
pub(crate) struct Launch {
    pub(crate) command: Command,
    /// The launcher hands over a listener before it runs the program.
    pub(crate) listener: bool,
    /// The program runs through the launcher, confined.
    pub(crate) confined: bool,
    /// With a listener where Landlock enforces the grants: the grants, by which the
    /// supervisor judges the opens and execs the allowlist hands it.
    pub(crate) watched: Option<Watched>,
}

/// The command that starts `program` with `args` for vat code `code`: through the launcher
/// with the policy's arguments and a cleared environment, or directly if the worker is not
/// to be confined. With `notify`, the allowlist refuses a call by telling the kernel
/// through a listener the launcher hands over first (the kernel then names the call and
/// kills the worker); without it, a refused call kills the worker by `SIGSYS`.
pub(crate) fn command(
    confinement: &Confinement,
    code: &str,
    program: &Path,
    args: &[&OsStr],
    notify: bool,
) -> Result<Launch, ConfineError> {
    if confinement.mode == ConfineMode::Never || confinement.trusted.contains(code) {
        tracing::debug!(code, "vat worker runs unconfined");
        let mut command = Command::new(program);
        // As for the launcher below: no transparent huge pages for a mimalloc worker.
        command.args(args).env("MIMALLOC_ALLOW_THP", "0");
        return Ok(Launch {
            command,
            listener: false,
            confined: false,
            watched: None,
        });
    }
    std::fs::metadata(program).map_err(ConfineError::Program)?;
    let facilities = Facilities::probe().without(confinement.withhold);
    if let Some(missing) = facilities.missing() {
        if confinement.mode == ConfineMode::Always {
            return Err(ConfineError::Unsupported { missing });
        }
        tracing::warn!(
            code,
            missing,
            "vat worker runs less confined: the system lacks a facility"
        );
    }
    let launcher = confinement
        .launcher
        .as_ref()
        .ok_or(ConfineError::NoLauncher)?;
    let mut command = Command::new(launcher);
    command
        .env_clear()
        // The launcher is this project's binary, built with mimalloc: without transparent
        // huge pages its start-up zeroes 4 KiB pages, not 2 MiB ones (the worker gets the
        // same from the launcher, `launch.rs`). Nothing of it reaches the worker.
        .env("MIMALLOC_ALLOW_THP", "0")
        .arg(LAUNCHER_COMMAND)
        .arg("--memory")
        .arg(confinement.memory_limit.to_string())
        .arg("--files")
        .arg(confinement.open_files.to_string());
    for path in &confinement.read_paths {
        command.arg("--read").arg(path);
    }
    if !facilities.landlock {
        command.arg("--no-landlock");
    }
    let listener = facilities.seccomp && notify;
    if !facilities.seccomp {
        command.arg("--no-seccomp");
    } else if listener {
        command.arg("--notify");
    }
    command.arg("--").arg(program).args(args);
    // What the launcher grants, worked out the same way from the same files.
    let watched =
        (listener && facilities.landlock).then(|| Watched::new(program, &confinement.read_paths));
    Ok(Launch {
        command,
        listener,
        confined: true,
        watched,
    })
}
