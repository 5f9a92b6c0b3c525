//! The `ocap` command.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use ocap_cli::{RunOptions, render, run_cluster};
use tracing_subscriber::EnvFilter;

/// Run clusters of vats on an object-capability kernel.
#[derive(Parser)]
#[command(name = "ocap", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Launch the subcluster in a cluster file, run it until idle, print the bootstrap result.
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
    /// List the vats compiled into this binary.
    Vats,
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
    match Cli::parse().command {
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
            match run_cluster(&cluster, &options) {
                Ok(result) => {
                    println!("{}", render(&result));
                    ExitCode::SUCCESS
                }
                Err(error) => {
                    eprintln!("ocap: {error}");
                    let mut source = std::error::Error::source(&error);
                    while let Some(cause) = source {
                        eprintln!("  caused by: {cause}");
                        source = cause.source();
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Command::Worker { vat } => {
            let runtime = match ocap_cli::registry().get(&vat) {
                Some(factory) => factory(),
                None => ocap_vat::worker::unknown_vat(&vat),
            };
            match ocap_vat::worker::serve_stdio(runtime) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("ocap worker: {error}");
                    if let Some(cause) = std::error::Error::source(&error) {
                        eprintln!("  caused by: {cause}");
                    }
                    ExitCode::FAILURE
                }
            }
        }
        Command::Vats => {
            for name in ocap_cli::registry().names() {
                println!("{name}");
            }
            ExitCode::SUCCESS
        }
    }
}
