//! Translation between a vat's refs and kernel refs through its c-list (spec §2.7).
//!
//! Kernel → vat may import (allocate `o-N`/`p-N`); vat → kernel may export (allocate a
//! kernel object or promise for an unknown `o+…`/`p+N`); an unknown `o-N`/`p-N` from a vat
//! is illegal.

use ocap_store::{KernelStore, Owner, StoreError};
use ocap_types::{CapData, EndpointId, KPromiseId, KRef, VRef, VatId};

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
    // A promise's record may know that this vat's c-list cannot hold it (a send's result
    // on its way to its receiver): then there is no entry to look up.
    let may_hold = match kref {
        KRef::Promise(id) => store.clist_may_hold_promise(ep, id)?,
        KRef::Object(_) => true,
    };
    if may_hold && let Some(entry) = store.clist_entry(ep, kref)? {
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
            return Ok(KRef::Promise(export_promise(
                store,
                ep,
                vref,
                Some(Owner::Endpoint(ep)),
            )?));
        }
        VRef::ImportObject(_) | VRef::ImportPromise(_) => return Err(ForgedRef(vref).into()),
    };
    store.add_clist_entry(ep, kref, vref)?;
    Ok(kref)
}

/// A new kernel promise for `ep`'s new export `vref` (`p+N`), decided by `decider`.
fn export_promise(
    store: &mut KernelStore,
    ep: EndpointId,
    vref: VRef,
    decider: Option<Owner>,
) -> Result<KPromiseId, StoreError> {
    let promise = store.create_promise(decider)?;
    // The exporter's c-list entry holds the promise (an object's export entry holds
    // nothing: its importers, queues and values do).
    store.incref(KRef::Promise(promise))?;
    store.add_clist_entry(ep, KRef::Promise(promise), vref)?;
    Ok(promise)
}

/// The kref a vat's send names as its result.
pub(crate) enum SendResult {
    /// A ref the vat's c-list already held (the caller checks it is a promise the sender
    /// decides), or a new object export (which is not a promise).
    Known(KRef),
    /// A new promise export `p+N`, created with no decider: the send that names it gives
    /// the right to decide away at once (D20), so it is created as the send leaves it
    /// instead of created decided by the sender and changed in the same syscall.
    Fresh(KPromiseId),
}

/// [`vref_to_kref`] for the result `vref` of a send by `vat`.
pub(crate) fn send_result_to_kref(
    store: &mut KernelStore,
    vat: VatId,
    vref: VRef,
) -> Result<SendResult, TranslateError> {
    let ep = EndpointId::Vat(vat);
    if let VRef::ExportPromise(_) = vref {
        // One c-list read decides both cases.
        return Ok(match store.clist_kref(ep, vref)? {
            Some(kref) => SendResult::Known(kref),
            None => SendResult::Fresh(export_promise(store, ep, vref, None)?),
        });
    }
    vref_to_kref(store, vat, vref).map(SendResult::Known)
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
