//! Crank semantics (issue 4): one delivery per crank, rollbacks that undo only their own
//! crank, terminations from inside a crank, and results that tell the host what happened.
//! Each test is named after the bug it prevents. Vats run where
//! `ocap_tests::default_workers` says (the `modes` test runs this both ways).

use ocap_tests::{TestKernel, WAIT, call, cluster, decode, delivery_error, rejection, roots};
use ocap_types::{EndpointId, KRef, Value};

#[test]
fn aborted_delivery_does_not_undo_an_earlier_delivery() {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
    let vats = roots(&test.kernel);
    let (vat_a, a) = vats[0];
    let (_, b) = vats[1];
    // Both queued before either is delivered: the second delivery aborts.
    let counted = test.kernel.queue_message(a, "count", vec![]).unwrap();
    let panicked = test.kernel.queue_message(b, "panic", vec![]).unwrap();
    assert_eq!(decode(&counted.wait(WAIT).unwrap()), Value::Int(1));
    let text = rejection(panicked.wait(WAIT).unwrap_err());
    assert_eq!(
        text,
        delivery_error(test.workers(), "vat panicked: probe was asked to panic")
    );
    // The earlier delivery's effect is in the store, and was not redelivered.
    let stored = test
        .kernel
        .inspect(move |s| s.vatstore_get(vat_a, "count"))
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(Value::from_cbor(&stored).unwrap(), Value::Int(1));
    assert_eq!(call(&test.kernel, a, "count", vec![]), Ok(Value::Int(2)));
    test.assert_refcounts_consistent();
}

#[test]
fn terminating_a_vat_from_within_a_crank_completes() {
    for method in ["panic", "crash", "forge", "resolve_twice", "exit"] {
        let test = TestKernel::new();
        test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
        let vats = roots(&test.kernel);
        let args = if method == "exit" {
            vec![Value::Bool(true)]
        } else {
            vec![]
        };
        // The wait is the guard: a deadlock fails here within WAIT instead of hanging.
        let res = call(&test.kernel, vats[0].1, method, args);
        assert!(res.is_err(), "{method}: {res:?}");
        test.kernel.run_until_idle(WAIT).unwrap();
        assert_eq!(test.kernel.vat_ids().unwrap(), vec![vats[1].0], "{method}");
        // The other vat still works.
        assert_eq!(
            call(&test.kernel, vats[1].1, "echo", vec![Value::str("hi")]),
            Ok(Value::str("hi")),
            "{method}"
        );
        test.assert_refcounts_consistent();
    }
}

#[test]
fn a_vat_terminated_in_its_crank_rejects_its_result_and_the_others_go_on() {
    let test = TestKernel::new();
    let workers = test.workers();
    let cases = [
        (
            "panic",
            delivery_error(workers, "vat panicked: probe was asked to panic"),
        ),
        ("crash", delivery_error(workers, "probe crashed on purpose")),
        (
            "forge",
            "[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL] Syscall translation error: prepare to die"
                .to_owned(),
        ),
        (
            "resolve_twice",
            "[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL] Syscall translation error: prepare to die"
                .to_owned(),
        ),
        // A failure exit rejects with the vat's own reason.
        ("exit", "probe exits".to_owned()),
    ];
    test.launch(&cluster(&[
        ("a", "probe"),
        ("b", "probe"),
        ("c", "probe"),
        ("d", "probe"),
        ("e", "probe"),
        ("keep", "probe"),
    ]));
    let vats = roots(&test.kernel);
    let keep = vats[5];
    for ((method, expected), (vat, root)) in cases.iter().zip(&vats) {
        let args = if *method == "exit" {
            vec![Value::Bool(true)]
        } else {
            vec![]
        };
        assert_eq!(
            call(&test.kernel, *root, method, args),
            Err(expected.clone()),
            "{method}"
        );
        test.kernel.run_until_idle(WAIT).unwrap();
        assert!(!test.kernel.vat_ids().unwrap().contains(vat), "{method}");
        assert_eq!(
            call(&test.kernel, keep.1, "echo", vec![Value::str("hi")]),
            Ok(Value::str("hi")),
            "{method}"
        );
    }
    assert_eq!(test.kernel.vat_ids().unwrap(), vec![keep.0]);
    test.assert_refcounts_consistent();
}

#[test]
fn queue_message_to_vat_terminated_while_handling_it_rejects_with_the_reason() {
    let workers = ocap_tests::default_workers();
    let cases = [
        (
            "panic",
            delivery_error(workers, "vat panicked: probe was asked to panic"),
        ),
        ("crash", delivery_error(workers, "probe crashed on purpose")),
        (
            "forge",
            "[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL] Syscall translation error: prepare to die"
                .to_owned(),
        ),
    ];
    for (method, expected) in cases {
        let test = TestKernel::new();
        let launched = test.launch(&cluster(&[("a", "probe")]));
        assert_eq!(
            call(&test.kernel, launched.root, method, vec![]),
            Err(expected)
        );
        test.assert_refcounts_consistent();
    }
}

#[test]
fn clean_exit_keeps_the_delivery_and_rejects_what_the_vat_decided() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("a", "probe")]));
    let text = call(
        &test.kernel,
        launched.root,
        "exit",
        vec![Value::Bool(false)],
    )
    .unwrap_err();
    assert_eq!(text, "[KERNEL:VAT_TERMINATED] Vat termination: probe exits");
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    test.assert_refcounts_consistent();
}

#[test]
fn rejected_kernel_promise_rejects_the_handle_and_fulfilled_resolves_it() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
    assert_eq!(
        call(
            &test.kernel,
            launched.root,
            "fail",
            vec![Value::str("boom")]
        ),
        Err("boom".to_owned())
    );
    assert_eq!(
        call(
            &test.kernel,
            launched.root,
            "echo",
            vec![Value::str("fine")]
        ),
        Ok(Value::str("fine"))
    );
    // A result that travels through a second vat.
    let b = roots(&test.kernel)[1].1;
    let forwarded = test
        .kernel
        .queue_message_with_slots(
            launched.root,
            "forward",
            vec![
                Value::Slot {
                    index: 0,
                    iface: None,
                },
                Value::str("data"),
            ],
            vec![b],
        )
        .unwrap();
    assert_eq!(decode(&forwarded.wait(WAIT).unwrap()), Value::Int(42));
    test.assert_refcounts_consistent();
}

#[test]
fn message_to_vanished_endpoint_splats_as_unreachable_and_releases_its_holds() {
    // The bootstrap vat imports every root; the others import nothing, so cleaning one of
    // them up touches no other vat's counts.
    let test = TestKernel::new();
    test.launch(&cluster(&[
        ("x", "probe"),
        ("a", "probe"),
        ("b", "probe"),
        ("c", "probe"),
    ]));
    let vats = roots(&test.kernel);
    let (a, b, c) = (vats[1], vats[2], vats[3]);
    test.kernel.terminate_vat(a.0, None).unwrap();
    test.kernel.terminate_vat(b.0, None).unwrap();
    let counts = |kref: KRef| {
        let id = kref.as_object().unwrap();
        test.kernel
            .inspect(move |s| s.object(id))
            .unwrap()
            .unwrap()
            .map(|r| r.counts)
    };
    let (b_before, c_before) = (counts(b.1), counts(c.1));
    assert!(b_before.is_some() && c_before.is_some());
    // This crank cleans up the first terminated vat only, so b's root still names b.
    let handle = test
        .kernel
        .queue_message_with_slots(
            b.1,
            "echo",
            vec![Value::Slot {
                index: 0,
                iface: None,
            }],
            vec![c.1],
        )
        .unwrap();
    let text = rejection(handle.wait(WAIT).unwrap_err());
    assert_eq!(
        text,
        "[KERNEL:ENDPOINT_UNREACHABLE] Target endpoint is unreachable (terminated or disconnected)"
    );
    test.kernel.run_until_idle(WAIT).unwrap();
    assert_eq!(counts(b.1), b_before, "target hold released");
    assert_eq!(counts(c.1), c_before, "slot hold released");
    let result = handle.promise().unwrap();
    let record = test
        .kernel
        .inspect(move |s| s.promise(result))
        .unwrap()
        .unwrap()
        .unwrap();
    // Only the resolution's own hold remains (spec §13.1 keeps settled results alive).
    assert_eq!(record.refcount, 1);
    let terminated = test
        .kernel
        .inspect(|s| s.terminated_vats())
        .unwrap()
        .unwrap();
    assert_eq!(terminated, vec![EndpointId::Vat(b.0)]);
    test.assert_refcounts_consistent();
}
