//! Messages that cannot be delivered are rejected with an error that names the cause and
//! no internal id.

use ocap_kernel::KernelError;
use ocap_tests::{TestKernel, WAIT, cluster, has_ref_shaped_text};
use ocap_types::KRef;

fn rejection_text(err: KernelError) -> String {
    match err {
        KernelError::Rejected(rejection) => rejection.message().to_owned(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

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
    let text = rejection_text(err);
    assert_eq!(
        text,
        "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted"
    );
    assert!(!has_ref_shaped_text(&text), "{text}");
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
    let text = rejection_text(err);
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
