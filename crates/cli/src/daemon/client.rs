//! The client side: a connection to the daemon of a store ([`Client`]), starting and
//! stopping the daemon, and [`Session`], which runs a command through the daemon when one
//! serves the store and on a kernel of its own otherwise.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ocap_kernel::{Durability, Kernel, KernelConfig};
use serde_json::{Value as Json, json};

use super::methods::{Context, dispatch};
use super::protocol::{Line, LineReader, PROTOCOL_VERSION, parse_reply, request_line};
use super::socket::{DaemonRecord, LOG_FILE, own_uid, peer_uid};
use crate::crank_log::CrankLogOptions;
use crate::{CliError, registry};

/// The longest reply a client reads (a large `inspect`): 256 MiB.
const MAX_REPLY_BYTES: usize = 256 << 20;
/// How long a call may take beyond its own timeout before the client gives up.
const GRACE: Duration = Duration::from_secs(30);

/// A connection to the daemon serving a store, past `hello`.
#[derive(Debug)]
pub struct Client {
    stream: UnixStream,
    reader: LineReader,
    next_id: u64,
    pid: u32,
}

impl Client {
    /// Connects to the daemon serving `store` and says hello; `None` if no daemon serves
    /// it (no record, or nobody listens on the recorded socket: a daemon that was killed).
    ///
    /// # Errors
    /// [`CliError::Socket`] if the socket cannot be used, [`CliError::Protocol`] if what
    /// listens there is not a daemon of this user speaking this protocol,
    /// [`CliError::Remote`] if it refuses the hello.
    pub fn connect(store: &Path) -> Result<Option<Client>, CliError> {
        let Some(record) = DaemonRecord::read(store) else {
            return Ok(None);
        };
        let stream = match UnixStream::connect(&record.socket) {
            Ok(stream) => stream,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound
                ) =>
            {
                return Ok(None);
            }
            Err(source) => {
                return Err(CliError::Socket {
                    path: record.socket,
                    source,
                });
            }
        };
        let socket_error = |source| CliError::Socket {
            path: record.socket.clone(),
            source,
        };
        // Only a daemon of this user hears our commands (the socket's directory is ours, but
        // the record could name another path).
        let uid = peer_uid(&stream).map_err(socket_error)?;
        if uid != own_uid() {
            return Err(CliError::Protocol(format!(
                "the socket {} belongs to uid {uid}, not to this user",
                record.socket.display()
            )));
        }
        let mut client = Client {
            stream,
            reader: LineReader::new(MAX_REPLY_BYTES),
            next_id: 1,
            pid: record.pid,
        };
        let hello = client.call("hello", json!({"protocol": PROTOCOL_VERSION}), GRACE)?;
        if let Some(pid) = hello.get("pid").and_then(Json::as_u64) {
            client.pid = u32::try_from(pid).unwrap_or(client.pid);
        }
        Ok(Some(client))
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends `method(params)` and waits at most `timeout` for its reply.
    ///
    /// # Errors
    /// [`CliError::Remote`] for an error reply; [`CliError::Socket`] if the connection
    /// fails or times out; [`CliError::Protocol`] for a reply that is not one.
    pub fn call(
        &mut self,
        method: &str,
        params: Json,
        timeout: Duration,
    ) -> Result<Json, CliError> {
        let id = self.next_id;
        self.next_id += 1;
        let io_error = |source| CliError::Socket {
            path: PathBuf::from("(daemon connection)"),
            source,
        };
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .map_err(io_error)?;
        self.stream
            .write_all(request_line(id, method, params).as_bytes())
            .map_err(io_error)?;
        let line = match self.reader.next_line(&mut self.stream).map_err(io_error)? {
            Line::Text(line) => line,
            Line::TooLong => return Err(CliError::Protocol("a reply over 256 MiB".to_owned())),
            Line::End => {
                return Err(CliError::Protocol(
                    "the daemon closed the connection without a reply".to_owned(),
                ));
            }
        };
        parse_reply(&line)
            .map_err(CliError::Protocol)?
            .map_err(CliError::Remote)
    }
}

/// How to start a daemon.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// The store directory.
    pub store: PathBuf,
    /// Share one synced commit among many cranks.
    pub group_commit: bool,
    /// The `ocap` program to run as `ocap serve`.
    pub program: PathBuf,
    /// How long to wait for it to answer.
    pub timeout: Duration,
    /// Have the daemon write the crank log here (`--crank-log`; a relative path is taken
    /// from this process's directory).
    pub crank_log: Option<CrankLogOptions>,
    /// More flags for `ocap serve` (the operator's confinement flags).
    pub serve_args: Vec<String>,
}

/// Starts `ocap serve` on the store in the background (its own process group, output
/// appended to `<store>/daemon.log`) and waits until it answers `hello`. Returns its pid.
///
/// # Errors
/// [`CliError::DaemonRunning`] if a daemon already serves the store;
/// [`CliError::DaemonStart`] if it exited or did not answer in time, with the end of its log.
pub fn start_daemon(options: &StartOptions) -> Result<u32, CliError> {
    let store = &options.store;
    if let Some(client) = Client::connect(store)? {
        return Err(CliError::DaemonRunning {
            store: store.clone(),
            pid: client.pid(),
        });
    }
    let start_error = |reason: String| CliError::DaemonStart { reason, code: None };
    fs::create_dir_all(store).map_err(|e| start_error(format!("cannot create the store: {e}")))?;
    let log_path = store.join(LOG_FILE);
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&log_path)
        .map_err(|e| start_error(format!("cannot open {}: {e}", log_path.display())))?;
    let log_start = log.metadata().map_or(0, |m| m.len());
    let stderr = log
        .try_clone()
        .map_err(|e| start_error(format!("cannot open {}: {e}", log_path.display())))?;
    let mut command = Command::new(&options.program);
    command.arg("serve").arg("--store").arg(store);
    if options.group_commit {
        command.arg("--group-commit");
    }
    if let Some(crank_log) = &options.crank_log {
        let path = std::path::absolute(&crank_log.path).map_err(CliError::Spawn)?;
        command.arg("--crank-log").arg(path);
        command.arg(format!("--crank-log-max-bytes={}", crank_log.max_bytes));
    }
    command.args(&options.serve_args);
    // Its own process group: a Ctrl-C meant for the shell's foreground job misses it.
    let mut child = command
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(stderr)
        .process_group(0)
        .spawn()
        .map_err(CliError::Spawn)?;
    let deadline = Instant::now() + options.timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(CliError::DaemonStart {
                reason: log_since(&log_path, log_start),
                code: status.code(),
            });
        }
        let record = DaemonRecord::read(store);
        if record.is_some_and(|r| r.pid == child.id())
            && let Some(client) = Client::connect(store)?
        {
            return Ok(client.pid());
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(start_error(format!(
                "no answer within {:?}; its log: {}",
                options.timeout,
                log_path.display()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What the log says past `start`, its last lines: why a daemon did not start.
fn log_since(path: &Path, start: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path)
        && file.seek(SeekFrom::Start(start)).is_ok()
    {
        let _ = file.take(64 * 1024).read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = lines[lines.len().saturating_sub(5)..].join("\n");
    if tail.is_empty() {
        "it exited without a word".to_owned()
    } else {
        tail
    }
}

/// Asks the daemon serving `store` to stop and waits until it has: the kernel shut down,
/// its commits flushed, the socket removed, the store's lock released. Returns its pid.
///
/// # Errors
/// [`CliError::NoDaemon`] if none serves the store; as [`Client::call`].
pub fn stop_daemon(store: &Path, timeout: Duration) -> Result<u32, CliError> {
    let mut client = Client::connect(store)?.ok_or_else(|| CliError::NoDaemon {
        store: store.to_path_buf(),
    })?;
    client.call("shutdown", json!({}), timeout)?;
    Ok(client.pid())
}

/// Where a command runs: through the daemon serving the store, or on a kernel this process
/// opened on it (then it runs until idle before it closes, so what the command queued is
/// delivered).
#[derive(Debug)]
pub struct Session {
    inner: Inner,
    timeout: Duration,
}

#[derive(Debug)]
enum Inner {
    Daemon(Client),
    Local { kernel: Kernel, ctx: Box<Context> },
}

impl Session {
    /// Connects to the daemon serving `store`, or opens the store's kernel in this process
    /// if none does; offline, a missing store is made only if `creates` (a launch), so that
    /// a command that acts on a store never leaves an empty one behind. `timeout` bounds
    /// each call and, offline, the run to idle.
    ///
    /// # Errors
    /// As [`Client::connect`]; [`CliError::NoStore`] if there is no store and `creates` is
    /// false; [`CliError::Kernel`] if the kernel cannot be opened.
    pub fn open(
        store: &Path,
        timeout: Duration,
        worker_program: Option<PathBuf>,
        creates: bool,
    ) -> Result<Session, CliError> {
        let inner = match Client::connect(store)? {
            Some(client) => Inner::Daemon(client),
            None if !creates && !store.join("data.mdb").is_file() => {
                return Err(CliError::NoStore {
                    store: store.to_path_buf(),
                });
            }
            None => {
                let mut config = KernelConfig::new(registry());
                // `ocap-launch` beside the `ocap` binary confines its workers, or `ocap`.
                config.workers.confinement.launcher =
                    worker_program.as_deref().map(crate::launcher_for);
                config.workers.program = worker_program;
                config.bootstrap_timeout = timeout;
                let ctx = Context::new(store.to_path_buf(), Durability::EveryCrank, false);
                let kernel = Kernel::open(store, config)?;
                Inner::Local {
                    kernel,
                    ctx: Box::new(ctx),
                }
            }
        };
        Ok(Session { inner, timeout })
    }

    /// The session through the daemon serving `store`, `None` if none does.
    ///
    /// # Errors
    /// As [`Client::connect`].
    pub fn daemon(store: &Path, timeout: Duration) -> Result<Option<Session>, CliError> {
        Ok(Client::connect(store)?.map(|client| Session {
            inner: Inner::Daemon(client),
            timeout,
        }))
    }

    /// True when the commands go through a daemon.
    pub fn is_daemon(&self) -> bool {
        matches!(self.inner, Inner::Daemon(_))
    }

    /// Runs `method(params)`.
    ///
    /// # Errors
    /// [`CliError::Remote`] for the method's error, as the daemon would reply it.
    pub fn call(&mut self, method: &str, params: Json) -> Result<Json, CliError> {
        match &mut self.inner {
            Inner::Daemon(client) => client.call(method, params, self.timeout + GRACE),
            Inner::Local { kernel, ctx } => {
                dispatch(kernel, ctx, method, &params).map_err(CliError::Remote)
            }
        }
    }

    /// Ends the session; a kernel of its own runs until idle, then shuts down.
    ///
    /// # Errors
    /// [`CliError::Kernel`] if the kernel does not go idle in time or fails to shut down.
    pub fn finish(self) -> Result<(), CliError> {
        if let Inner::Local { kernel, .. } = self.inner {
            let idle = kernel.run_until_idle(self.timeout);
            kernel.shutdown()?;
            idle?;
        }
        Ok(())
    }
}
