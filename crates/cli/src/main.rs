//! The `ocap` command: flags, printing, and exit codes (`ocap_cli::Failure`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ocap_cli::daemon::{self, ServeOptions, Session, StartOptions};
use ocap_cli::{
    CheckOptions, CliError, CrankLogOptions, EXIT_CODES, Failure, KernelCommand, RunOptions,
    Section, render, resolve_store, run_cluster, run_command,
};
use tracing_subscriber::EnvFilter;

/// Run clusters of vats on an object-capability kernel; inspect, check and back up their
/// stores.
#[derive(Parser)]
#[command(name = "ocap", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where a command acts, and how it prints.
#[derive(Args, Debug, Clone)]
struct On {
    /// The store directory (default: the user's store, $XDG_DATA_HOME/ocap/store). Through
    /// its daemon if one serves it, else on a kernel this command opens.
    #[arg(long)]
    store: Option<PathBuf>,
    /// Print the answer as JSON.
    #[arg(long)]
    json: bool,
    /// Seconds to wait for the kernel (a launch's bootstrap, a result, going idle).
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

/// `--crank-log`: one JSON line per durable crank.
#[derive(Args, Debug, Clone)]
struct CrankLogArgs {
    /// Append one JSON line per crank to FILE once the crank is durable: its number, the
    /// run-queue item, the outcome, the syscalls' kinds and the crank hash (README).
    #[arg(long, value_name = "FILE")]
    crank_log: Option<PathBuf>,
    /// Rotate the crank log (FILE becomes FILE.1) once it would pass this many bytes.
    #[arg(long, default_value_t = ocap_cli::DEFAULT_CRANK_LOG_MAX_BYTES, requires = "crank_log")]
    crank_log_max_bytes: u64,
}

impl CrankLogArgs {
    fn options(self) -> Option<CrankLogOptions> {
        Some(CrankLogOptions {
            path: self.crank_log?,
            max_bytes: self.crank_log_max_bytes,
        })
    }
}

#[derive(Subcommand)]
enum Command {
    /// Launch the subcluster in a cluster file, run it until idle, print the bootstrap result.
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The cluster config (JSON).
        cluster: PathBuf,
        /// Keep the kernel's store in this directory (default: the user's store,
        /// $XDG_DATA_HOME/ocap/store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Share one synced commit among many cranks.
        #[arg(long)]
        group_commit: bool,
        /// Seconds to wait for bootstrap and for the kernel to go idle.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        crank_log: CrankLogArgs,
    },
    /// List the kernel's vats (through its daemon, or offline); with --code, the vat code
    /// compiled into this binary instead.
    #[command(after_help = EXIT_CODES)]
    Vats {
        /// List the vat code compiled into this binary.
        #[arg(long)]
        code: bool,
        #[command(flatten)]
        on: On,
    },
    /// Show what a store holds: vats, subclusters, objects, promises, c-lists, the run
    /// queue, vat stores. Through the daemon if one serves the store; else opens it read-only.
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// One JSON object (a `{"rows": [...], "more": bool}` per section) instead of tables.
        #[arg(long)]
        json: bool,
        /// At most this many rows per section, in key order.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// The sections to show (default: all).
        #[arg(value_enum)]
        sections: Vec<Section>,
    },
    /// Verify a store: read every page in a child process, then audit refcounts, c-lists,
    /// queues and deciders. Exits 2 on violations, 4 if the store is damaged or in use. With
    /// a daemon serving the store, the daemon runs the audit and no page is walked.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// The store directory (or give it with --store; default: the user's store).
        dir: Option<PathBuf>,
        /// The store directory.
        #[arg(long, conflicts_with = "dir")]
        store: Option<PathBuf>,
        /// Print the outcome as a JSON object.
        #[arg(long)]
        json: bool,
        /// Seconds the page walk may take.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
    },
    /// Write a consistent, compacted copy of a store (no kernel may be running it) into
    /// DEST, a directory that must be missing or empty. `ocap check DEST` verifies it.
    #[command(after_help = EXIT_CODES)]
    Backup {
        /// Where the copy goes.
        dest: PathBuf,
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
    },
    /// Start, stop or ask about the daemon serving a store.
    #[command(after_help = EXIT_CODES)]
    Daemon {
        #[command(subcommand)]
        action: DaemonAction,
    },
    /// Run a kernel on a store in the foreground, serving the control protocol on a socket
    /// beside it until `ocap daemon stop` (what `ocap daemon start` runs in the background).
    #[command(after_help = EXIT_CODES)]
    Serve {
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Share one synced commit among many cranks.
        #[arg(long)]
        group_commit: bool,
        #[command(flatten)]
        crank_log: CrankLogArgs,
    },
    /// Launch the subcluster in a cluster file and print its bootstrap result.
    #[command(after_help = EXIT_CODES)]
    Launch {
        /// The cluster config (JSON), read by this command.
        cluster: PathBuf,
        #[command(flatten)]
        on: On,
    },
    /// Send METHOD(ARGS) to TARGET (a kref). ARGS is a JSON array in the JSON form of values
    /// (docs/control-protocol.md): `{"@undefined": null}` is undefined, `{"@slot": [i,
    /// null]}` the i-th --slot. Prints the result promise; with --wait, the result's value
    /// and its promise, which stays held for you until `ocap release` frees it.
    #[command(after_help = EXIT_CODES)]
    Send {
        /// The target: `ko<N>` or `kp<N>`.
        target: String,
        /// The method.
        method: String,
        /// The arguments, a JSON array (default: none).
        args: Option<String>,
        /// A kref the arguments name as `{"@slot": [index, iface]}`, in index order.
        #[arg(long = "slot")]
        slots: Vec<String>,
        /// Wait for the result (at most --timeout seconds) and print it.
        #[arg(long)]
        wait: bool,
        #[command(flatten)]
        on: On,
    },
    /// List the subclusters.
    #[command(after_help = EXIT_CODES)]
    Subclusters {
        #[command(flatten)]
        on: On,
    },
    /// Terminate a vat or a subcluster.
    #[command(after_help = EXIT_CODES)]
    Terminate {
        /// What to terminate.
        kind: TerminateKind,
        /// Its id: `v<N>` or `s<N>`.
        id: String,
        /// For a vat: the reason its pending results are rejected with.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        on: On,
    },
    /// Restart a vat: a fresh incarnation from its stored state.
    #[command(after_help = EXIT_CODES)]
    Restart {
        /// The vat: `v<N>`.
        vat: String,
        #[command(flatten)]
        on: On,
    },
    /// Revoke an object: later sends to it are rejected.
    #[command(after_help = EXIT_CODES)]
    Revoke {
        /// The object: `ko<N>`.
        kref: String,
        #[command(flatten)]
        on: On,
    },
    /// Pin a vat's root object so that it is never collected; prints its kref.
    #[command(after_help = EXIT_CODES)]
    Pin {
        /// The vat: `v<N>`.
        vat: String,
        #[command(flatten)]
        on: On,
    },
    /// Remove one pin from a vat's root object.
    #[command(after_help = EXIT_CODES)]
    Unpin {
        /// The vat: `v<N>`.
        vat: String,
        #[command(flatten)]
        on: On,
    },
    /// Release a result promise a send handed you (or a pinned object), so that it can be
    /// collected.
    #[command(after_help = EXIT_CODES)]
    Release {
        /// The kref.
        kref: String,
        #[command(flatten)]
        on: On,
    },
    /// Schedule a `bringOutYourDead` for every vat.
    #[command(after_help = EXIT_CODES)]
    Reap {
        #[command(flatten)]
        on: On,
    },
    /// Debug garbage collection: clean up terminated vats, collect what is unreachable.
    #[command(after_help = EXIT_CODES)]
    Gc {
        #[command(flatten)]
        on: On,
    },
    /// Read every page of a store without locking it (what `ocap check` runs in a child
    /// process while it holds the lock).
    #[command(name = "check-pages", hide = true)]
    CheckPages {
        /// The store directory.
        dir: PathBuf,
    },
    /// Serve one vat over the frame protocol on stdin/stdout (what the kernel runs for a
    /// vat with `"worker": "subprocess"`; see docs/vat-protocol.md).
    Worker {
        /// The vat code's name (as `ocap vats --code` lists it).
        vat: String,
    },
}

/// What `ocap terminate` terminates.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum TerminateKind {
    /// A vat.
    Vat,
    /// A subcluster.
    Subcluster,
}

#[derive(Subcommand)]
enum DaemonAction {
    /// Start a daemon on the store in the background (its output in the store's daemon.log); refused
    /// if one already serves it.
    Start {
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Share one synced commit among many cranks.
        #[arg(long)]
        group_commit: bool,
        /// Seconds to wait for it to answer.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        #[command(flatten)]
        crank_log: CrankLogArgs,
    },
    /// Stop the daemon serving the store: the kernel shuts down, its commits flushed.
    Stop {
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Seconds to wait for it to stop.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Say whether a daemon serves the store: pid, uptime, cranks, run queue, vats.
    Status {
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::from_env("OCAP_LOG"))
        .with_writer(std::io::stderr)
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout and succeed; a usage error is exit code 1, not
            // clap's 2 (which `ocap` gives to a cluster that did not come up).
            let _ = error.print();
            return if error.use_stderr() {
                Failure::Usage.into()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let name = command_name(&cli.command);
    match execute(cli.command) {
        Ok(code) => code,
        Err(error) => report(name, &error),
    }
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Run { .. } => "ocap",
        Command::Vats { .. } => "ocap vats",
        Command::Inspect { .. } => "ocap inspect",
        Command::Check { .. } => "ocap check",
        Command::Backup { .. } => "ocap backup",
        Command::Daemon { .. } => "ocap daemon",
        Command::Serve { .. } => "ocap serve",
        Command::Launch { .. } => "ocap launch",
        Command::Send { .. } => "ocap send",
        Command::Subclusters { .. } => "ocap subclusters",
        Command::Terminate { .. } => "ocap terminate",
        Command::Restart { .. } => "ocap restart",
        Command::Revoke { .. } => "ocap revoke",
        Command::Pin { .. } => "ocap pin",
        Command::Unpin { .. } => "ocap unpin",
        Command::Release { .. } => "ocap release",
        Command::Reap { .. } => "ocap reap",
        Command::Gc { .. } => "ocap gc",
        Command::CheckPages { .. } => "ocap check-pages",
        Command::Worker { .. } => "ocap worker",
    }
}

/// Prints the error with its causes and returns its class's exit code.
fn report(name: &str, error: &CliError) -> ExitCode {
    eprintln!("{name}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        eprintln!("  caused by: {cause}");
        source = cause.source();
    }
    Failure::of(error).into()
}

fn execute(command: Command) -> Result<ExitCode, CliError> {
    if let Some((on, kernel_command)) = kernel_command(&command) {
        return kernel_command_on(on, &kernel_command);
    }
    match command {
        Command::Run {
            cluster,
            store,
            group_commit,
            timeout,
            crank_log,
        } => {
            let options = RunOptions {
                store: Some(resolve_store(store.as_deref())?),
                group_commit,
                timeout: Duration::from_secs(timeout),
                // Subprocess vats run in this same binary: `ocap worker <vat>`.
                worker_program: std::env::current_exe().ok(),
                crank_log: crank_log.options(),
            };
            let result = run_cluster(&cluster, &options)?;
            println!("{}", render(&result));
            Ok(ExitCode::SUCCESS)
        }
        Command::Vats { code: true, .. } => {
            for name in ocap_cli::registry().names() {
                println!("{name}");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Inspect {
            store,
            json,
            limit,
            sections,
        } => inspect(store.as_deref(), json, limit, &sections),
        Command::Check {
            dir,
            store,
            json,
            timeout,
        } => check(dir.or(store).as_deref(), json, timeout),
        Command::Backup { dest, store } => {
            let store = resolve_store(store.as_deref())?;
            ocap_cli::backup_store(&store, &dest)?;
            println!("backed up {} to {}", store.display(), dest.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Daemon { action } => daemon(action),
        Command::Serve {
            store,
            group_commit,
            crank_log,
        } => {
            let options = ServeOptions {
                store: resolve_store(store.as_deref())?,
                group_commit,
                worker_program: std::env::current_exe().ok(),
                crank_log: crank_log.options(),
            };
            daemon::serve(&options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckPages { dir } => {
            println!("{}", ocap_cli::check_pages(&dir)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { vat } => Ok(worker(&vat)),
        _ => unreachable!("kernel commands are handled above"),
    }
}

/// The kernel command a command is, with where it acts; `None` if it is none.
fn kernel_command(command: &Command) -> Option<(&On, KernelCommand)> {
    Some(match command {
        Command::Vats { code: false, on } => (on, KernelCommand::Vats),
        Command::Launch { cluster, on } => (
            on,
            KernelCommand::Launch {
                cluster: cluster.clone(),
            },
        ),
        Command::Send {
            target,
            method,
            args,
            slots,
            wait,
            on,
        } => {
            let send = KernelCommand::Send {
                target: target.clone(),
                method: method.clone(),
                args: args.clone(),
                slots: slots.clone(),
                wait: *wait,
                timeout: Duration::from_secs(on.timeout),
            };
            (on, send)
        }
        Command::Subclusters { on } => (on, KernelCommand::Subclusters),
        Command::Terminate {
            kind: TerminateKind::Vat,
            id,
            reason,
            on,
        } => {
            let (vat, reason) = (id.clone(), reason.clone());
            (on, KernelCommand::TerminateVat { vat, reason })
        }
        Command::Terminate { id, on, .. } => {
            let subcluster = id.clone();
            (on, KernelCommand::TerminateSubcluster { subcluster })
        }
        Command::Restart { vat, on } => (on, KernelCommand::RestartVat { vat: vat.clone() }),
        Command::Revoke { kref, on } => (on, KernelCommand::Revoke { kref: kref.clone() }),
        Command::Pin { vat, on } => (on, KernelCommand::Pin { vat: vat.clone() }),
        Command::Unpin { vat, on } => (on, KernelCommand::Unpin { vat: vat.clone() }),
        Command::Release { kref, on } => (on, KernelCommand::Release { kref: kref.clone() }),
        Command::Reap { on } => (on, KernelCommand::Reap),
        Command::Gc { on } => (on, KernelCommand::Gc),
        _ => return None,
    })
}

/// Runs a kernel command through the store's daemon, or on a kernel of its own.
fn kernel_command_on(on: &On, command: &KernelCommand) -> Result<ExitCode, CliError> {
    let store = resolve_store(on.store.as_deref())?;
    let timeout = Duration::from_secs(on.timeout);
    let mut session = Session::open(&store, timeout, std::env::current_exe().ok())?;
    let output = run_command(&mut session, command, on.json)?;
    session.finish()?;
    print!("{}", output.text);
    Ok(output.failure.map_or(ExitCode::SUCCESS, ExitCode::from))
}

fn daemon(action: DaemonAction) -> Result<ExitCode, CliError> {
    match action {
        DaemonAction::Start {
            store,
            group_commit,
            timeout,
            crank_log,
        } => {
            let store = resolve_store(store.as_deref())?;
            let options = StartOptions {
                store: store.clone(),
                group_commit,
                program: std::env::current_exe().map_err(CliError::Spawn)?,
                timeout: Duration::from_secs(timeout),
                crank_log: crank_log.options(),
            };
            let pid = daemon::start_daemon(&options)?;
            println!("daemon started: process {pid} serves {}", store.display());
        }
        DaemonAction::Stop { store, timeout } => {
            let store = resolve_store(store.as_deref())?;
            let pid = daemon::stop_daemon(&store, Duration::from_secs(timeout))?;
            println!(
                "daemon stopped: process {pid} no longer serves {}",
                store.display()
            );
        }
        DaemonAction::Status { store, json } => {
            let store = resolve_store(store.as_deref())?;
            let mut session = Session::daemon(&store, Duration::from_secs(60))?
                .ok_or(CliError::NoDaemon { store })?;
            let status = session.call("status", serde_json::json!({}))?;
            if json {
                println!("{status}");
            } else {
                print!("{}", status_text(&status));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn status_text(status: &serde_json::Value) -> String {
    let vats: Vec<String> = status["vats"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|vat| {
            let id = vat["id"].as_str().unwrap_or("?");
            match vat["name"].as_str() {
                Some(name) => format!("{id} {name}"),
                None => format!("{id} (stopped)"),
            }
        })
        .collect();
    format!(
        "pid: {}\nstore: {}\nuptime: {} s\ndurability: {}\ncranks: {}\ncrank hash: {}\nrun queue: {}\nvats: {}\n",
        status["pid"],
        status["store"].as_str().unwrap_or("?"),
        status["uptimeSecs"],
        status["durability"].as_str().unwrap_or("?"),
        status["crankCount"],
        status["crankHash"].as_str().unwrap_or("?"),
        status["runQueueLength"],
        if vats.is_empty() {
            "none".to_owned()
        } else {
            vats.join(", ")
        },
    )
}

fn inspect(
    store: Option<&Path>,
    json: bool,
    limit: usize,
    sections: &[Section],
) -> Result<ExitCode, CliError> {
    let store = resolve_store(store)?;
    let out = match Session::daemon(&store, Duration::from_secs(60))? {
        Some(mut session) => ocap_cli::inspect_through_daemon(&mut session, sections, limit, json)?,
        None => ocap_cli::inspect_store(&store, sections, limit, json)?,
    };
    print!("{out}");
    if json {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

fn worker(vat: &str) -> ExitCode {
    let runtime = match ocap_cli::registry().get(vat) {
        Some(factory) => factory(),
        None => ocap_vat::worker::unknown_vat(vat),
    };
    match ocap_vat::worker::serve_stdio(runtime) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ocap worker: {error}");
            if let Some(cause) = std::error::Error::source(&error) {
                eprintln!("  caused by: {cause}");
            }
            Failure::Internal.into()
        }
    }
}

fn check(store: Option<&Path>, json: bool, timeout: u64) -> Result<ExitCode, CliError> {
    let store = resolve_store(store)?;
    let (out, violations) = match Session::daemon(&store, Duration::from_secs(timeout))? {
        Some(mut session) => ocap_cli::check_through_daemon(&mut session, json)?,
        None => {
            let options = CheckOptions {
                program: std::env::current_exe().map_err(CliError::Spawn)?,
                timeout: Duration::from_secs(timeout),
            };
            let outcome = ocap_cli::check_store(&store, &options)?;
            (outcome.render(json), outcome.violations())
        }
    };
    print!("{out}");
    if json {
        println!();
    }
    if violations == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        let error = CliError::Violations { count: violations };
        Ok(report("ocap check", &error))
    }
}
