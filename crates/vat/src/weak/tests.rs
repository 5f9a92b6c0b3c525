//! Weak stores, and what `bringOutYourDead` reports about imports and exports.

use std::cell::RefCell;
use std::rc::Rc;

use ocap_types::{Delivery, Message, Syscall, VRef, Value, VatHost, VatLog, VatRuntime, VatStart};

use super::{WeakMapStore, WeakSetStore};
use crate::{Baggage, Ref, Result, Runtime, Val, Vat};

#[derive(Default)]
struct Host(Vec<Syscall>);

impl VatHost for Host {
    fn syscall(&mut self, syscall: Syscall) {
        self.0.push(syscall);
    }
    fn log(&mut self, _log: VatLog) {}
}

fn vref(text: &str) -> VRef {
    text.parse().unwrap()
}

/// A vat that keeps what it is given strongly (`keep`), as a weak-map key (`keep`, `weaken`
/// leaves only that), in baggage (`stash`), or not at all (`ignore`); `share` exports a
/// fresh local object, `local` one it keeps, `echo` answers its argument.
fn build(vat: &Vat, _parameters: &Val, baggage: &Baggage) -> Result<Ref> {
    let strong: Rc<RefCell<Option<Ref>>> = Rc::default();
    let weak = Rc::new(RefCell::new(WeakMapStore::new("weak")));
    let kept_local = vat.object("kept").build();
    let baggage = baggage.clone();
    let (keep_strong, keep_weak) = (Rc::clone(&strong), Rc::clone(&weak));
    let (weaken_strong, forget_weak) = (Rc::clone(&strong), Rc::clone(&weak));
    Ok(vat
        .object("root")
        .method("keep", move |_vat, args| {
            let obj = args.object(0)?;
            keep_weak.borrow().init(obj.clone(), true)?;
            *keep_strong.borrow_mut() = Some(obj);
            Ok(Val::Undefined)
        })
        .method("weaken", move |_vat, _args| {
            weaken_strong.borrow_mut().take();
            Ok(Val::Undefined)
        })
        .method("forget", move |_vat, _args| {
            *forget_weak.borrow_mut() = WeakMapStore::new("weak");
            Ok(Val::Undefined)
        })
        .method("stash", move |_vat, args| {
            baggage.set("stash", args.val(0)?.clone())?;
            Ok(Val::Undefined)
        })
        .method("ignore", |_vat, _args| Ok(Val::Undefined))
        .method("echo", |_vat, args| Ok(args.val(0)?.clone()))
        .method("share", |vat, _args| Ok(vat.object("fresh").build()))
        .method("local", move |_vat, _args| Ok(kept_local.clone()))
        .build())
}

struct Driver {
    runtime: Runtime,
    next_result: u64,
}

impl Driver {
    fn new() -> Driver {
        let mut runtime = Runtime::new(build);
        let start = VatStart {
            name: "v".into(),
            parameters: Value::Null,
            state: Vec::new(),
        };
        assert_eq!(runtime.start(start, &mut Host::default()).error, None);
        Driver {
            runtime,
            next_result: 1,
        }
    }

    /// Delivers `method(slot)` to the root; returns the syscalls.
    fn call(&mut self, method: &str, slot: Option<&str>) -> Vec<Syscall> {
        let result = VRef::ImportPromise(self.next_result);
        self.next_result += 1;
        let (args, slots) = match slot {
            Some(slot) => (
                vec![Value::Slot {
                    index: 0,
                    iface: None,
                }],
                vec![vref(slot)],
            ),
            None => (Vec::new(), Vec::new()),
        };
        let message = Message::new(method, args, slots, Some(result));
        self.deliver(Delivery::Message {
            target: VRef::ROOT,
            message,
        })
    }

    fn deliver(&mut self, delivery: Delivery) -> Vec<Syscall> {
        let mut host = Host::default();
        assert_eq!(self.runtime.deliver(delivery, &mut host).error, None);
        host.0
    }

    fn reap(&mut self) -> Vec<Syscall> {
        self.deliver(Delivery::BringOutYourDead)
    }
}

#[test]
fn an_import_nobody_holds_is_dropped_and_retired_at_once() {
    let mut driver = Driver::new();
    driver.call("ignore", Some("o-1"));
    assert_eq!(
        driver.reap(),
        [
            Syscall::DropImports(vec![vref("o-1")]),
            Syscall::RetireImports(vec![vref("o-1")])
        ]
    );
    assert_eq!(driver.reap(), [], "reported once");
}

#[test]
fn a_weak_map_key_is_dropped_but_retired_only_when_the_map_goes() {
    let mut driver = Driver::new();
    driver.call("keep", Some("o-1"));
    assert_eq!(driver.reap(), [], "held strongly");
    driver.call("weaken", None);
    assert_eq!(driver.reap(), [Syscall::DropImports(vec![vref("o-1")])]);
    assert_eq!(driver.reap(), [], "still recognisable, dropped once");
    driver.call("forget", None);
    assert_eq!(driver.reap(), [Syscall::RetireImports(vec![vref("o-1")])]);
    assert_eq!(driver.reap(), []);
}

#[test]
fn an_import_in_baggage_is_never_garbage() {
    let mut driver = Driver::new();
    driver.call("stash", Some("o-1"));
    assert_eq!(driver.reap(), []);
}

#[test]
fn a_retired_import_is_forgotten() {
    let mut driver = Driver::new();
    driver.call("keep", Some("o-1"));
    driver.call("weaken", None);
    driver.reap();
    driver.deliver(Delivery::RetireImports(vec![vref("o-1")]));
    driver.call("forget", None);
    assert_eq!(driver.reap(), [], "the kernel already forgot it");
}

#[test]
fn a_dropped_export_nobody_holds_is_retired_but_the_root_and_held_ones_stay() {
    let mut driver = Driver::new();
    let shared = driver.call("share", None);
    let kept = driver.call("local", None);
    let exported = |syscalls: &[Syscall]| match syscalls {
        [Syscall::Resolve(resolutions)] => resolutions[0].data.slots[0],
        other => panic!("{other:?}"),
    };
    let (shared, kept) = (exported(&shared), exported(&kept));
    assert_eq!(driver.reap(), [], "the kernel has not dropped them");
    driver.deliver(Delivery::DropExports(vec![shared, kept, VRef::ROOT]));
    assert_eq!(driver.reap(), [Syscall::RetireExports(vec![shared])]);
    assert_eq!(driver.reap(), []);
}

#[test]
fn an_export_sent_again_after_the_kernel_dropped_it_is_not_retired() {
    let mut driver = Driver::new();
    let shared = match driver.call("share", None).as_slice() {
        [Syscall::Resolve(resolutions)] => resolutions[0].data.slots[0],
        other => panic!("{other:?}"),
    };
    driver.deliver(Delivery::DropExports(vec![shared]));
    // The kernel hands it back and the vat returns it: it leaves the vat again.
    let returned = driver.call("echo", Some(&shared.to_string()));
    assert!(
        matches!(returned.as_slice(), [Syscall::Resolve(_)]),
        "{returned:?}"
    );
    assert_eq!(driver.reap(), []);
}

#[test]
fn weak_stores_take_only_references_and_recognise_them() -> Result<()> {
    let runtime = Runtime::new(|vat: &Vat, _: &Val, _: &Baggage| {
        let thing = vat.object("thing").build();
        let map = WeakMapStore::new("map");
        assert!(map.init("text", 1).is_err());
        assert!(!map.has("text"));
        map.set(thing.clone(), 1)?;
        map.set(thing.clone(), 2)?;
        assert_eq!(map.get(thing.clone())?, Val::from(2));
        let set = WeakSetStore::new("set");
        set.add(thing.clone())?;
        set.add(thing.clone())?;
        assert!(set.has(thing.clone()));
        set.delete(thing.clone())?;
        assert!(!set.has(thing.clone()));
        assert!(set.delete(thing).is_err());
        Ok(vat.object("root").build())
    });
    let mut runtime = runtime;
    let start = VatStart {
        name: "v".into(),
        parameters: Value::Null,
        state: Vec::new(),
    };
    assert_eq!(runtime.start(start, &mut Host::default()).error, None);
    Ok(())
}
