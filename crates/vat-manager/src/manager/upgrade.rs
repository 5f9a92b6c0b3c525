//! Upgrading a vat (SwingSet's `upgradeVat`): its worker is replaced by one running a new
//! version of its code, on the same vat store, c-list and root.
//!
//! Invariant: an upgrade is all or nothing. Everything it changes in the store happens in
//! the caller's transaction, and the old version's runtime is kept aside, untouched (it gets
//! no delivery), until the new version has started: if it cannot, the runtime goes back and
//! the caller's transaction is rolled back, so the vat runs on exactly as before.

use ocap_queue::{Crank, KernelResolution, Mode};
use ocap_store::{Owner, VatRecord};
use ocap_types::{EndpointId, ErrorCode, ExportId, KPromiseId, KRef, VRef, VatId};

use super::VatManager;
use super::runtime::with_bundle_hash;
use crate::error::VatError;

impl VatManager {
    /// Upgrades `vat` to the code and parameters of `record` (its stored record with the new
    /// version's bundle), inside the caller's transaction. What the old version made that
    /// only it could answer for goes: its ephemeral and virtual exports are abandoned (sends
    /// to them splat as `OBJECT_DELETED`), and the promises it decided are rejected with
    /// `[KERNEL:VAT_UPGRADED]` and leave its c-list. Then `record` is stored and the new
    /// version starts on the vat store (baggage, durable kinds and stores); the root `o+0`
    /// keeps its kref and is whatever the new build function returns; durable exports stay.
    /// A vat that is stopped (a restart failed) may be upgraded too.
    ///
    /// # Errors
    /// [`VatError::NoSuchVat`] for a vat without a record; [`VatError::Upgrade`] when the
    /// new version cannot start; [`VatError::Store`]. On any error the old version's
    /// runtime is running again, and the caller must roll its transaction back.
    pub fn upgrade(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        record: &VatRecord,
    ) -> Result<(), VatError> {
        let old = self.running.remove(&vat);
        match self.replace_version(crank, vat, record) {
            // The old version's runtime (its worker, for a subprocess) ends here.
            Ok(()) => {
                drop(old);
                Ok(())
            }
            Err(error) => {
                if let Some(old) = old {
                    self.running.insert(vat, old);
                }
                Err(error)
            }
        }
    }

    fn replace_version(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        record: &VatRecord,
    ) -> Result<(), VatError> {
        if crank.store().vat(vat)?.is_none() {
            return Err(VatError::NoSuchVat(vat));
        }
        let ep = EndpointId::Vat(vat);
        let mut decided: Vec<KPromiseId> = Vec::new();
        let mut abandoned = Vec::new();
        for (vref, kref) in crank.store().clist_entries(ep)? {
            match kref {
                KRef::Promise(id) => {
                    let record = crank.store().promise(id)?;
                    if record.and_then(|r| r.decider()) == Some(Owner::Endpoint(ep)) {
                        decided.push(id);
                    }
                }
                KRef::Object(_) if is_ephemeral_export(vref) => abandoned.push((vref, kref)),
                KRef::Object(_) => {}
            }
        }
        let rejection = ErrorCode::VatUpgraded.capdata::<KRef>(ErrorCode::UPGRADED_DETAIL);
        let rejections = decided
            .iter()
            .map(|id| KernelResolution::reject(*id, rejection.clone()))
            .collect();
        crank.resolve_promises(Some(Owner::Endpoint(ep)), rejections, Mode::Immediate)?;
        let store = crank.store_mut();
        // As when a vat resolves a promise itself: the resolver's entries go, so the new
        // version never hears of a promise it could not answer for.
        for id in decided {
            store.delete_clist_entry(ep, KRef::Promise(id))?;
        }
        for (vref, kref) in abandoned {
            store.orphan_export(ep, kref, vref)?;
        }
        store.put_vat(vat, record)?;
        let bundle_hash = self
            .start_vat(crank, vat, record)
            .map_err(|cause| match cause {
                VatError::Store(_) | VatError::Queue(_) => cause,
                cause => VatError::Upgrade {
                    vat,
                    name: record.name.clone(),
                    code: match record.config.executable() {
                        Some(path) => path.display().to_string(),
                        None => record.config.code().unwrap_or_default().to_owned(),
                    },
                    cause: Box::new(cause),
                },
            })?;
        // The new build's hash, which restarts and reopens then require.
        crank
            .store_mut()
            .put_vat(vat, &with_bundle_hash(record, bundle_hash))?;
        Ok(())
    }
}

/// True for an export only one incarnation can answer for: an ephemeral object other than
/// the root, or a virtual one.
fn is_ephemeral_export(vref: VRef) -> bool {
    match vref {
        VRef::ExportObject(ExportId::Ephemeral(n)) => n != 0,
        VRef::ExportObject(ExportId::Virtual { .. }) => true,
        _ => false,
    }
}
