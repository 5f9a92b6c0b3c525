//! The runtime's lifecycle: checkpoints, restarts and baggage, start errors, parameters,
//! bootstrap, and the test log.

use super::*;

#[test]
fn the_checkpoint_holds_the_changes_since_the_last_delivery() {
    let mut vat = Vatlet::start(fixture);
    let outcome = vat.call("o+0", "store", vec![s("a"), s("one")], "p-1");
    assert_eq!(
        outcome.checkpoint,
        Checkpoint {
            sets: vec![(
                "baggage.a".to_owned(),
                ByteBuf(ocap_types::cbor::to_vec(&CapData::<VRef>::data(
                    &Value::str("one")
                )))
            )],
            deletes: vec![],
        }
    );
    let outcome = vat.call("o+0", "forget", vec![s("a")], "p-2");
    assert_eq!(outcome.checkpoint.sets, []);
    assert_eq!(outcome.checkpoint.deletes, ["baggage.a"]);
    let outcome = vat.call("o+0", "echo", vec![s("x")], "p-3");
    assert!(outcome.checkpoint.is_empty());
    // Exporting moves the id counters, which the next incarnation must continue from.
    let outcome = vat.call("o+0", "make", vec![s("m")], "p-4");
    let keys: Vec<&str> = outcome
        .checkpoint
        .sets
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["sdk.idCounters"]);
}

/// Applies a checkpoint to a copy of the vat store, as the kernel does.
fn apply(state: &mut Vec<(String, ByteBuf)>, checkpoint: Checkpoint) {
    for (key, value) in checkpoint.sets {
        state.retain(|(k, _)| *k != key);
        state.push((key, value));
    }
    state.retain(|(k, _)| !checkpoint.deletes.contains(k));
    state.sort();
}

#[test]
fn a_restarted_vat_keeps_baggage_but_not_ephemeral_objects() {
    let mut state = Vec::new();
    let (mut vat, outcome) = Vatlet::start_with(fixture, state.clone());
    apply(&mut state, outcome.checkpoint);
    for (method, args) in [
        ("store", vec![s("k"), s("kept")]),
        ("store", vec![s("friend"), r("o-3")]),
        ("store", vec![s("me"), r("o+0")]),
        ("make", vec![s("gone")]),
        ("call", vec![r("o-1"), s("ping")]),
    ] {
        let outcome = vat.call("o+0", method, args, "p-1");
        apply(&mut state, outcome.checkpoint);
    }
    vat.take();

    let (mut vat, outcome) = Vatlet::start_with(fixture, state.clone());
    assert_eq!(outcome.error, None);
    // The ephemeral o+1 of the last incarnation is unknown now.
    assert!(vat.call("o+1", "name", vec![], "p-2").error.is_some());
    vat.take();
    vat.call("o+0", "load", vec![s("k")], "p-3");
    vat.call("o+0", "load", vec![s("friend")], "p-4");
    vat.call("o+0", "load", vec![s("me")], "p-5");
    // Numbering continues where the last incarnation stopped.
    vat.call("o+0", "make", vec![s("new")], "p-6");
    vat.call("o+0", "call", vec![r("o-1"), s("ping")], "p-7");
    assert_eq!(
        vat.take(),
        [
            r#"resolve p-3 fulfilled "kept""#,
            "resolve p-4 fulfilled o-3",
            "resolve p-5 fulfilled o+0",
            "resolve p-6 fulfilled o+2",
            "send o-1.ping() -> p+2",
            "subscribe p+2",
        ]
    );
}

#[test]
fn baggage_refuses_what_does_not_survive_a_restart() {
    let mut vat = Vatlet::start(fixture);
    let outcome = vat.call("o+0", "store_new_object", vec![], "p-1");
    assert!(outcome.checkpoint.is_empty());
    vat.call("o+0", "store_promise", vec![], "p-2");
    assert_eq!(
        vat.take(),
        [
            r#"resolve p-1 rejected Error("cannot store the non-durable object \"thing\" in baggage")"#,
            r#"resolve p-2 rejected Error("cannot store a promise in baggage")"#,
        ]
    );
}

#[test]
fn build_failures_are_start_errors() {
    let (_, outcome) = Vatlet::start_with(
        |_vat, _parameters, _baggage| Err(Error::new("from buildRootObject")),
        Vec::new(),
    );
    assert_eq!(
        outcome.error.as_deref(),
        Some("build function failed: from buildRootObject")
    );
    let (_, outcome) = Vatlet::start_with(
        |vat, _parameters, _baggage| {
            let presence = vat.baggage().get("missing")?;
            Ok(presence
                .and_then(|p| p.as_object().cloned())
                .unwrap_or_else(|| vat.object("root").build()))
        },
        Vec::new(),
    );
    assert_eq!(outcome.error, None);
}

#[test]
fn the_runtime_refuses_deliveries_before_start_and_a_second_start() {
    let mut runtime = Runtime::new(fixture);
    let mut host = Host::default();
    let outcome = runtime.deliver(Delivery::BringOutYourDead, &mut host);
    assert_eq!(
        outcome.error.as_deref(),
        Some("cannot deliver before vat is loaded")
    );
    let start = VatStart {
        name: "v".to_owned(),
        parameters: Value::Null,
        state: Vec::new(),
    };
    assert_eq!(runtime.start(start.clone(), &mut host).error, None);
    assert!(runtime.start(start, &mut host).error.is_some());
}

#[test]
fn parameters_reach_the_build_function() {
    let mut runtime = Runtime::new(|vat, parameters, _baggage| {
        vat.test_log(format!("name is {}", parameters.get("name").unwrap()));
        Ok(vat.object("root").build())
    });
    let mut host = Host::default();
    let parameters = Value::Record([("name".to_owned(), Value::str("Alice"))].into());
    let start = VatStart {
        name: "main".to_owned(),
        parameters,
        state: Vec::new(),
    };
    assert_eq!(runtime.start(start, &mut host).error, None);
    assert_eq!(host.lines, ["log [test, main] name is Alice"]);
}

#[test]
fn bootstrap_sees_its_own_root_as_local() {
    let mut vat = Vatlet::start(fixture);
    let vats = Value::Record(
        [
            (
                "bob".to_owned(),
                Value::Slot {
                    index: 0,
                    iface: None,
                },
            ),
            (
                "me".to_owned(),
                Value::Slot {
                    index: 1,
                    iface: None,
                },
            ),
        ]
        .into(),
    );
    let message = Message::new(
        "bootstrap",
        vec![vats, Value::Record([].into())],
        vec![vref("o-1"), VRef::ROOT],
        Some(vref("p-1")),
    );
    vat.deliver(Delivery::Message {
        target: VRef::ROOT,
        message,
    });
    assert_eq!(
        vat.take(),
        [
            "log [test, v] me is local: true, bob is local: false",
            r#"resolve p-1 fulfilled "bootstrapped""#,
        ]
    );
}

#[test]
fn test_logs_and_exit_reach_the_host_in_order() {
    let mut vat = Vatlet::start(fixture);
    vat.call("o+0", "log", vec![s("hello")], "p-1");
    vat.call("o+0", "exit", vec![s("had enough")], "p-2");
    assert_eq!(
        vat.take(),
        [
            "log [test, v] hello",
            "resolve p-1 fulfilled undefined",
            r#"exit failure Error("had enough")"#,
            r#"resolve p-2 fulfilled "exiting""#,
        ]
    );
}
