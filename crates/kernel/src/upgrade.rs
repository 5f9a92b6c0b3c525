//! Vat upgrade (SwingSet's `upgradeVat`, issue 13): relaunching a live vat on a new
//! version of its code, with its vat store, c-list and root kref kept.
//!
//! Invariant: an upgrade is one transaction ([`KernelState::transaction`]): either the new
//! version runs and the store says so (its record names the new bundle, so a restart or a
//! reopened kernel runs it too), or nothing changed and the old version still runs.

use ocap_queue::KernelState;
use ocap_types::{Value, VatId};
use ocap_vat_manager::VatError;

use crate::core::Core;
use crate::error::KernelError;

/// Where a vat's new code comes from.
///
/// Today a name in the kernel's [`crate::VatRegistry`] (vat code compiled into the host, as
/// a cluster config's `bundleName` names it); a bundle given by path is for later, which is
/// why this is an enum.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BundleSpec {
    /// Registered vat code, by name.
    Name(String),
}

impl BundleSpec {
    /// Registered vat code, by name.
    pub fn name(name: impl Into<String>) -> BundleSpec {
        BundleSpec::Name(name.into())
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
    let BundleSpec::Name(code) = upgrade.bundle;
    record.config.bundle_name = Some(code);
    record.config.source_spec = None;
    record.config.bundle_spec = None;
    if let Some(parameters) = upgrade.parameters {
        record.config.parameters = parameters;
    }
    tracing::info!(%vat, code = record.config.code(), "upgrading vat");
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
