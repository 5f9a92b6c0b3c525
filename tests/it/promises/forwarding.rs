//! Routing through promises and telling vats about them: promise-to-promise fulfilment
//! (D11) and its holds, the holds a delivered send releases (D8), promise cycles, the decider after a rolled-back delivery (§8.2),
//! notifies of several promises and retire lists (§5.6, §9, D9), and the SDK's handling of
//! resolutions it does not need.

use ocap_kernel::{Kernel, ResultHandle};
use ocap_store::{PromiseState, RefCounts};
use ocap_tests::WAIT;
use ocap_types::{
    CapData, Delivery, DeliveryOutcome, EndpointId, KPromiseId, KRef, Message, Resolution, Syscall,
    VRef, Value, VatHost, VatId, VatLog, VatStart,
};

use ocap_tests::driver::{p, p_vref, resolve, send, send_r, vat};

use super::{Logged, call, cluster_with, record, slot};

/// The rejection of a send through a promise that is not fulfilled with an object.
const BAD_RESOLUTION: &str =
    "[KERNEL:BAD_PROMISE_RESOLUTION] Promise fulfilled but did not contain an object reference";

/// A kernel running `driver` (bootstrap, `v1`), `target` (a tester, `v2`) and, when asked,
/// `bob` (liveslots, `v3`).
struct Driven {
    logged: Logged,
    driver: KRef,
    vats: Vec<VatId>,
}

impl Driven {
    fn new(with_bob: bool) -> Driven {
        let mut vats = vec![
            ("driver", "driver", Value::Null),
            ("target", "tester", Value::Null),
        ];
        if with_bob {
            vats.push(("bob", "liveslots", record(&[("name", Value::str("Bob"))])));
        }
        let logged = Logged::new();
        let launched = logged
            .kernel
            .launch_subcluster(&cluster_with(&vats))
            .unwrap();
        assert_eq!(
            super::decode(&launched.bootstrap_result),
            Value::str("driver ready")
        );
        let vats = logged.kernel.vat_ids().unwrap();
        Driven {
            logged,
            driver: launched.root,
            vats,
        }
    }

    fn kernel(&self) -> &Kernel {
        &self.logged.kernel
    }

    /// Has the driver carry out `ops` in one delivery, then waits until the kernel is idle.
    fn script(&self, ops: Vec<Value>) {
        let done = call(
            self.kernel(),
            self.driver,
            "script",
            vec![Value::List(ops)],
            vec![],
        );
        assert_eq!(done.map(|d| super::decode(&d)), Ok(Value::str("done")));
        self.logged.idle();
    }

    /// The kernel promise the driver calls `Pi`.
    fn kp(&self, i: usize) -> KPromiseId {
        let ep = EndpointId::Vat(self.vats[0]);
        let kref = self
            .kernel()
            .inspect(move |s| s.clist_kref(ep, p_vref(i)))
            .unwrap()
            .unwrap();
        kref.and_then(KRef::as_promise)
            .unwrap_or_else(|| panic!("P{i} is not a kernel promise: {kref:?}"))
    }

    /// The state of `kp`, `None` once it is collected.
    fn promise_state(&self, kp: KPromiseId) -> Option<PromiseState> {
        let record = self
            .kernel()
            .inspect(move |s| s.promise(kp))
            .unwrap()
            .unwrap();
        record.map(|r| r.state)
    }

    /// The host sends `method(args)` to `kp` without waiting.
    fn host_send(&self, kp: KPromiseId, method: &str, args: Vec<Value>) -> ResultHandle {
        self.kernel()
            .queue_message(KRef::Promise(kp), method, args)
            .unwrap()
    }

    /// The counts of the object `kref`.
    fn counts(&self, kref: KRef) -> RefCounts {
        let id = kref.as_object().expect("an object");
        self.kernel()
            .inspect(move |s| s.object(id))
            .unwrap()
            .unwrap()
            .expect("the object exists")
            .counts
    }

    fn driver_logs(&self) -> Vec<String> {
        self.logged.test_logs(self.vats[0])
    }

    fn target_logs(&self) -> Vec<String> {
        self.logged.test_logs(self.vats[1])
    }

    fn bob_logs(&self) -> Vec<String> {
        self.logged.test_logs(self.vats[2])
    }
}

fn log(target: Value, text: &str) -> Value {
    send(target, "log", vec![Value::str(text)])
}

/// D11: messages waiting on P0 move to P1's queue when P0 is fulfilled with P1, still
/// pending, and reach the target, in order, once P1 is. Resolving a promise retires the
/// resolver's entry (SwingSet's rule), so each promise, named by nothing once its messages
/// moved on, is collected.
#[test]
fn message_through_promise_fulfilled_with_pending_promise_waits_for_it() {
    let driven = Driven::new(false);
    driven.script((0..6).map(|n| log(p(0), &format!("m{n}"))).collect());
    let kp0 = driven.kp(0);
    driven.script(vec![resolve(vec![(p(0), false, p(1))])]);
    let kp1 = driven.kp(1);
    assert!(driven.target_logs().is_empty());
    assert_eq!(driven.promise_state(kp0), None, "P0 is collected");
    assert!(matches!(
        driven.promise_state(kp1),
        Some(PromiseState::Unresolved { .. })
    ));
    driven.script(vec![resolve(vec![(p(1), false, vat("target"))])]);
    assert_eq!(driven.target_logs(), ["m0", "m1", "m2", "m3", "m4", "m5"]);
    assert_eq!(driven.promise_state(kp1), None, "P1 is collected");
    ocap_tests::assert_refcounts_consistent(driven.kernel());
}

/// Spec §8.4 step 5 (D8): the item held its *original* target, the promise; delivering it
/// releases that hold, not one on the object it was routed to (which it never took). Undone,
/// each send would leak a hold on the promise and take one away from the object.
#[test]
fn a_delivered_send_through_a_fulfilled_promise_releases_the_promise_not_the_object() {
    let driven = Driven::new(false);
    let target = driven.kernel().vat_root(driven.vats[1]).unwrap().unwrap();
    let before = driven.counts(target);
    // The driver and the host send through P0; then the driver fulfils it with the target.
    driven.script(vec![send_r(p(0), "echo", vec![Value::Int(7)], 0)]);
    let kp0 = driven.kp(0);
    let host = driven.host_send(kp0, "echo", vec![Value::Int(8)]);
    driven.script(vec![resolve(vec![(p(0), false, vat("target"))])]);
    assert_eq!(driven.driver_logs(), ["notify p+1000 fulfilled 7"]);
    let echoed = host.wait(WAIT).map_err(ocap_tests::rejection);
    assert_eq!(echoed.map(|d| super::decode(&d)), Ok(Value::Int(8)));
    driven.logged.idle();
    // Both deliveries released their holds on P0, which nothing else names: it is gone,
    // with the hold its value took on the target, which is back where it was.
    assert_eq!(driven.promise_state(kp0), None);
    assert_eq!(driven.counts(target), before);
    ocap_tests::assert_refcounts_consistent(driven.kernel());
}

#[test]
fn message_through_promise_fulfilled_with_rejected_promise_carries_its_reason() {
    let driven = Driven::new(false);
    driven.script(vec![send_r(p(0), "log", vec![Value::str("lost")], 0)]);
    let host = driven.host_send(driven.kp(0), "log", vec![Value::str("host")]);
    // One syscall: a resolver no longer names what it resolved in an earlier one.
    driven.script(vec![resolve(vec![
        (p(1), true, Value::error("nope")),
        (p(0), false, p(1)),
    ])]);
    assert_eq!(driven.driver_logs(), ["notify p+1000 rejected Error(nope)"]);
    assert!(driven.target_logs().is_empty());
    assert_eq!(
        host.wait(WAIT).map_err(ocap_tests::rejection).map(drop),
        Err("nope".to_owned())
    );
    ocap_tests::assert_refcounts_consistent(driven.kernel());
}

#[test]
fn promise_fulfilled_with_itself_rejects_messages_instead_of_looping() {
    let driven = Driven::new(false);
    driven.script(vec![
        send_r(p(0), "log", vec![Value::str("first")], 0),
        send_r(p(0), "log", vec![Value::str("second")], 1),
    ]);
    let host = driven.host_send(driven.kp(0), "log", vec![Value::str("host")]);
    driven.script(vec![resolve(vec![(p(0), false, p(0))])]);
    assert_eq!(
        driven.driver_logs(),
        [
            format!("notify p+1000 rejected Error({BAD_RESOLUTION})"),
            format!("notify p+1001 rejected Error({BAD_RESOLUTION})"),
        ]
    );
    assert_eq!(
        host.wait(WAIT).map_err(ocap_tests::rejection).map(drop),
        Err(BAD_RESOLUTION.to_owned())
    );
    assert!(driven.target_logs().is_empty());
    // The kernel carries on.
    let target = driven.kernel().vat_root(driven.vats[1]).unwrap().unwrap();
    let echoed = call(driven.kernel(), target, "echo", vec![Value::Int(7)], vec![]);
    assert_eq!(echoed.map(|d| super::decode(&d)), Ok(Value::Int(7)));
    ocap_tests::assert_refcounts_consistent(driven.kernel());
}

#[test]
fn promises_fulfilled_with_each_other_reject_messages_instead_of_looping() {
    let driven = Driven::new(false);
    // A message waits on each; one syscall closes the cycle (a resolver names only the
    // promises it has not resolved yet, so a cycle is made in one resolve).
    driven.script(vec![
        send_r(p(0), "log", vec![Value::str("waits")], 0),
        send_r(p(1), "log", vec![Value::str("cycle")], 1),
    ]);
    assert!(
        driven.driver_logs().is_empty(),
        "{:?}",
        driven.driver_logs()
    );
    driven.script(vec![resolve(vec![
        (p(0), false, p(1)),
        (p(1), false, p(0)),
    ])]);
    // P0's message joined P1's queue behind P1's own, and the queue is rejected in order.
    assert_eq!(
        driven.driver_logs(),
        [
            format!("notify p+1001 rejected Error({BAD_RESOLUTION})"),
            format!("notify p+1000 rejected Error({BAD_RESOLUTION})"),
        ]
    );
    assert!(driven.target_logs().is_empty());
    ocap_tests::assert_refcounts_consistent(driven.kernel());
}

#[test]
fn splat_after_rollback_rejects_on_behalf_of_the_reverted_decider() {
    let test = Logged::new();
    test.kernel
        .launch_subcluster(&cluster_with(&[
            ("a", "tester", Value::Null),
            ("b", "tester", Value::Null),
        ]))
        .unwrap();
    let vats = test.kernel.vat_ids().unwrap();
    let root = |vat| test.kernel.vat_root(vat).unwrap().unwrap();
    let (a, b) = (root(vats[0]), root(vats[1]));
    // a sends `panic()` to b: b's delivery is rolled back (the result's decider goes back to
    // a) and b is terminated; the retried send splats, rejecting the result as a. Were it
    // rejected as b, the resolution would be refused and a would never answer.
    let res = call(
        &test.kernel,
        a,
        "call",
        vec![slot(0), Value::str("panic")],
        vec![b],
    );
    assert_eq!(
        res,
        Err(
            "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted"
                .to_owned()
        )
    );
    test.idle();
    assert_eq!(test.kernel.vat_ids().unwrap(), [vats[0]]);
    let echoed = call(
        &test.kernel,
        a,
        "echo",
        vec![Value::str("still here")],
        vec![],
    );
    assert_eq!(
        echoed.map(|d| super::decode(&d)),
        Ok(Value::str("still here"))
    );
    ocap_tests::assert_refcounts_consistent(&test.kernel);
}

#[test]
fn resolving_several_promises_in_one_syscall_notifies_each_subscriber() {
    let driven = Driven::new(true);
    let promises = call(
        driven.kernel(),
        driven.driver,
        "promises",
        vec![Value::Int(3)],
        vec![],
    )
    .unwrap();
    let bob = driven.kernel().vat_root(driven.vats[2]).unwrap().unwrap();
    // Bob subscribes to each of P0..P2 as he awaits it.
    for kp in &promises.slots {
        let reply = call(
            driven.kernel(),
            bob,
            "hereIsAPromise",
            vec![slot(0)],
            vec![*kp],
        );
        assert!(reply.is_ok(), "{reply:?}");
    }
    driven.logged.idle();
    assert!(driven.bob_logs().is_empty());
    driven.script(vec![resolve(vec![
        (p(0), false, vat("target")),
        (p(1), false, Value::Int(5)),
        (p(2), true, Value::error("no")),
    ])]);
    assert_eq!(
        driven.bob_logs(),
        [
            "the promise parameter resolved to '[object Remotable]'",
            "the promise parameter resolved to '5'",
            "the promise parameter rejected as 'no'",
        ]
    );
    // The host's result [P0, P1, P2] keeps them (the driver's entries are retired).
    let state = |i: usize| driven.promise_state(promises.slots[i].as_promise().unwrap());
    assert!(matches!(state(0), Some(PromiseState::Fulfilled(_))));
    assert!(matches!(state(1), Some(PromiseState::Fulfilled(_))));
    assert!(matches!(state(2), Some(PromiseState::Rejected(_))));
    ocap_tests::assert_refcounts_consistent(driven.kernel());
}

#[test]
fn notify_reports_settled_promises_nested_in_the_value_and_retires_them_from_the_vat() {
    let driven = Driven::new(false);
    // The driver sends [P0] to the target, which echoes it as the answer R0 the driver
    // subscribed to; before that is delivered, the driver settles P1 and fulfils P0 with
    // [P1, P2] (P2 pending), which retires its own entries of P0 and P1.
    driven.script(vec![
        send_r(vat("target"), "echo", vec![Value::List(vec![p(0)])], 0),
        resolve(vec![
            (p(1), false, Value::str("deep")),
            (p(0), false, Value::List(vec![p(1), p(2)])),
        ]),
    ]);
    // The notify of R0 also reports P0 and, inside it, P1, imported into the driver again;
    // not P2, which is pending (§5.6).
    assert_eq!(
        driven.driver_logs(),
        ["notify p+1000 fulfilled [p-3]; p-3 fulfilled [p-4, p+3]; p-4 fulfilled deep"]
    );
    // Told, the driver is done with every promise of the notify: its entries of R0, P0 and
    // P1 are retired (it must not use those vrefs again); P2, still pending, stays.
    let driver = EndpointId::Vat(driven.vats[0]);
    let entries = driven
        .kernel()
        .inspect(move |s| {
            ["p+1000", "p-3", "p-4", "p+3"]
                .map(|v| s.clist_kref(driver, v.parse().unwrap()).unwrap().is_some())
        })
        .unwrap();
    assert_eq!(entries, [false, false, false, true]);
    assert!(matches!(
        driven.promise_state(driven.kp(2)),
        Some(PromiseState::Unresolved { .. })
    ));
    ocap_tests::assert_refcounts_consistent(driven.kernel());
}

/// A host that records syscalls, for driving an SDK vat by hand.
#[derive(Default)]
struct Recorder(Vec<Syscall>);

impl VatHost for Recorder {
    fn syscall(&mut self, syscall: Syscall) {
        self.0.push(syscall);
    }
    fn log(&mut self, _log: VatLog) {}
}

fn fulfilled(promise: &str, value: Value) -> Resolution<VRef> {
    Resolution {
        promise: promise.parse().unwrap(),
        rejected: false,
        data: CapData::data(&value),
    }
}

#[track_caller]
fn deliver(runtime: &mut dyn ocap_types::VatRuntime, delivery: Delivery) -> Vec<Syscall> {
    let mut host = Recorder::default();
    let outcome: DeliveryOutcome = runtime.deliver(delivery, &mut host);
    assert_eq!(outcome.error, None);
    host.0
}

#[test]
fn sdk_ignores_resolutions_of_unknown_and_settled_promises() {
    let registry = ocap_cli::registry();
    let mut tester = registry.get("tester").unwrap()();
    let start = VatStart {
        name: "tester".into(),
        parameters: Value::Null,
        state: Vec::new(),
    };
    assert_eq!(tester.start(start, &mut Recorder::default()).error, None);
    // A promise the vat never heard of.
    let notify = Delivery::Notify(vec![fulfilled("p-7", Value::Int(1))]);
    assert_eq!(deliver(&mut *tester, notify), []);
    // `call(o-2, "ping")` sends with result p+1 and waits for it.
    let call = Message::new(
        "call",
        vec![slot(0), Value::str("ping")],
        vec!["o-2".parse().unwrap()],
        Some("p-1".parse().unwrap()),
    );
    let syscalls = deliver(
        &mut *tester,
        Delivery::Message {
            target: VRef::ROOT,
            message: call,
        },
    );
    assert_eq!(syscalls.len(), 2, "{syscalls:?}");
    // The first resolution of p+1 answers the call; a second one (a repeated notify, §9)
    // changes nothing.
    let answer = deliver(
        &mut *tester,
        Delivery::Notify(vec![fulfilled("p+1", Value::str("pong"))]),
    );
    let [Syscall::Resolve(resolutions)] = answer.as_slice() else {
        panic!("{answer:?}")
    };
    assert_eq!(resolutions[0].data.decode().unwrap(), Value::str("pong"));
    let again = Delivery::Notify(vec![
        fulfilled("p+1", Value::str("again")),
        fulfilled("p-8", Value::Null),
    ]);
    assert_eq!(deliver(&mut *tester, again), []);
}
