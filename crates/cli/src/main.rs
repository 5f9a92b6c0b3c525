//! The `ocap` command: flags, printing, and exit codes (`ocap_cli::Failure`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ocap_cli::{
    CheckOptions, CliError, EXIT_CODES, Failure, RunOptions, Section, UpgradeOptions, render,
    run_cluster,
};
use tracing_subscriber::EnvFilter;

/// Run clusters of vats on an object-capability kernel; inspect, check, back up their
/// stores and upgrade their vats.
#[derive(Parser)]
#[command(name = "ocap", version, after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Launch the subcluster in a cluster file, run it until idle, print the bootstrap result.
    #[command(after_help = EXIT_CODES)]
    Run {
        /// The cluster config (JSON).
        cluster: PathBuf,
        /// Keep the kernel's store in this directory (default: a temporary one).
        #[arg(long)]
        store: Option<PathBuf>,
        /// Share one synced commit among many cranks.
        #[arg(long)]
        group_commit: bool,
        /// Seconds to wait for bootstrap and for the kernel to go idle.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Upgrade a vat of a store no kernel runs to a new version of its code: the new
    /// version starts on the vat's state (baggage, durable objects); if it fails to start,
    /// the vat keeps its old version. Runs the kernel until idle, then stops it.
    #[command(after_help = EXIT_CODES)]
    Upgrade {
        /// The vat's id (`v1`; `ocap inspect --store DIR vats` lists them).
        vat: String,
        /// The new version's code: a vat compiled into this binary (`ocap vats`).
        bundle: String,
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// Seconds to wait for the kernel to go idle.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// List the vats compiled into this binary.
    Vats,
    /// Show what a store holds (no kernel may be running it): vats, subclusters, objects,
    /// promises, c-lists, the run queue, vat stores. Opens it read-only.
    #[command(after_help = EXIT_CODES)]
    Inspect {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
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
    /// Verify a store (no kernel may be running it): read every page in a child process,
    /// then audit refcounts, c-lists, queues and deciders. Exits 2 on violations, 4 if
    /// the store is damaged or in use.
    #[command(after_help = EXIT_CODES)]
    Check {
        /// The store directory (or give it with --store).
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
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
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
        /// The vat code's name (as `ocap vats` lists it).
        vat: String,
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
        Command::Upgrade { .. } => "ocap upgrade",
        Command::Vats => "ocap vats",
        Command::Inspect { .. } => "ocap inspect",
        Command::Check { .. } => "ocap check",
        Command::Backup { .. } => "ocap backup",
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
    match command {
        Command::Run {
            cluster,
            store,
            group_commit,
            timeout,
        } => {
            let options = RunOptions {
                store,
                group_commit,
                timeout: Duration::from_secs(timeout),
                // Subprocess vats run in this same binary: `ocap worker <vat>`.
                worker_program: std::env::current_exe().ok(),
            };
            let result = run_cluster(&cluster, &options)?;
            println!("{}", render(&result));
            Ok(ExitCode::SUCCESS)
        }
        Command::Upgrade {
            vat,
            bundle,
            store,
            timeout,
        } => upgrade(&vat, &bundle, store, timeout),
        Command::Vats => {
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
        } => {
            print!(
                "{}",
                ocap_cli::inspect_store(&store, &sections, limit, json)?
            );
            if json {
                println!();
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Check {
            dir,
            store,
            json,
            timeout,
        } => check(dir.or(store), json, timeout),
        Command::Backup { dest, store } => {
            ocap_cli::backup_store(&store, &dest)?;
            println!("backed up {} to {}", store.display(), dest.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::CheckPages { dir } => {
            println!("{}", ocap_cli::check_pages(&dir)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { vat } => {
            let runtime = match ocap_cli::registry().get(&vat) {
                Some(factory) => factory(),
                None => ocap_vat::worker::unknown_vat(&vat),
            };
            match ocap_vat::worker::serve_stdio(runtime) {
                Ok(()) => Ok(ExitCode::SUCCESS),
                Err(error) => {
                    eprintln!("ocap worker: {error}");
                    if let Some(cause) = std::error::Error::source(&error) {
                        eprintln!("  caused by: {cause}");
                    }
                    Ok(Failure::Internal.into())
                }
            }
        }
    }
}

fn upgrade(vat: &str, bundle: &str, store: PathBuf, timeout: u64) -> Result<ExitCode, CliError> {
    let options = UpgradeOptions {
        store,
        timeout: Duration::from_secs(timeout),
        // Subprocess vats run in this same binary, as for `ocap run`.
        worker_program: std::env::current_exe().ok(),
    };
    ocap_cli::upgrade_vat(vat, bundle, &options)?;
    println!("upgraded {vat} to {bundle}");
    Ok(ExitCode::SUCCESS)
}

fn check(dir: Option<PathBuf>, json: bool, timeout: u64) -> Result<ExitCode, CliError> {
    let Some(dir) = dir else {
        eprintln!("ocap check: name the store directory (DIR or --store DIR)");
        return Ok(Failure::Usage.into());
    };
    let options = CheckOptions {
        program: std::env::current_exe().map_err(CliError::Spawn)?,
        timeout: Duration::from_secs(timeout),
    };
    let outcome = ocap_cli::check_store(Path::new(&dir), &options)?;
    print!("{}", outcome.render(json));
    if json {
        println!();
    }
    let violations = outcome.violations();
    if violations == 0 {
        Ok(ExitCode::SUCCESS)
    } else {
        let error = CliError::Violations { count: violations };
        Ok(report("ocap check", &error))
    }
}
