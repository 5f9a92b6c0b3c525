//! Messages that cannot be delivered are rejected with an error that names the cause and
//! no internal id; and only a missing endpoint is a splat as unreachable, a failure inside
//! the kernel is not (D14).

use ocap_kernel::{Kernel, KernelError};
use ocap_store::{KernelStore, Store, StoreError};
use ocap_tests::{
    TestKernel, WAIT, cluster, config, decode, has_ref_shaped_text, rejection, roots,
};
use ocap_types::{EndpointId, KRef, Value};

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

/// Sends `echo(arg)` to `target`, `arg` naming `slot`: the answer, the rejection's text, or
/// what else went wrong (a result never settled times out).
fn echo_ref(kernel: &Kernel, target: KRef, slot: KRef) -> Result<Value, String> {
    let arg = Value::Slot {
        index: 0,
        iface: None,
    };
    kernel
        .queue_message_with_slots(target, "echo", vec![arg], vec![slot])
        .unwrap()
        .wait(WAIT)
        .map(|data| decode(&data))
        .map_err(|err| match err {
            KernelError::Rejected(rejection) => rejection.message().to_owned(),
            other => format!("not a rejection: {other}"),
        })
}

/// Spec §8.4 step 1 (D14): only "no such endpoint" is a splat as unreachable. Here the vat
/// is running but translating the message into its refs fails inside the kernel (its c-list
/// entry for the argument is damaged on disk): that is an internal error, the crank is
/// rolled back and the result rejected as such. A catch-all turning every delivery error
/// into `ENDPOINT_UNREACHABLE` would hide the damage behind a vat that looks gone.
#[test]
fn a_translation_failure_in_delivery_is_an_internal_error_not_an_unreachable_endpoint() {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
    let all = roots(&test.kernel);
    let ((_, a), (b_vat, b)) = (all[0], all[1]);
    // b imports a's root.
    assert!(matches!(
        echo_ref(&test.kernel, b, a),
        Ok(Value::Slot { .. })
    ));
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();

    let mut store = KernelStore::new(Store::open(dir.path()).unwrap());
    let b_ep = EndpointId::Vat(b_vat);
    assert!(store.clist_entry(b_ep, a).unwrap().is_some());
    store.start_crank().unwrap();
    store
        .kv_mut()
        .set(format!("{b_ep}.c.{a}").as_bytes(), b"damaged")
        .unwrap();
    store.end_crank().unwrap();
    assert!(matches!(
        store.clist_entry(b_ep, a),
        Err(StoreError::Corrupt { .. })
    ));
    store.kv_mut().flush().unwrap();
    drop(store);

    let kernel = Kernel::open(dir.path(), config()).unwrap();
    let text = echo_ref(&kernel, b, a).unwrap_err();
    assert_eq!(
        text,
        "[KERNEL:VAT_FATAL:INTERNAL_ERROR] delivery failed inside the kernel (store)"
    );
    assert!(!has_ref_shaped_text(&text), "{text}");
    // The item was consumed, b was not terminated, and the kernel goes on.
    assert_eq!(kernel.vat_ids().unwrap().len(), 2);
    let echoed = kernel
        .queue_message(b, "echo", vec![Value::Int(5)])
        .unwrap()
        .wait(WAIT)
        .map(|data| decode(&data));
    assert_eq!(echoed.ok(), Some(Value::Int(5)));
    kernel.shutdown().unwrap();
}
