//! The `ocap` command's logic: parse a cluster file, run it on an embedded kernel, render
//! the bootstrap result. `main.rs` only parses flags and maps errors to exit codes.
//!
//! ```
//! let config = ocap_cli::parse_cluster(r#"{"bootstrap": "a", "vats": {"a": {"bundleName": "bob"}}}"#)?;
//! assert_eq!(config.bootstrap, "a");
//! # Ok::<(), ocap_cli::CliError>(())
//! ```

mod run;

pub use run::{
    CliError, MAX_CLUSTER_FILE, RunOptions, parse_cluster, registry, render, run_cluster,
};
