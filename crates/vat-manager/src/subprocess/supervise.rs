//! What ends a confined worker, and the fixed reason its vat is terminated with
//! (docs/confinement.md, "What ends a vat").
//!
//! A confined worker's seccomp allowlist refuses a call by notifying the holder of its
//! listener, and the launcher hands that listener to the kernel before the vat's program
//! runs ([`take_listener`]; the vat never holds it, or it could let its own calls through).
//! A supervisor thread per worker waits on the listener: when a call is refused, it names
//! the call in the log (read from `/proc/<pid>/task/*/syscall`, where the refused thread
//! waits in it), records the denial in the [`Evidence`] the runtime shares, and kills the
//! worker, which never runs again. The runtime then reports the worker's death as
//! [`FORBIDDEN`]. Where the kernel cannot take a listener (`pidfd_getfd` refused), later
//! workers of this process are started in the launcher's other mode, where a refused call
//! kills the process by `SIGSYS`: the same reason, with the call unknown. Never fail open.
//!
//! A worker that dies of an allocation failure (its stderr said so, and it died by a signal
//! or a failure status) is reported as [`OUT_OF_MEMORY`].

use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::process::{Child, ExitStatus};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ocap_types::VatId;

use super::{CLOSED_OUTPUT, EXIT_GRACE, describe_exit, wait_exit};
use crate::confine::{self, LISTENER_MAGIC, LISTENER_TAKEN, NO_LISTENER_MAGIC, Verdict, Watched};

/// The reason of a vat whose worker made a system call its confinement refuses.
pub(crate) const FORBIDDEN: &str = "vat attempted a forbidden system operation";

/// The reason of a vat whose worker died of an allocation its memory limit refused.
pub(crate) const OUT_OF_MEMORY: &str = "vat exceeded its memory limit";

/// Whether launchers are asked to hand over a listener: until taking one failed in this
/// process (then every later worker is killed by `SIGSYS` on a refused call instead).
static LISTENER_USABLE: AtomicBool = AtomicBool::new(true);

/// The longest the launcher may take to hand over its listener.
const HANDOVER_LIMIT: Duration = Duration::from_secs(30);

/// Whether the kernel can take a launcher's listener, as far as it knows.
pub(super) fn listener_usable() -> bool {
    LISTENER_USABLE.load(Ordering::Relaxed)
}

/// What the kernel learned of a worker besides its exit status: shared by the runtime, the
/// supervisor thread and the stderr thread.
#[derive(Debug, Default)]
pub(super) struct Evidence {
    /// The worker is confined (only then do the fixed reasons below apply).
    confined: bool,
    /// The supervisor saw a refused system call and killed the worker.
    denied: AtomicBool,
    /// The worker's stderr reported a failed allocation.
    out_of_memory: AtomicBool,
    /// The worker's stderr has ended: everything it said has been read.
    stderr_closed: AtomicBool,
}

impl Evidence {
    pub(super) fn new(confined: bool) -> Arc<Evidence> {
        Arc::new(Evidence {
            confined,
            ..Evidence::default()
        })
    }

    /// Whether the supervisor ended the worker for a refused call.
    pub(super) fn denied(&self) -> bool {
        self.denied.load(Ordering::SeqCst)
    }

    /// Notes one line of the worker's stderr: the messages of an allocation that failed (a
    /// Rust program's `memory allocation of N bytes failed`, Python's `MemoryError`, the C
    /// library's `Cannot allocate memory`) are evidence of the memory limit. A vat could
    /// write them to choose this reason over `vat worker exited (signal 6)`; either ends it.
    pub(super) fn stderr_line(&self, line: &str) {
        let failed = (line.contains("memory allocation of") && line.contains("failed"))
            || line.contains("MemoryError")
            || line.contains("Cannot allocate memory");
        if self.confined && failed {
            self.out_of_memory.store(true, Ordering::SeqCst);
        }
    }

    pub(super) fn stderr_closed(&self) {
        self.stderr_closed.store(true, Ordering::SeqCst);
    }

    /// The reason a worker that exited with `status` gets: one of the fixed reasons above,
    /// or the status described.
    pub(super) fn exit_reason(&self, vat: VatId, status: ExitStatus) -> String {
        use std::os::unix::process::ExitStatusExt;
        if self.denied() {
            return FORBIDDEN.to_owned();
        }
        if !self.confined {
            return describe_exit(status);
        }
        if status.signal() == Some(libc::SIGSYS) {
            tracing::error!(%vat, "vat {vat} attempted a forbidden system operation: unknown (killed by SIGSYS)");
            return FORBIDDEN.to_owned();
        }
        let abnormal = matches!(
            status.signal(),
            Some(libc::SIGABRT | libc::SIGSEGV | libc::SIGBUS | libc::SIGKILL)
        ) || status.code().is_some_and(|code| code != 0);
        if abnormal && self.wait_for_stderr() && self.out_of_memory.load(Ordering::SeqCst) {
            tracing::warn!(%vat, status = %describe_exit(status), "vat exceeded its memory limit");
            return OUT_OF_MEMORY.to_owned();
        }
        describe_exit(status)
    }

    /// Waits (at most [`EXIT_GRACE`]) until the stderr thread has read all the worker
    /// said; whether it has.
    fn wait_for_stderr(&self) -> bool {
        let deadline = Instant::now() + EXIT_GRACE;
        while !self.stderr_closed.load(Ordering::SeqCst) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        true
    }
}

/// Why a launcher's listener was not taken.
#[derive(Debug)]
pub(super) enum Handover {
    /// The kernel may not take another process's descriptor here: start the worker again
    /// without a listener.
    Unusable,
    /// The launcher failed or said something else: the start fails with this reason.
    Failed(String),
}

/// Takes the seccomp listener the launcher of `child` announces on its standard output
/// (`from_worker`), tells it so on its standard input (`to_worker`), and starts the
/// supervisor thread on it. The launcher runs nothing of the vat's until then.
pub(super) fn take_listener(
    vat: VatId,
    child: &mut Child,
    from_worker: &UnixStream,
    to_worker: &UnixStream,
    evidence: &Arc<Evidence>,
    watched: Option<Watched>,
) -> Result<(), Handover> {
    let failed = |what: &str, error: std::io::Error| {
        tracing::warn!(%vat, %error, "{what}");
        Handover::Failed(format!("{what}: {error}"))
    };
    let mut message = [0u8; 8];
    from_worker
        .set_read_timeout(Some(HANDOVER_LIMIT))
        .and_then(|()| (&*from_worker).read_exact(&mut message))
        .map_err(|error| match error.kind() {
            ErrorKind::UnexpectedEof => Handover::Failed(exited(child)),
            _ => failed(
                "the confinement launcher did not hand over its listener",
                error,
            ),
        })?;
    from_worker
        .set_read_timeout(None)
        .map_err(|e| failed("cannot read from the vat worker", e))?;
    let [m0, m1, m2, m3, number @ ..] = message;
    if [m0, m1, m2, m3] == NO_LISTENER_MAGIC {
        let error = std::io::Error::from_raw_os_error(
            i32::try_from(u32::from_be_bytes(number)).unwrap_or(0),
        );
        tracing::warn!(
            %vat, %error,
            "the system refuses confined workers a seccomp listener: from now on a refused \
             call kills the worker by SIGSYS, and the log cannot name it"
        );
        LISTENER_USABLE.store(false, Ordering::Relaxed);
        return Err(Handover::Unusable);
    }
    let number = RawFd::try_from(u32::from_be_bytes(number));
    let (true, Ok(number)) = ([m0, m1, m2, m3] == LISTENER_MAGIC, number) else {
        return Err(Handover::Failed(
            "the confinement launcher said something else".to_owned(),
        ));
    };
    let (pidfd, listener) = match take(child.id(), number) {
        Ok(taken) => taken,
        // Refused (a ptrace restriction) or not implemented: the same for every worker.
        // Anything else (the launcher gone, no such descriptor) is this launcher's failure.
        Err(error)
            if !matches!(
                error.raw_os_error(),
                Some(libc::EPERM | libc::EACCES | libc::ENOSYS)
            ) =>
        {
            return Err(failed(
                "cannot take the confinement launcher's listener",
                error,
            ));
        }
        Err(error) => {
            tracing::warn!(
                %vat, %error,
                "cannot take the confined worker's seccomp listener: from now on a refused \
                 call kills the worker by SIGSYS, and the log cannot name it"
            );
            LISTENER_USABLE.store(false, Ordering::Relaxed);
            return Err(Handover::Unusable);
        }
    };
    let pid = child.id();
    let shared = Arc::clone(evidence);
    std::thread::Builder::new()
        .name(format!("ocap-{vat}-seccomp"))
        .spawn(move || supervise(vat, pid, &pidfd, &listener, watched.as_ref(), &shared))
        .map_err(|e| failed("cannot start a worker thread", e))?;
    to_worker
        .set_write_timeout(Some(HANDOVER_LIMIT))
        .and_then(|()| (&*to_worker).write_all(&[LISTENER_TAKEN]))
        .map_err(|e| failed("cannot answer the confinement launcher", e))
}

/// A pidfd of process `pid`, and a copy of its descriptor `fd`.
fn take(pid: u32, fd: RawFd) -> std::io::Result<(OwnedFd, OwnedFd)> {
    use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};
    let pid = i32::try_from(pid)
        .ok()
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::other("no such process"))?;
    let pidfd = pidfd_open(pid, PidfdFlags::empty())?;
    let listener = pidfd_getfd(&pidfd, fd, PidfdGetfdFlags::empty())?;
    Ok((pidfd, listener))
}

/// Why the launcher stopped before handing over its listener: its exit, once it has
/// exited (it prints why on its stderr).
fn exited(child: &mut Child) -> String {
    wait_exit(child).map_or_else(|| CLOSED_OUTPUT.to_owned(), describe_exit)
}

/// The supervisor thread: waits until the allowlist hands it a call (the listener is
/// readable), takes it, and either lets it through (an open or exec inside the grants in
/// `watched`) or names it in the log, records the denial and kills the worker; ends once
/// the worker has exited or been killed. If it cannot wait or answer, it kills the worker:
/// a worker nobody watches must not run.
fn supervise(
    vat: VatId,
    pid: u32,
    pidfd: &OwnedFd,
    listener: &OwnedFd,
    watched: Option<&Watched>,
    evidence: &Evidence,
) {
    use rustix::event::{PollFd, PollFlags, poll};
    use rustix::process::{Signal, pidfd_send_signal};
    let give_up = |what: &str, error: &dyn std::fmt::Display| {
        tracing::error!(%vat, %error, "{what}: killing the vat worker");
        let _ = pidfd_send_signal(pidfd, Signal::KILL);
    };
    loop {
        let mut fds = [
            PollFd::new(listener, PollFlags::IN),
            PollFd::new(pidfd, PollFlags::IN),
        ];
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => continue,
            Err(error) => return give_up("cannot watch the vat worker's seccomp listener", &error),
        }
        let (refused, exited) = (fds[0].revents(), fds[1].revents());
        if refused.contains(PollFlags::IN) {
            let call = match confine::receive(listener.as_fd()) {
                Ok(call) => call,
                // The calling thread went away (killed) before it was taken.
                Err(error) if is_gone(&error) => continue,
                Err(error) => {
                    return give_up("cannot take a call from the seccomp listener", &error);
                }
            };
            let verdict = confine::judge(&call, pid, watched);
            // What was read of the thread was read while its call still waited.
            match confine::still_waiting(listener.as_fd(), call.id) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(error) => {
                    return give_up("cannot check a call of the seccomp listener", &error);
                }
            }
            match verdict {
                Verdict::LetThrough => match confine::let_through(listener.as_fd(), call.id) {
                    Ok(()) => continue,
                    Err(error) if is_gone(&error) => continue,
                    Err(error) => return give_up("cannot answer the seccomp listener", &error),
                },
                Verdict::Forbidden(what) => {
                    evidence.denied.store(true, Ordering::SeqCst);
                    tracing::error!(%vat, syscall = call.nr, "vat {vat} attempted a forbidden system operation: {what}");
                    // The refused thread waits for an answer that never comes; the kill
                    // ends it.
                    let _ = pidfd_send_signal(pidfd, Signal::KILL);
                    return;
                }
            }
        }
        if !exited.is_empty() || !refused.is_empty() {
            return;
        }
    }
}

/// Whether a listener operation failed because the call's thread is gone (`ENOENT`).
fn is_gone(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(libc::ENOENT)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;
    use std::process::ExitStatus;

    use super::{Evidence, FORBIDDEN, OUT_OF_MEMORY};
    use ocap_types::VatId;

    fn reason(evidence: &Evidence, raw_wait_status: i32) -> String {
        evidence.exit_reason(VatId(1), ExitStatus::from_raw(raw_wait_status))
    }

    #[test]
    fn a_confined_worker_killed_by_sigsys_attempted_a_forbidden_operation() {
        let confined = Evidence::new(true);
        assert_eq!(reason(&confined, libc::SIGSYS), FORBIDDEN);
        // Unconfined, a signal is only a signal.
        let trusted = Evidence::new(false);
        assert_eq!(
            reason(&trusted, libc::SIGSYS),
            "vat worker exited (signal 31)"
        );
    }

    #[test]
    fn an_allocation_failure_on_stderr_makes_an_abnormal_exit_a_memory_limit() {
        let confined = Evidence::new(true);
        confined.stderr_closed();
        assert_eq!(
            reason(&confined, libc::SIGABRT),
            "vat worker exited (signal 6)"
        );
        confined.stderr_line("memory allocation of 10737418240 bytes failed\n");
        assert_eq!(reason(&confined, libc::SIGABRT), OUT_OF_MEMORY);
        assert_eq!(reason(&confined, 1 << 8), OUT_OF_MEMORY);
        // A clean exit is not a failure, whatever was said.
        assert_eq!(reason(&confined, 0), "vat worker exited (status 0)");
        let trusted = Evidence::new(false);
        trusted.stderr_closed();
        trusted.stderr_line("MemoryError\n");
        assert_eq!(
            reason(&trusted, libc::SIGABRT),
            "vat worker exited (signal 6)"
        );
    }

    #[test]
    fn a_denial_the_supervisor_saw_is_the_reason_whatever_the_status() {
        let confined = Evidence::new(true);
        confined
            .denied
            .store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(reason(&confined, libc::SIGKILL), FORBIDDEN);
    }
}
