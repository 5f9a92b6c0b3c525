//! `bob`: answers greetings.

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, Ref, Result, Runtime, Val, Vat};

pub(crate) fn runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build)
}

/// `hello(name)` answers `"hello, <name>, from bob"`.
fn build(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("bob")
        .method("hello", |_vat, args| {
            Ok(format!("hello, {}, from bob", args.str(0)?))
        })
        .build())
}
