//! `exporter` and `observer`: the vats of the syscall-validation scenarios (spec §21.21).
//! The exporter makes objects on request, so the host can revoke them and check that the
//! exporter itself keeps working; the observer only answers its bootstrap.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, Ref, Result, Runtime, Val, Vat};

pub(crate) fn exporter_runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_exporter)
}

pub(crate) fn observer_runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_observer)
}

/// The exporter's root (parameters `{name}`):
///
/// * `bootstrap()` → `bootstrap-<name>`; `noop()` → `noop`;
/// * `createObject(id)` → a new `SharedObject` whose `getValue()` answers `id`;
/// * `isObjectPresent(id)` → whether it still tracks that object;
/// * `forgetObject(id)` → stops tracking it (true if it did).
fn build_exporter(vat: &Vat, parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let name = parameters
        .get("name")
        .and_then(Val::as_str)
        .unwrap_or("anonymous")
        .to_owned();
    let objects: Rc<RefCell<BTreeMap<String, Ref>>> = Rc::default();
    let (made, present, forgotten) = (Rc::clone(&objects), Rc::clone(&objects), objects);
    let (create_name, forget_name) = (name.clone(), name.clone());
    Ok(vat
        .object("root")
        .method("bootstrap", move |_vat, _args| {
            Ok(format!("bootstrap-{name}"))
        })
        .method("createObject", move |vat, args| {
            let id = args.str(0)?.to_owned();
            let answer = id.clone();
            let object = vat
                .object("SharedObject")
                .method("getValue", move |_vat, _args| Ok(answer.clone()))
                .build();
            made.borrow_mut().insert(id.clone(), object.clone());
            vat.test_log(format!("{create_name}: Created object {id}"));
            Ok(object)
        })
        .method("isObjectPresent", move |_vat, args| {
            Ok(present.borrow().contains_key(args.str(0)?))
        })
        .method("forgetObject", move |vat, args| {
            let id = args.str(0)?;
            let known = forgotten.borrow_mut().remove(id).is_some();
            if known {
                vat.test_log(format!("{forget_name}: Forgetting object {id}"));
            } else {
                vat.test_log(format!(
                    "{forget_name}: Cannot forget nonexistent object: {id}"
                ));
            }
            Ok(known)
        })
        .method("noop", |_vat, _args| Ok("noop"))
        .build())
}

/// `bootstrap()` → `bootstrap complete`.
fn build_observer(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    Ok(vat
        .object("observer")
        .bootstrap(async |_vat, _roots| Ok("bootstrap complete"))
        .build())
}
