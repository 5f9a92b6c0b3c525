//! The `ocap` command's exit codes, one per class of failure, and the one place that sorts
//! an error into its class ([`Failure::of`]): scripts branch on the code, people read the
//! message.

use std::process::ExitCode;

use ocap_kernel::{BackupError, KernelError, OpenError, StoreError, VatError};

use crate::CliError;

/// The exit codes as `ocap --help` lists them.
pub const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  usage or configuration error (bad flags, unreadable or invalid cluster file, no store at the path, no such vat)
  2  the cluster did not come up (a vat failed to start, bootstrap was rejected), an upgraded vat's new version failed to start, or `check` found violations
  3  timed out (bootstrap, running to idle, or check's page walk)
  4  the store is damaged, unreadable by this build, or in use by another process
  5  internal error";

/// A class of failure, and its exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Bad flags, an unreadable or invalid cluster file, no store at the path, no such vat:
    /// exit 1.
    Usage,
    /// A vat failed to start (launched or upgraded), bootstrap was rejected, or the audit
    /// found violations: exit 2.
    Rejected,
    /// Something took longer than allowed: exit 3.
    Timeout,
    /// The store is damaged, of a schema this build cannot read, or in use: exit 4.
    Store,
    /// Anything else (the kernel stopped, I/O the user cannot fix): exit 5.
    Internal,
}

impl Failure {
    /// The exit code.
    pub fn code(self) -> u8 {
        match self {
            Failure::Usage => 1,
            Failure::Rejected => 2,
            Failure::Timeout => 3,
            Failure::Store => 4,
            Failure::Internal => 5,
        }
    }

    /// The class of `error`: the one place errors become exit codes, so that a change to
    /// the error enums below is adapted here alone.
    pub fn of(error: &CliError) -> Failure {
        match error {
            CliError::Read { .. }
            | CliError::TooLarge { .. }
            | CliError::Parse(_)
            | CliError::BadVatId { .. } => Failure::Usage,
            CliError::Violations { .. } => Failure::Rejected,
            CliError::Damaged { .. } => Failure::Store,
            CliError::WalkTimeout { .. } => Failure::Timeout,
            CliError::Open(error) => Failure::of_open(error),
            CliError::Store(error) => Failure::of_store(error),
            CliError::Backup(BackupError::Destination { .. }) => Failure::Usage,
            CliError::Backup(BackupError::Store(error)) => Failure::of_store(error),
            CliError::Backup(_) => Failure::Internal,
            CliError::Kernel(error) => match error {
                // The caller named something that is not there, or asked the impossible.
                KernelError::Config(_)
                | KernelError::Input(_)
                | KernelError::NoSuchSubcluster(_)
                | KernelError::NoSuchObject(_)
                | KernelError::AlreadyRevoked(_)
                | KernelError::RevokePromise(_)
                | KernelError::Vat(VatError::NoSuchVat(_)) => Failure::Usage,
                KernelError::Rejected(_) => Failure::Rejected,
                // The vat's code is unknown, or it failed to start (its executable missing or
                // rebuilt among the reasons): the cluster's fault.
                KernelError::Vat(
                    VatError::Launch { .. }
                    | VatError::UnknownCode(_)
                    | VatError::Upgrade { .. }
                    | VatError::BundleUnreadable { .. }
                    | VatError::BundleChanged { .. },
                ) => Failure::Rejected,
                KernelError::Timeout => Failure::Timeout,
                KernelError::Open(error) => Failure::of_open(error),
                KernelError::Store(error) => Failure::of_store(error),
                KernelError::Backup(BackupError::Destination { .. }) => Failure::Usage,
                KernelError::Backup(BackupError::Store(error)) => Failure::of_store(error),
                _ => Failure::Internal,
            },
            CliError::Remote(error) => error.failure(),
            CliError::Args(_)
            | CliError::NoDaemon { .. }
            | CliError::NoStore { .. }
            | CliError::NoDefaultStore => Failure::Usage,
            CliError::DaemonRunning { .. } => Failure::Store,
            CliError::DaemonStart { code, .. } => match code.and_then(|c| u8::try_from(c).ok()) {
                Some(1) => Failure::Usage,
                Some(4) => Failure::Store,
                _ => Failure::Internal,
            },
            CliError::TempDir(_)
            | CliError::Spawn(_)
            | CliError::Socket { .. }
            | CliError::CrankLog { .. }
            | CliError::Protocol(_) => Failure::Internal,
        }
    }

    fn of_open(error: &OpenError) -> Failure {
        match error {
            OpenError::BadPath { .. } => Failure::Usage,
            OpenError::InUse { .. }
            | OpenError::AlreadyOpen { .. }
            | OpenError::CorruptFile { .. }
            | OpenError::ForeignFile { .. }
            | OpenError::SchemaVersion { .. }
            | OpenError::Migration { .. } => Failure::Store,
            _ => Failure::Internal,
        }
    }

    fn of_store(error: &StoreError) -> Failure {
        match error {
            StoreError::Corrupt { .. } => Failure::Store,
            _ => Failure::Internal,
        }
    }
}

impl From<Failure> for ExitCode {
    fn from(failure: Failure) -> Self {
        ExitCode::from(failure.code())
    }
}
