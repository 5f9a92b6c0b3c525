//! Termination and the cleanup of terminated vats (spec §12.5, §21.22, D3): promises the
//! vat decided are rejected at once, its state goes away over later cranks with bounded
//! work per crank, and messages to its objects see no owner.

use ocap_kernel::CLEANUP_BUDGET;
use ocap_tests::{TestKernel, WAIT, cluster};
use ocap_types::{EndpointId, Value};

use super::{call, call_str, cluster_with, rejection, vat};

#[test]
fn a_terminated_vat_is_gone_and_collect_garbage_removes_its_root() {
    let test = TestKernel::new();
    test.launch(&cluster_with(&[("main", "logger-vat", Value::Null)], &[]));
    test.kernel.terminate_vat(vat(1), None).unwrap();
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(test.kernel.vats().unwrap().is_empty());
    // Nothing ran since, so the cleanup has not reached the root yet.
    assert!(test.kernel.vat_root(vat(1)).unwrap().is_some());
    test.kernel.collect_garbage().unwrap();
    assert_eq!(test.kernel.vat_root(vat(1)).unwrap(), None);
    test.assert_refcounts_consistent();
}

#[test]
fn messages_to_a_terminated_vat_see_its_objects_deleted_while_others_carry_on() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[
        ("main", "persistence-counter"),
        ("target", "persistence-counter"),
    ]));
    assert_eq!(
        super::decode_text(&launched.bootstrap_result),
        "Counter initialized with count: 1"
    );
    let live = launched.root;
    let dead_vat = test
        .kernel
        .subcluster(launched.subcluster)
        .unwrap()
        .unwrap();
    let dead_vat = dead_vat.vat("target").unwrap();
    let dead = test.kernel.vat_root(dead_vat).unwrap().unwrap();
    assert_eq!(
        call_str(&test.kernel, dead, "resume"),
        "Counter incremented to: 2"
    );
    assert_eq!(
        call_str(&test.kernel, live, "resume"),
        "Counter incremented to: 2"
    );
    test.kernel.terminate_vat(dead_vat, None).unwrap();
    let running: Vec<_> = test.kernel.vats().unwrap().iter().map(|v| v.id).collect();
    assert_eq!(running, [vat(1)]);
    let err = call(&test.kernel, dead, "resume", vec![]).unwrap_err();
    assert_eq!(
        err,
        "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted"
    );
    assert_eq!(
        call_str(&test.kernel, live, "resume"),
        "Counter incremented to: 3"
    );
    assert_eq!(test.kernel.vat_root(dead_vat).unwrap(), None);
    test.assert_refcounts_consistent();
}

#[test]
fn promises_a_terminated_vat_decided_are_rejected_as_terminated() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("main", "tester")]));
    // The result of `pending` is decided by the vat, which never settles it.
    let pending = test
        .kernel
        .queue_message(launched.root, "pending", vec![])
        .unwrap();
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(pending.try_result().is_none());
    test.kernel.terminate_vat(vat(1), None).unwrap();
    assert_eq!(
        rejection(pending.wait(WAIT).unwrap_err()),
        "[KERNEL:VAT_TERMINATED] Vat was deleted."
    );

    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("main", "tester")]));
    let pending = test
        .kernel
        .queue_message(launched.root, "pending", vec![])
        .unwrap();
    test.kernel.run_until_idle(WAIT).unwrap();
    test.kernel
        .terminate_vat(vat(1), Some("Custom reason".to_owned()))
        .unwrap();
    assert_eq!(
        rejection(pending.wait(WAIT).unwrap_err()),
        "[KERNEL:VAT_TERMINATED] Vat termination: Custom reason"
    );
    test.assert_refcounts_consistent();
}

/// The number of entries in `vat`'s c-list.
fn clist_len(test: &TestKernel, vat: ocap_types::VatId) -> usize {
    test.kernel
        .inspect(move |s| s.clist_entries(EndpointId::Vat(vat)).map(|e| e.len()))
        .unwrap()
        .unwrap()
}

#[test]
fn the_cleanup_of_a_terminated_vat_is_spread_over_cranks_with_bounded_work() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("hoarder", "hoarder"), ("donor", "hoarder")]));
    let hoarder = launched.root;
    let donor = test.kernel.vat_root(vat(2)).unwrap().unwrap();
    let echo = test.launch(&cluster(&[("echo", "tester")])).root;
    // Exports: objects the hoarder made and handed out (the host's result keeps them).
    let made = call(&test.kernel, hoarder, "make_many", vec![Value::Int(150)]).unwrap();
    let Value::List(made) = made else {
        panic!("{made:?}")
    };
    assert_eq!(made.len(), 150);
    // Imports: the donor's objects, held by the hoarder.
    let donated = test
        .kernel
        .queue_message(donor, "make_many", vec![Value::Int(100)])
        .unwrap()
        .wait(WAIT)
        .unwrap();
    let slots = donated.slots.clone();
    let list: Vec<Value> = (0..slots.len())
        .map(|index| Value::Slot {
            index: u32::try_from(index).unwrap(),
            iface: None,
        })
        .collect();
    let held = test
        .kernel
        .queue_message_with_slots(hoarder, "hold", vec![Value::List(list)], slots)
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(held.decode().unwrap(), Value::Int(100));
    // Promises: exported and never settled.
    call(&test.kernel, hoarder, "pending_many", vec![Value::Int(50)]).unwrap();
    let initial = clist_len(&test, vat(1));
    assert!(initial >= 300, "{initial}");

    test.kernel.terminate_vat(vat(1), None).unwrap();
    test.kernel.run_until_idle(WAIT).unwrap();
    assert_eq!(
        clist_len(&test, vat(1)),
        initial,
        "no crank ran, no cleanup"
    );
    // Each crank with work cleans up at most CLEANUP_BUDGET entries.
    let mut remaining = initial;
    let mut steps = 0;
    while remaining > 0 {
        let before = test.kernel.crank_count().unwrap();
        assert_eq!(
            call(&test.kernel, echo, "echo", vec![Value::Int(steps)]),
            Ok(Value::Int(steps))
        );
        test.kernel.run_until_idle(WAIT).unwrap();
        let cranks = usize::try_from(test.kernel.crank_count().unwrap() - before).unwrap();
        let now = clist_len(&test, vat(1));
        assert!(now < remaining, "a crank with work makes progress");
        assert!(
            remaining - now <= CLEANUP_BUDGET * cranks,
            "{remaining} -> {now} in {cranks} cranks"
        );
        remaining = now;
        steps += 1;
        assert!(steps < 100, "cleanup does not finish");
    }
    assert!(steps >= 2, "the cleanup took {steps} steps");
    // Finished: the vat is off the terminated list, its objects have no owner.
    test.kernel.run_until_idle(WAIT).unwrap();
    call(&test.kernel, echo, "echo", vec![]).unwrap();
    assert!(
        test.kernel
            .inspect(|s| s.terminated_vats())
            .unwrap()
            .unwrap()
            .is_empty()
    );
    let err = call(&test.kernel, hoarder, "make_many", vec![Value::Int(1)]).unwrap_err();
    assert!(err.starts_with("[KERNEL:OBJECT_DELETED]"), "{err}");
    // The donor's objects lost their importer; the donor itself is untouched.
    assert_eq!(
        call(&test.kernel, donor, "hold", vec![Value::List(vec![])]),
        Ok(Value::Int(0))
    );
    test.assert_refcounts_consistent();
}

#[test]
fn collect_garbage_finishes_every_pending_cleanup_at_once() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("hoarder", "hoarder")]));
    call(
        &test.kernel,
        launched.root,
        "make_many",
        vec![Value::Int(i64::try_from(CLEANUP_BUDGET * 3).unwrap())],
    )
    .unwrap();
    test.kernel.terminate_vat(vat(1), None).unwrap();
    test.kernel.collect_garbage().unwrap();
    assert_eq!(clist_len(&test, vat(1)), 0);
    assert!(
        test.kernel
            .inspect(|s| s.terminated_vats())
            .unwrap()
            .unwrap()
            .is_empty()
    );
    test.assert_refcounts_consistent();
}
