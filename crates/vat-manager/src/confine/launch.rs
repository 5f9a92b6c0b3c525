//! The launcher: the trusted code between the kernel and a confined worker. It parses the
//! policy the kernel wrote on its command line, confines its own process (resource
//! limits, descriptors, Landlock, seccomp) and `exec`s the worker's program, which
//! inherits every layer. It returns only if something failed, and then the program has
//! not run.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;

/// The launcher's exit status when it could not confine or start the worker.
pub const LAUNCH_FAILED: u8 = 125;

/// Runs the launcher on its arguments (those after [`LAUNCHER_COMMAND`]): confines this
/// process as they say and replaces it with the worker's program. Returns only on failure,
/// after printing why on standard error, with [`LAUNCH_FAILED`].
///
/// A binary serves as the launcher by calling this first thing in `main` when its first
/// argument is [`LAUNCHER_COMMAND`], before it starts any thread:
///
/// ```no_run
/// use ocap_vat_manager::{LAUNCHER_COMMAND, launch_main};
///
/// fn main() -> std::process::ExitCode {
///     let mut args = std::env::args_os().skip(1);
///     if args.next().is_some_and(|first| first == LAUNCHER_COMMAND) {
///         return launch_main(args);
///     }
///     // ... the program's own work
///     std::process::ExitCode::SUCCESS
/// }
/// ```
///
/// [`LAUNCHER_COMMAND`]: super::LAUNCHER_COMMAND
pub fn launch_main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let error = match Policy::parse(args) {
        Ok(policy) => confine_and_exec(&policy),
        Err(error) => error,
    };
    eprintln!("ocap confine: {error}");
    ExitCode::from(LAUNCH_FAILED)
}

/// Why the launcher did not start the worker.
#[derive(Debug, thiserror::Error)]
enum LaunchError {
    #[error("bad launcher arguments: {0}")]
    Usage(&'static str),
    #[error("cannot set the resource limits: {0}")]
    Limits(std::io::Error),
    #[error("cannot restrict the file system with Landlock: {0}")]
    Landlock(String),
    #[error("Landlock is not enforced on this system")]
    LandlockNotEnforced,
    #[error("cannot install the seccomp filter: {0}")]
    Seccomp(String),
    #[error("cannot hand the seccomp listener to the kernel: {0}")]
    Handover(std::io::Error),
    #[cfg(not(target_os = "linux"))]
    #[error("confinement is not available on this operating system")]
    Unsupported,
    #[error("cannot execute {program}: {error}")]
    Exec {
        program: String,
        error: std::io::Error,
    },
}

/// The worker's `HOME`: a directory that does not exist, so nothing is read from it.
const WORKER_HOME: &str = "/nonexistent";

/// What the kernel asked for (`confine::command` writes it).
#[derive(Debug)]
struct Policy {
    memory: u64,
    files: u64,
    read: Vec<PathBuf>,
    landlock: bool,
    seccomp: bool,
    /// Refused calls go to a listener handed to the kernel, not kill the process.
    notify: bool,
    program: PathBuf,
    args: Vec<OsString>,
}

impl Policy {
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Policy, LaunchError> {
        let mut args = args.into_iter();
        let mut memory = None;
        let mut files = None;
        let mut read = Vec::new();
        let (mut landlock, mut seccomp, mut notify) = (true, true, false);
        let number = |value: Option<OsString>| {
            value
                .as_deref()
                .and_then(OsStr::to_str)
                .and_then(|text| text.parse::<u64>().ok())
                .ok_or(LaunchError::Usage("a limit is not a number"))
        };
        loop {
            let Some(arg) = args.next() else {
                return Err(LaunchError::Usage("no `--` before the program"));
            };
            match arg.to_str() {
                Some("--memory") => memory = Some(number(args.next())?),
                Some("--files") => files = Some(number(args.next())?),
                Some("--read") => read.push(
                    args.next()
                        .map(PathBuf::from)
                        .ok_or(LaunchError::Usage("--read without a path"))?,
                ),
                Some("--no-landlock") => landlock = false,
                Some("--no-seccomp") => seccomp = false,
                Some("--notify") => notify = true,
                Some("--") => break,
                _ => return Err(LaunchError::Usage("unknown argument")),
            }
        }
        let program = args
            .next()
            .map(PathBuf::from)
            .ok_or(LaunchError::Usage("no program"))?;
        Ok(Policy {
            memory: memory.ok_or(LaunchError::Usage("no --memory"))?,
            files: files.ok_or(LaunchError::Usage("no --files"))?,
            read,
            landlock,
            seccomp,
            notify,
            program,
            args: args.collect(),
        })
    }
}

#[cfg(target_os = "linux")]
fn confine_and_exec(policy: &Policy) -> LaunchError {
    use std::os::unix::process::CommandExt;

    if let Err(error) = confine(policy) {
        return error;
    }
    // An environment of `HOME` alone, naming no directory: without it the C library's
    // user lookup (Python's start-up calls it) reads `/etc/passwd`, which ends the vat.
    let error = std::process::Command::new(&policy.program)
        .args(&policy.args)
        .env_clear()
        .env("HOME", WORKER_HOME)
        .exec();
    LaunchError::Exec {
        program: policy.program.display().to_string(),
        error,
    }
}

#[cfg(not(target_os = "linux"))]
fn confine_and_exec(_: &Policy) -> LaunchError {
    LaunchError::Unsupported
}

/// Confines this process: limits, descriptors, then Landlock and seccomp (last, since it
/// refuses the calls the others make).
#[cfg(target_os = "linux")]
fn confine(policy: &Policy) -> Result<(), LaunchError> {
    use rustix::process::{Resource, Rlimit, setrlimit};

    let limit = |value: u64| Rlimit {
        current: Some(value),
        maximum: Some(value),
    };
    let limits = [
        (Resource::As, policy.memory),
        (Resource::Nofile, policy.files),
        // A backstop behind seccomp (root is exempt from it).
        (Resource::Nproc, 0),
        (Resource::Core, 0),
        (Resource::Fsize, 0),
        (Resource::Memlock, 0),
    ];
    for (resource, value) in limits {
        setrlimit(resource, limit(value)).map_err(|e| LaunchError::Limits(e.into()))?;
    }
    // No transparent huge pages for the worker (inherited across exec): an allocator that
    // asks for them (mimalloc does) has each first touch zero 2 MiB, which doubled a
    // worker's start-up time (docs/performance.md, "Worker processes"). Best effort.
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    // Whatever the kernel's process left open without close-on-exec stays here.
    close_fds::CloseFdsBuilder::new().cloexecfrom(3);
    if policy.landlock {
        restrict_files(policy)?;
    }
    if policy.seccomp {
        use super::seccomp::{Refusal, install};
        // Opens and execs go to the supervisor only where Landlock enforces the grant it
        // judges them by: a call it lets through is then Landlock's to refuse.
        let refusal = if policy.notify {
            Refusal::Notify {
                files: policy.landlock,
            }
        } else {
            Refusal::Kill
        };
        let listener = match install(refusal) {
            Err(super::seccomp::Error::Listener(error)) => {
                // Tell the kernel why, so that it stops asking for one (best effort: the
                // launch fails either way).
                let _ = no_listener(&error);
                return Err(LaunchError::Seccomp(
                    super::seccomp::Error::Listener(error).to_string(),
                ));
            }
            installed => installed.map_err(|e| LaunchError::Seccomp(e.to_string()))?,
        };
        if let Some(listener) = listener {
            hand_over(listener).map_err(LaunchError::Handover)?;
        }
    }
    Ok(())
}

/// Tells the kernel the system refused a listener ([`NO_LISTENER_MAGIC`] and the error
/// number).
///
/// [`NO_LISTENER_MAGIC`]: super::NO_LISTENER_MAGIC
#[cfg(target_os = "linux")]
fn no_listener(error: &std::io::Error) -> std::io::Result<()> {
    use std::io::Write;
    let code = u32::try_from(error.raw_os_error().unwrap_or(0)).unwrap_or(0);
    let mut message = super::NO_LISTENER_MAGIC.to_vec();
    message.extend_from_slice(&code.to_be_bytes());
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&message)?;
    stdout.flush()
}

/// Hands the seccomp listener to the kernel and closes this process's copy, so that the
/// program never holds it: tells the kernel its number on standard output
/// ([`LISTENER_MAGIC`] and the number, big-endian), and waits for the kernel to say on
/// standard input, with [`LISTENER_TAKEN`], that it has taken a copy (`pidfd_getfd`). Only
/// `write`, `read` and `close` run here, all allowed: a refused call would wait for a
/// listener this process holds. Reads one byte exactly: what follows is the vat protocol,
/// for the program.
///
/// [`LISTENER_MAGIC`]: super::LISTENER_MAGIC
/// [`LISTENER_TAKEN`]: super::LISTENER_TAKEN
#[cfg(target_os = "linux")]
fn hand_over(listener: std::os::fd::OwnedFd) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::fd::{AsFd, AsRawFd};

    let number = u32::try_from(listener.as_raw_fd()).map_err(std::io::Error::other)?;
    let mut message = super::LISTENER_MAGIC.to_vec();
    message.extend_from_slice(&number.to_be_bytes());
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(&message)?;
    stdout.flush()?;
    let mut answer = [0u8; 1];
    let read = rustix::io::read(std::io::stdin().as_fd(), &mut answer)?;
    if read != 1 || answer[0] != super::LISTENER_TAKEN {
        return Err(std::io::Error::other("the kernel did not take it"));
    }
    drop(listener);
    Ok(())
}

/// Restricts the file system to the policy's grants: read and execute the program and its
/// interpreters, read the library directories and the operator's paths, nothing else, and
/// (where the kernel knows how) no TCP and no signals or abstract sockets out of the
/// domain.
#[cfg(target_os = "linux")]
fn restrict_files(policy: &Policy) -> Result<(), LaunchError> {
    use landlock::{
        ABI, Access, AccessFs, AccessNet, BitFlags, PathBeneath, PathFd, Ruleset, RulesetAttr,
        RulesetCreatedAttr, RulesetStatus, Scope,
    };

    let grants = super::grants::grants(&policy.program, &policy.read);
    let abi = ABI::V6;
    let landlock = |e: landlock::RulesetError| LaunchError::Landlock(e.to_string());
    let mut ruleset = Ruleset::default()
        .handle_access(AccessFs::from_all(abi))
        .and_then(|r| r.handle_access(AccessNet::from_all(abi)))
        .and_then(|r| r.scope(Scope::from_all(abi)))
        .and_then(Ruleset::create)
        .map_err(landlock)?;
    let execute: BitFlags<AccessFs> = AccessFs::Execute | AccessFs::ReadFile;
    let read_file: BitFlags<AccessFs> = AccessFs::ReadFile.into();
    let read_dir: BitFlags<AccessFs> = AccessFs::ReadFile | AccessFs::ReadDir;
    let rules = grants
        .execute
        .iter()
        .map(|path| (path, execute))
        .chain(grants.read.iter().map(|path| {
            let access = if path.is_dir() { read_dir } else { read_file };
            (path, access)
        }));
    for (path, access) in rules {
        let fd = PathFd::new(path).map_err(|e| LaunchError::Landlock(e.to_string()))?;
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(landlock)?;
    }
    let status = ruleset.restrict_self().map_err(landlock)?;
    if status.ruleset == RulesetStatus::NotEnforced {
        return Err(LaunchError::LandlockNotEnforced);
    }
    Ok(())
}
