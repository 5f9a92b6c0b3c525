//! Kernel services (spec §8.5, §15.2, §21.18): host objects registered on the kernel,
//! passed to bootstrap, called by vats and by the host.

use ocap_kernel::{Kernel, KernelError, ServiceCall};
use ocap_tests::{TestKernel, WAIT};
use ocap_types::{CapData, EndpointId, KRef, VRef, Value};

use super::{call, cluster_with, kernel_with_logs, reopen, vat};

/// `getStuff(obj, tag)` → `"<tag> -- <kref of obj>"`; anything else fails naming itself.
fn test_service(call: &ServiceCall) -> Result<CapData<KRef>, String> {
    match call.method() {
        "getStuff" => {
            let object = call
                .arg_ref(0)
                .ok_or("getStuff: argument 0 is not a reference")?;
            let tag = call
                .arg_str(1)
                .ok_or("getStuff: argument 1 is not a string")?;
            Ok(CapData::data(&Value::str(format!("{tag} -- {object}"))))
        }
        "echo" => Ok(CapData::new(
            &Value::List(call.args().to_vec()),
            call.slots().to_vec(),
        )),
        "panic" => panic!("the service panicked on purpose"),
        other => Err(format!("testService has no method {other}")),
    }
}

fn service_cluster() -> ocap_types::ClusterConfig {
    cluster_with(&[("main", "service-vat", Value::Null)], &["testService"])
}

#[test]
fn a_vat_calls_a_kernel_service_passed_to_bootstrap() {
    let (test, logs) = kernel_with_logs();
    let service = test
        .kernel
        .register_service("testService", test_service)
        .unwrap();
    let launched = test.launch(&service_cluster());
    assert_ne!(launched.root, service);
    let answer = call(&test.kernel, launched.root, "go", vec![]).unwrap();
    // The service saw the kref the vat's local `thing` was exported as.
    let Value::Str(text) = &answer else {
        panic!("a text answer: {answer:?}");
    };
    let thing: KRef = text
        .strip_prefix("hello -- ")
        .and_then(|kref| kref.parse().ok())
        .expect("the service names a kref");
    assert!(matches!(thing, KRef::Object(_)), "{thing}");
    assert_eq!(
        logs.tests_of(vat(1)),
        [format!("kernel service returns hello -- {thing}")]
    );
    // A service holds nothing once it returned, so the export was dropped and retired:
    // the vat's entry and the object are gone.
    test.kernel.run_until_idle(WAIT).unwrap();
    let (entry, object) = test
        .kernel
        .inspect(move |s| {
            let entry = s.clist_kref(EndpointId::Vat(vat(1)), "o+1".parse::<VRef>().unwrap())?;
            let KRef::Object(id) = thing else {
                unreachable!()
            };
            Ok::<_, ocap_store::StoreError>((entry, s.object(id)?))
        })
        .unwrap()
        .unwrap();
    assert_eq!((entry, object), (None, None));
    test.assert_refcounts_consistent();
}

#[test]
fn a_failing_service_method_rejects_the_result_as_delivery_failed() {
    let (test, logs) = kernel_with_logs();
    test.kernel
        .register_service("testService", test_service)
        .unwrap();
    let launched = test.launch(&service_cluster());
    let err = call(&test.kernel, launched.root, "goBadly", vec![]).unwrap_err();
    assert_eq!(
        err,
        "[KERNEL:DELIVERY_FAILED] testService has no method nonexistentMethod"
    );
    let lines = logs.tests_of(vat(1));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(lines[0].starts_with("kernel service threw:"), "{lines:?}");
    assert!(lines[0].contains("nonexistentMethod"), "{lines:?}");
    test.assert_refcounts_consistent();
}

#[test]
fn launching_with_an_unregistered_service_fails_and_leaves_nothing() {
    let test = TestKernel::new();
    let err = test
        .kernel
        .launch_subcluster(&service_cluster())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "no registered kernel service 'testService'"
    );
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    assert!(test.kernel.subclusters().unwrap().is_empty());
    test.assert_refcounts_consistent();
}

#[test]
fn the_host_can_call_a_service_and_a_panic_rejects_the_result() {
    let test = TestKernel::new();
    let service = test
        .kernel
        .register_service("testService", test_service)
        .unwrap();
    let launched = test.launch(&cluster_with(&[("main", "tester", Value::Null)], &[]));
    let answer = test
        .kernel
        .queue_message_with_slots(
            service,
            "echo",
            vec![Value::Slot {
                index: 0,
                iface: None,
            }],
            vec![launched.root],
        )
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(answer.slots, [launched.root]);
    let err = call(&test.kernel, service, "panic", vec![]).unwrap_err();
    assert_eq!(
        err,
        "[KERNEL:DELIVERY_FAILED] kernel service panicked: the service panicked on purpose"
    );
    // The kernel carries on.
    assert_eq!(
        call(&test.kernel, launched.root, "echo", vec![Value::Int(1)]),
        Ok(Value::Int(1))
    );
    test.assert_refcounts_consistent();
}

#[test]
fn a_service_name_is_registered_once_per_run() {
    let test = TestKernel::new();
    test.kernel
        .register_service("testService", test_service)
        .unwrap();
    let err = test
        .kernel
        .register_service("testService", test_service)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "Kernel service \"testService\" is already registered"
    );
    test.assert_refcounts_consistent();
}

#[test]
fn a_service_keeps_its_kref_across_restarts_and_is_unreachable_until_registered_again() {
    let test = TestKernel::new();
    let service = test
        .kernel
        .register_service("testService", test_service)
        .unwrap();
    let launched = test.launch(&service_cluster());
    assert!(call(&test.kernel, launched.root, "go", vec![]).is_ok());
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();

    let kernel: Kernel = reopen(dir.path());
    // The vat kept the service in baggage; with no implementation it cannot be reached.
    let err = call(&kernel, launched.root, "go", vec![]).unwrap_err();
    assert!(err.starts_with("[KERNEL:ENDPOINT_UNREACHABLE]"), "{err}");
    let again = kernel
        .register_service("testService", test_service)
        .unwrap();
    assert_eq!(again, service);
    let answer = call(&kernel, launched.root, "go", vec![]).unwrap();
    let Value::Str(text) = answer else { panic!() };
    assert!(text.starts_with("hello -- ko"), "{text}");
    // Unregistering forgets the name: the next registration is a new object.
    kernel.unregister_service("testService").unwrap();
    let fresh = kernel
        .register_service("testService", test_service)
        .unwrap();
    assert_ne!(fresh, service);
    ocap_tests::assert_refcounts_consistent(&kernel);
    let _: Result<(), KernelError> = kernel.shutdown();
}
