//! `ocap upgrade`: relaunch one vat of a store no kernel runs on a new version of its code
//! (`Kernel::upgrade_vat`), then run the kernel until idle and shut it down.

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocap_kernel::inspect::OfflineStore;
use ocap_kernel::{BundleSpec, Kernel, KernelConfig, VatId, VatUpgrade};

use crate::{CliError, registry};

/// How to upgrade a vat.
#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    /// The store directory; it must hold a store already.
    pub store: PathBuf,
    /// How long to wait for the kernel to go idle after the upgrade.
    pub timeout: Duration,
    /// The program subprocess vats run in (as [`crate::RunOptions::worker_program`]).
    pub worker_program: Option<PathBuf>,
}

/// Upgrades vat `vat` (its id, `v<number>`) of the store in `options` to the registered
/// vat code `bundle`.
///
/// # Errors
/// [`CliError::BadVatId`] for a malformed id; [`CliError::Open`] when the directory holds
/// no store (none is created) or it is in use; [`CliError::Kernel`] when the vat does not
/// exist or its new version fails to start (the vat then keeps its old version), or the
/// kernel fails.
pub fn upgrade_vat(vat: &str, bundle: &str, options: &UpgradeOptions) -> Result<(), CliError> {
    let vat: VatId = vat.parse().map_err(|_| CliError::BadVatId {
        text: vat.to_owned(),
    })?;
    require_store(&options.store)?;
    let mut config = KernelConfig::new(registry());
    config.workers.program = options.worker_program.clone();
    let kernel = Kernel::open(&options.store, config)?;
    let res = kernel
        .upgrade_vat(vat, VatUpgrade::new(BundleSpec::name(bundle)))
        .and_then(|()| kernel.run_until_idle(options.timeout));
    let shutdown = kernel.shutdown();
    res?;
    shutdown?;
    Ok(())
}

/// Fails unless `path` holds a store: `Kernel::open` would make a new one.
fn require_store(path: &Path) -> Result<(), CliError> {
    drop(OfflineStore::open(path)?);
    Ok(())
}
