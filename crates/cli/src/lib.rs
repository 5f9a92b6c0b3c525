//! The `ocap` command's logic: parse a cluster file, run it on an embedded kernel, render
//! the bootstrap result; inspect, check and back up a store no kernel runs, or upgrade one
//! of its vats. `main.rs` only
//! parses flags and prints; [`Failure::of`] maps errors to exit codes.
//!
//! ```
//! let config = ocap_cli::parse_cluster(r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "bob"}}}"#)?;
//! assert_eq!(config.bootstrap, "a");
//! # Ok::<(), ocap_cli::CliError>(())
//! ```

mod check;
mod error;
mod exit;
mod inspect;
mod run;
mod upgrade;

pub use check::{CHECK_PAGES, CheckOptions, CheckOutcome, backup_store, check_pages, check_store};
pub use error::CliError;
pub use exit::{EXIT_CODES, Failure};
pub use inspect::{Section, inspect_store};
pub use run::{MAX_CLUSTER_FILE, RunOptions, parse_cluster, registry, render, run_cluster};
pub use upgrade::{UpgradeOptions, upgrade_vat};
