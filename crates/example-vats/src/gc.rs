//! `gc-exporter` and `gc-importer`: the vats of the garbage-collection scenario (spec
//! §21.6). The exporter makes objects and keeps them in a map; the importer keeps an import
//! strongly and as a weak-map key, then lets go of it step by step, so a reap
//! (`bringOutYourDead`) reports first `dropImports`, then `retireImports`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use ocap_vat::VatRuntime;
use ocap_vat::{Baggage, E, Ref, Result, Runtime, Val, Vat, WeakMapStore};

pub(crate) fn exporter_runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_exporter)
}

pub(crate) fn importer_runtime() -> Box<dyn VatRuntime> {
    Runtime::boxed(build_importer)
}

/// The exporter's root:
///
/// * `bootstrap()` → `bootstrap complete`; `noop()` → `noop`;
/// * `createObject(id)` → a new `GcObject` whose `getValue()` answers `id`, kept in a map;
/// * `isObjectPresent(id)` → whether the map still has it;
/// * `forgetObject(id)` → removes it from the map (true if it was there).
fn build_exporter(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let objects: Rc<RefCell<BTreeMap<String, Ref>>> = Rc::default();
    let (made, present, forgotten) = (Rc::clone(&objects), Rc::clone(&objects), objects);
    Ok(vat
        .object("GcExporter")
        .bootstrap(async |_vat, _roots| Ok("bootstrap complete"))
        .method("createObject", move |vat, args| {
            let id = args.str(0)?.to_owned();
            let answer = id.clone();
            let object = vat
                .object("GcObject")
                .method("getValue", move |_vat, _args| Ok(answer.clone()))
                .build();
            made.borrow_mut().insert(id.clone(), object.clone());
            vat.test_log(format!("Created object {id}"));
            Ok(object)
        })
        .method("isObjectPresent", move |_vat, args| {
            Ok(present.borrow().contains_key(args.str(0)?))
        })
        .method("forgetObject", move |vat, args| {
            let id = args.str(0)?;
            // Dropped after the borrow ends.
            let removed = forgotten.borrow_mut().remove(id);
            vat.test_log(format!("Forgot object {id}"));
            Ok(removed.is_some())
        })
        .method("noop", |_vat, _args| Ok("noop"))
        .build())
}

/// The importer's root:
///
/// * `storeImport(obj, id = "default")` keeps `obj` strongly (by `id`) and as a key of a
///   weak map (with `id` as its value);
/// * `useImport(id = "default")` → `E(obj).getValue()`;
/// * `makeWeak(id)` lets go of the strong reference only;
/// * `forgetImport()` replaces the weak map with an empty one;
/// * `listImportedObjects()` → the ids held strongly, in order; `noop()` → `noop`.
fn build_importer(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let strong: Rc<RefCell<BTreeMap<String, Ref>>> = Rc::default();
    let weak = Rc::new(RefCell::new(WeakMapStore::new("importedObjects")));
    let (stored, used, weakened, listed) = (
        Rc::clone(&strong),
        Rc::clone(&strong),
        Rc::clone(&strong),
        strong,
    );
    let (store_weak, forget_weak) = (Rc::clone(&weak), weak);
    Ok(vat
        .object("GcImporter")
        .method("storeImport", move |vat, args| {
            let obj = args.object(0)?;
            let id = args.val_or_undefined(1);
            let id = id.as_str().unwrap_or("default").to_owned();
            store_weak.borrow().set(obj.clone(), id.as_str())?;
            stored.borrow_mut().insert(id.clone(), obj);
            vat.test_log(format!("Stored import {id}"));
            Ok(Val::Undefined)
        })
        .method("useImport", move |_vat, args| {
            let id = args.val_or_undefined(0);
            let id = id.as_str().unwrap_or("default");
            let obj = used
                .borrow()
                .get(id)
                .cloned()
                .ok_or_else(|| format!("no import stored as {id:?}"))?;
            Ok(E(&obj).send("getValue", ()))
        })
        .method("makeWeak", move |vat, args| {
            let id = args.str(0)?;
            // Dropped after the borrow ends.
            let removed = weakened.borrow_mut().remove(id);
            vat.test_log(format!("Made {id} weak"));
            Ok(removed.is_some())
        })
        .method("forgetImport", move |vat, _args| {
            let old = forget_weak.replace(WeakMapStore::new("importedObjects"));
            drop(old);
            vat.test_log("Forgot the weak map");
            Ok(Val::Undefined)
        })
        .method("listImportedObjects", move |_vat, _args| {
            Ok(Val::list(listed.borrow().keys().map(String::as_str)))
        })
        .method("noop", |_vat, _args| Ok("noop"))
        .build())
}
