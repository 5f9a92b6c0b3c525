//! `rejection-bootstrap` and `rejection-rejector`: a method that fails rejects its caller's
//! result, and neither vat is hurt by it (spec §21.14).

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, E, Error, Ref, Result, Runtime, Val, Vat};

pub(crate) fn bootstrap_runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_bootstrap)
}

pub(crate) fn rejector_runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_rejector)
}

/// `bootstrap(vats)`: calls `vats.rejector.foo(false)`, `foo(true)`, `foo(false)` in turn and
/// logs each answer, or `err` for the rejection; answers `done`.
fn build_bootstrap(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("main")
        .bootstrap(async |vat, roots| {
            let rejector = roots.vat("rejector")?;
            for reject in [false, true, false] {
                match E(&rejector).send("foo", [reject]).await {
                    Ok(answer) => vat.test_log(answer.to_string()),
                    Err(_) => vat.test_log("err"),
                }
            }
            Ok("done")
        })
        .build())
}

/// `foo(reject)`: logs `reject` and fails with `error: bar` when `reject`, else logs
/// `resolve` and answers `bar`.
fn build_rejector(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("rejector")
        .method("foo", |vat, args| {
            if args.bool(0)? {
                vat.test_log("reject");
                Err(Error::new("error: bar"))
            } else {
                vat.test_log("resolve");
                Ok("bar")
            }
        })
        .build())
}
