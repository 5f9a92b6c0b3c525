//! Why an `ocap` command failed; [`crate::Failure::of`] sorts each into an exit code.

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use ocap_kernel::{BackupError, KernelError, OpenError, StoreError};

use crate::RpcError;

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CliError {
    /// The cluster file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The cluster file is larger than [`crate::MAX_CLUSTER_FILE`].
    #[error("cannot read {path}: larger than the limit of {max} bytes for a cluster file")]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit.
        max: u64,
    },
    /// The cluster file is not a valid cluster config.
    #[error("invalid cluster config: {0}")]
    Parse(String),
    /// A vat id given on the command line does not parse.
    #[error("invalid vat id {text:?} (expected v<number>)")]
    BadVatId {
        /// What was given.
        text: String,
    },
    /// No temporary store directory could be made.
    #[error("cannot create a temporary store: {0}")]
    TempDir(std::io::Error),
    /// The kernel failed.
    #[error(transparent)]
    Kernel(#[from] KernelError),
    /// The store could not be opened (`inspect`, `check`, `backup`).
    #[error(transparent)]
    Open(#[from] OpenError),
    /// The store could not be read (`inspect`, `check`).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The backup could not be written.
    #[error(transparent)]
    Backup(#[from] BackupError),
    /// The store's audit found violations; they are in the command's output.
    #[error("the store has {count} violation(s) of the kernel's invariants")]
    Violations {
        /// How many.
        count: usize,
    },
    /// Reading every page of the store failed or crashed the reading process.
    #[error("store damaged: {reason}")]
    Damaged {
        /// What happened.
        reason: String,
    },
    /// The page walk did not finish in time (a loop in a damaged B-tree, or a huge store).
    #[error("the walk of the store's pages took longer than {secs} s")]
    WalkTimeout {
        /// The limit.
        secs: u64,
    },
    /// A process (the page walk, the daemon) could not be run.
    #[error("cannot run a process: {0}")]
    Spawn(std::io::Error),
    /// The daemon answered a request with an error.
    #[error("{}", .0.message)]
    Remote(RpcError),
    /// The control socket could not be made or used.
    #[error("control socket {path}")]
    Socket {
        /// The socket, or the store it is for.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// What answered on the control socket broke the protocol.
    #[error("the daemon broke the control protocol: {0}")]
    Protocol(String),
    /// The command needs a daemon and none serves the store.
    #[error("no daemon serves the store at {store}")]
    NoDaemon {
        /// The store directory.
        store: PathBuf,
    },
    /// A daemon already serves the store.
    #[error("a daemon (process {pid}) already serves the store at {store}")]
    DaemonRunning {
        /// The store directory.
        store: PathBuf,
        /// Its process id.
        pid: u32,
    },
    /// The daemon did not start; the reason holds the end of its log.
    #[error("the daemon did not start: {reason}")]
    DaemonStart {
        /// Why, in its own words.
        reason: String,
        /// Its exit code, if it exited.
        code: Option<i32>,
    },
    /// A command's arguments are not what it takes.
    #[error("{0}")]
    Args(String),
    /// A command that acts on a store's kernel found no store there (only `launch` and
    /// `run` make one).
    #[error("no store at {store} (`ocap launch` or `ocap run` makes one)")]
    NoStore {
        /// The store directory.
        store: PathBuf,
    },
    /// The crank log file could not be opened or written.
    #[error("crank log {path}")]
    CrankLog {
        /// The log file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// No per-user data directory for the default store.
    #[error("no home directory to keep the default store in: give --store DIR")]
    NoDefaultStore,
}

/// The lines that explain `error`: its message, then each cause in its chain whose text the
/// line before does not already hold. Some errors show their cause in their own message
/// (`lmdb backend: <heed error>`) and still return it as their source; listed naively, the
/// chain would say the same thing twice (`x: y`, then `caused by: y`).
pub fn error_chain(error: &dyn std::error::Error) -> Vec<String> {
    let mut lines = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        let said = lines.last().is_some_and(|last| last.contains(&text));
        if !said && !text.is_empty() {
            lines.push(text);
        }
        source = cause.source();
    }
    lines
}
