//! `counter-vat`: a template for a vat of your own. It is an executable: the kernel starts
//! it as a worker process (`counter-vat worker <vat-name>`) and speaks to it over standard
//! input and output; `ocap_vat::worker::main` does all of that.
//!
//! The vat keeps a durable counter in its baggage (it survives kernel restarts, vat
//! restarts and upgrades), counts in steps of its `step` parameter, and has an async method
//! that calls another vat and awaits its answer.

use ocap_vat::{Baggage, E, Error, Ref, Result, Val, Vat};

fn main() {
    ocap_vat::worker::main(build)
}

/// Builds the vat's root object; runs at every start of the vat, with its baggage as the
/// last incarnation left it.
///
/// * `bootstrap(roots)`: keeps the `peer` vat's root in baggage, counts once, asks the
///   peer to count once, and answers `counter at <count>, peer at <peer's count>`;
/// * `increment()`: counts once and answers the count;
/// * `count()`: the count;
/// * `add_peer()` (async): asks the peer to count, adds the peer's answer to the count
///   and answers the count.
fn build(vat: &Vat, parameters: &Val, baggage: &Baggage) -> Result<Ref> {
    if !baggage.has("count") {
        baggage.set("count", 0)?;
    }
    let step = parameters.get("step").and_then(Val::as_int).unwrap_or(1);
    Ok(vat
        .object("counter")
        .bootstrap(async move |vat, roots| {
            let baggage = vat.baggage();
            let peer = roots.vat("peer")?;
            baggage.set("peer", peer.clone())?;
            let count = add(&baggage, step)?;
            let theirs = E(&peer).send("increment", ()).await?;
            Ok(format!("counter at {count}, peer at {theirs}"))
        })
        .method("increment", move |vat, _args| add(&vat.baggage(), step))
        .method("count", |vat, _args| count_of(&vat.baggage()))
        .method_async("add_peer", async |vat, _args| {
            let baggage = vat.baggage();
            let peer = baggage
                .get("peer")?
                .ok_or_else(|| Error::new("this counter has no peer"))?;
            let theirs = E(&peer).send("increment", ()).await?;
            let theirs = theirs
                .as_int()
                .ok_or_else(|| Error::new("the peer's count is not an integer"))?;
            add(&baggage, theirs)
        })
        .build())
}

/// The count kept in baggage.
fn count_of(baggage: &Baggage) -> Result<i64> {
    Ok(baggage
        .get("count")?
        .and_then(|count| count.as_int())
        .unwrap_or(0))
}

/// Adds `by` to the count and answers the new count.
fn add(baggage: &Baggage, by: i64) -> Result<i64> {
    let count = count_of(baggage)? + by;
    baggage.set("count", count)?;
    Ok(count)
}
