//! The `ocap` command: flags, printing, and exit codes (`ocap_cli::Failure`).

mod args;

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ocap_cli::daemon::{self, ServeOptions, Session, StartOptions};
use ocap_cli::{
    BenchOptions, CheckOptions, CliError, Failure, KernelCommand, RunOptions, Section, bench_json,
    bench_table, error_chain, render, render_json, resolve_store, run_bench, run_cluster,
    run_command,
};
use serde_json::json;
use tracing_subscriber::EnvFilter;

use crate::args::{Cli, Command, DaemonAction, On, TerminateKind};

// The allocator is the binary's choice, not the library crates' (issue 14): the kernel's
// many short-lived key and value buffers cost about a sixth fewer instructions per crank
// with mimalloc (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // `ocap confine-launch <policy> -- <program> <args>`: the kernel confines a worker
    // through this binary. Hidden, and first: nothing (no thread, no logging) runs before.
    let mut launcher_args = std::env::args_os().skip(1);
    if launcher_args
        .next()
        .is_some_and(|first| first == ocap_kernel::LAUNCHER_COMMAND)
    {
        return ocap_kernel::launch_main(launcher_args);
    }
    init_logging();
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

/// Logs to standard error at the level `OCAP_LOG` asks for, else `RUST_LOG` (errors only
/// if neither is set); colour only on a terminal, so that a log file or a pipe gets plain
/// text.
fn init_logging() {
    let directives = ["OCAP_LOG", "RUST_LOG"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|v| !v.trim().is_empty()))
        .unwrap_or_default();
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(directives))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
}

fn command_name(command: &Command) -> &'static str {
    match command {
        Command::Run { .. } => "ocap",
        Command::Vats { .. } => "ocap vats",
        Command::Upgrade { .. } => "ocap upgrade",
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
        Command::Bench { .. } => "ocap bench",
        Command::CheckPages { .. } => "ocap check-pages",
        Command::Worker { .. } => "ocap worker",
    }
}

/// Prints the error with its causes, each once, and returns its class's exit code.
fn report(name: &str, error: &CliError) -> ExitCode {
    let lines = error_chain(error);
    let mut lines = lines.iter();
    if let Some(message) = lines.next() {
        eprintln!("{name}: {message}");
    }
    for cause in lines {
        eprintln!("  caused by: {cause}");
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
            json,
            quiet,
            crank_log,
            confine,
        } => {
            let options = RunOptions {
                store: Some(resolve_store(store.as_deref())?),
                group_commit,
                timeout: Duration::from_secs(timeout),
                // Subprocess vats run in this same binary: `ocap worker <vat>`.
                worker_program: std::env::current_exe().ok(),
                progress: !quiet,
                crank_log: crank_log.options(),
                confinement: confine.confinement(),
            };
            run(&cluster, &options, json)
        }
        Command::Vats { code: true, on } => {
            let names: Vec<String> = ocap_cli::registry().names().map(str::to_owned).collect();
            if on.json {
                println!("{}", json!(names));
            } else {
                for name in names {
                    println!("{name}");
                }
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
        Command::Backup { dest, store, json } => backup(store.as_deref(), &dest, json),
        Command::Daemon { action } => daemon(action),
        Command::Serve {
            store,
            group_commit,
            crank_log,
            confine,
        } => {
            let options = ServeOptions {
                store: resolve_store(store.as_deref())?,
                group_commit,
                worker_program: std::env::current_exe().ok(),
                crank_log: crank_log.options(),
                confinement: confine.confinement(),
            };
            daemon::serve(&options)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { quick, n, json } => bench(quick, n, json),
        Command::CheckPages { dir } => {
            println!("{}", ocap_cli::check_pages(&dir)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker { vat } => Ok(worker(&vat)),
        _ => unreachable!("kernel commands are handled above"),
    }
}

fn run(cluster: &Path, options: &RunOptions, json: bool) -> Result<ExitCode, CliError> {
    let result = run_cluster(cluster, options)?;
    if json {
        println!("{}", render_json(&result));
    } else {
        println!("{}", render(&result));
    }
    Ok(ExitCode::SUCCESS)
}

fn bench(quick: bool, n: Option<u64>, json: bool) -> Result<ExitCode, CliError> {
    let options = BenchOptions {
        quick,
        n,
        // Worker cases run `ocap worker bench-pingpong`.
        worker_program: std::env::current_exe().ok(),
    };
    let rows = run_bench(&options)?;
    if json {
        println!("{}", bench_json(&rows));
    } else {
        print!("{}", bench_table(&rows));
    }
    Ok(ExitCode::SUCCESS)
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
        Command::Upgrade { vat, bundle, on } => (
            on,
            KernelCommand::UpgradeVat {
                vat: vat.clone(),
                bundle: bundle.clone(),
            },
        ),
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
    let creates = matches!(command, KernelCommand::Launch { .. });
    let mut session = Session::open(&store, timeout, std::env::current_exe().ok(), creates)?;
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
            json,
            crank_log,
            confine,
        } => {
            let store = resolve_store(store.as_deref())?;
            let options = StartOptions {
                store: store.clone(),
                group_commit,
                program: std::env::current_exe().map_err(CliError::Spawn)?,
                timeout: Duration::from_secs(timeout),
                crank_log: crank_log.options(),
                serve_args: confine.to_args(),
            };
            let pid = daemon::start_daemon(&options)?;
            if json {
                println!("{}", json!({"started": true, "pid": pid, "store": store}));
            } else {
                println!("daemon started: process {pid} serves {}", store.display());
            }
        }
        DaemonAction::Stop {
            store,
            timeout,
            json,
        } => {
            let store = resolve_store(store.as_deref())?;
            let pid = daemon::stop_daemon(&store, Duration::from_secs(timeout))?;
            if json {
                println!("{}", json!({"stopped": true, "pid": pid, "store": store}));
            } else {
                println!(
                    "daemon stopped: process {pid} no longer serves {}",
                    store.display()
                );
            }
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

/// `ocap daemon status` for people: the daemon, then a line per vat with its counters
/// (since the daemon's kernel was opened) next to its limits.
fn status_text(status: &serde_json::Value) -> String {
    let vats: Vec<String> = status["vats"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(vat_status_line)
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
            " none".to_owned()
        } else {
            format!("\n{}", vats.join("\n"))
        },
    )
}

fn vat_status_line(vat: &serde_json::Value) -> String {
    let id = vat["id"].as_str().unwrap_or("?");
    let Some(name) = vat["name"].as_str() else {
        let reason = vat["reason"].as_str().unwrap_or("?");
        return format!("  {id} (stopped: {reason})");
    };
    let limits = &vat["limits"];
    format!(
        "  {id} {name}: {} deliveries, {} syscalls (at most {} per delivery), {} denials; \
         store {}/{} bytes; queued {}/{}",
        vat["deliveries"],
        vat["syscalls"],
        limits["syscallsPerDelivery"],
        vat["denials"],
        vat["vatstoreBytes"],
        limits["vatstoreTotalBytes"],
        vat["queuedMessages"],
        limits["queuedMessages"],
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
            let lines = error_chain(&error);
            eprintln!("ocap worker: {}", lines.join("\n  caused by: "));
            Failure::Internal.into()
        }
    }
}

fn check(store: Option<&Path>, json: bool, timeout: u64) -> Result<ExitCode, CliError> {
    let store = resolve_store(store)?;
    let (out, violations) = match Session::daemon(&store, Duration::from_secs(timeout))? {
        Some(mut session) => {
            ocap_cli::check_through_daemon(&mut session, json, Duration::from_secs(timeout))?
        }
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

/// `ocap backup`: through the daemon while one serves the store (it copies between two
/// cranks), else offline under the store's lock.
fn backup(store: Option<&Path>, dest: &Path, json: bool) -> Result<ExitCode, CliError> {
    let store = resolve_store(store)?;
    match Session::daemon(&store, Duration::from_secs(600))? {
        Some(mut session) => {
            // The daemon's working directory is not ours: send an absolute path.
            let dest = std::path::absolute(dest).map_err(|e| CliError::Args(e.to_string()))?;
            ocap_cli::backup_through_daemon(&mut session, &dest)?;
            session.finish()?;
        }
        None => ocap_cli::backup_store(&store, dest)?,
    }
    if json {
        println!("{}", json!({"store": store, "backup": dest}));
    } else {
        println!("backed up {} to {}", store.display(), dest.display());
    }
    Ok(ExitCode::SUCCESS)
}
