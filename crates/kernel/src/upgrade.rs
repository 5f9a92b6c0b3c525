//! Vat upgrade (SwingSet's `upgradeVat`, issue 13): relaunching a live vat on a new
//! version of its code, with its vat store, c-list and root kref kept.
//!
//! Invariant: an upgrade is one transaction ([`KernelState::transaction`]): either the new
//! version runs and the store says so (its record names the new bundle, so a restart or a
//! reopened kernel runs it too), or nothing changed and the old version still runs.

use std::path::PathBuf;

use ocap_queue::KernelState;
use ocap_types::{ConfigError, Value, VatId};
use ocap_vat_manager::VatError;

use crate::core::Core;
use crate::error::KernelError;

/// Where a vat's new code comes from.
///
/// A name in the kernel's [`crate::VatRegistry`] (vat code compiled into the host, as a
/// cluster config's `bundleName` names it), or an executable of the vat's own (as
/// `bundlePath` names it).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleSpec {
    /// Registered vat code, by name.
    Name(String),
    /// A vat executable (an absolute path), run in a worker process. Upgrading to it
    /// records its hash: this is how a vat moves to a rebuilt executable at the same path,
    /// which a restart or a reopened kernel otherwise refuses to run
    /// ([`crate::VatError::BundleChanged`]).
    Path(PathBuf),
}

impl BundleSpec {
    /// Registered vat code, by name.
    pub fn name(name: impl Into<String>) -> BundleSpec {
        BundleSpec::Name(name.into())
    }

    /// A vat executable, by absolute path.
    pub fn path(path: impl Into<PathBuf>) -> BundleSpec {
        BundleSpec::Path(path.into())
    }
}

/// How to upgrade a vat: its new code and, optionally, new parameters.
///
/// # Examples
/// ```
/// use ocap_kernel::{BundleSpec, Value, VatUpgrade};
///
/// let mut upgrade = VatUpgrade::new(BundleSpec::name("counter-v2"));
/// upgrade.parameters = Some(Value::Record([("step".to_owned(), Value::Int(2))].into()));
/// # let _ = upgrade;
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct VatUpgrade {
    /// The new version's code.
    pub bundle: BundleSpec,
    /// The parameters its build function gets; `None` keeps the vat's current ones.
    pub parameters: Option<Value>,
}

impl VatUpgrade {
    /// An upgrade to `bundle`, keeping the vat's parameters.
    pub fn new(bundle: BundleSpec) -> VatUpgrade {
        VatUpgrade {
            bundle,
            parameters: None,
        }
    }
}

/// Upgrades `vat` (see [`crate::Kernel::upgrade_vat`]), in one transaction, and fires the
/// host subscriptions of the promises it rejected once that committed.
pub(crate) fn upgrade_vat(
    core: &mut Core,
    state: &mut KernelState,
    vat: VatId,
    upgrade: VatUpgrade,
) -> Result<(), KernelError> {
    let mut record = state.store().vat(vat)?.ok_or(VatError::NoSuchVat(vat))?;
    record.config.source_spec = None;
    record.config.bundle_spec = None;
    // The hash of the executable the new version runs is taken as it starts.
    record.bundle_hash = None;
    match upgrade.bundle {
        BundleSpec::Name(code) => {
            record.config.bundle_name = Some(code);
            record.config.bundle_path = None;
        }
        BundleSpec::Path(path) => {
            if !path.is_absolute() || path.to_str().is_none() {
                return Err(ConfigError::BundlePath { vat: record.name }.into());
            }
            record.config.bundle_name = None;
            record.config.bundle_path = Some(path);
        }
    }
    if let Some(parameters) = upgrade.parameters {
        record.config.parameters = parameters;
    }
    tracing::info!(%vat, code = record.config.code(), path = ?record.config.executable(), "upgrading vat");
    let ((), settled) = state.transaction(|crank| -> Result<(), KernelError> {
        core.vats.upgrade(crank, vat, &record)?;
        // Abandoned exports nothing else holds are retired from their importers now.
        crank.collect_garbage()?;
        Ok(())
    })?;
    core.start_failures.remove(&vat);
    core.fire_settled(state, &settled);
    Ok(())
}
