//! Vats for the launch scenarios (spec §21.2, §21.11): vats that fail at each step of their
//! launch, logging to the console channel (no tags) as they go, one that fails only when
//! restarted, and `logger-vat`.

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, Error, Ref, Result, Runtime, Val, Vat};

/// `throw-global`: a Rust vat has no module-level code, so the first thing its build
/// function does stands for it: logs `global throw`, then fails with
/// `thrown from global scope` before any object exists.
pub(crate) fn global() -> Box<dyn VatRuntime> {
    Runtime::boxed(
        |vat: &Vat, _parameters: &Val, _baggage: &Baggage| -> Result<Ref> {
            vat.logger().info("global throw");
            Err(Error::new("thrown from global scope"))
        },
    )
}

/// `throw-build`: logs `build throw` and `buildRootObject`, then its build function fails
/// with `from buildRootObject`.
pub(crate) fn build() -> Box<dyn VatRuntime> {
    Runtime::boxed(
        |vat: &Vat, _parameters: &Val, _baggage: &Baggage| -> Result<Ref> {
            vat.logger().info("build throw");
            vat.logger().info("buildRootObject");
            Err(Error::new("from buildRootObject"))
        },
    )
}

/// `throw-bootstrap`: logs `bootstrap throw` and `buildRootObject` while building; its
/// `bootstrap()` logs `bootstrap` and fails with `from bootstrap`.
pub(crate) fn bootstrap() -> Box<dyn VatRuntime> {
    Runtime::boxed(
        |vat: &Vat, _parameters: &Val, _baggage: &Baggage| -> Result<Ref> {
            vat.logger().info("bootstrap throw");
            vat.logger().info("buildRootObject");
            Ok(vat
                .object("throw-bootstrap")
                .bootstrap(async |vat, _roots| -> Result<Val> {
                    vat.logger().info("bootstrap");
                    Err(Error::new("from bootstrap"))
                })
                .build())
        },
    )
}

/// `throw-restart`: starts once; every later incarnation's build function fails with
/// `from the second build` (its first build leaves a mark in baggage).
pub(crate) fn restart() -> Box<dyn VatRuntime> {
    Runtime::boxed(
        |vat: &Vat, _parameters: &Val, baggage: &Baggage| -> Result<Ref> {
            if baggage.has("built") {
                return Err(Error::new("from the second build"));
            }
            baggage.set("built", true)?;
            Ok(vat
                .object("throw-restart")
                .method("echo", |_vat, args| Ok(args.val_or_undefined(0)))
                .build())
        },
    )
}

/// `logger-vat`: `foo()` test-logs `foo: <name>` and logs `bar: <name>` to the console,
/// `<name>` being the vat's `name` parameter; `bootstrap()` answers `bootstrap complete`.
pub(crate) fn logger() -> Box<dyn VatRuntime> {
    Runtime::boxed(
        |vat: &Vat, parameters: &Val, _baggage: &Baggage| -> Result<Ref> {
            let name = parameters
                .get("name")
                .and_then(Val::as_str)
                .unwrap_or("anonymous")
                .to_owned();
            Ok(vat
                .object("logger")
                .bootstrap(async |_vat, _roots| Ok("bootstrap complete"))
                .method("foo", move |vat, _args| {
                    vat.test_log(format!("foo: {name}"));
                    vat.logger().info(format!("bar: {name}"));
                    Ok(())
                })
                .build())
        },
    )
}
