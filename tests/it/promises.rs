//! Promises across vats (spec §4.4, §5, §8, §9, §15.6; D8, D9, D11): the liveslots
//! scenarios (§21.8) and a failing method (§21.14) here; malformed targets and revocation
//! (§21.21) in `revocation`; forwarding, cycles, deciders after a rollback and notify retire
//! lists in `forwarding`; message order through promises as a property in `order`.
//!
//! Vat logs reach the test through the kernel's log sink; a vat's test log is its lines
//! tagged `test`, in emission order. The protocol-level `driver` vat is
//! `ocap_tests::driver`. Every cluster here runs where `ocap_tests::default_workers` says.

mod forwarding;
mod order;
mod revocation;

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};

use ocap_kernel::{Kernel, KernelConfig};
use ocap_tests::{WAIT, cluster_with, config, decode, record, rejection};
use ocap_types::{CapData, ClusterConfig, KRef, Value, VatId, VatLog};

/// A kernel on a temporary store that collects every vat log line.
struct Logged {
    kernel: Kernel,
    dir: tempfile::TempDir,
    logs: Receiver<(VatId, VatLog)>,
    seen: RefCell<Vec<(VatId, VatLog)>>,
}

impl Logged {
    fn new() -> Logged {
        Logged::open(tempfile::tempdir().unwrap(), config())
    }

    fn open(dir: tempfile::TempDir, mut config: KernelConfig) -> Logged {
        let (sender, logs) = mpsc::channel();
        config.log_sink = Some(Arc::new(move |vat, log: &VatLog| {
            // The test may have finished reading; a late line is of no interest then.
            let _ = sender.send((vat, log.clone()));
        }));
        let kernel = Kernel::open(dir.path(), config).unwrap();
        Logged {
            kernel,
            dir,
            logs,
            seen: RefCell::default(),
        }
    }

    /// Stops the kernel and opens a new one on the same store.
    fn reopen(self) -> Logged {
        let Logged { kernel, dir, .. } = self;
        kernel.shutdown().unwrap();
        Logged::open(dir, config())
    }

    /// The test log lines `vat` has emitted so far, in order.
    fn test_logs(&self, vat: VatId) -> Vec<String> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.logs.try_iter());
        seen.iter()
            .filter(|(from, log)| *from == vat && log.tags.iter().any(|t| t == "test"))
            .map(|(_, log)| log.message.clone())
            .collect()
    }

    fn idle(&self) {
        self.kernel.run_until_idle(WAIT).unwrap();
    }
}

fn slot(index: u32) -> Value {
    Value::Slot { index, iface: None }
}

/// Sends `method(args)` (referring to `slots`) from the host and waits for the result.
fn call(
    kernel: &Kernel,
    target: KRef,
    method: &str,
    args: Vec<Value>,
    slots: Vec<KRef>,
) -> Result<CapData<KRef>, String> {
    kernel
        .queue_message_with_slots(target, method, args, slots)
        .unwrap()
        .wait(WAIT)
        .map_err(rejection)
}

/// Alice (bootstrap, running `test`), Bob and Carol, all running `liveslots`.
fn liveslots_cluster(test: &str) -> ClusterConfig {
    let named = |name: &str| record(&[("name", Value::str(name))]);
    let alice = record(&[("name", Value::str("Alice")), ("test", Value::str(test))]);
    cluster_with(&[
        ("alice", "liveslots", alice),
        ("bob", "liveslots", named("Bob")),
        ("carol", "liveslots", named("Carol")),
    ])
}

/// Runs the liveslots scenario `test` and checks its bootstrap result and the test logs of
/// Alice, Bob and Carol, line by line.
#[track_caller]
fn check_liveslots(test: &str, result: Value, alice: &[&str], bob: &[&str], carol: &[&str]) {
    let logged = Logged::new();
    let launched = logged
        .kernel
        .launch_subcluster(&liveslots_cluster(test))
        .unwrap();
    logged.idle();
    assert_eq!(decode(&launched.bootstrap_result), result, "{test}: result");
    // Vats get their ids in launch order: alice, bob, carol. None of them was hurt.
    let vats = logged.kernel.vat_ids().unwrap();
    assert_eq!(vats.len(), 3, "{test}: a vat was terminated");
    assert_eq!(logged.test_logs(vats[0]), alice, "{test}: Alice");
    assert_eq!(logged.test_logs(vats[1]), bob, "{test}: Bob");
    assert_eq!(logged.test_logs(vats[2]), carol, "{test}: Carol");
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}

#[test]
fn promise_argument_resolved_after_send_reaches_bob() {
    check_liveslots(
        "promiseArg1",
        Value::str("bobPSucc"),
        &[
            "running test promiseArg1",
            "sending the promise to Bob",
            "resolving the promise that was sent to Bob",
            "awaiting Bob's response",
            "Bob's response to hereIsAPromise: 'Bob.hereIsAPromise done'",
        ],
        &["the promise parameter resolved to 'Alice said hi after send'"],
        &[],
    );
}

#[test]
fn promise_argument_resolved_before_send_reaches_bob() {
    check_liveslots(
        "promiseArg2",
        Value::str("bobPSucc"),
        &[
            "running test promiseArg2",
            "resolving the promise that will be sent to Bob",
            "sending the promise to Bob",
            "awaiting Bob's response",
            "Bob's response to hereIsAPromise: 'Bob.hereIsAPromise done'",
        ],
        &["the promise parameter resolved to 'Alice said hi before send'"],
        &[],
    );
}

#[test]
fn promise_argument_resolved_after_bobs_reply_reaches_bob() {
    check_liveslots(
        "promiseArg3",
        Value::str("bobPSucc"),
        &[
            "running test promiseArg3",
            "sending the promise to Bob",
            "awaiting Bob's response",
            "Bob's response to hereIsAPromise: 'Bob.hereIsAPromise done'",
            "resolving the promise that was sent to Bob",
        ],
        &["the promise parameter resolved to 'Alice said hi after Bob's reply'"],
        &[],
    );
}

#[test]
fn chain_of_promises_resolves_link_by_link() {
    check_liveslots(
        "promiseChain",
        Value::str("end of chain"),
        &[
            "running test promiseChain",
            "waitFor start",
            "count 0 < 3, recurring...",
            "waitFor start",
            "count 1 < 3, recurring...",
            "waitFor start",
            "count 2 < 3, recurring...",
            "waitFor start",
            "finishing chain",
        ],
        &[
            "bobGen set value to 1",
            "bobGen set value to 2",
            "bobGen set value to 3",
            "bobGen set value to 4",
        ],
        &[],
    );
}

#[test]
fn promises_resolved_to_each_other_in_one_delivery_settle() {
    check_liveslots(
        "promiseCycle",
        Value::str("done"),
        &[
            "running test promiseCycle",
            "isPromise(resolutionX[0]): true",
            "isPromise(resolutionY[0]): true",
        ],
        &["genPromise1", "genPromise2", "resolveBoth"],
        &[],
    );
}

#[test]
fn promises_resolved_to_each_other_across_cranks_settle() {
    check_liveslots(
        "promiseCycleMultiCrank",
        Value::str("done"),
        &[
            "running test promiseCycleMultiCrank",
            "isPromise(resolutionX[0]): true",
            "isPromise(resolutionY[0]): true",
        ],
        &["genPromise1", "genPromise2", "resolve1", "resolve2"],
        &[],
    );
}

#[test]
fn promises_of_two_vats_resolved_to_each_other_settle() {
    check_liveslots(
        "promiseCrosswise",
        Value::str("done"),
        &[
            "running test promiseCrosswise",
            "isPromise(resolutionX[0]): true",
            "isPromise(resolutionY[0]): true",
        ],
        &["genPromise", "resolve"],
        &["genPromise", "resolve"],
    );
}

#[test]
fn result_promise_passed_as_argument_resolves_for_the_receiver() {
    check_liveslots(
        "passResult",
        Value::List(vec![Value::str("p1succ"), Value::str("p2succ")]),
        &[
            "running test passResult",
            "first result resolved to Bob's first answer",
            "second result resolved to Bob's second answer",
        ],
        &[
            "first",
            "second",
            "parameter to second resolved to Bob's first answer",
        ],
        &[],
    );
}

#[test]
fn message_pipelined_to_a_result_reaches_what_it_resolves_to() {
    check_liveslots(
        "resolvePipelined",
        Value::List(vec![Value::str("p1succ"), Value::str("p2succ")]),
        &[
            "running test resolvePipelined",
            // The TS suite renders a presence as `[object Alleged: thing]`; the Rust SDK
            // renders it as `[object <interface>]`.
            "first result resolved to [object thing]",
            "second result resolved to Bob's second answer",
        ],
        &["first", "thing.second"],
        &[],
    );
}

#[test]
fn message_queued_on_a_promise_is_forwarded_when_it_resolves() {
    check_liveslots(
        "messageToPromise",
        Value::str("p2succ"),
        &[
            "running test messageToPromise",
            "invoking loopback",
            "second result resolved to 'deferred something'",
            "loopback done",
        ],
        &["setup", "doResolve", "thing.doSomething", "loopback"],
        &[],
    );
}

#[test]
fn unknown_liveslots_scenario_fails_the_launch() {
    let logged = Logged::new();
    let err = logged
        .kernel
        .launch_subcluster(&liveslots_cluster("noSuchTest"))
        .unwrap_err();
    assert_eq!(rejection(err), "unknown test noSuchTest");
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}

#[test]
fn thrown_method_error_rejects_the_result_and_harms_no_vat() {
    let logged = Logged::new();
    let launched = logged
        .kernel
        .launch_subcluster(&cluster_with(&[
            ("main", "rejection-bootstrap", Value::Null),
            ("rejector", "rejection-rejector", Value::Null),
        ]))
        .unwrap();
    logged.idle();
    assert_eq!(decode(&launched.bootstrap_result), Value::str("done"));
    let vats = logged.kernel.vat_ids().unwrap();
    assert_eq!(
        vats,
        ["v1".parse().unwrap(), "v2".parse::<VatId>().unwrap()]
    );
    assert_eq!(logged.test_logs(vats[0]), ["bar", "err", "bar"]);
    assert_eq!(logged.test_logs(vats[1]), ["resolve", "reject", "resolve"]);
    // The rejection the caller saw is the method's own error.
    let rejector = logged.kernel.vat_root(vats[1]).unwrap().unwrap();
    let err = call(
        &logged.kernel,
        rejector,
        "foo",
        vec![Value::Bool(true)],
        vec![],
    );
    assert_eq!(err, Err("error: bar".to_owned()));
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}
