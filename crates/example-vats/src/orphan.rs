//! The orphaned-ephemeral scenario's vats (spec §21.12): a consumer that keeps a reference
//! to an ephemeral object of a provider, which a restart of the provider (or of the whole
//! kernel) makes stale.

use ocap_vat::VatRuntime;
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

/// `bootstrap(vats)` keeps `await E(vats.provider).getEphemeral()` in baggage, so that a
/// kernel restart does not lose the reference (it is an import, which baggage may hold);
/// `useEphemeral()` answers `E(ephemeral).increment()`.
fn build_consumer(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("consumer")
        .bootstrap(async move |vat, roots| {
            let ephemeral = E(&roots.vat("provider")?).send("getEphemeral", ()).await?;
            vat.baggage().set("ephemeral", ephemeral)?;
            Ok("consumer ready")
        })
        .method_async("useEphemeral", async move |vat, _args| {
            let ephemeral = vat
                .baggage()
                .get("ephemeral")?
                .ok_or_else(|| Error::new("no ephemeral object yet"))?;
            E(&ephemeral).send("increment", ()).await
        })
        .build())
}
