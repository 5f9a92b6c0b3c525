//! Translation between a vat's refs and kernel refs through its c-list (spec §2.7).
//!
//! Kernel → vat may import (allocate `o-N`/`p-N`); vat → kernel may export (allocate a
//! kernel object or promise for an unknown `o+…`/`p+N`); an unknown `o-N`/`p-N` from a vat
//! is illegal.

use ocap_store::{KernelStore, Owner, StoreError};
use ocap_types::{CapData, EndpointId, KRef, VRef, VatId};

/// A vat used a ref it does not hold. The text names the vref: it goes to logs and the
/// kernel's own errors, never into a rejection value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} is not an export reference")]
pub struct ForgedRef(pub VRef);

/// Translation failure from a vat's ref.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TranslateError {
    #[error(transparent)]
    Forged(#[from] ForgedRef),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The vref for `kref` in `vat`'s c-list, importing it if it is not there yet.
pub(crate) fn kref_to_vref(
    store: &mut KernelStore,
    vat: VatId,
    kref: KRef,
) -> Result<VRef, StoreError> {
    let ep = EndpointId::Vat(vat);
    if let Some(entry) = store.clist_entry(ep, kref)? {
        // An import the vat dropped is reachable from it again.
        store.mark_reachable(ep, kref, entry)?;
        return Ok(entry.vref);
    }
    // Every import holds what it names, so that an object or a settled promise is
    // collected only once no vat can name it.
    let vref = match kref {
        KRef::Object(_) => VRef::ImportObject(store.allocate_import(ep, false)?),
        KRef::Promise(_) => VRef::ImportPromise(store.allocate_import(ep, true)?),
    };
    store.add_clist_entry(ep, kref, vref)?;
    store.incref(kref)?;
    Ok(vref)
}

/// The kref for `vref` from `vat`, exporting it if it is a new `o+…`/`p+N`.
pub(crate) fn vref_to_kref(
    store: &mut KernelStore,
    vat: VatId,
    vref: VRef,
) -> Result<KRef, TranslateError> {
    let ep = EndpointId::Vat(vat);
    if let Some(kref) = store.clist_kref(ep, vref)? {
        return Ok(kref);
    }
    let kref = match vref {
        VRef::ExportObject(_) => KRef::Object(store.create_object(Owner::Endpoint(ep))?),
        VRef::ExportPromise(_) => {
            let promise = KRef::Promise(store.create_promise(Some(Owner::Endpoint(ep)))?);
            // The exporter's c-list entry holds the promise (an object's export entry
            // holds nothing: its importers, queues and values do).
            store.incref(promise)?;
            promise
        }
        VRef::ImportObject(_) | VRef::ImportPromise(_) => return Err(ForgedRef(vref).into()),
    };
    store.add_clist_entry(ep, kref, vref)?;
    Ok(kref)
}

pub(crate) fn capdata_to_vat(
    store: &mut KernelStore,
    vat: VatId,
    data: &CapData<KRef>,
) -> Result<CapData<VRef>, StoreError> {
    data.try_map_slots(|kref| kref_to_vref(store, vat, *kref))
}

/// The kernel form of a value `vat` sends out (in a message, a resolution, an exit). An
/// export of it that the kernel had dropped is reachable again (spec §2.6, issue 13): it
/// is dropped, and retired, once more when its new holders let go.
pub(crate) fn capdata_to_kernel(
    store: &mut KernelStore,
    vat: VatId,
    data: &CapData<VRef>,
) -> Result<CapData<KRef>, TranslateError> {
    data.try_map_slots(|vref| {
        let kref = vref_to_kref(store, vat, *vref)?;
        if vref.is_export()
            && let KRef::Object(_) = kref
            && let Some(entry) = store.clist_entry(EndpointId::Vat(vat), kref)?
        {
            store.mark_reachable(EndpointId::Vat(vat), kref, entry)?;
        }
        Ok(kref)
    })
}
