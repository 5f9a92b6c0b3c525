//! The persistence scenario's vats (spec §21.13): state kept in baggage and in durable
//! objects, so that it survives vat and kernel restarts.
//!
//! * `persistence-counter`: a counter in baggage, and a durable `tally` kind;
//! * `persistence-coordinator`: keeps two worker roots in baggage and drives them;
//! * `persistence-worker`: a counter in baggage, named by its `id` parameter;
//! * `persistence-announcer`: sends a message while it builds, from its second incarnation
//!   on.

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, E, Error, Ref, Result, Runtime, Val, Vat};

pub(crate) fn counter() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_counter)
}

pub(crate) fn coordinator() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_coordinator)
}

pub(crate) fn worker() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_worker)
}

pub(crate) fn announcer() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_announcer)
}

/// Reads the integer under `key`, 0 when absent.
fn count_of(baggage: &Baggage, key: &str) -> Result<i64> {
    Ok(baggage.get(key)?.and_then(|v| v.as_int()).unwrap_or(0))
}

/// Increments the integer under `key` and returns the new value.
fn bump(baggage: &Baggage, key: &str) -> Result<i64> {
    let count = count_of(baggage, key)? + 1;
    baggage.set(key, count)?;
    Ok(count)
}

/// At build: if baggage has `count`, logs `resumed with count: <n>`, else stores 1 and logs
/// `initialized with count: 1` (test logs). Root methods:
///
/// * `bootstrap()` → `Counter initialized with count: <count>`;
/// * `resume()` → increments `count`, answers `Counter incremented to: <count>`;
/// * `count()` → the count;
/// * `tally()` → the durable `tally` object (made once, kept in baggage); its `add(n = 1)`
///   adds to its durable total and answers it, `total()` answers it.
fn build_counter(vat: &Vat, _parameters: &Val, baggage: &Baggage) -> Result<Ref> {
    if baggage.has("count") {
        vat.test_log(format!(
            "resumed with count: {}",
            count_of(baggage, "count")?
        ));
    } else {
        baggage.set("count", 1)?;
        vat.test_log("initialized with count: 1");
    }
    let tallies = vat
        .durable_kind("tally")
        .method("add", |_vat, state, args| {
            let by = if args.is_empty() { 1 } else { args.int(0)? };
            let total = state.field("total")?.as_int().unwrap_or(0) + by;
            state.set_field("total", total)?;
            Ok(total)
        })
        .method("total", |_vat, state, _args| state.field("total"))
        .build()?;
    Ok(vat
        .object("counter")
        .bootstrap(async |vat, _roots| {
            let count = count_of(&vat.baggage(), "count")?;
            Ok(format!("Counter initialized with count: {count}"))
        })
        .method("resume", |vat, _args| {
            let count = bump(&vat.baggage(), "count")?;
            Ok(format!("Counter incremented to: {count}"))
        })
        .method("count", |vat, _args| count_of(&vat.baggage(), "count"))
        .method("tally", move |vat, _args| {
            let baggage = vat.baggage();
            if let Some(tally) = baggage.get("tally")? {
                return Ok(tally);
            }
            let tally = Val::from(tallies.make(Val::record([("total", 0)]))?);
            baggage.set("tally", tally.clone())?;
            Ok(tally)
        })
        .build())
}

/// `bootstrap(vats)` keeps `vats.worker1` and `vats.worker2` in baggage and answers
/// `Coordinator initialized with 2 workers`; `resume()` asks both workers to `resume` (both
/// sends go out before either answer is awaited), increments its own count and answers
/// `Work completed: <answer1>, <answer2>`.
fn build_coordinator(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("coordinator")
        .bootstrap(async |vat, roots| {
            let baggage = vat.baggage();
            baggage.set("worker1", roots.vat("worker1")?)?;
            baggage.set("worker2", roots.vat("worker2")?)?;
            baggage.set("count", 0)?;
            Ok("Coordinator initialized with 2 workers")
        })
        .method_async("resume", async |vat, _args| {
            let baggage = vat.baggage();
            let worker = |key: &str| -> Result<Val> {
                baggage
                    .get(key)?
                    .ok_or_else(|| Error::new(format!("no {key} in baggage")))
            };
            let first = E(&worker("worker1")?).send("resume", ());
            let second = E(&worker("worker2")?).send("resume", ());
            let (first, second) = (first.await?, second.await?);
            bump(&baggage, "count")?;
            Ok(format!("Work completed: {first}, {second}"))
        })
        .build())
}

/// `resume()` increments a count in baggage and answers `Worker<id>(<count>)`, `id` being
/// the vat's `id` parameter.
fn build_worker(vat: &Vat, parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let id = parameters
        .get("id")
        .and_then(Val::as_int)
        .ok_or_else(|| Error::new("persistence-worker needs an integer id parameter"))?;
    Ok(vat
        .object("worker")
        .method("resume", move |vat, _args| {
            let count = bump(&vat.baggage(), "count")?;
            Ok(format!("Worker{id}({count})"))
        })
        .build())
}

/// `bootstrap(vats)` keeps `vats.listener` in baggage and answers `announcer ready`. Every
/// later incarnation, while it builds, sends `log("announcer is back")` to the listener
/// (a tester, whose `log` writes a test log line).
fn build_announcer(vat: &Vat, _parameters: &Val, baggage: &Baggage) -> Result<Ref> {
    if let Some(listener) = baggage.get("listener")? {
        drop(E(&listener).send("log", ["announcer is back"]));
    }
    Ok(vat
        .object("announcer")
        .bootstrap(async |vat, roots| {
            vat.baggage().set("listener", roots.vat("listener")?)?;
            Ok("announcer ready")
        })
        .build())
}
