//! The exo scenario (spec §21.5): the `exo-test` vat's guarded classes, class kit and stores,
//! driven through the kernel. Each test launches the vat on a fresh kernel, as the reference
//! does before every case, and reads the vat's test log (lines tagged `test` and `ExoTest`)
//! from the kernel's log sink.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};

use ocap_kernel::KernelError;
use ocap_tests::{TestKernel, WAIT, decode};
use ocap_types::{CapData, ClusterConfig, KRef, Value, VatConfig, VatId, VatLog, WorkerKind};

/// The test log of a bootstrap (spec §21.5.1).
const BOOTSTRAP_LOG: [&str; 15] = [
    "initializing state",
    "counter value from baggage: 0",
    "bootstrap()",
    "Created counter with initial value: 10",
    "Incremented counter by 5 to: 15",
    "ERROR: Increment with negative value should have failed",
    "Alice has 1 friends",
    "Added 2 entries to map store",
    "Added 2 entries to set store",
    "Retrieved Alice from map store",
    "Temperature at 25°C = 77°F",
    "After setting to 68°F, celsius is 20°C",
    "SimpleCounter initial value: 0",
    "SimpleCounter after +7: 7",
    "Updated baggage counter to: 7",
];

/// The guard's text for `increment("foo")` on a `Counter` (spec §21.5.4).
const GUARD_ERROR: &str =
    r#"In "increment" method of (Counter): arg 0: string "foo" - Must be a number"#;

/// The `exo-test` vat launched on a fresh kernel, with its logs.
struct ExoTest {
    test: TestKernel,
    logs: Receiver<(VatId, VatLog)>,
    vat: VatId,
    root: KRef,
    bootstrap: Value,
}

impl ExoTest {
    fn launch() -> ExoTest {
        ExoTest::launch_with(ocap_tests::default_workers())
    }

    fn launch_with(workers: WorkerKind) -> ExoTest {
        let (sender, logs) = mpsc::channel();
        let mut config = ocap_tests::config();
        config.log_sink = Some(Arc::new(move |vat: VatId, log: &VatLog| {
            // The test may have finished reading; a late line is of no interest then.
            let _ = sender.send((vat, log.clone()));
        }));
        let test = TestKernel::open(config, workers);
        let launched = test.launch(&exo_cluster());
        let vat = *test.kernel.vat_ids().unwrap().first().unwrap();
        ExoTest {
            bootstrap: decode(&launched.bootstrap_result),
            root: launched.root,
            test,
            logs,
            vat,
        }
    }

    /// The test log lines emitted since the last call, once the kernel is idle.
    fn test_log(&self) -> Vec<String> {
        self.test.kernel.run_until_idle(WAIT).unwrap();
        self.logs
            .try_iter()
            .filter(|(vat, log)| *vat == self.vat && log.tags == ["test", "ExoTest"])
            .map(|(_, log)| log.message)
            .collect()
    }

    /// Sends `method(args)` to `target` and waits for the result, or the rejection's text.
    fn send(&self, target: KRef, method: &str, args: Vec<Value>) -> Result<CapData<KRef>, String> {
        match self.test.kernel.queue_message(target, method, args) {
            Ok(handle) => handle.wait(WAIT).map_err(|err| match err {
                KernelError::Rejected(rejection) => rejection.message().to_owned(),
                other => panic!("{method}: expected a result or a rejection, got {other:?}"),
            }),
            Err(err) => panic!("{method}: not queued: {err:?}"),
        }
    }

    /// Sends `method(args)` to the root; the decoded answer.
    fn call_root(&self, method: &str, args: Vec<Value>) -> Value {
        decode(&self.send(self.root, method, args).unwrap())
    }

    /// Sends `method(args)` to `target`; the decoded answer.
    fn call(&self, target: KRef, method: &str, args: Vec<Value>) -> Value {
        decode(&self.send(target, method, args).unwrap())
    }
}

/// The scenario's subcluster: `exoTest`, parameters `{name: "ExoTest"}`.
fn exo_cluster() -> ClusterConfig {
    let parameters = Value::Record(BTreeMap::from([("name".to_owned(), Value::str("ExoTest"))]));
    let mut config = ClusterConfig::builder("exoTest")
        .vat(
            "exoTest",
            VatConfig::named("exo-test").with_parameters(parameters),
        )
        .build()
        .unwrap();
    config.force_reset = Some(true);
    config
}

fn int(n: i64) -> Value {
    Value::Int(n)
}

/// The one object a result designates, with the interface name it carries.
fn single_object(data: &CapData<KRef>) -> (KRef, Option<String>) {
    match decode(data) {
        Value::Slot { index: 0, iface } => {
            assert_eq!(data.slots.len(), 1, "{data:?}");
            (data.slots[0], iface)
        }
        other => panic!("expected an object, got {other:?}"),
    }
}

#[test]
fn bootstrap_exercises_every_feature_and_logs_the_scenario_lines() {
    let exo = ExoTest::launch();
    assert_eq!(exo.bootstrap, Value::str("exo-test-complete"));
    assert_eq!(exo.test_log(), BOOTSTRAP_LOG);
    exo.test.assert_refcounts_consistent();
}

#[test]
fn bootstrap_runs_the_same_in_a_subprocess_worker() {
    let exo = ExoTest::launch_with(WorkerKind::Subprocess);
    assert_eq!(exo.bootstrap, Value::str("exo-test-complete"));
    assert_eq!(exo.test_log(), BOOTSTRAP_LOG);
    let temperature = exo.send(exo.root, "createTemperature", vec![int(100)]);
    let slots = temperature.unwrap().slots;
    assert_eq!(exo.call(slots[1], "getFahrenheit", vec![]), int(212));
    exo.test.assert_refcounts_consistent();
}

#[test]
fn scalar_stores_list_keys_in_order_and_find_objects() {
    let exo = ExoTest::launch();
    exo.test_log();
    assert_eq!(
        exo.call_root("testScalarStore", vec![]),
        Value::str("scalar-store-tests-complete")
    );
    assert_eq!(
        exo.test_log(),
        [
            "Map store size: 3",
            "Map store keys: alice, bob, charlie",
            "Map has 'charlie': true",
            "Set store size: 3",
            "Set has Charlie: true",
        ]
    );
    exo.test.assert_refcounts_consistent();
}

#[test]
fn objects_made_by_the_vat_answer_messages_and_stores_keep_plain_values() {
    let exo = ExoTest::launch();
    exo.test_log();
    let made = exo.send(exo.root, "createCounter", vec![int(42)]).unwrap();
    let (counter, iface) = single_object(&made);
    assert_eq!(iface.as_deref(), Some("Counter"));
    assert_eq!(exo.call(counter, "increment", vec![int(5)]), int(47));

    let made = exo
        .send(exo.root, "createPerson", vec![Value::str("Dave"), int(35)])
        .unwrap();
    let (person, _) = single_object(&made);
    // The person's kref goes into the map as plain text, not as a reference.
    let person_text = Value::str(person.to_string());
    let dave = || Value::str("dave");
    assert_eq!(
        exo.call_root("createOrUpdateInMap", vec![dave(), person_text.clone()]),
        int(3)
    );
    assert_eq!(exo.call_root("getFromMap", vec![dave()]), person_text);
    assert_eq!(
        exo.call_root("createOrUpdateInMap", vec![dave(), person_text]),
        int(3)
    );
    assert_eq!(
        exo.test_log(),
        [
            "Created new counter with value: 42",
            "Created person Dave, age 35",
            "Added dave to map, size now: 3",
            "Found dave in map",
            "Updated dave in map",
        ]
    );
    // The person answers too.
    assert_eq!(exo.call(person, "getName", vec![]), Value::str("Dave"));
    assert_eq!(exo.call(person, "birthday", vec![]), int(36));
    exo.test.assert_refcounts_consistent();
}

#[test]
fn a_class_guard_rejects_a_string_where_a_number_is_due() {
    let exo = ExoTest::launch();
    exo.test_log();
    assert_eq!(
        exo.call_root("testExoClass", vec![]),
        Value::str("exoClass-tests-complete")
    );
    assert_eq!(
        exo.test_log(),
        [
            "Counter: 3 + 5 = 8".to_owned(),
            "Counter: 8 - 2 = 6".to_owned(),
            format!("Successfully caught type error: {GUARD_ERROR}"),
        ]
    );
    exo.test.assert_refcounts_consistent();
}

#[test]
fn a_guard_rejects_a_bad_message_from_outside_and_the_object_carries_on() {
    let exo = ExoTest::launch();
    let made = exo.send(exo.root, "createCounter", vec![int(1)]).unwrap();
    let (counter, _) = single_object(&made);
    assert_eq!(
        exo.send(counter, "increment", vec![Value::str("foo")]),
        Err(GUARD_ERROR.to_owned())
    );
    assert_eq!(
        exo.send(counter, "increment", vec![]),
        Err(r#"In "increment" method of (Counter): expected 1 argument, got 0"#.to_owned())
    );
    // A rejected call changed nothing; the guard lets negative numbers through.
    assert_eq!(exo.call(counter, "increment", vec![int(-3)]), int(-2));
    assert_eq!(exo.call(counter, "getValue", vec![]), int(-2));
    exo.test.assert_refcounts_consistent();
}

#[test]
fn a_class_kit_shares_state_between_facets_that_answer_only_their_own_methods() {
    let exo = ExoTest::launch();
    exo.test_log();
    assert_eq!(
        exo.call_root("testExoClassKit", vec![]),
        Value::str("exoClassKit-tests-complete")
    );
    assert_eq!(
        exo.test_log(),
        [
            "20°C = 68°F",
            "32°F = 0°C",
            r#"Successfully caught cross-facet error: "Temperature celsius" has no method "getFahrenheit""#,
        ]
    );
    exo.test.assert_refcounts_consistent();
}

#[test]
fn a_kit_passed_out_lists_its_facets_in_key_order() {
    let exo = ExoTest::launch();
    exo.test_log();
    let kit = exo
        .send(exo.root, "createTemperature", vec![int(100)])
        .unwrap();
    let slot = |index: u32, iface: &str| Value::Slot {
        index,
        iface: Some(iface.to_owned()),
    };
    assert_eq!(
        decode(&kit),
        Value::Record(BTreeMap::from([
            ("celsius".to_owned(), slot(0, "Temperature celsius")),
            ("fahrenheit".to_owned(), slot(1, "Temperature fahrenheit")),
        ]))
    );
    let (celsius, fahrenheit) = (kit.slots[0], kit.slots[1]);
    assert_ne!(celsius, fahrenheit);
    assert_eq!(exo.call(celsius, "getCelsius", vec![]), int(100));
    assert_eq!(exo.call(fahrenheit, "getFahrenheit", vec![]), int(212));
    assert_eq!(
        exo.call(fahrenheit, "setFahrenheit", vec![int(32)]),
        int(32)
    );
    assert_eq!(exo.call(celsius, "getCelsius", vec![]), int(0));
    assert!(
        exo.test_log()
            .contains(&"Created temperature converter starting at 100°C".to_owned())
    );
    // Through the kernel too, a facet does not answer its sibling's methods.
    assert_eq!(
        exo.send(celsius, "getFahrenheit", vec![]),
        Err(r#""Temperature celsius" has no method "getFahrenheit""#.to_owned())
    );
    exo.test.assert_refcounts_consistent();
}

#[test]
fn a_restarted_vat_finds_its_state_in_baggage() {
    let exo = ExoTest::launch();
    exo.test_log();
    exo.test.kernel.restart_vat(exo.vat).unwrap();
    assert_eq!(
        exo.test_log(),
        ["state already initialized", "counter value from baggage: 7"]
    );
    // The memory stores started empty again.
    assert_eq!(
        exo.call_root("getFromMap", vec![Value::str("alice")]),
        Value::Null
    );
    exo.test.assert_refcounts_consistent();
}
