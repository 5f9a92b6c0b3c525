//! The upgrade scenario's vats (issue 13 item 4): one counter in three versions.
//!
//! * `counter-v1`: keeps its count in a durable kind kit `counter` (facets `incrementer` and
//!   `reader`, made once and kept in baggage) and a durable weak set `seen`;
//! * `counter-v2`: defines the same kit again (its `incrementer` gains `decrement`) and
//!   answers `version()` with `v2`: upgraded from v1, it counts on from where v1 stopped;
//! * `counter-v2-broken`: a v2 whose build function fails after reading its baggage, so an
//!   upgrade to it fails and leaves v1 running.
//!
//! Root methods of both working versions:
//!
//! * `bootstrap()` → `counter <version> ready`;
//! * `increment()` → the new count; `count()` → the count; `version()` → `v1` or `v2`;
//! * `reader()` → the durable `reader` facet (its `read()` answers the count);
//! * `ephemeral()` → a fresh ephemeral object whose `ping()` answers `pong`;
//! * `pending()` → a promise this version never settles;
//! * `remember(x)` adds `x` to the durable weak set `seen`; `remembers(x)` → whether it is
//!   there.
//!
//! v2's root adds `decrement()` → the new count.

use std::cell::RefCell;
use std::rc::Rc;

use ocap_types::VatRuntime;
use ocap_vat::{Baggage, DurableKindKit, Error, Ref, Resolver, Result, Runtime, Val, Vat};

pub(crate) fn v1() -> Box<dyn VatRuntime> {
    Runtime::boxed(|vat, _parameters, baggage| build(vat, baggage, Version::V1))
}

pub(crate) fn v2() -> Box<dyn VatRuntime> {
    Runtime::boxed(|vat, _parameters, baggage| build(vat, baggage, Version::V2))
}

pub(crate) fn v2_broken() -> Box<dyn VatRuntime> {
    Runtime::boxed(|_vat, _parameters, baggage| {
        let kept = baggage.has("counter");
        Err(Error::new(format!(
            "counter v2 is broken (found its counter: {kept})"
        )))
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Version {
    V1,
    V2,
}

impl Version {
    fn name(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V2 => "v2",
        }
    }
}

/// Adds `by` to the instance's count; the new count.
fn add(state: &ocap_vat::DurableState, by: i64) -> Result<Val> {
    let count = state.field("count")?.as_int().unwrap_or(0) + by;
    state.set_field("count", count)?;
    Ok(Val::from(count))
}

/// The `counter` kit: v2 adds `decrement` to its incrementer.
fn define_kit(vat: &Vat, version: Version) -> Result<DurableKindKit> {
    vat.durable_kind_kit("counter")
        .facet("incrementer", |facet| {
            let facet = facet.method("increment", |_vat, state, _args| add(&state, 1));
            match version {
                Version::V1 => facet,
                Version::V2 => facet.method("decrement", |_vat, state, _args| add(&state, -1)),
            }
        })
        .facet("reader", |facet| {
            facet.method("read", |_vat, state, _args| state.field("count"))
        })
        .build()
}

/// A facet of the counter kept in baggage (made on first use).
fn facet(baggage: &Baggage, kit: &DurableKindKit, name: &str) -> Result<Ref> {
    let counter = match baggage.get("counter")? {
        Some(counter) => counter,
        None => {
            let made = Val::from(kit.make(Val::record([("count", 0)]))?);
            baggage.set("counter", made.clone())?;
            made
        }
    };
    counter
        .get(name)
        .and_then(Val::as_object)
        .cloned()
        .ok_or_else(|| Error::new(format!("the counter has no {name} facet")))
}

fn build(vat: &Vat, baggage: &Baggage, version: Version) -> Result<Ref> {
    let kit = define_kit(vat, version)?;
    // The first version makes the counter; later ones find it.
    facet(baggage, &kit, "reader")?;
    let seen = vat.durable_weak_set_store("seen");
    // Resolvers of `pending()` promises: kept, never used.
    let parked: Rc<RefCell<Vec<Resolver>>> = Rc::default();
    let (increment_kit, count_kit, reader_kit) = (kit.clone(), kit.clone(), kit.clone());
    let decrement_kit = kit;
    let (remember, remembers) = (seen.clone(), seen);
    let root = vat
        .object("counter")
        .bootstrap(async move |_vat, _roots| Ok(format!("counter {} ready", version.name())))
        .method("increment", move |vat, _args| {
            facet(&vat.baggage(), &increment_kit, "incrementer")?.call("increment", ())
        })
        .method("count", move |vat, _args| {
            facet(&vat.baggage(), &count_kit, "reader")?.call("read", ())
        })
        .method("version", move |_vat, _args| Ok(version.name()))
        .method("reader", move |vat, _args| {
            facet(&vat.baggage(), &reader_kit, "reader")
        })
        .method("ephemeral", |vat, _args| {
            Ok(vat
                .object("thing")
                .method("ping", |_vat, _args| Ok("pong"))
                .build())
        })
        .method("pending", move |vat, _args| {
            let (promise, resolver) = vat.promise_kit();
            parked.borrow_mut().push(resolver);
            Ok(promise)
        })
        .method("remember", move |_vat, args| {
            remember.add(args.object(0)?)?;
            Ok(Val::Undefined)
        })
        .method("remembers", move |_vat, args| {
            Ok(remembers.has(args.object(0)?))
        });
    let root = match version {
        Version::V1 => root,
        Version::V2 => root.method("decrement", move |vat, _args| {
            facet(&vat.baggage(), &decrement_kit, "incrementer")?.call("decrement", ())
        }),
    };
    Ok(root.build())
}
