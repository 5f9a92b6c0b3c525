//! Launch failures (spec §21.2, §21.31, D17) and vat logs reaching the kernel's log sink
//! (spec §21.11).

use std::error::Error as _;

use ocap_kernel::KernelError;
use ocap_types::{Value, VatId};

use super::{call, cluster_with, kernel_with_logs, params, rejection, vat};

/// The messages of `err` and of every error it was caused by, outermost first.
fn chain(err: &KernelError) -> Vec<String> {
    let mut out = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        out.push(cause.to_string());
        source = cause.source();
    }
    out
}

#[test]
fn a_vat_failing_before_its_build_function_fails_the_launch_with_the_cause() {
    let (test, logs) = kernel_with_logs();
    let err = test
        .kernel
        .launch_subcluster(&cluster_with(&[("main", "throw-global", Value::Null)], &[]))
        .unwrap_err();
    let messages = chain(&err);
    assert_eq!(messages[0], "Failed to launch vat v1 (main)");
    assert!(
        messages[1..]
            .iter()
            .any(|m| m.contains("from global scope")),
        "{messages:?}"
    );
    assert_eq!(logs.of(vat(1), &[]), ["global throw"]);
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    assert!(test.kernel.subclusters().unwrap().is_empty());
    test.assert_refcounts_consistent();
}

#[test]
fn a_failing_build_function_fails_the_launch_with_the_cause() {
    let (test, logs) = kernel_with_logs();
    let err = test
        .kernel
        .launch_subcluster(&cluster_with(&[("main", "throw-build", Value::Null)], &[]))
        .unwrap_err();
    let messages = chain(&err);
    assert_eq!(messages[0], "Failed to launch vat v1 (main)");
    assert!(
        messages[1..]
            .iter()
            .any(|m| m.contains("from buildRootObject")),
        "{messages:?}"
    );
    assert_eq!(logs.of(vat(1), &[]), ["build throw", "buildRootObject"]);
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    assert!(test.kernel.subclusters().unwrap().is_empty());
    test.assert_refcounts_consistent();
}

#[test]
fn a_failing_bootstrap_fails_the_launch_with_the_decoded_rejection_and_leaves_no_vats() {
    let (test, logs) = kernel_with_logs();
    let err = test
        .kernel
        .launch_subcluster(&cluster_with(
            &[
                ("main", "throw-bootstrap", Value::Null),
                ("other", "tester", Value::Null),
            ],
            &[],
        ))
        .unwrap_err();
    assert_eq!(rejection(err), "from bootstrap");
    assert_eq!(
        logs.of(vat(1), &[]),
        ["bootstrap throw", "buildRootObject", "bootstrap"]
    );
    // D17: the vats that did launch are terminated and the subcluster is gone.
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    assert!(test.kernel.vats().unwrap().is_empty());
    assert!(test.kernel.subclusters().unwrap().is_empty());
    test.assert_refcounts_consistent();
}

#[test]
fn a_vat_failing_to_launch_stops_the_vats_launched_before_it() {
    let (test, _logs) = kernel_with_logs();
    let err = test
        .kernel
        .launch_subcluster(&cluster_with(
            &[
                ("first", "tester", Value::Null),
                ("second", "throw-build", Value::Null),
            ],
            &[],
        ))
        .unwrap_err();
    assert_eq!(err.to_string(), "Failed to launch vat v2 (second)");
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    assert!(test.kernel.subclusters().unwrap().is_empty());
    // The ids stay consumed; the kernel carries on.
    let launched = test.launch(&cluster_with(&[("again", "tester", Value::Null)], &[]));
    assert_eq!(test.kernel.vat_ids().unwrap(), [vat(3)]);
    assert_eq!(
        call(&test.kernel, launched.root, "echo", vec![Value::str("hi")]),
        Ok(Value::str("hi"))
    );
    test.assert_refcounts_consistent();
}

#[test]
fn vat_logs_reach_the_kernel_log_sink_tagged_with_the_vat() {
    let (test, logs) = kernel_with_logs();
    let launched = test.launch(&cluster_with(
        &[(
            "main",
            "logger-vat",
            params(&[("name", Value::str("Alice"))]),
        )],
        &[],
    ));
    let v1: VatId = vat(1);
    assert_eq!(test.kernel.vat_ids().unwrap(), [v1]);
    assert_eq!(
        call(&test.kernel, launched.root, "foo", vec![]),
        Ok(Value::Undefined)
    );
    let all: Vec<_> = logs.0.try_iter().collect();
    let tests: Vec<&str> = all
        .iter()
        .filter(|(v, log)| *v == v1 && log.tags.first().is_some_and(|t| t == "test"))
        .map(|(_, log)| log.message.as_str())
        .collect();
    assert_eq!(tests, ["foo: Alice"]);
    let console: Vec<&str> = all
        .iter()
        .filter(|(v, log)| *v == v1 && log.tags.is_empty())
        .map(|(_, log)| log.message.as_str())
        .collect();
    assert_eq!(console, ["bar: Alice"]);
    test.assert_refcounts_consistent();
}
