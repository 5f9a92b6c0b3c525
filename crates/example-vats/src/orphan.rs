//! The orphaned-ephemeral scenario's vats (spec §21.12): a consumer that keeps a reference
//! to an ephemeral object of a provider, which a restart of the provider makes stale.

use std::cell::RefCell;
use std::rc::Rc;

use ocap_types::VatRuntime;
use ocap_vat::{Baggage, E, Error, Ref, Result, Runtime, Val, Vat};

pub(crate) fn provider() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_provider)
}

pub(crate) fn consumer() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_consumer)
}

/// `getEphemeral()` → a new non-durable object whose `increment()` answers 999.
fn build_provider(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("provider")
        .method("getEphemeral", |vat, _args| {
            Ok(vat
                .object("ephemeral")
                .method("increment", |_vat, _args| Ok(999))
                .build())
        })
        .build())
}

/// `bootstrap(vats)` keeps `await E(vats.provider).getEphemeral()`; `useEphemeral()`
/// answers `E(ephemeral).increment()`.
fn build_consumer(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let kept: Rc<RefCell<Option<Val>>> = Rc::default();
    let keep = Rc::clone(&kept);
    Ok(vat
        .object("consumer")
        .bootstrap(async move |_vat, roots| {
            let ephemeral = E(&roots.vat("provider")?).send("getEphemeral", ()).await?;
            *keep.borrow_mut() = Some(ephemeral);
            Ok("consumer ready")
        })
        .method_async("useEphemeral", async move |_vat, _args| {
            let ephemeral = kept
                .borrow()
                .clone()
                .ok_or_else(|| Error::new("no ephemeral object yet"))?;
            E(&ephemeral).send("increment", ()).await
        })
        .build())
}
