//! Vat upgrade (issue 13 item 4, SwingSet's upgrade contract): a counter upgraded from v1
//! to v2 keeps its count, durable facets and durable weak store; its old ephemeral objects
//! reject as deleted and the promises v1 decided are rejected; an upgrade whose new version
//! fails to start changes nothing; the new version is what a reopened kernel runs.

use std::error::Error as _;

use ocap_kernel::{BundleSpec, Kernel, KernelError, ResultHandle, VatError, VatUpgrade};
use ocap_tests::{TestKernel, WAIT, cluster, has_ref_shaped_text, rejection};
use ocap_types::{KRef, Value, VatId};

use super::{call, reopen, vat};

const DELETED: &str =
    "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted";
const UPGRADED: &str = "[KERNEL:VAT_UPGRADED] The vat deciding this promise was upgraded";

fn to(code: &str) -> VatUpgrade {
    VatUpgrade::new(BundleSpec::name(code))
}

/// The answer of `method()` on `target`, or the rejection's message.
fn ask(kernel: &Kernel, target: KRef, method: &str) -> Result<Value, String> {
    call(kernel, target, method, vec![])
}

/// The object `method()` answers.
fn object(kernel: &Kernel, target: KRef, method: &str) -> KRef {
    let data = kernel
        .queue_message(target, method, vec![])
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(data.slots.len(), 1, "{method}: {data:?}");
    data.slots[0]
}

/// `method(object)` on `target`.
fn ask_about(kernel: &Kernel, target: KRef, method: &str, object: KRef) -> Result<Value, String> {
    let slot = Value::Slot {
        index: 0,
        iface: None,
    };
    kernel
        .queue_message_with_slots(target, method, vec![slot], vec![object])
        .unwrap()
        .wait(WAIT)
        .map(|data| data.decode().unwrap())
        .map_err(rejection)
}

/// A counter (`v1`, its root) that counted to 3, and a `bob` beside it.
fn counted_to_three(test: &TestKernel) -> (KRef, KRef) {
    let launched = test.launch(&cluster(&[("counter", "counter-v1"), ("bob", "bob")]));
    assert_eq!(
        launched.bootstrap_result.decode().unwrap(),
        Value::str("counter v1 ready")
    );
    for count in 1..=3 {
        assert_eq!(
            ask(&test.kernel, launched.root, "increment"),
            Ok(count.into())
        );
    }
    let bob = test.kernel.vat_root(vat(2)).unwrap().unwrap();
    (launched.root, bob)
}

/// A message `pending()` whose result the counter decides and never settles.
fn pending(kernel: &Kernel, root: KRef) -> ResultHandle {
    let handle = kernel.queue_message(root, "pending", vec![]).unwrap();
    kernel.run_until_idle(WAIT).unwrap();
    assert!(handle.try_result().is_none(), "v1 never settles it");
    handle
}

fn code_of(kernel: &Kernel, id: VatId) -> String {
    let vats = kernel.vats().unwrap();
    let info = vats.iter().find(|info| info.id == id).unwrap();
    info.config.code().unwrap().to_owned()
}

#[test]
fn an_upgraded_counter_keeps_its_count_and_drops_what_only_v1_knew() {
    let test = TestKernel::new();
    let kernel = &test.kernel;
    let (root, bob) = counted_to_three(&test);
    let reader = object(kernel, root, "reader");
    let thing = object(kernel, root, "ephemeral");
    assert_eq!(ask(kernel, thing, "ping"), Ok(Value::str("pong")));
    assert_eq!(
        ask_about(kernel, root, "remember", bob),
        Ok(Value::Undefined)
    );
    let decided_by_v1 = pending(kernel, root);

    kernel.upgrade_vat(vat(1), to("counter-v2")).unwrap();

    // The same root kref, now v2's root: the count goes on, and v2's new method answers.
    assert_eq!(kernel.vat_root(vat(1)).unwrap(), Some(root));
    assert_eq!(ask(kernel, root, "version"), Ok(Value::str("v2")));
    assert_eq!(ask(kernel, root, "increment"), Ok(4.into()));
    assert_eq!(ask(kernel, root, "decrement"), Ok(3.into()));
    assert_eq!(code_of(kernel, vat(1)), "counter-v2");
    // A durable facet v1 handed out answers v2's way; the durable weak set still knows bob.
    assert_eq!(ask(kernel, reader, "read"), Ok(3.into()));
    assert_eq!(
        ask_about(kernel, root, "remembers", bob),
        Ok(Value::Bool(true))
    );
    // v1's ephemeral object is gone, and the promise v1 decided is rejected: neither kills
    // the vat, and neither text names an internal id.
    let deleted = ask(kernel, thing, "ping").unwrap_err();
    assert_eq!(deleted, DELETED);
    let upgraded = rejection(decided_by_v1.wait(WAIT).unwrap_err());
    assert_eq!(upgraded, UPGRADED);
    assert!(!has_ref_shaped_text(&upgraded));
    assert_eq!(ask(kernel, root, "count"), Ok(3.into()));
    let mut live = kernel.vat_ids().unwrap();
    live.sort_unstable();
    assert_eq!(live, [vat(1), vat(2)], "nothing was terminated");
    test.assert_refcounts_consistent();
}

#[test]
fn an_upgrade_to_a_version_that_fails_to_start_leaves_v1_serving() {
    let test = TestKernel::new();
    let kernel = &test.kernel;
    let (root, _) = counted_to_three(&test);
    let thing = object(kernel, root, "ephemeral");
    let decided_by_v1 = pending(kernel, root);

    let err = kernel
        .upgrade_vat(vat(1), to("counter-v2-broken"))
        .unwrap_err();
    let KernelError::Vat(VatError::Upgrade { vat: failed, .. }) = &err else {
        panic!("expected an upgrade error, got {err:?}");
    };
    assert_eq!(*failed, vat(1));
    assert_eq!(
        err.to_string(),
        r#"Failed to upgrade vat v1 (counter) to "counter-v2-broken""#
    );
    let cause = err.source().unwrap().to_string();
    assert!(
        cause.contains("counter v2 is broken (found its counter: true)"),
        "{cause}"
    );

    // Nothing changed: v1 answers, with its count, its ephemeral object and its promise.
    assert_eq!(ask(kernel, root, "version"), Ok(Value::str("v1")));
    assert_eq!(ask(kernel, root, "count"), Ok(3.into()));
    assert_eq!(ask(kernel, root, "increment"), Ok(4.into()));
    assert_eq!(ask(kernel, thing, "ping"), Ok(Value::str("pong")));
    assert!(decided_by_v1.try_result().is_none());
    assert_eq!(code_of(kernel, vat(1)), "counter-v1");
    assert!(kernel.stopped_vats().unwrap().is_empty());

    // Code that is not registered fails the same way.
    let err = kernel.upgrade_vat(vat(1), to("no-such-code")).unwrap_err();
    assert!(
        matches!(err, KernelError::Vat(VatError::Upgrade { .. })),
        "{err:?}"
    );
    assert_eq!(ask(kernel, root, "increment"), Ok(5.into()));
    test.assert_refcounts_consistent();
}

#[test]
fn a_reopened_kernel_and_a_restart_run_the_upgraded_version() {
    let test = TestKernel::new();
    let (root, _) = counted_to_three(&test);
    test.kernel.upgrade_vat(vat(1), to("counter-v2")).unwrap();
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();

    let kernel = reopen(dir.path());
    assert_eq!(ask(&kernel, root, "version"), Ok(Value::str("v2")));
    assert_eq!(ask(&kernel, root, "increment"), Ok(4.into()));
    kernel.restart_vat(vat(1)).unwrap();
    assert_eq!(ask(&kernel, root, "version"), Ok(Value::str("v2")));
    assert_eq!(ask(&kernel, root, "decrement"), Ok(3.into()));
    // Upgrading to the same version again is an upgrade like any other.
    kernel.upgrade_vat(vat(1), to("counter-v2")).unwrap();
    assert_eq!(ask(&kernel, root, "count"), Ok(3.into()));
    ocap_tests::assert_refcounts_consistent(&kernel);
}

#[test]
fn only_a_live_vat_can_be_upgraded() {
    let test = TestKernel::new();
    let (_, _) = counted_to_three(&test);
    for missing in [vat(3), vat(99)] {
        let err = test
            .kernel
            .upgrade_vat(missing, to("counter-v2"))
            .unwrap_err();
        assert!(
            matches!(err, KernelError::Vat(VatError::NoSuchVat(_))),
            "{err:?}"
        );
    }
    test.kernel.terminate_vat(vat(1), None).unwrap();
    let err = test
        .kernel
        .upgrade_vat(vat(1), to("counter-v2"))
        .unwrap_err();
    assert_eq!(err.to_string(), "Vat does not exist.");
    test.assert_refcounts_consistent();
}

#[test]
fn a_virtual_object_of_the_old_version_rejects_as_deleted_after_an_upgrade() {
    let test = TestKernel::new();
    let kernel = &test.kernel;
    let launched = test.launch(&cluster(&[("probe", "probe")]));
    let virtual_object = object(kernel, launched.root, "virtual");
    // Before the upgrade, v1 answers for it (the probe answers any method it knows).
    assert_eq!(ask(kernel, virtual_object, "data"), Ok(42.into()));

    kernel.upgrade_vat(vat(1), to("probe")).unwrap();

    // A virtual object is not durable: the new version does not know it, so a send to it
    // splats as deleted instead of reaching the new version under the old vref.
    assert_eq!(ask(kernel, virtual_object, "data").unwrap_err(), DELETED);
    assert_eq!(ask(kernel, launched.root, "data"), Ok(42.into()));
    test.assert_refcounts_consistent();
}
