//! Drives the example vats by hand, playing the kernel: deliveries in, syscalls out, with
//! refs translated between the vats' spaces by the test itself.

use std::panic::{AssertUnwindSafe, catch_unwind};

use ocap_types::{
    ByteBuf, CapData, Delivery, DeliveryOutcome, Message, Resolution, Syscall, VRef, Value,
    VatHost, VatLog, VatRuntime, VatStart,
};

use crate::registry;

#[derive(Default)]
struct Host {
    syscalls: Vec<Syscall>,
    logs: Vec<VatLog>,
}

impl VatHost for Host {
    fn syscall(&mut self, syscall: Syscall) {
        self.syscalls.push(syscall);
    }

    fn log(&mut self, log: VatLog) {
        self.logs.push(log);
    }
}

/// One vat from the registry, with the host it talks to.
struct Driven {
    runtime: Box<dyn VatRuntime>,
    host: Host,
    state: Vec<(String, ByteBuf)>,
}

impl Driven {
    fn start(name: &str) -> Driven {
        Driven::start_with(name, Value::Null, Vec::new())
    }

    fn start_with(name: &str, parameters: Value, state: Vec<(String, ByteBuf)>) -> Driven {
        let (_, construct) = registry()
            .into_iter()
            .find(|(vat_name, _)| *vat_name == name)
            .unwrap();
        let mut driven = Driven {
            runtime: construct(),
            host: Host::default(),
            state,
        };
        let start = VatStart {
            name: name.to_owned(),
            parameters,
            state: driven.state.clone(),
        };
        let outcome = driven.runtime.start(start, &mut driven.host);
        driven.apply(outcome);
        driven
    }

    fn deliver(&mut self, delivery: Delivery) -> Vec<Syscall> {
        let outcome = self.runtime.deliver(delivery, &mut self.host);
        self.apply(outcome);
        std::mem::take(&mut self.host.syscalls)
    }

    /// Delivers `method(args)` to the root with result `p-1`.
    fn call(&mut self, method: &str, args: Vec<Value>, slots: &[&str]) -> Vec<Syscall> {
        self.call_on("o+0", method, args, slots)
    }

    fn call_on(
        &mut self,
        target: &str,
        method: &str,
        args: Vec<Value>,
        slots: &[&str],
    ) -> Vec<Syscall> {
        let slots = slots.iter().map(|s| vref(s)).collect();
        self.deliver(Delivery::Message {
            target: vref(target),
            message: Message::new(method, args, slots, Some(vref("p-1"))),
        })
    }

    /// Keeps the vat store up to date, as the kernel does after a successful delivery.
    fn apply(&mut self, outcome: DeliveryOutcome) {
        assert_eq!(outcome.error, None);
        for (key, value) in outcome.checkpoint.sets {
            self.state.retain(|(k, _)| *k != key);
            self.state.push((key, value));
        }
        self.state
            .retain(|(k, _)| !outcome.checkpoint.deletes.contains(k));
        self.state.sort();
    }

    fn test_logs(&self) -> Vec<&str> {
        self.host
            .logs
            .iter()
            .filter(|log| log.tags.iter().any(|tag| tag == "test"))
            .map(|log| log.message.as_str())
            .collect()
    }
}

fn vref(text: &str) -> VRef {
    text.parse().unwrap()
}

fn slot(index: u32) -> Value {
    Value::Slot { index, iface: None }
}

fn record(fields: &[(&str, Value)]) -> Value {
    Value::Record(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// The single `resolve` among `syscalls`, as (promise, rejected, value, slots).
fn resolved(syscalls: &[Syscall]) -> (VRef, bool, Value, Vec<VRef>) {
    let resolutions: Vec<&Resolution<VRef>> = syscalls
        .iter()
        .filter_map(|s| match s {
            Syscall::Resolve(resolutions) => Some(resolutions),
            _ => None,
        })
        .flatten()
        .collect();
    let [resolution] = resolutions.as_slice() else {
        panic!("expected one resolution in {syscalls:?}");
    };
    (
        resolution.promise,
        resolution.rejected,
        resolution.data.decode().unwrap(),
        resolution.data.slots.clone(),
    )
}

#[test]
fn alice_greets_bob_through_a_hand_driven_kernel() {
    let mut alice = Driven::start("alice");
    let mut bob = Driven::start("bob");

    // The kernel bootstraps alice: bob's root is her import o-1, her own root is o+0.
    let vats = record(&[("alice", slot(0)), ("bob", slot(1))]);
    let bootstrap = Message::new(
        "bootstrap",
        vec![vats, record(&[])],
        vec![VRef::ROOT, vref("o-1")],
        Some(vref("p-1")),
    );
    let syscalls = alice.deliver(Delivery::Message {
        target: VRef::ROOT,
        message: bootstrap,
    });
    // Alice sends hello("alice") to bob with a fresh result promise, then subscribes to it.
    let [
        Syscall::Send { target, message },
        Syscall::Subscribe(subscribed),
    ] = syscalls.as_slice()
    else {
        panic!("unexpected syscalls {syscalls:?}");
    };
    assert_eq!(*target, vref("o-1"));
    assert_eq!(message.result, Some(vref("p+1")));
    assert_eq!(*subscribed, vref("p+1"));
    let (method, args) = message.method_and_args().unwrap();
    assert_eq!(
        (method.as_str(), args),
        ("hello", vec![Value::str("alice")])
    );

    // The kernel routes it to bob's root; alice's p+1 is bob's p-1.
    let syscalls = bob.deliver(Delivery::Message {
        target: VRef::ROOT,
        message: Message {
            methargs: message.methargs.clone(),
            result: Some(vref("p-1")),
        },
    });
    let (promise, rejected, reply, _) = resolved(&syscalls);
    assert_eq!((promise, rejected), (vref("p-1"), false));
    assert_eq!(reply, Value::str("hello, alice, from bob"));

    // Bob's resolution reaches alice as a notify for p+1; she answers the bootstrap.
    let syscalls = alice.deliver(Delivery::Notify(vec![Resolution {
        promise: vref("p+1"),
        rejected: false,
        data: CapData::data(&reply),
    }]));
    let (promise, rejected, answer, _) = resolved(&syscalls);
    assert_eq!((promise, rejected), (vref("p-1"), false));
    assert_eq!(answer, Value::str("alice got: hello, alice, from bob"));
}

#[test]
fn alice_passes_on_bobs_rejection() {
    let mut alice = Driven::start("alice");
    let bootstrap = Message::new(
        "bootstrap",
        vec![record(&[("bob", slot(0))]), record(&[])],
        vec![vref("o-1")],
        Some(vref("p-1")),
    );
    alice.deliver(Delivery::Message {
        target: VRef::ROOT,
        message: bootstrap,
    });
    let syscalls = alice.deliver(Delivery::Notify(vec![Resolution {
        promise: vref("p+1"),
        rejected: true,
        data: CapData::error("bob is out"),
    }]));
    let (_, rejected, reason, _) = resolved(&syscalls);
    assert!(rejected);
    assert_eq!(reason, Value::error("bob is out"));
}

#[test]
fn bob_rejects_a_greeting_without_a_name() {
    let mut bob = Driven::start("bob");
    let (_, rejected, reason, _) = resolved(&bob.call("hello", vec![Value::Int(1)], &[]));
    assert!(rejected);
    assert_eq!(
        reason,
        Value::error("hello: argument 0 must be a string, not a number")
    );
}

#[test]
fn tester_echoes_and_fails() {
    let mut tester = Driven::start("tester");
    let echoed = resolved(&tester.call("echo", vec![slot(0)], &["o-4"]));
    assert_eq!(echoed, (vref("p-1"), false, slot(0), vec![vref("o-4")]));
    let failed = resolved(&tester.call("fail", vec![Value::str("boom")], &[]));
    assert_eq!(
        failed,
        (vref("p-1"), true, Value::error("boom"), Vec::new())
    );
}

#[test]
fn tester_panics_inside_vat_code() {
    let mut tester = Driven::start("tester");
    let res = catch_unwind(AssertUnwindSafe(|| tester.call("panic", Vec::new(), &[])));
    let payload = res.unwrap_err();
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"tester panicked on purpose")
    );
}

#[test]
fn tester_exits_with_failure_and_still_answers() {
    let mut tester = Driven::start("tester");
    let syscalls = tester.call("exit", vec![Value::str("done for")], &[]);
    let Syscall::Exit { failure, info } = &syscalls[0] else {
        panic!("{syscalls:?}");
    };
    assert!(*failure);
    assert_eq!(info.decode().unwrap(), Value::error("done for"));
    assert_eq!(resolved(&syscalls).2, Value::str("exiting"));

    let syscalls = tester.call("exit_cleanly", vec![Value::str("bye")], &[]);
    assert!(matches!(&syscalls[0], Syscall::Exit { failure: false, .. }));
}

#[test]
fn tester_call_awaits_the_reply_and_send_only_does_not() {
    let mut tester = Driven::start("tester");
    let syscalls = tester.call(
        "call",
        vec![
            slot(0),
            Value::str("ping"),
            Value::List(vec![Value::Int(1)]),
        ],
        &["o-2"],
    );
    let [Syscall::Send { target, message }, Syscall::Subscribe(_)] = syscalls.as_slice() else {
        panic!("{syscalls:?}");
    };
    assert_eq!(*target, vref("o-2"));
    assert_eq!(
        message.method_and_args().unwrap(),
        ("ping".to_owned(), vec![Value::Int(1)])
    );
    let syscalls = tester.deliver(Delivery::Notify(vec![Resolution {
        promise: vref("p+1"),
        rejected: false,
        data: CapData::data(&Value::str("pong")),
    }]));
    assert_eq!(resolved(&syscalls).2, Value::str("pong"));

    let syscalls = tester.call("send_only", vec![slot(0), Value::str("ping")], &["o-2"]);
    assert!(matches!(&syscalls[0], Syscall::Send { .. }));
    assert!(matches!(&syscalls[1], Syscall::Subscribe(_)));
    assert_eq!(resolved(&syscalls).2, Value::str("sent"));
}

#[test]
fn tester_pending_never_resolves_its_result() {
    let mut tester = Driven::start("tester");
    assert_eq!(tester.call("pending", Vec::new(), &[]), []);
}

#[test]
fn tester_counters_are_exported_objects() {
    let mut tester = Driven::start("tester");
    let (_, _, counter, slots) = resolved(&tester.call("make_counter", Vec::new(), &[]));
    let exported = Value::Slot {
        index: 0,
        iface: Some("counter".to_owned()),
    };
    assert_eq!((counter, slots), (exported, vec![vref("o+1")]));
    tester.call_on("o+1", "increment", Vec::new(), &[]);
    tester.call_on("o+1", "increment", vec![Value::Int(5)], &[]);
    let (_, _, value, _) = resolved(&tester.call_on("o+1", "value", Vec::new(), &[]));
    assert_eq!(value, Value::Int(6));
    let (_, _, _, slots) = resolved(&tester.call("make_counter", Vec::new(), &[]));
    assert_eq!(slots, [vref("o+2")]);
}

#[test]
fn tester_baggage_survives_a_restart() {
    let mut tester = Driven::start("tester");
    tester.call("store", vec![Value::str("count"), Value::Int(7)], &[]);
    let mut restarted = Driven::start_with("tester", Value::Null, tester.state.clone());
    let (_, _, value, _) = resolved(&restarted.call("load", vec![Value::str("count")], &[]));
    assert_eq!(value, Value::Int(7));
    let (_, _, missing, _) = resolved(&restarted.call("load", vec![Value::str("nope")], &[]));
    assert_eq!(missing, Value::Undefined);
}

#[test]
fn tester_bootstrap_keeps_the_vats_record() {
    let mut tester = Driven::start("tester");
    let vats = record(&[("bob", slot(0)), ("tester", slot(1))]);
    let syscalls = tester.call(
        "bootstrap",
        vec![vats.clone(), record(&[])],
        &["o-1", "o+0"],
    );
    assert_eq!(resolved(&syscalls).2, Value::str("bootstrapped"));
    let (_, _, kept, slots) = resolved(&tester.call("vats", Vec::new(), &[]));
    // The tester's own root comes back as itself, named by its interface.
    let root = Value::Slot {
        index: 1,
        iface: Some("tester".to_owned()),
    };
    let expected = record(&[("bob", slot(0)), ("tester", root)]);
    assert_eq!((kept, slots), (expected, vec![vref("o-1"), VRef::ROOT]));
}

#[test]
fn tester_logs_and_reports_parameters() {
    let parameters = record(&[("name", Value::str("Alice"))]);
    let mut tester = Driven::start_with("tester", parameters.clone(), Vec::new());
    tester.call("log", vec![Value::str("foo: Alice")], &[]);
    assert_eq!(tester.test_logs(), ["foo: Alice"]);
    let log = tester
        .host
        .logs
        .iter()
        .find(|l| l.message == "foo: Alice")
        .unwrap();
    assert_eq!(log.tags, ["test", "tester"]);
    let (_, _, reported, _) = resolved(&tester.call("parameters", Vec::new(), &[]));
    assert_eq!(reported, parameters);
}

#[test]
fn the_registry_lists_each_vat_once_and_each_starts() {
    let names: Vec<&str> = registry().iter().map(|(name, _)| *name).collect();
    assert_eq!(
        names,
        [
            "alice",
            "bench-pingpong",
            "bob",
            "counter-v1",
            "counter-v2",
            "counter-v2-broken",
            "exo-test",
            "exporter",
            "gc-exporter",
            "gc-importer",
            "hoarder",
            "liveslots",
            "logger-vat",
            "observer",
            "orphan-consumer",
            "orphan-provider",
            "persistence-announcer",
            "persistence-coordinator",
            "persistence-counter",
            "persistence-worker",
            "rejection-bootstrap",
            "rejection-rejector",
            "service-vat",
            "tester",
            "throw-bootstrap",
            "throw-build",
            "throw-global",
            "throw-restart",
        ]
    );
    for name in names {
        // Vats that fail to start on purpose (spec §21.2), or need parameters.
        if matches!(
            name,
            "throw-build" | "throw-global" | "persistence-worker" | "counter-v2-broken"
        ) {
            continue;
        }
        let driven = Driven::start(name);
        assert!(
            driven.host.syscalls.is_empty(),
            "{name} made syscalls at start"
        );
    }
}
