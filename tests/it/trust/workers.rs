//! Worker processes cannot write kernel texts, hide their exit, or overflow a deadline.

use super::*;

#[test]
fn a_delivery_timeout_of_duration_max_means_no_limit() {
    let mut config = ocap_tests::config();
    config.workers.delivery_timeout = Duration::MAX;
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    test.launch(&cluster(&[("a", "probe")]));
    let (vat, root) = roots(&test.kernel)[0];
    assert_alive(&test, vat, root);
}

#[test]
fn a_worker_delivery_error_is_logged_and_rejected_with_a_fixed_text() {
    let test = TestKernel::with_workers(WorkerKind::Subprocess);
    test.launch(&cluster(&[("keep", "probe"), ("bad", "leaky-error")]));
    let vats = roots(&test.kernel);
    let ((keep_vat, keep), (bad_vat, bad)) = (vats[0], vats[1]);
    let text = call(&test.kernel, bad, "anything", vec![]).unwrap_err();
    assert_eq!(
        text,
        "[KERNEL:VAT_FATAL:INTERNAL_ERROR] vat worker reported a delivery error"
    );
    assert!(!has_ref_shaped_text(&text), "{text}");
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(!test.kernel.vat_ids().unwrap().contains(&bad_vat));
    assert_alive(&test, keep_vat, keep);
}

#[test]
fn a_worker_that_exits_while_its_child_keeps_stdout_open_is_reported_as_exited() {
    let mut config = ocap_tests::config();
    config.workers.delivery_timeout = Duration::from_secs(3);
    // It starts a process, which confinement forbids: the operator trusts it.
    config
        .workers
        .confinement
        .trusted
        .insert("exit-keeping-stdout".to_owned());
    let test = TestKernel::open(config, WorkerKind::Subprocess);
    test.launch(&cluster(&[
        ("keep", "probe"),
        ("bad", "exit-keeping-stdout"),
    ]));
    let vats = roots(&test.kernel);
    let ((keep_vat, keep), (bad_vat, bad)) = (vats[0], vats[1]);
    let started = Instant::now();
    let text = call(&test.kernel, bad, "anything", vec![]).unwrap_err();
    assert_eq!(
        text,
        "[KERNEL:VAT_FATAL:INTERNAL_ERROR] vat worker exited (status 4)"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(!test.kernel.vat_ids().unwrap().contains(&bad_vat));
    assert_alive(&test, keep_vat, keep);
}
