//! `alice`: a bootstrap vat that greets `bob` and reports his answer.

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, E, Ref, Result, Runtime, Val, Vat};

pub(crate) fn runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build)
}

/// `bootstrap(vats, services)` sends `hello("alice")` to `vats.bob` and answers
/// `"alice got: <reply>"`.
fn build(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("alice")
        .bootstrap(async |_vat, roots| {
            let reply = E(&roots.vat("bob")?).send("hello", ["alice"]).await?;
            Ok(format!("alice got: {reply}"))
        })
        .build())
}
