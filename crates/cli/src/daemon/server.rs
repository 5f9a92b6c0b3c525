//! `ocap serve`: a kernel on a store, serving the control protocol on its socket until a
//! client asks it to stop.
//!
//! One thread per connection (at most [`MAX_CONNECTIONS`]), all scoped inside the accept
//! loop, so that when it ends every connection has ended and the kernel can be shut down
//! (its pending commits flushed) before the client that asked is answered. Connections poll
//! a stop flag between reads, and waiting `send`s between slices of their wait.

use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError};
use std::time::Duration;

use ocap_kernel::{Confinement, CrankLogSink, CrankRecord, Durability, KRef, Kernel, KernelConfig};
use parking_lot::Mutex;
use serde_json::{Value as Json, json};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use super::methods::{Context, dispatch, hello};
use super::protocol::{
    INVALID_REQUEST, Line, LineReader, MAX_LINE_BYTES, PROTOCOL_MISMATCH, PROTOCOL_VERSION,
    Request, RpcError, parse_request, reply_line,
};
use super::socket::{ControlSocket, own_uid, peer_uid};
use crate::crank_log::{CrankLogOptions, open_crank_log, record_json};
use crate::{CliError, registry};

/// How many clients may be connected at once; one more is answered with an error.
pub const MAX_CONNECTIONS: usize = 64;
/// How often an idle connection looks whether the daemon is stopping.
const POLL: Duration = Duration::from_millis(200);
/// How long a reply may wait for a client that does not read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// The error code for a peer of another user.
const FORBIDDEN: i64 = -32011;

/// How to serve a store.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// The store directory.
    pub store: PathBuf,
    /// Share one synced commit among many cranks.
    pub group_commit: bool,
    /// The program subprocess vats run in (`<program> worker <vat>`).
    pub worker_program: Option<PathBuf>,
    /// Write the crank log here (`--crank-log`).
    pub crank_log: Option<CrankLogOptions>,
    /// How worker processes are confined (the operator's flags; the launcher is `ocap`).
    pub confinement: Confinement,
}

/// A client waiting for the answer to its `shutdown`.
type Stopper = (UnixStream, Json);

/// Opens the kernel on the store, binds the control socket and serves it until a
/// `shutdown` request; then shuts the kernel down, removes the socket and answers.
///
/// # Errors
/// [`CliError::Kernel`] if the kernel cannot be opened (the store is in use: another daemon
/// serves it) or fails to shut down; [`CliError::Socket`] if the socket cannot be bound.
pub fn serve(options: &ServeOptions) -> Result<(), CliError> {
    // Set before anything is created: the store's files are the user's alone too.
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
    let mut config = KernelConfig::new(registry());
    config.workers.program = options.worker_program.clone();
    config.workers.confinement = options.confinement.clone();
    // Unless one is named, the launcher is `ocap-launch` beside the worker program (`ocap`),
    // or the program itself ([`crate::launcher_for`]).
    if config.workers.confinement.launcher.is_none() {
        config.workers.confinement.launcher =
            options.worker_program.as_deref().map(crate::launcher_for);
    }
    if options.group_commit {
        config.durability = Durability::GROUP;
    }
    let durability = config.durability;
    // With a crank-log file the kernel records every crank; without one, only while a
    // client subscribes (recording copies every crank's syscalls).
    let subscribers = Subscribers::new(options.crank_log.is_some());
    let writer = match &options.crank_log {
        Some(log) => {
            let (file_sink, writer) = open_crank_log(log)?;
            config.crank_log = Some(subscribers.sink(Some(file_sink)));
            Some((writer, &log.path))
        }
        None => None,
    };
    let res = serve_kernel(options, config, durability, &subscribers);
    // The kernel is gone, with the sink it held: the writer ends once it wrote everything.
    if let Some((writer, path)) = writer {
        writer.finish(path)?;
    }
    res
}

/// Serves the control socket on a kernel opened with `config` until a `shutdown`.
fn serve_kernel(
    options: &ServeOptions,
    config: KernelConfig,
    durability: Durability,
    subscribers: &Subscribers,
) -> Result<(), CliError> {
    let kernel = Kernel::open(&options.store, config)?;
    let socket_error = |source| CliError::Socket {
        path: options.store.clone(),
        source,
    };
    let store = options.store.canonicalize().map_err(socket_error)?;
    let socket = ControlSocket::bind(&store, PROTOCOL_VERSION).map_err(socket_error)?;
    tracing::info!(socket = %socket.path.display(), store = %store.display(), "daemon serving");
    eprintln!(
        "ocap serve: serving {} on {}",
        store.display(),
        socket.path.display()
    );
    let ctx = Context::new(store, durability, true);
    let (stoppers, stopped) = mpsc::channel::<Stopper>();
    // SIGTERM (systemd, `kill`) and SIGINT (Ctrl-C) stop the daemon as `shutdown` does.
    let signals = Signals::new([SIGTERM, SIGINT]).map_err(socket_error)?;
    accept_loop(&socket, &kernel, &ctx, &stoppers, subscribers, signals);
    socket.remove();
    let res = kernel.shutdown();
    tracing::info!("daemon stopped");
    let answer = match &res {
        Ok(()) => Ok(json!({"stopped": true})),
        Err(error) => Err(RpcError::new(
            RpcError::code_of(crate::Failure::Internal),
            error.to_string(),
        )),
    };
    for (mut stream, id) in stopped.try_iter() {
        let _ = stream.write_all(reply_line(id, answer.clone()).as_bytes());
    }
    res?;
    Ok(())
}

/// Accepts connections until a `shutdown` or one of `signals` sets the stop flag and wakes
/// it.
fn accept_loop(
    socket: &ControlSocket,
    kernel: &Kernel,
    ctx: &Context,
    stoppers: &Sender<Stopper>,
    subscribers: &Subscribers,
    mut signals: Signals,
) {
    let active = AtomicUsize::new(0);
    let signals_handle = signals.handle();
    std::thread::scope(|scope| {
        let wake = &socket.path;
        scope.spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tracing::info!(signal, "stopping on a signal");
                ctx.stopping.store(true, Ordering::SeqCst);
                let _ = UnixStream::connect(wake);
            }
        });
        for stream in socket.listener.incoming() {
            if ctx.stopping.load(Ordering::SeqCst) {
                break;
            }
            let mut stream = match stream {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            };
            if active.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                let error = RpcError::new(INVALID_REQUEST, "too many connections");
                let _ = stream.write_all(reply_line(Json::Null, Err(error)).as_bytes());
                continue;
            }
            active.fetch_add(1, Ordering::SeqCst);
            let (active, wake, stoppers) = (&active, &socket.path, stoppers.clone());
            scope.spawn(move || {
                let on = Connection {
                    kernel,
                    ctx,
                    wake,
                    stoppers: &stoppers,
                    subscribers,
                };
                if let Err(error) = serve_connection(stream, &on) {
                    tracing::debug!(%error, "connection ended");
                }
                active.fetch_sub(1, Ordering::SeqCst);
            });
        }
        // Ends the signal thread if no signal came (the scope waits for it).
        signals_handle.close();
    });
}

/// Serves one client: its peer uid checked, then requests one by one until it leaves, asks
/// to stop, or the daemon stops.
fn serve_connection(mut stream: UnixStream, on: &Connection<'_>) -> io::Result<()> {
    let Connection {
        kernel,
        ctx,
        wake,
        stoppers,
        subscribers,
    } = *on;
    let uid = peer_uid(&stream)?;
    if uid != own_uid() {
        tracing::warn!(uid, "refused a client of another user");
        let error = RpcError::new(FORBIDDEN, "the daemon serves only its own user");
        return stream.write_all(reply_line(Json::Null, Err(error)).as_bytes());
    }
    stream.set_read_timeout(Some(POLL))?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let mut reader = LineReader::new(MAX_LINE_BYTES);
    let mut greeted = false;
    // Released however the connection ends.
    let mut session = SessionRefs {
        kernel,
        refs: Vec::new(),
    };
    while !ctx.stopping.load(Ordering::SeqCst) {
        let line = match reader.next_line(&mut stream) {
            Ok(line) => line,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(e) => return Err(e),
        };
        let reply = match line {
            Line::End => return Ok(()),
            Line::TooLong => {
                let message = format!("request line longer than {MAX_LINE_BYTES} bytes");
                reply_line(Json::Null, Err(RpcError::new(INVALID_REQUEST, message)))
            }
            Line::Text(bytes) => match parse_request(&bytes) {
                Err(bad) => {
                    let (id, error) = *bad;
                    reply_line(id, Err(error))
                }
                Ok(request) if request.method == "shutdown" && greeted => {
                    ctx.stopping.store(true, Ordering::SeqCst);
                    let _ = stoppers.send((stream.try_clone()?, request.id));
                    // Wakes the accept loop, which then sees the flag.
                    let _ = UnixStream::connect(wake);
                    return Ok(());
                }
                Ok(request) if request.method == "subscribeCranks" && greeted => {
                    return stream_cranks(stream, request.id, kernel, ctx, subscribers);
                }
                Ok(request) => {
                    let id = request.id.clone();
                    let result = answer(kernel, ctx, &request, &mut greeted);
                    session.hold(&request, &result);
                    reply_line(id, result)
                }
            },
        };
        stream.write_all(reply.as_bytes())?;
    }
    Ok(())
}

/// Client text echoed in an error, cut short.
fn cut(text: &str) -> String {
    text.chars().take(64).collect()
}

/// The answer to a request other than `shutdown`: `hello` first, then any method.
fn answer(
    kernel: &Kernel,
    ctx: &Context,
    request: &Request,
    greeted: &mut bool,
) -> Result<Json, RpcError> {
    if request.method == "hello" {
        let asked = request.params.get("protocol").and_then(Json::as_u64);
        if asked != Some(PROTOCOL_VERSION) {
            let mut error = RpcError::new(
                PROTOCOL_MISMATCH,
                format!(
                    "protocol version {} not supported: this daemon speaks {PROTOCOL_VERSION}",
                    cut(&request
                        .params
                        .get("protocol")
                        .unwrap_or(&Json::Null)
                        .to_string())
                ),
            );
            error.data = Some(json!({"supported": [PROTOCOL_VERSION]}));
            return Err(error);
        }
        *greeted = true;
        return Ok(hello());
    }
    if !*greeted {
        return Err(RpcError::new(
            PROTOCOL_MISMATCH,
            format!(
                r#"say hello first: {{"method": "hello", "params": {{"protocol": {PROTOCOL_VERSION}}}}}"#
            ),
        ));
    }
    dispatch(kernel, ctx, &request.method, &request.params)
}

/// What a connection's thread serves with.
#[derive(Clone, Copy)]
struct Connection<'a> {
    kernel: &'a Kernel,
    ctx: &'a Context,
    wake: &'a Path,
    stoppers: &'a Sender<Stopper>,
    subscribers: &'a Subscribers,
}

/// Crank records a subscriber may have waiting; one that falls further behind loses its
/// subscription (it is told so) rather than making the kernel wait or memory grow.
const SUBSCRIBER_BACKLOG: usize = 4096;

/// The connections that asked for crank records (`subscribeCranks`), each a bounded queue
/// of JSON-RPC notification lines.
#[derive(Clone)]
pub(crate) struct Subscribers {
    /// The queues the sink writes to; the sink (on the kernel thread) takes only this lock.
    list: Arc<Mutex<Vec<SyncSender<String>>>>,
    /// Connections streaming cranks now. Held while the kernel is told to install or remove
    /// the sink, so two connections cannot cross; never taken by the sink.
    streaming: Arc<Mutex<usize>>,
    /// The kernel has the sink for good (a crank-log file).
    installed_for_good: bool,
}

/// One connection streaming cranks; when the last one leaves, however it leaves, the
/// kernel stops recording.
struct Streaming<'a> {
    subscribers: &'a Subscribers,
    kernel: &'a Kernel,
}

impl Drop for Streaming<'_> {
    fn drop(&mut self) {
        let mut streaming = self.subscribers.streaming.lock();
        *streaming -= 1;
        if *streaming == 0
            && !self.subscribers.installed_for_good
            && let Err(error) = self.kernel.set_crank_log(None)
        {
            tracing::debug!(%error, "could not remove the crank-log sink");
        }
    }
}

impl Subscribers {
    fn new(installed_for_good: bool) -> Self {
        Subscribers {
            list: Arc::default(),
            streaming: Arc::default(),
            installed_for_good,
        }
    }

    /// Adds a streaming connection: its queue of records, and the guard that counts it. The
    /// first one has the kernel install the sink.
    fn join<'a>(
        &'a self,
        kernel: &'a Kernel,
    ) -> Result<(Receiver<String>, Streaming<'a>), ocap_kernel::KernelError> {
        let mut streaming = self.streaming.lock();
        if *streaming == 0 && !self.installed_for_good {
            kernel.set_crank_log(Some(self.sink(None)))?;
        }
        *streaming += 1;
        let guard = Streaming {
            subscribers: self,
            kernel,
        };
        Ok((self.add(), guard))
    }

    /// The kernel's crank-log sink: every record to `file` (the `--crank-log` writer), if
    /// any, and to every subscriber, as a `crank` notification. Called once the crank is
    /// durable.
    fn sink(&self, file: Option<CrankLogSink>) -> CrankLogSink {
        let subscribers = self.clone();
        Arc::new(move |record: &CrankRecord| {
            if let Some(file) = &file {
                file(record);
            }
            let mut list = subscribers.list.lock();
            if list.is_empty() {
                return;
            }
            let line = format!(
                "{}\n",
                json!({"jsonrpc": "2.0", "method": "crank", "params": record_json(record)})
            );
            list.retain(|subscriber| match subscriber.try_send(line.clone()) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    tracing::warn!("a crank subscriber fell behind and was dropped");
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            });
        })
    }

    fn add(&self) -> Receiver<String> {
        let (sender, receiver) = mpsc::sync_channel(SUBSCRIBER_BACKLOG);
        self.list.lock().push(sender);
        receiver
    }
}

/// Answers `subscribeCranks` (request `id`) once the kernel records cranks, then writes
/// crank notifications to the client until it leaves, falls behind or the daemon stops;
/// a kernel that cannot record them (it is stopping) is answered with the error. The
/// connection takes no more requests.
fn stream_cranks(
    mut stream: UnixStream,
    id: Json,
    kernel: &Kernel,
    ctx: &Context,
    subscribers: &Subscribers,
) -> io::Result<()> {
    let (records, _streaming) = match subscribers.join(kernel) {
        Ok(joined) => joined,
        Err(error) => return stream.write_all(reply_line(id, Err(error.into())).as_bytes()),
    };
    stream.write_all(reply_line(id, Ok(json!({"subscribed": true}))).as_bytes())?;
    while !ctx.stopping.load(Ordering::SeqCst) {
        match records.recv_timeout(POLL) {
            Ok(line) => stream.write_all(line.as_bytes())?,
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                let notice = json!({"jsonrpc": "2.0", "method": "unsubscribed",
                                    "params": {"reason": "fell behind"}});
                return stream.write_all(format!("{notice}\n").as_bytes());
            }
        }
    }
    Ok(())
}

/// The results a client asked to hold for its session only (`send` with `session: true`):
/// released when its connection ends, however it ends, instead of by `release`.
struct SessionRefs<'a> {
    kernel: &'a Kernel,
    refs: Vec<KRef>,
}

impl SessionRefs<'_> {
    /// Notes the result promise of a successful `send` that asked for a session ref.
    fn hold(&mut self, request: &Request, result: &Result<Json, RpcError>) {
        if request.method != "send" || request.params.get("session") != Some(&Json::Bool(true)) {
            return;
        }
        let promise = result
            .as_ref()
            .ok()
            .and_then(|answer| answer.get("promise"))
            .and_then(Json::as_str)
            .and_then(|text| text.parse::<KRef>().ok());
        if let Some(kref) = promise {
            self.refs.push(kref);
        }
    }
}

impl Drop for SessionRefs<'_> {
    fn drop(&mut self) {
        for kref in self.refs.drain(..) {
            if let Err(error) = self.kernel.release(kref) {
                tracing::warn!(%kref, %error, "a session ref could not be released");
            }
        }
    }
}
