//! Messages that cannot be delivered are rejected with an error that names the cause and
//! no internal id.

use ocap_tests::{TestKernel, WAIT, cluster, has_ref_shaped_text, rejection};
use ocap_types::KRef;

#[test]
fn message_to_unknown_object_is_rejected_as_deleted() {
    let test = TestKernel::new();
    let target: KRef = "ko77".parse().unwrap();
    let err = test
        .kernel
        .queue_message(target, "hello", vec![])
        .unwrap()
        .wait(WAIT)
        .unwrap_err();
    let text = rejection(err);
    assert_eq!(
        text,
        "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted"
    );
    assert!(!has_ref_shaped_text(&text), "{text}");
    test.assert_refcounts_consistent();
}

#[test]
fn message_to_terminated_vats_root_is_rejected_without_refs() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("alice", "alice"), ("bob", "bob")]));
    let alice = test.kernel.vat_ids().unwrap()[0];
    test.kernel.terminate_vat(alice, None).unwrap();
    let err = test
        .kernel
        .queue_message(launched.root, "hello", vec![])
        .unwrap()
        .wait(WAIT)
        .unwrap_err();
    let text = rejection(err);
    assert!(text.starts_with("[KERNEL:OBJECT_DELETED]"), "{text}");
    assert!(!has_ref_shaped_text(&text), "{text}");
    // The root lost its owner when the terminated vat was cleaned up, and was collected
    // once the splatted message released it.
    let root = launched.root.as_object().unwrap();
    let record = test
        .kernel
        .inspect(move |s| s.object(root))
        .unwrap()
        .unwrap();
    assert_eq!(record, None);
    test.assert_refcounts_consistent();
}

#[test]
fn ref_shaped_text_detector_finds_every_kind_of_id() {
    for text in [
        "ko1",
        "kp2",
        "v3",
        "o+4",
        "p-5",
        "sent to ko12.",
        "(r1)",
        "s2 gone",
    ] {
        assert!(has_ref_shaped_text(text), "{text}");
    }
    for text in [
        "Target object has been revoked",
        "Target endpoint is unreachable (terminated or disconnected)",
        "v",
        "kv store",
    ] {
        assert!(!has_ref_shaped_text(text), "{text}");
    }
}

/// One case of the splat table: how to provoke it, and the exact rejection.
struct Case {
    cause: &'static str,
    expected: &'static str,
    target: fn(&TestKernel) -> KRef,
}

fn probe_roots(test: &TestKernel) -> Vec<KRef> {
    test.kernel
        .vat_ids()
        .unwrap()
        .into_iter()
        .map(|vat| test.kernel.vat_root(vat).unwrap().unwrap())
        .collect()
}

fn settled_result(test: &TestKernel, method: &str, args: Vec<ocap_types::Value>) -> KRef {
    let root = probe_roots(test)[0];
    let handle = test.kernel.queue_message(root, method, args).unwrap();
    let _ = handle.wait(WAIT);
    KRef::Promise(handle.promise().unwrap())
}

#[test]
fn every_splat_cause_has_its_exact_text_and_no_internal_id() {
    let cases = [
        Case {
            cause: "revoked",
            expected: "[KERNEL:OBJECT_REVOKED] Target object has been revoked",
            target: |test| {
                let root = probe_roots(test)[1];
                test.kernel.revoke(root).unwrap();
                root
            },
        },
        Case {
            cause: "deleted",
            expected: "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted",
            target: |_| "ko999".parse().unwrap(),
        },
        Case {
            cause: "promise fulfilled to data",
            expected: "[KERNEL:BAD_PROMISE_RESOLUTION] Promise fulfilled but did not contain an object reference",
            target: |test| settled_result(test, "data", vec![]),
        },
        Case {
            cause: "promise rejected (passed through)",
            expected: "boom",
            target: |test| settled_result(test, "fail", vec![ocap_types::Value::str("boom")]),
        },
        Case {
            cause: "unreachable",
            expected: "[KERNEL:ENDPOINT_UNREACHABLE] Target endpoint is unreachable (terminated or disconnected)",
            target: |test| {
                // Terminate two vats that import nothing; the next crank cleans up only the
                // first, so the second's root still names a vat that is gone.
                let vats = test.kernel.vat_ids().unwrap();
                let root = test.kernel.vat_root(vats[2]).unwrap().unwrap();
                test.kernel.terminate_vat(vats[1], None).unwrap();
                test.kernel.terminate_vat(vats[2], None).unwrap();
                root
            },
        },
    ];
    for case in cases {
        let test = TestKernel::new();
        test.launch(&cluster(&[("a", "probe"), ("b", "probe"), ("c", "probe")]));
        let target = (case.target)(&test);
        let err = test
            .kernel
            .queue_message(target, "echo", vec![])
            .unwrap()
            .wait(WAIT)
            .unwrap_err();
        let text = rejection(err);
        assert_eq!(text, case.expected, "{}", case.cause);
        assert!(!has_ref_shaped_text(&text), "{}: {text}", case.cause);
        test.assert_refcounts_consistent();
    }
}
