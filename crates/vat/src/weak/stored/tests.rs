//! Durable weak stores driven by hand across incarnations, as the kernel would drive them.

use ocap_types::{
    ByteBuf, Checkpoint, Delivery, Message, Syscall, VRef, Value, VatHost, VatLog, VatRuntime,
    VatStart,
};

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

/// A vat with a durable weak map `seen`: `remember(x)` adds `x → "noted"`, `recall(x)`
/// answers its value or `"unknown"`, `forget(x)` deletes it.
fn build(vat: &Vat, _parameters: &Val, _baggage: &Baggage) -> Result<Ref> {
    let seen = vat.durable_weak_map_store("seen");
    let (remember, recall, forget) = (seen.clone(), seen.clone(), seen);
    Ok(vat
        .object("root")
        .method("remember", move |_vat, args| {
            remember.init(args.object(0)?, "noted")?;
            Ok(Val::Undefined)
        })
        .method("recall", move |_vat, args| {
            let key = args.object(0)?;
            if recall.has(key.clone()) {
                recall.get(key)
            } else {
                Ok(Val::from("unknown"))
            }
        })
        .method("forget", move |_vat, args| {
            forget.delete(args.object(0)?)?;
            Ok(Val::Undefined)
        })
        .build())
}

/// One incarnation, with the vat store as the kernel would keep it.
struct Incarnation {
    runtime: Runtime,
    state: Vec<(String, ByteBuf)>,
    next_result: u64,
}

impl Incarnation {
    fn start(state: Vec<(String, ByteBuf)>) -> Incarnation {
        let mut runtime = Runtime::new(build);
        let start = VatStart {
            name: "v".to_owned(),
            parameters: Value::Null,
            state: state.clone(),
        };
        let outcome = runtime.start(start, &mut Host::default());
        assert_eq!(outcome.error, None);
        let mut me = Incarnation {
            runtime,
            state,
            next_result: 1,
        };
        me.apply(outcome.checkpoint);
        me
    }

    fn apply(&mut self, checkpoint: Checkpoint) {
        for (key, value) in checkpoint.sets {
            self.state.retain(|(k, _)| *k != key);
            self.state.push((key, value));
        }
        self.state.retain(|(k, _)| !checkpoint.deletes.contains(k));
        self.state.sort();
    }

    fn deliver(&mut self, delivery: Delivery) -> Vec<Syscall> {
        let mut host = Host::default();
        let outcome = self.runtime.deliver(delivery, &mut host);
        assert_eq!(outcome.error, None);
        self.apply(outcome.checkpoint);
        host.0
    }

    /// Delivers `method(slot)` to the root; returns the answer.
    fn call(&mut self, method: &str, slot: &str) -> Value {
        let result = VRef::ImportPromise(self.next_result);
        self.next_result += 1;
        let args = vec![Value::Slot {
            index: 0,
            iface: None,
        }];
        let message = Message::new(method, args, vec![vref(slot)], Some(result));
        let syscalls = self.deliver(Delivery::Message {
            target: VRef::ROOT,
            message,
        });
        match syscalls.as_slice() {
            [Syscall::Resolve(resolutions)] => resolutions[0].data.decode().unwrap(),
            other => panic!("{other:?}"),
        }
    }

    fn reap(&mut self) -> Vec<Syscall> {
        self.deliver(Delivery::BringOutYourDead)
    }

    fn keys(&self) -> Vec<&str> {
        self.state.iter().map(|(key, _)| key.as_str()).collect()
    }
}

#[test]
fn a_durable_weak_key_is_dropped_but_recognised_across_a_restart() {
    let mut first = Incarnation::start(Vec::new());
    assert_eq!(first.call("remember", "o-1"), Value::Undefined);
    assert!(first.keys().contains(&"sdk.wmap.4:seen.o-1"));
    // Not held (the key is not serialized into the store), but recognised.
    assert_eq!(first.reap(), [Syscall::DropImports(vec![vref("o-1")])]);
    assert_eq!(first.reap(), []);

    let mut second = Incarnation::start(first.state.clone());
    assert_eq!(second.call("recall", "o-1"), Value::str("noted"));
    assert_eq!(second.call("recall", "o-2"), Value::str("unknown"));
}

#[test]
fn a_retired_import_key_loses_its_entry() {
    let mut first = Incarnation::start(Vec::new());
    first.call("remember", "o-1");
    first.reap();
    let mut second = Incarnation::start(first.state.clone());
    assert_eq!(
        second.deliver(Delivery::RetireImports(vec![vref("o-1")])),
        []
    );
    assert!(!second.keys().iter().any(|key| key.starts_with("sdk.wmap.")));
    assert_eq!(second.call("recall", "o-1"), Value::str("unknown"));
}

#[test]
fn deleting_the_entry_of_a_dropped_import_lets_it_be_retired() {
    let mut first = Incarnation::start(Vec::new());
    first.call("remember", "o-1");
    assert_eq!(first.reap(), [Syscall::DropImports(vec![vref("o-1")])]);
    // Handing it in again makes it reachable again; once forgotten nothing recognises it.
    first.call("forget", "o-1");
    assert_eq!(
        first.reap(),
        [
            Syscall::DropImports(vec![vref("o-1")]),
            Syscall::RetireImports(vec![vref("o-1")])
        ]
    );
}

#[test]
fn durable_weak_keys_must_outlive_the_incarnation() {
    let mut runtime = Runtime::new(|vat: &Vat, _: &Val, _: &Baggage| {
        let set = vat.durable_weak_set_store("keys");
        let ephemeral = vat.object("thing").build();
        let refused = set.add(ephemeral.clone()).unwrap_err();
        assert!(refused.message().contains("non-durable"), "{refused}");
        assert!(set.add("text").is_err());
        assert!(!set.has(ephemeral));
        let kind = vat.durable_kind("thing").build()?;
        let durable = kind.make(Val::record([("n", 1)]))?;
        set.add(durable.clone())?;
        set.add(durable.clone())?;
        assert!(set.has(durable.clone()));
        let map = vat.durable_weak_map_store("values");
        map.init(durable.clone(), 1)?;
        assert!(
            map.init(durable.clone(), 2).is_err(),
            "init adds; set replaces"
        );
        map.set(durable.clone(), 3)?;
        assert_eq!(map.get(durable.clone())?, Val::from(3));
        set.delete(durable.clone())?;
        assert!(!set.has(durable.clone()));
        assert!(set.delete(durable).is_err());
        Ok(vat.object("root").build())
    });
    let start = VatStart {
        name: "v".into(),
        parameters: Value::Null,
        state: Vec::new(),
    };
    assert_eq!(runtime.start(start, &mut Host::default()).error, None);
}
