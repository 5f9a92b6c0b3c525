//! `service-vat` (spec §21.18): a bootstrap vat that calls the kernel service `testService`.

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, E, Error, Ref, Result, Runtime, Val, Vat};

pub(crate) fn runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build)
}

/// `bootstrap(vats, services)` keeps `services.testService` in baggage. `go()` passes a
/// local object `thing` to `getStuff(thing, "hello")`, test-logs
/// `kernel service returns <result>` and answers the result; `goBadly()` calls the
/// service's nonexistent `nonexistentMethod`, test-logs `kernel service threw: <error>` and
/// fails with that error.
fn build(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("service-user")
        .bootstrap(async |vat, roots| {
            vat.baggage()
                .set("service", roots.service("testService")?)?;
            Ok("bootstrap complete")
        })
        .method_async("go", async |vat, _args| {
            let thing = vat.object("thing").build();
            let result = E(&service(&vat)?)
                .send("getStuff", (thing, "hello"))
                .await?;
            vat.test_log(format!("kernel service returns {result}"));
            Ok(result)
        })
        .method_async("goBadly", async |vat, _args| {
            match E(&service(&vat)?).send("nonexistentMethod", ()).await {
                Ok(result) => Ok(result),
                Err(error) => {
                    vat.test_log(format!("kernel service threw: {}", error.message()));
                    Err(error)
                }
            }
        })
        .build())
}

fn service(vat: &Vat) -> Result<Val> {
    vat.baggage()
        .get("service")?
        .ok_or_else(|| Error::new("no service: bootstrap has not run"))
}
