//! The `ocap` command's flags (clap): what each subcommand takes. `main.rs` acts on them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use ocap_cli::{CrankLogOptions, EXIT_CODES, Section};
use ocap_kernel::{ConfineMode, Confinement};

/// Run clusters of vats on an object-capability kernel; inspect, check and back up their
/// stores and upgrade their vats.
#[derive(Parser)]
#[command(name = "ocap", version, after_help = EXIT_CODES)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Where a command acts, and how it prints.
#[derive(Args, Debug, Clone)]
pub(crate) struct On {
    /// The store directory (default: the user's store, $XDG_DATA_HOME/ocap/store). Through
    /// its daemon if one serves it, else on a kernel this command opens.
    #[arg(long)]
    pub(crate) store: Option<PathBuf>,
    /// Print the answer as JSON.
    #[arg(long)]
    pub(crate) json: bool,
    /// Seconds to wait for the kernel (a launch's bootstrap, a result, going idle).
    #[arg(long, default_value_t = 60)]
    pub(crate) timeout: u64,
}

/// `--crank-log`: one JSON line per durable crank.
#[derive(Args, Debug, Clone)]
pub(crate) struct CrankLogArgs {
    /// Append one JSON line per crank to FILE once the crank is durable: its number, the
    /// run-queue item, the outcome, each syscall and the crank hash (README).
    #[arg(long, value_name = "FILE")]
    crank_log: Option<PathBuf>,
    /// Rotate the crank log (FILE becomes FILE.1) once it would pass this many bytes.
    #[arg(long, default_value_t = ocap_cli::DEFAULT_CRANK_LOG_MAX_BYTES, requires = "crank_log")]
    crank_log_max_bytes: u64,
}

impl CrankLogArgs {
    /// The options, if a log was asked for.
    pub(crate) fn options(self) -> Option<CrankLogOptions> {
        Some(CrankLogOptions {
            path: self.crank_log?,
            max_bytes: self.crank_log_max_bytes,
        })
    }
}

/// Operator flags that loosen the confinement of worker processes (docs/confinement.md).
/// Only here: a cluster file cannot loosen it.
#[derive(Args, Debug, Clone)]
pub(crate) struct ConfineArgs {
    /// Run every subprocess vat unconfined: only for vat code you trust entirely.
    #[arg(long)]
    unconfined: bool,
    /// Where this system lacks Landlock or seccomp, run subprocess vats without that layer
    /// (with the others) instead of refusing to start them.
    #[arg(long)]
    confine_where_possible: bool,
    /// Run vats of this code (the name they are launched with) unconfined; repeatable.
    #[arg(long, value_name = "CODE")]
    trust_vat: Vec<String>,
    /// The address space each confined worker may map, in MiB.
    #[arg(long, value_name = "MIB", default_value_t = 1024)]
    vat_memory: u64,
    /// Let confined workers read PATH too (e.g. an interpreter's installation prefix);
    /// repeatable. Nothing is ever writable.
    #[arg(long, value_name = "PATH")]
    vat_read: Vec<PathBuf>,
}

impl ConfineArgs {
    /// The confinement these flags ask for; the launcher is `ocap-launch` beside this
    /// binary, or this binary ([`ocap_cli::launcher_for`]).
    pub(crate) fn confinement(&self) -> Confinement {
        let mut confinement = Confinement::default();
        confinement.mode = if self.unconfined {
            ConfineMode::Never
        } else if self.confine_where_possible {
            ConfineMode::WherePossible
        } else {
            ConfineMode::Always
        };
        confinement.launcher = std::env::current_exe()
            .ok()
            .map(|exe| ocap_cli::launcher_for(&exe));
        confinement.trusted = self.trust_vat.iter().cloned().collect();
        confinement.memory_limit = self.vat_memory.saturating_mul(1 << 20);
        confinement.read_paths.clone_from(&self.vat_read);
        confinement
    }

    /// The same flags, for a process this one starts (`ocap daemon start` → `ocap serve`).
    pub(crate) fn to_args(&self) -> Vec<String> {
        let mut args = vec![format!("--vat-memory={}", self.vat_memory)];
        if self.unconfined {
            args.push("--unconfined".to_owned());
        }
        if self.confine_where_possible {
            args.push("--confine-where-possible".to_owned());
        }
        for code in &self.trust_vat {
            args.push(format!("--trust-vat={code}"));
        }
        for path in &self.vat_read {
            // `ocap serve` runs from this directory too, but say it absolutely anyway.
            let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
            args.push(format!("--vat-read={}", path.display()));
        }
        args
    }
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Launch the subcluster in a cluster file, run it until idle, print the bootstrap result.
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The cluster config (JSON); `-` reads it from standard input.
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
        /// Print the result as JSON: `{"body": value, "slots": [kref...]}`.
        #[arg(long)]
        json: bool,
        /// No progress display on standard error (there is none unless it is a terminal).
        #[arg(short, long)]
        quiet: bool,
        #[command(flatten)]
        crank_log: CrankLogArgs,
        #[command(flatten)]
        confine: ConfineArgs,
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
    /// Write a consistent, compacted copy of a store into DEST, a directory that must be
    /// missing or empty (through the daemon, between two cranks, while one serves the
    /// store). `ocap check DEST` verifies it.
    #[command(after_help = EXIT_CODES)]
    Backup {
        /// Where the copy goes.
        dest: PathBuf,
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
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
        #[command(flatten)]
        confine: ConfineArgs,
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
    /// Upgrade a vat to a new version of its code: the new version starts on the vat's
    /// state (baggage, durable objects); if it fails to start, the vat keeps its old
    /// version. Through the daemon, or offline.
    #[command(after_help = EXIT_CODES)]
    Upgrade {
        /// The vat: `v<N>`.
        vat: String,
        /// The new version's code: a vat compiled into this binary (`ocap vats --code`),
        /// or a vat executable's path (anything with a `/`, e.g.
        /// `./target/release/counter-vat`): how a vat moves to a rebuilt executable.
        bundle: String,
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
    /// Measure the kernel: ping-pong, burst and host-burst on the `bench-pingpong` vat, with
    /// vats in process and in worker processes, in both durability modes (each in a fresh
    /// temporary store); cranks per second, and for host-burst the latency until a host
    /// message is durably queued. Figures vary with the machine and its load.
    #[command(after_help = EXIT_CODES)]
    Bench {
        /// Small sizes: a quick look, not a measurement.
        #[arg(long)]
        quick: bool,
        /// The size of every case (messages or round trips), overriding the defaults
        /// (10000 in group mode, 1000 every-crank; with --quick 1000 and 100).
        #[arg(long)]
        n: Option<u64>,
        /// Print the results as JSON.
        #[arg(long)]
        json: bool,
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
pub(crate) enum TerminateKind {
    /// A vat.
    Vat,
    /// A subcluster.
    Subcluster,
}

#[derive(Subcommand)]
pub(crate) enum DaemonAction {
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
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        crank_log: CrankLogArgs,
        #[command(flatten)]
        confine: ConfineArgs,
    },
    /// Stop the daemon serving the store: the kernel shuts down, its commits flushed.
    Stop {
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Seconds to wait for it to stop.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Say whether a daemon serves the store: pid, uptime, cranks, run queue, vats with
    /// their counters and limits.
    Status {
        /// The store directory (default: the user's store).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Print the status as JSON.
        #[arg(long)]
        json: bool,
    },
}
