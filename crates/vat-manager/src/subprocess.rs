//! `SubprocessRuntime`: a vat running in a worker process of its own, driven through the
//! frame protocol of `docs/vat-protocol.md` (spec §12.3, §12.7). To the kernel it is one more
//! `VatRuntime`: syscalls and logs reach the host in order, synchronously, before the
//! delivery's outcome is returned.
//!
//! Invariant: the kernel never blocks forever on a worker. The worker's standard input and
//! output are Unix sockets: the kernel thread writes a frame with a write timeout and reads
//! the answer with a read timeout, both bounded by the delivery time limit. Whatever goes
//! wrong with the worker (it exits or is killed, closes its output, sends a malformed,
//! oversized or unexpected frame, or misses the deadline) becomes a failed outcome with a
//! fixed sentence as its reason; the worker is killed, and every later call fails at once
//! with the same reason. Dropping the runtime kills and reaps the worker. A delivery error
//! the worker reports is its own free text: it is logged, and the delivery fails with a
//! fixed sentence, since the reason becomes a kernel-authored rejection. A worker that
//! exits is reported as exited even when a process it started still holds its output open:
//! a read that waits checks the worker's status every [`EXIT_CHECK`].
//!
//! A start sends the vat store after the `Start` header in `State` frames, each as full as
//! the frame limit allows (D23), so a store of any size restarts; the frames are encoded one
//! at a time from the store the manager read, and the whole stream shares the start's time
//! limit. An entry too large for a frame of its own fails the start before a byte is sent.
//!
//! Why no reader thread: a thread between the socket and the crank adds a wakeup to every
//! delivery, and on our 2-core VMs a wakeup costs more than the rest of the round trip. For
//! the same reason the kernel thread polls for the answer for a few microseconds (yielding
//! the CPU) before it goes to sleep: most deliveries answer within that time, and a
//! sleeping reader must be woken. The worker's stderr is forwarded to `tracing` by a thread
//! of its own. Unix only (socket timeouts). Writing to a dead worker's socket raises
//! `SIGPIPE`, which Rust programs ignore by default; a host that is not a Rust program must
//! ignore it too.
//!
//! A confined worker's launcher first hands the kernel the listener of its seccomp
//! allowlist, before the protocol starts; a supervisor thread then watches it, and a
//! refused call or an allocation failure gives the worker's death its fixed reason
//! (`supervise`).

mod begun;
mod sockets;
mod supervise;
#[cfg(test)]
mod tests;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, ErrorKind, Read};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ocap_types::{
    Delivery, DeliveryOutcome, FrameError, FrameReader, FrameWriter, KernelFrame, PROTOCOL_VERSION,
    VatHost, VatId, VatRuntime, VatStart, WorkerFrame,
};

use crate::confine::{self, Confinement};
use crate::error::VatError;
pub(crate) use begun::Begun;
use sockets::{Bounded, Output, is_exit, is_timeout};
use supervise::Evidence;

/// How subprocess vats are started. Build it from [`WorkerConfig::default`] and set its
/// fields (more may come, so it cannot be written as a literal outside this crate).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkerConfig {
    /// The worker program, run as `<program> worker <vat-code-name>` (the `ocap` binary is
    /// one). Without it, launching a subprocess vat fails.
    pub program: Option<PathBuf>,
    /// The longest one start or delivery may take before the worker is killed and the vat
    /// terminated. `Duration::MAX` (or any limit too far away to be a point in time) means
    /// no limit.
    pub delivery_timeout: Duration,
    /// How the worker process is confined (always, by default; see [`Confinement`]).
    pub confinement: Confinement,
}

impl Default for WorkerConfig {
    /// No program; a 30 s delivery time limit; confined always (no launcher: set one).
    fn default() -> Self {
        WorkerConfig {
            program: None,
            delivery_timeout: Duration::from_secs(30),
            confinement: Confinement::default(),
        }
    }
}

/// How long the kernel thread polls for an answer before it sleeps (see the module docs).
const SPIN: Duration = Duration::from_micros(50);

/// How long a worker that closed its output gets to exit before it is called "closed".
const EXIT_GRACE: Duration = Duration::from_secs(1);

/// Why a worker (or its launcher) stopped when it did not exit within [`EXIT_GRACE`] of
/// closing its output.
const CLOSED_OUTPUT: &str = "vat worker closed its output";

/// `child`'s exit status, waiting at most [`EXIT_GRACE`] for it to exit; `None` if it has
/// not (or cannot be waited for).
fn wait_exit(child: &mut Child) -> Option<ExitStatus> {
    let deadline = Instant::now() + EXIT_GRACE;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1));
            }
            _ => return None,
        }
    }
}

/// How often a read waiting for the worker checks whether it has exited.
const EXIT_CHECK: Duration = Duration::from_millis(50);

/// The reason of a delivery error the worker reported: its own text is only logged.
const WORKER_DELIVERY_ERROR: &str = "vat worker reported a delivery error";

/// Longest part of a worker's delivery error text that is logged.
const MAX_LOGGED_ERROR: usize = 1024;

/// Longest stderr line forwarded to the log as one event.
const MAX_STDERR_LINE: u64 = 8 * 1024;

/// A vat in a worker process (`<program> worker <vat-code-name>`), speaking the frame
/// protocol of `docs/vat-protocol.md` on its standard input and output.
///
/// Every start or delivery is bounded by the configured time limit: a worker that dies,
/// closes its output, breaks the protocol or runs out of time makes the call return a failed
/// outcome with a fixed reason (such as `vat worker exited (signal 9)`). The worker is then
/// killed, and later calls fail at once with the same reason. Dropping the runtime kills
/// and reaps the worker.
#[derive(Debug)]
pub struct SubprocessRuntime {
    vat: VatId,
    pid: u32,
    /// The worker's standard input; `None` once the worker is being stopped.
    to_worker: Option<FrameWriter<Bounded>>,
    /// The worker's standard output, and the worker.
    from_worker: FrameReader<BufReader<Output>>,
    timeout: Duration,
    /// Set once the worker failed: the reason every later call reports.
    failed: Option<String>,
    /// What its supervisor and stderr thread learned (see `supervise`).
    evidence: Arc<Evidence>,
    /// The protocol version the worker announced, when it is not this kernel's.
    mismatch: Option<u32>,
}

impl SubprocessRuntime {
    /// Starts `<program> worker <code>` for `vat`, its standard input and output connected
    /// to the kernel by sockets and its stderr forwarded to the log.
    ///
    /// # Errors
    /// [`VatError::Start`] when no program is configured or it cannot be started;
    /// [`VatError::Confine`] when it cannot be started confined as configured.
    pub fn spawn(config: &WorkerConfig, vat: VatId, code: &str) -> Result<Self, VatError> {
        Self::begin(config, vat, code)?.finish()
    }

    /// [`SubprocessRuntime::spawn`]'s first half, as [`SubprocessRuntime::begin_program`].
    pub(crate) fn begin<'c>(
        config: &'c WorkerConfig,
        vat: VatId,
        code: &str,
    ) -> Result<Begun<'c>, VatError> {
        let program = config.program.as_ref().ok_or_else(|| VatError::Start {
            vat,
            message: "the vat is configured to run in a subprocess but no worker program is set"
                .to_owned(),
        })?;
        Self::begin_program(config, vat, code, program, &["worker", code])
    }

    /// Starts `<program> <args>` for `vat` (a path vat's own executable, or the configured
    /// worker program), as [`SubprocessRuntime::spawn`] does. `code` is what the operator's
    /// list of trusted vats names it by: its registered code name, or a path vat's
    /// executable path.
    pub(crate) fn spawn_program(
        config: &WorkerConfig,
        vat: VatId,
        code: &str,
        program: &Path,
        args: &[&str],
    ) -> Result<Self, VatError> {
        Self::begin_program(config, vat, code, program, args)?.finish()
    }

    /// The first half of [`SubprocessRuntime::spawn_program`]: starts the process (the
    /// launcher, if confined) and returns without waiting for the launcher to hand over
    /// its listener, so that several launchers confine themselves side by side
    /// (`VatManager::prespawn`). [`Begun::finish`] takes the listener; until then the
    /// launcher waits and runs nothing of the vat's.
    pub(crate) fn begin_program<'c>(
        config: &'c WorkerConfig,
        vat: VatId,
        code: &str,
        program: &Path,
        args: &[&str],
    ) -> Result<Begun<'c>, VatError> {
        let start_error = |message: String| VatError::Start { vat, message };
        let (to_worker, worker_stdin) = UnixStream::pair()
            .map_err(|e| start_error(format!("cannot create the vat worker's input: {e}")))?;
        let (from_worker, worker_stdout) = UnixStream::pair()
            .map_err(|e| start_error(format!("cannot create the vat worker's output: {e}")))?;
        // The one hook of confinement: the launcher, or the program itself if not confined.
        let os_args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
        let notify = supervise::listener_usable();
        let launch = confine::command(&config.confinement, code, program, &os_args, notify)
            .map_err(|cause| VatError::Confine { vat, cause })?;
        let (mut command, listener, watched) = (launch.command, launch.listener, launch.watched);
        command
            .stdin(Stdio::from(OwnedFd::from(worker_stdin)))
            .stdout(Stdio::from(OwnedFd::from(worker_stdout)))
            .stderr(Stdio::piped());
        let mut child = spawn_retrying(&mut command)
            .map_err(|e| start_error(format!("cannot start the vat worker program: {e}")))?;
        // Its copies of the worker's ends would hide the launcher's exit from the handover.
        drop(command);
        let evidence = Evidence::new(launch.confined);
        let Some(stderr) = child.stderr.take() else {
            kill(&mut child);
            return Err(start_error("the vat worker's pipes are missing".to_owned()));
        };
        let shared = Arc::clone(&evidence);
        let forwarder = std::thread::Builder::new()
            .name(format!("ocap-{vat}-stderr"))
            .spawn(move || forward_stderr(vat, stderr, &shared));
        if let Err(e) = forwarder {
            kill(&mut child);
            return Err(start_error(format!("cannot start a worker thread: {e}")));
        }
        Ok(Begun {
            config,
            vat,
            code: code.to_owned(),
            program: program.to_path_buf(),
            args: args.iter().map(|&arg| arg.to_owned()).collect(),
            child: begun::Started(Some(child)),
            to_worker,
            from_worker,
            evidence,
            listener,
            watched,
        })
    }
}

impl SubprocessRuntime {
    /// The worker's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The protocol version the worker announced in answer to its start, when it is not
    /// this kernel's ([`PROTOCOL_VERSION`]): the start then failed, and the worker is gone.
    /// 0 stands for a worker that announced none (it predates protocol versions).
    pub fn protocol_mismatch(&self) -> Option<u32> {
        self.mismatch
    }

    fn child(&mut self) -> &mut Child {
        &mut self.from_worker.get_mut().get_mut().child
    }

    fn output(&mut self) -> &mut Bounded {
        &mut self.from_worker.get_mut().get_mut().socket
    }

    /// Sends `request` and relays the worker's frames to `host` until `Done`.
    fn exchange(&mut self, request: Request<'_>, host: &mut dyn VatHost) -> DeliveryOutcome {
        if let Some(reason) = &self.failed {
            return DeliveryOutcome::failed(reason.clone());
        }
        match self.try_exchange(request, host) {
            Ok(outcome) => outcome,
            Err(reason) => {
                tracing::warn!(vat = %self.vat, %reason, "vat worker failed");
                self.stop();
                self.failed = Some(reason.clone());
                DeliveryOutcome::failed(reason)
            }
        }
    }

    /// The exchange proper; `Err` is the reason the worker is to be killed.
    fn try_exchange(
        &mut self,
        request: Request<'_>,
        host: &mut dyn VatHost,
    ) -> Result<DeliveryOutcome, String> {
        // A limit too far away to be a point in time is no limit.
        let deadline = Instant::now().checked_add(self.timeout);
        let Some(writer) = self.to_worker.as_mut() else {
            return Err(self.exit_reason());
        };
        writer.get_mut().deadline = deadline;
        self.output().deadline = deadline;
        self.set_polling()?;
        // Best effort: a frame the worker sent after its last `Done` is usually here by now.
        match self.from_worker.get_mut().fill_buf() {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Ok([]) | Err(_) => return Err(self.exit_reason()),
            Ok(_) => return Err("vat worker sent a frame outside a delivery".to_owned()),
        }
        let Some(writer) = self.to_worker.as_mut() else {
            return Err(self.exit_reason());
        };
        let written = match &request {
            // The vat store follows the header in frames as full as the limit allows.
            Request::Start(start) => writer.write_start(start),
            Request::Frame(frame) => writer.write(*frame),
        };
        match written {
            Ok(()) => {}
            Err(FrameError::Oversized { len, max }) => {
                tracing::warn!(vat = %self.vat, len, max, kind = request.kind(), "frame too large");
                return Err(match request {
                    Request::Start(_) => {
                        "the vat store holds an entry over the frame size limit".to_owned()
                    }
                    Request::Frame(_) => "the delivery exceeds the frame size limit".to_owned(),
                });
            }
            Err(FrameError::Io(e)) if is_timeout(&e) => return Err(self.time_limit_reason()),
            // A worker of another version answers a start's header with its `Hello` and
            // exits: read that before calling it an exit.
            Err(_) if matches!(request, Request::Start(_)) => {}
            Err(_) => return Err(self.exit_reason()),
        }
        self.poll_for_answer();
        self.output().polling = false;
        // The answer to a start begins with the worker's protocol version.
        let mut expect_hello = matches!(request, Request::Start(_));
        loop {
            match self.from_worker.read::<WorkerFrame>() {
                Ok(frame) if expect_hello => {
                    expect_hello = false;
                    let worker = match frame {
                        WorkerFrame::Hello(hello) => hello.protocol,
                        _ => 0,
                    };
                    if worker != PROTOCOL_VERSION {
                        self.mismatch = Some(worker);
                        return Err(version_reason(worker));
                    }
                }
                Ok(WorkerFrame::Syscall(syscall)) => host.syscall(syscall),
                Ok(WorkerFrame::Log(log)) => host.log(log),
                Ok(WorkerFrame::Done(mut outcome)) => {
                    if let (Request::Frame(_), Some(text)) = (&request, &outcome.error) {
                        let text: String = text.chars().take(MAX_LOGGED_ERROR).collect();
                        tracing::warn!(vat = %self.vat, error = %text, "vat worker reported a delivery error");
                        outcome.error = Some(WORKER_DELIVERY_ERROR.to_owned());
                    }
                    return Ok(outcome);
                }
                Ok(WorkerFrame::Pong | WorkerFrame::Hello(_)) => {
                    return Err("vat worker sent an unexpected frame".to_owned());
                }
                Err(FrameError::Io(e)) if is_timeout(&e) => return Err(self.time_limit_reason()),
                Err(FrameError::Io(e)) if is_exit(&e) => return Err(self.exit_reason()),
                Err(error) => return Err(self.frame_error(&error)),
            }
        }
    }

    /// Puts the output into polling mode: reads do not block and report `WouldBlock`.
    fn set_polling(&mut self) -> Result<(), String> {
        let output = self.output();
        output.polling = true;
        if !output.nonblocking {
            output
                .socket
                .set_nonblocking(true)
                .map_err(|_| "cannot read from the vat worker".to_owned())?;
            output.nonblocking = true;
        }
        Ok(())
    }

    /// Polls the non-blocking output for up to [`SPIN`], yielding the CPU between tries,
    /// until some bytes (or the end of the stream) have arrived.
    fn poll_for_answer(&mut self) {
        let until = Instant::now() + SPIN;
        let reader = self.from_worker.get_mut();
        while let Err(e) = reader.fill_buf() {
            if e.kind() != ErrorKind::WouldBlock || Instant::now() >= until {
                return;
            }
            std::thread::yield_now();
        }
    }

    fn time_limit_reason(&self) -> String {
        if self.evidence.denied() {
            return supervise::FORBIDDEN.to_owned();
        }
        format!(
            "vat worker exceeded the delivery time limit of {} ms",
            self.timeout.as_millis()
        )
    }

    /// The reason for a bad frame. Fixed sentences only: the details may echo the worker's
    /// bytes, so they go to the log.
    fn frame_error(&mut self, error: &FrameError) -> String {
        tracing::warn!(vat = %self.vat, %error, "bad frame from vat worker");
        match error {
            FrameError::Oversized { len, max } => {
                format!("vat worker sent an oversized frame ({len} bytes, limit {max})")
            }
            FrameError::Malformed { .. } => "vat worker sent a malformed frame".to_owned(),
            FrameError::Eof | FrameError::Truncated { .. } => self.exit_reason(),
            _ => "cannot read from the vat worker".to_owned(),
        }
    }

    /// Why the worker's output ended: its exit status, once it has exited.
    fn exit_reason(&mut self) -> String {
        match wait_exit(self.child()) {
            Some(status) => self.evidence.exit_reason(self.vat, status),
            None => CLOSED_OUTPUT.to_owned(),
        }
    }

    /// Kills and reaps the worker. Its stderr thread ends on its own as the pipe closes.
    fn stop(&mut self) {
        self.to_worker = None;
        kill(self.child());
    }
}

impl VatRuntime for SubprocessRuntime {
    fn start(&mut self, start: VatStart, host: &mut dyn VatHost) -> DeliveryOutcome {
        self.exchange(Request::Start(&start), host)
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        self.exchange(Request::Frame(&KernelFrame::Deliver(delivery)), host)
    }
}

impl Drop for SubprocessRuntime {
    fn drop(&mut self) {
        self.stop();
        tracing::debug!(vat = %self.vat, "vat worker stopped");
    }
}

/// What the kernel asks of a worker: each is answered by one `Done`.
enum Request<'a> {
    /// The `Start` header and the vat store's `State` frames, written from the borrowed
    /// store one frame at a time (no second copy of the store).
    Start(&'a VatStart),
    /// A request of one frame: a delivery.
    Frame(&'a KernelFrame),
}

impl Request<'_> {
    fn kind(&self) -> &'static str {
        match self {
            Request::Start(_) => "start",
            Request::Frame(KernelFrame::Deliver(delivery)) => delivery.kind(),
            Request::Frame(_) => "frame",
        }
    }
}

/// The reason of a start whose worker speaks protocol version `worker` (0: none announced).
pub(crate) fn version_reason(worker: u32) -> String {
    crate::error::protocol_mismatch(worker, PROTOCOL_VERSION)
}

fn kill(child: &mut Child) {
    // Both fail only when the child is already gone and reaped.
    let _ = child.kill();
    let _ = child.wait();
}

fn describe_exit(status: ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            return format!("vat worker exited (signal {signal})");
        }
    }
    match status.code() {
        Some(code) => format!("vat worker exited (status {code})"),
        None => "vat worker exited".to_owned(),
    }
}

/// The stderr thread: each line becomes a log event, and evidence (`supervise`).
fn forward_stderr(vat: VatId, stderr: ChildStderr, evidence: &Evidence) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_STDERR_LINE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) | Err(_) => return evidence.stderr_closed(),
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                evidence.stderr_line(&text);
                tracing::info!(%vat, line = %text.trim_end(), "vat worker stderr");
            }
        }
    }
}

/// Spawns `command`, trying again a few times while its program is busy being written
/// (`ETXTBSY`): a program just installed or replaced can be held open for writing for a
/// moment, e.g. by a process another thread forked while it was being written.
fn spawn_retrying(command: &mut Command) -> std::io::Result<std::process::Child> {
    const ATTEMPTS: u32 = 20;
    let mut attempt = 1;
    loop {
        match command.spawn() {
            Err(error)
                if error.kind() == std::io::ErrorKind::ExecutableFileBusy && attempt < ATTEMPTS =>
            {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            other => return other,
        }
    }
}
