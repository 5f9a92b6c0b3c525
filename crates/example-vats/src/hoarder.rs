//! `hoarder`: a vat that piles up c-list entries (exports, imports and promises), to test
//! that the cleanup of a terminated vat is spread over cranks.

use std::cell::RefCell;
use std::rc::Rc;

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, Promise, Ref, Result, Runtime, Val, Vat};

pub(crate) fn runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build)
}

/// * `make_many(n)` → a list of `n` new objects (each exported when the list leaves);
/// * `hold(values)` → keeps `values` (imports stay in its c-list), answers how many it holds;
/// * `pending_many(n)` → a list of `n` promises that never settle (each exported);
/// * `bootstrap()` → `bootstrap complete`.
fn build(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let held: Rc<RefCell<Vec<Val>>> = Rc::default();
    let keep_pending: Rc<RefCell<Vec<Promise>>> = Rc::default();
    Ok(vat
        .object("hoarder")
        .bootstrap(async |_vat, _roots| Ok("bootstrap complete"))
        .method("make_many", |vat, args| {
            let n = args.int(0)?;
            Ok(Val::List(
                (0..n)
                    .map(|i| Val::from(vat.object(&format!("item{i}")).build()))
                    .collect(),
            ))
        })
        .method("hold", move |_vat, args| {
            let mut held = held.borrow_mut();
            held.extend(args.list(0)?.iter().cloned());
            Ok(i64::try_from(held.len()).unwrap_or(i64::MAX))
        })
        .method("pending_many", move |vat, args| {
            let n = args.int(0)?;
            let mut out = Vec::new();
            for _ in 0..n {
                let (promise, _resolver) = vat.promise_kit();
                keep_pending.borrow_mut().push(promise.clone());
                out.push(Val::from(promise));
            }
            Ok(Val::List(out))
        })
        .build())
}
