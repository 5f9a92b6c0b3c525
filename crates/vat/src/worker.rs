//! The worker side of the subprocess vat protocol (spec §12.3, `docs/vat-protocol.md`):
//! [`serve`] drives any `VatRuntime` from length-prefixed CBOR frames, so the same vat code
//! runs in the kernel's process or in a child process of its own.
//!
//! Invariant: everything a delivery emits (its `Syscall` and `Log` frames, in emission
//! order) is written before its `Done`. The output is flushed once per answer (after `Done`
//! or `Pong`) and after each `Log`, so the logs of a delivery that hangs still reach the
//! kernel; syscalls are never flushed on their own. Nothing else is ever written to the
//! output: diagnostics go to stderr. A panic in vat code becomes a failed `Done`, as it does
//! in process. A start's vat store arrives in `State` frames after its `Start`; the worker
//! holds no more of it than the `Start` announced, and any frame that does not fit the
//! announcement ends serving with [`WorkerError::Start`] (the kernel is gone or broken, and
//! the stream cannot be trusted to be in step any more).

mod input;
#[cfg(test)]
mod tests;

use std::io::{self, BufReader, BufWriter, Read, Write};

use ocap_types::{
    Delivery, DeliveryOutcome, FrameError, FrameReader, FrameWriter, Hello, KernelFrame,
    PROTOCOL_VERSION, StartAssembler, StateError, Syscall, VatHost, VatLog, VatRuntime, VatStart,
    WorkerFrame, decode_frame_body, start_protocol,
};

use crate::{Baggage, Ref, Result, Runtime, Val, Vat};

/// Why a worker stopped serving, other than the kernel closing its input or asking it to
/// shut down (which end [`serve`] with `Ok`).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WorkerError {
    /// The kernel's input could not be read or held a bad frame.
    #[error("cannot read a frame from the kernel")]
    Read(#[source] FrameError),
    /// A start's vat store did not add up to what its header announced, or other frames
    /// came before it was complete.
    #[error("bad start from the kernel: {0}")]
    Start(StateError),
    /// A frame could not be written to the kernel.
    #[error("cannot write a frame to the kernel")]
    Write(#[source] FrameError),
    /// The kernel speaks another version of the protocol (its `Start` said so). The worker
    /// announced its own version in `Hello` before it stopped.
    #[error(
        "the kernel speaks vat protocol version {kernel}, this worker speaks version {worker}: \
         build the vat against the ocap-vat of the kernel's release"
    )]
    Version {
        /// The kernel's version (0: a kernel older than protocol versions).
        kernel: u32,
        /// This worker's version, [`PROTOCOL_VERSION`].
        worker: u32,
    },
    /// The standard streams could not be opened.
    #[error("cannot open the standard streams")]
    Stdio(#[source] io::Error),
}

/// Serves one vat: reads [`KernelFrame`]s from `input` and answers on `output` until the
/// kernel sends `Shutdown` or closes `input`.
///
/// `Start` and the `State` frames after it (the vat store, checked against the size the
/// `Start` announced) run [`VatRuntime::start`] once the store is complete (a second start
/// fails), `Deliver` runs [`VatRuntime::deliver`] (before the start it fails); both stream
/// the vat's syscalls and logs as frames and end with `Done`. `Ping` is answered with
/// `Pong`. A frame that would exceed the size limit turns the delivery into a failed
/// `Done`.
///
/// # Errors
/// [`WorkerError::Read`] for a truncated, oversized or malformed input frame or a read
/// failure; [`WorkerError::Start`] for `State` frames that do not add up to the announced
/// vat store, or any other frame but `Shutdown` among them; [`WorkerError::Write`] when the
/// output fails (the kernel is gone).
///
/// # Examples
/// ```
/// use ocap_types::{ByteBuf, DeliveryOutcome, FrameReader, FrameWriter, Hello, KernelFrame,
///     PROTOCOL_VERSION, Value, VatStart, WorkerFrame};
/// use ocap_vat::{Runtime, Val, Vat, Baggage, Ref, Result};
///
/// fn build(vat: &Vat, _: &Val, _: &Baggage) -> Result<Ref> {
///     Ok(vat.object("root").build())
/// }
///
/// let mut input = FrameWriter::new(Vec::new());
/// input.write(&KernelFrame::Ping)?;
/// let state = vec![("k".into(), ByteBuf(vec![1]))];
/// let start = VatStart { name: "v".into(), parameters: Value::Null, state };
/// input.write_start(&start)?;
/// let mut output = Vec::new();
/// ocap_vat::worker::serve(Runtime::boxed(build), input.get_mut().as_slice(), &mut output)?;
///
/// let mut answers = FrameReader::new(output.as_slice());
/// assert_eq!(answers.read::<WorkerFrame>()?, WorkerFrame::Pong);
/// // The answer to a start begins with the worker's protocol version.
/// assert_eq!(answers.read::<WorkerFrame>()?, WorkerFrame::Hello(Hello { protocol: PROTOCOL_VERSION }));
/// assert!(matches!(answers.read::<WorkerFrame>()?, WorkerFrame::Done(DeliveryOutcome { error: None, .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn serve(
    mut runtime: Box<dyn VatRuntime>,
    input: impl Read,
    output: impl Write,
) -> Result<(), WorkerError> {
    let mut reader = FrameReader::new(BufReader::with_capacity(64 * 1024, input));
    let mut writer = FrameWriter::new(BufWriter::with_capacity(64 * 1024, output));
    let mut started = false;
    // The start whose vat store is arriving.
    let mut receiving: Option<StartAssembler> = None;
    loop {
        // A `Start` of another version may hold what this version cannot read: its
        // `protocol` key is read on its own then.
        let frame = reader.read_with(|body| match decode_frame_body::<KernelFrame>(body) {
            Ok(frame) => Ok(Ok(frame)),
            Err(error) => match start_protocol(body) {
                Some(kernel) if kernel != PROTOCOL_VERSION => Ok(Err(kernel)),
                _ => Err(error),
            },
        });
        let frame = match frame {
            Ok(Ok(KernelFrame::Start(header))) if header.protocol != PROTOCOL_VERSION => {
                return refuse(&mut writer, header.protocol);
            }
            Ok(Ok(frame)) => frame,
            Ok(Err(kernel)) => return refuse(&mut writer, kernel),
            Err(FrameError::Eof) => return Ok(()),
            Err(error) => return Err(WorkerError::Read(error)),
        };
        if let Some(assembler) = receiving.as_mut() {
            match frame {
                KernelFrame::State(chunk) => assembler.push(chunk).map_err(WorkerError::Start)?,
                KernelFrame::Shutdown => return writer.flush().map_err(WorkerError::Write),
                other => {
                    let frame = kind(&other);
                    return Err(WorkerError::Start(StateError::Interrupted { frame }));
                }
            }
        } else {
            match frame {
                KernelFrame::Start(header) => {
                    // The first frame of every answer to a start: this worker's version.
                    hello(&mut writer)?;
                    receiving = Some(StartAssembler::new(header));
                }
                KernelFrame::State(_) => return Err(WorkerError::Start(StateError::Stray)),
                KernelFrame::Deliver(delivery) => {
                    let outcome = if started {
                        run(&mut writer, |host| runtime.deliver(delivery, host))?
                    } else {
                        DeliveryOutcome::failed("cannot deliver before the vat is started")
                    };
                    finish(&mut writer, outcome)?;
                }
                KernelFrame::Ping => {
                    writer
                        .write(&WorkerFrame::Pong)
                        .map_err(WorkerError::Write)?;
                    writer.flush().map_err(WorkerError::Write)?;
                }
                KernelFrame::Shutdown => return writer.flush().map_err(WorkerError::Write),
            }
        }
        if let Some(assembler) = receiving.take_if(|assembler| assembler.is_complete()) {
            let start = assembler.finish().map_err(WorkerError::Start)?;
            let outcome = if started {
                DeliveryOutcome::failed("received Start after the vat was started")
            } else {
                started = true;
                run(&mut writer, |host| runtime.start(start, host))?
            };
            finish(&mut writer, outcome)?;
        }
    }
}

/// [`serve`] on this process's standard input and output, unbuffered underneath (the
/// standard output handle is line-buffered, and frames are binary), for a worker program's
/// `main`. Nothing else in the process may write to standard output.
///
/// # Errors
/// As [`serve`]; [`WorkerError::Stdio`] when the streams cannot be opened.
pub fn serve_stdio(runtime: Box<dyn VatRuntime>) -> Result<(), WorkerError> {
    #[cfg(unix)]
    {
        use std::os::fd::AsFd;
        let open = |fd: std::os::fd::BorrowedFd<'_>| {
            fd.try_clone_to_owned()
                .map(std::fs::File::from)
                .map_err(WorkerError::Stdio)
        };
        let input = input::Input::new(open(io::stdin().as_fd())?);
        let output = open(io::stdout().as_fd())?;
        serve(runtime, input, output)
    }
    #[cfg(not(unix))]
    {
        serve(runtime, io::stdin().lock(), io::stdout().lock())
    }
}

/// The whole `main` of a vat built as its own executable: serves the vat `build` builds on
/// standard input and output, and exits.
///
/// The kernel runs a vat named by `bundlePath` in a cluster file as `<program> worker
/// <vat-name>` (`docs/vat-protocol.md`); anything else on the command line (run by hand,
/// say) prints what the program is to standard error and exits with status 2. It exits 0
/// when the kernel shuts the worker down or closes its input, and 1 with the reason on
/// standard error when the protocol fails ([`WorkerError`]). Standard output carries the
/// protocol's frames: nothing else in the program may print to it (use the vat's logger,
/// or standard error, which the kernel forwards to its log).
///
/// ```no_run
/// use ocap_vat::{Baggage, Ref, Result, Val, Vat};
///
/// fn build(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
///     Ok(vat.object("root").build())
/// }
///
/// fn main() {
///     ocap_vat::worker::main(build)
/// }
/// ```
pub fn main(build: impl FnOnce(&Vat, &Val, &Baggage) -> Result<Ref> + 'static) -> ! {
    let program = std::env::args_os()
        .next()
        .map(|arg| arg.to_string_lossy().into_owned())
        .unwrap_or_else(|| "vat".to_owned());
    let args: Vec<_> = std::env::args_os().skip(1).collect();
    if let Err(usage) = check_args(&program, &args) {
        eprintln!("{usage}");
        std::process::exit(2);
    }
    match serve_stdio(Runtime::boxed(build)) {
        Ok(()) => std::process::exit(0),
        Err(error) => {
            let mut text = error.to_string();
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                text.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("{program}: {text}");
            std::process::exit(1)
        }
    }
}

/// Checks a vat executable's arguments (after the program name): `worker` and, optionally,
/// the vat's name. `Err` is the usage text.
fn check_args(program: &str, args: &[std::ffi::OsString]) -> std::result::Result<(), String> {
    match args {
        [command] | [command, _] if command == "worker" => Ok(()),
        _ => Err(format!(
            "{program} is an ocap vat: the kernel runs it as `{program} worker <vat-name>` and \
             speaks the vat protocol on its standard input and output.\n\
             Name it in a cluster file, e.g. {{\"bootstrap\": \"v\", \"vats\": {{\"v\": \
             {{\"bundlePath\": \"./path/to/this/program\"}}}}}}, and run `ocap run cluster.json`."
        )),
    }
}

/// A runtime for a vat code name the worker program does not know: its `start` fails with
/// `no vat named "<name>" is registered`, so the kernel's launch error says why.
pub fn unknown_vat(name: &str) -> Box<dyn VatRuntime> {
    Box::new(UnknownVat(name.to_owned()))
}

struct UnknownVat(String);

impl VatRuntime for UnknownVat {
    fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::failed(format!("no vat named {:?} is registered", self.0))
    }

    fn deliver(&mut self, _: Delivery, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::failed(format!("no vat named {:?} is registered", self.0))
    }
}

/// The [`VatHost`] of a worker: every syscall and log becomes a frame on the output.
struct FrameHost<'a, W: Write> {
    writer: &'a mut FrameWriter<W>,
    /// The first failure; later frames of the delivery are dropped.
    failed: Option<FrameError>,
}

impl<W: Write> FrameHost<'_, W> {
    fn send(&mut self, frame: &WorkerFrame) {
        if self.failed.is_none()
            && let Err(error) = self.writer.write(frame)
        {
            self.failed = Some(error);
        }
    }
}

impl<W: Write> VatHost for FrameHost<'_, W> {
    fn syscall(&mut self, syscall: Syscall) {
        self.send(&WorkerFrame::Syscall(syscall));
    }

    fn log(&mut self, log: VatLog) {
        self.send(&WorkerFrame::Log(log));
        if self.failed.is_none()
            && let Err(error) = self.writer.flush()
        {
            self.failed = Some(error);
        }
    }
}

/// The name of a kernel frame's kind, for errors.
fn kind(frame: &KernelFrame) -> &'static str {
    match frame {
        KernelFrame::Start(_) => "Start",
        KernelFrame::State(_) => "State",
        KernelFrame::Deliver(_) => "Deliver",
        KernelFrame::Ping => "Ping",
        KernelFrame::Shutdown => "Shutdown",
    }
}

/// Runs `f` (a start or a delivery) with a frame host, catching a panic in vat code.
fn run<W: Write>(
    writer: &mut FrameWriter<W>,
    f: impl FnOnce(&mut dyn VatHost) -> DeliveryOutcome,
) -> Result<DeliveryOutcome, WorkerError> {
    let mut host = FrameHost {
        writer,
        failed: None,
    };
    let outcome = ocap_types::run_guarded(|| f(&mut host));
    match host.failed {
        None => Ok(outcome),
        Some(FrameError::Oversized { len, max }) => Ok(DeliveryOutcome::failed(format!(
            "vat worker could not send a frame of {len} bytes (limit {max})"
        ))),
        Some(error) => Err(WorkerError::Write(error)),
    }
}

/// Writes this worker's `Hello`. It is flushed with the start's `Done`, or at once when the
/// worker refuses the kernel.
fn hello<W: Write>(writer: &mut FrameWriter<W>) -> Result<(), WorkerError> {
    let hello = WorkerFrame::Hello(Hello {
        protocol: PROTOCOL_VERSION,
    });
    writer.write(&hello).map_err(WorkerError::Write)
}

/// Answers a start of another protocol version: `Hello` (so the kernel can say which
/// versions differ), flushed, then [`WorkerError::Version`].
fn refuse<W: Write>(writer: &mut FrameWriter<W>, kernel: u32) -> Result<(), WorkerError> {
    hello(writer)?;
    writer.flush().map_err(WorkerError::Write)?;
    Err(WorkerError::Version {
        kernel,
        worker: PROTOCOL_VERSION,
    })
}

/// Writes `Done` and flushes: the one flush of a delivery.
fn finish<W: Write>(
    writer: &mut FrameWriter<W>,
    outcome: DeliveryOutcome,
) -> Result<(), WorkerError> {
    let done = WorkerFrame::Done(outcome);
    match writer.write(&done) {
        Ok(()) => {}
        Err(FrameError::Oversized { len, max }) => {
            let failed = DeliveryOutcome::failed(format!(
                "vat worker could not send an outcome of {len} bytes (limit {max})"
            ));
            writer
                .write(&WorkerFrame::Done(failed))
                .map_err(WorkerError::Write)?;
        }
        Err(error) => return Err(WorkerError::Write(error)),
    }
    writer.flush().map_err(WorkerError::Write)
}
