//! Malformed targets and revoked objects (spec §2.8, §4.4, §15.6, §21.21): a bad target is
//! refused before anything is allocated, and a revoked object splats every later send
//! (directly or through a promise, before and after a restart) while its owner carries on.

use ocap_kernel::{InputError, KernelError};
use ocap_types::{KObjectId, KPromiseId, KRef, Value};

use super::{Logged, call, cluster_with, record, rejection, slot};

const REVOKED: &str = "[KERNEL:OBJECT_REVOKED] Target object has been revoked";

/// The text of a refused kref: always [`InputError`], never a failure of the kernel.
fn invalid(err: KernelError) -> String {
    match err {
        KernelError::Input(
            input @ (InputError::EmptyKref
            | InputError::NotKernelRef { .. }
            | InputError::MalformedKref(_)),
        ) => input.to_string(),
        other => panic!("expected a refused kref, got {other:?}"),
    }
}

/// A kernel with the exporter vat launched (as `v1`) and its root.
fn exporter() -> (Logged, KRef) {
    let logged = Logged::new();
    let launched = logged
        .kernel
        .launch_subcluster(&cluster_with(&[(
            "exporter",
            "exporter",
            record(&[("name", Value::str("Exporter"))]),
        )]))
        .unwrap();
    assert_eq!(
        super::decode(&launched.bootstrap_result),
        Value::str("bootstrap-Exporter")
    );
    (logged, launched.root)
}

/// `createObject(id)` on the exporter: the new object, and the result promise it came in.
fn create(logged: &Logged, root: KRef, id: &str) -> (KRef, KPromiseId) {
    let handle = logged
        .kernel
        .queue_message(root, "createObject", vec![Value::str(id)])
        .unwrap();
    let promise = handle.promise().unwrap();
    let created = handle.wait(ocap_tests::WAIT).unwrap();
    (created.slots[0], promise)
}

fn get_value(logged: &Logged, object: KRef) -> Result<Value, String> {
    call(&logged.kernel, object, "getValue", vec![], vec![]).map(|d| super::decode(&d))
}

#[track_caller]
fn assert_noop(logged: &Logged, root: KRef) {
    let res = call(&logged.kernel, root, "noop", vec![], vec![]).map(|d| super::decode(&d));
    assert_eq!(res, Ok(Value::str("noop")));
}

#[test]
fn malformed_targets_are_refused_before_anything_is_allocated() {
    let logged = Logged::new();
    let kernel = &logged.kernel;
    let refuse_all = || {
        let args = || vec![Value::str("test")];
        let err = kernel
            .queue_message_text("invalid-kref", "testMethod", args())
            .unwrap_err();
        assert!(
            invalid(err).contains("invalid reference context"),
            "invalid-kref"
        );
        let err = kernel
            .queue_message_text("", "testMethod", args())
            .unwrap_err();
        assert!(invalid(err).contains("incrementRefCount called with empty kref"));
        // The full grammar is `^k[op]\d+$` (D12).
        for text in [
            "k", "ko", "kox", "kp1x", "kq1", "ko-1", "ko 1", "kp+2", " ko1",
        ] {
            let err = kernel
                .queue_message_text(text, "testMethod", args())
                .unwrap_err();
            assert!(invalid(err).contains("invalid reference"), "{text}");
        }
    };
    refuse_all();
    // The kernel carries on.
    let launched = kernel
        .launch_subcluster(&cluster_with(&[(
            "test",
            "observer",
            record(&[("name", Value::str("TestVat"))]),
        )]))
        .unwrap();
    assert_eq!(
        super::decode(&launched.bootstrap_result),
        Value::str("bootstrap complete")
    );
    assert_eq!(kernel.vat_ids().unwrap().len(), 1);
    // The refused calls allocated nothing: two messages around them get consecutive result
    // promises.
    let root = launched.root.to_string();
    let before = kernel.queue_message_text(&root, "ping", vec![]).unwrap();
    refuse_all();
    let after = kernel.queue_message_text(&root, "ping", vec![]).unwrap();
    assert_eq!(after.promise().unwrap().0, before.promise().unwrap().0 + 1);
    let res = after.wait(ocap_tests::WAIT).map_err(rejection);
    assert_eq!(res, Err("\"observer\" has no method \"ping\"".to_owned()));
    assert_eq!(kernel.vat_ids().unwrap().len(), 1);
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}

#[test]
fn send_to_revoked_object_is_rejected_while_its_owner_keeps_working() {
    let (logged, root) = exporter();
    let (object, _) = create(&logged, root, "test-revocation-object");
    assert_eq!(
        get_value(&logged, object),
        Ok(Value::str("test-revocation-object"))
    );
    logged.kernel.revoke(object).unwrap();
    assert_eq!(get_value(&logged, object), Err(REVOKED.to_owned()));
    assert_noop(&logged, root);
    let vats = logged.kernel.vat_ids().unwrap();
    assert_eq!(
        logged.test_logs(vats[0]),
        ["Exporter: Created object test-revocation-object"]
    );
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}

#[test]
fn every_send_to_a_revoked_object_is_rejected() {
    let (logged, root) = exporter();
    let (object, _) = create(&logged, root, "promise-revocation-test");
    logged.kernel.revoke(object).unwrap();
    assert_eq!(get_value(&logged, object), Err(REVOKED.to_owned()));
    assert_noop(&logged, root);
    for _ in 0..5 {
        assert_eq!(get_value(&logged, object), Err(REVOKED.to_owned()));
    }
    assert_noop(&logged, root);
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}

#[test]
fn several_revoked_objects_are_each_rejected() {
    let (logged, root) = exporter();
    let objects: Vec<KRef> = ["obj1", "obj2", "obj3"]
        .iter()
        .map(|id| create(&logged, root, id).0)
        .collect();
    for object in &objects {
        logged.kernel.revoke(*object).unwrap();
    }
    // Queued together, answered each on its own.
    let handles: Vec<_> = objects
        .iter()
        .map(|o| logged.kernel.queue_message(*o, "getValue", vec![]).unwrap())
        .collect();
    for handle in handles {
        let err = handle.wait(ocap_tests::WAIT).unwrap_err();
        assert_eq!(rejection(err), REVOKED);
    }
    assert_noop(&logged, root);
    assert_eq!(logged.kernel.vat_ids().unwrap().len(), 1);
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}

#[test]
fn revoked_object_is_rejected_through_a_promise_and_from_a_vat() {
    let (logged, root) = exporter();
    let (object, created) = create(&logged, root, "reached-indirectly");
    logged.kernel.revoke(object).unwrap();
    // The createObject result was fulfilled with the object: a send to it routes there.
    let via_promise = call(
        &logged.kernel,
        KRef::Promise(created),
        "getValue",
        vec![],
        vec![],
    );
    assert_eq!(via_promise, Err(REVOKED.to_owned()));
    // A vat that sends to it sees the same rejection.
    let tester = logged
        .kernel
        .launch_subcluster(&cluster_with(&[("tester", "tester", Value::Null)]))
        .unwrap()
        .root;
    let from_vat = call(
        &logged.kernel,
        tester,
        "call",
        vec![slot(0), Value::str("getValue")],
        vec![object],
    );
    assert_eq!(from_vat, Err(REVOKED.to_owned()));
    assert_noop(&logged, root);
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}

#[test]
fn revoking_twice_or_revoking_a_promise_is_an_error() {
    let (logged, root) = exporter();
    let (object, created) = create(&logged, root, "twice");
    let id = object.as_object().unwrap();
    assert!(!logged.kernel.is_revoked(id).unwrap());
    logged.kernel.revoke(object).unwrap();
    assert!(logged.kernel.is_revoked(id).unwrap());
    let err = logged.kernel.revoke(object).unwrap_err();
    assert!(
        matches!(err, KernelError::AlreadyRevoked(o) if o == id),
        "{err:?}"
    );
    let err = logged.kernel.revoke(KRef::Promise(created)).unwrap_err();
    assert!(
        matches!(err, KernelError::RevokePromise(p) if p == created),
        "{err:?}"
    );
    let unknown = KRef::Object(KObjectId(999));
    assert!(matches!(
        logged.kernel.revoke(unknown),
        Err(KernelError::NoSuchObject(KObjectId(999)))
    ));
    // Unknown objects are simply not revoked.
    assert!(!logged.kernel.is_revoked(KObjectId(999)).unwrap());
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}

#[test]
fn revocation_survives_a_restart() {
    let (logged, root) = exporter();
    let (object, _) = create(&logged, root, "durable-revocation");
    logged.kernel.revoke(object).unwrap();
    let logged = logged.reopen();
    let id = object.as_object().unwrap();
    assert!(logged.kernel.is_revoked(id).unwrap());
    // The new incarnation of the exporter no longer has the object; the send must not
    // reach it (that would be a delivery to an unknown export), it splats first.
    assert_eq!(get_value(&logged, object), Err(REVOKED.to_owned()));
    assert_noop(&logged, root);
    assert_eq!(logged.kernel.vat_ids().unwrap().len(), 1);
    let err = logged.kernel.revoke(object).unwrap_err();
    assert!(
        matches!(err, KernelError::AlreadyRevoked(o) if o == id),
        "{err:?}"
    );
    ocap_tests::assert_refcounts_consistent(&logged.kernel);
}
