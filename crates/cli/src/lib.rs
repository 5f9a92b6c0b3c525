//! The `ocap` command's logic: parse a cluster file, run it on an embedded kernel, render
//! the bootstrap result; inspect, check and back up a store; run a kernel as a daemon
//! ([`daemon`]) and act on it through its control socket, or on a kernel of the command's
//! own when no daemon serves the store ([`KernelCommand`]). `main.rs` only parses flags and
//! prints; [`Failure::of`] maps errors to exit codes.
//!
//! ```
//! let config = ocap_cli::parse_cluster(r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "bob"}}}"#)?;
//! assert_eq!(config.bootstrap, "a");
//! # Ok::<(), ocap_cli::CliError>(())
//! ```

mod bench;
mod check;
mod commands;
mod crank_log;
pub mod daemon;
mod error;
mod exit;
mod inspect;
mod launcher;
mod progress;
mod run;
mod store_dir;

pub use bench::{BenchOptions, BenchRow, bench_json, bench_table, run_bench};
pub use check::{
    CHECK_PAGES, CheckOptions, CheckOutcome, backup_store, backup_through_daemon, check_pages,
    check_store, check_through_daemon,
};
pub use commands::{KernelCommand, Output, run_command};
pub use crank_log::{
    CrankLogOptions, CrankLogWriter, DEFAULT_CRANK_LOG_MAX_BYTES, open_crank_log, record_json,
};
pub use daemon::RpcError;
pub use error::{CliError, error_chain};
pub use exit::{EXIT_CODES, Failure};
pub use inspect::{Section, inspect_store, inspect_through_daemon};
pub use launcher::{LAUNCHER_BINARY, launcher_for};
pub use run::{
    MAX_CLUSTER_FILE, RunOptions, parse_cluster, parse_cluster_json, registry, render, render_json,
    run_cluster,
};
pub use store_dir::{default_store, resolve_store};
