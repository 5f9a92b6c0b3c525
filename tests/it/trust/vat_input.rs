//! What a vat hands the kernel is checked like a syscall: its limits, and the kernel's own
//! failures are never blamed on it; a vat's store of any size restarts (D23).

use super::*;

/// A kernel running only `probe`, with these limits; its root and vat.
fn limited_probe(limits: VatLimits) -> (TestKernel, KRef, VatId) {
    let test = TestKernel::new();
    let mut config = cluster(&[("probe", "probe")]);
    config.vats.0[0].1.limits = limits;
    let launched = test.launch(&config);
    let vat = test.kernel.vat_ids().unwrap()[0];
    (test, launched.root, vat)
}

/// `put(key, len)` to the probe: its answer, or the rejection.
fn put(test: &TestKernel, probe: KRef, key: &str, len: i64) -> Result<Value, String> {
    call(
        &test.kernel,
        probe,
        "put",
        vec![Value::str(key), Value::Int(len)],
    )
}

/// `method(args)` to the probe is refused: its result is rejected (never left pending) with
/// the limit's fixed reason, the probe is terminated, and the kernel goes on.
fn assert_over_limit(test: &TestKernel, probe: KRef, method: &str, args: Vec<Value>, reason: &str) {
    let rejection = call(&test.kernel, probe, method, args).unwrap_err();
    assert!(rejection.contains(reason), "{rejection}");
    assert!(!ocap_tests::has_ref_shaped_text(&rejection), "{rejection}");
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    let later = call(&test.kernel, probe, "data", vec![]).unwrap_err();
    assert!(
        later.contains("VAT_TERMINATED")
            || later.contains("OBJECT_DELETED")
            || later.contains("ENDPOINT_UNREACHABLE"),
        "{later}"
    );
}

#[test]
fn a_vat_store_key_past_the_store_limit_is_the_vats_fault_not_the_kernels() {
    let (test, probe, _) = limited_probe(VatLimits::default());
    assert_eq!(put(&test, probe, "short", 3), Ok(Value::str("put")));
    // Longer than LMDB can hold: before, this failed inside the store, the result stayed
    // pending for ever and the vat ran on with state the store did not have.
    let key = "k".repeat(600);
    assert_over_limit(
        &test,
        probe,
        "put",
        vec![Value::str(&key), Value::Int(1)],
        LimitExceeded::VatstoreKey.reason(),
    );
    test.assert_refcounts_consistent();
}

#[test]
fn a_vat_cannot_grow_its_store_past_its_limit() {
    let limits = VatLimits::default().with_vatstore_total_bytes(1000);
    let (test, probe, vat) = limited_probe(limits);
    assert_eq!(put(&test, probe, "a", 600), Ok(Value::str("put")));
    // Rewriting a key counts its new size, not both.
    assert_eq!(put(&test, probe, "a", 900), Ok(Value::str("put")));
    let stored = test
        .kernel
        .inspect(move |s| s.vatstore_get(vat, "a").map(|v| v.map(|v| v.len())))
        .unwrap()
        .unwrap();
    assert_eq!(stored, Some(900));
    assert_over_limit(
        &test,
        probe,
        "put",
        vec![Value::str("b"), Value::Int(200)],
        LimitExceeded::VatstoreTotal.reason(),
    );
    test.assert_refcounts_consistent();
}

#[test]
fn a_vat_store_value_past_its_limit_is_refused() {
    let limits = VatLimits::default().with_vatstore_value_bytes(100);
    let (test, probe, _) = limited_probe(limits);
    assert_over_limit(
        &test,
        probe,
        "put",
        vec![Value::str("a"), Value::Int(101)],
        LimitExceeded::VatstoreValue.reason(),
    );
    test.assert_refcounts_consistent();
}

#[test]
fn a_vat_cannot_make_more_syscalls_in_one_delivery_than_its_limit() {
    let limits = VatLimits::default().with_syscalls_per_delivery(50);
    let (test, probe, vat) = limited_probe(limits);
    // 49 empty syscalls and the answer: exactly the limit, allowed.
    assert_eq!(
        call(&test.kernel, probe, "spam", vec![Value::Int(49)]),
        Ok(Value::str("spammed"))
    );
    // One more is one too many (here ten more, and the answer).
    assert_over_limit(
        &test,
        probe,
        "spam",
        vec![Value::Int(60)],
        LimitExceeded::Syscalls.reason(),
    );
    // The bootstrap's answer, 50, then 51 with the one over the limit: the ten after it
    // were ignored, not counted.
    let counters = test.kernel.vat_counters().unwrap()[&vat];
    assert_eq!(
        (counters.syscalls, counters.denials),
        (1 + 50 + 51, 1),
        "{counters:?}"
    );
    test.assert_refcounts_consistent();
}

#[test]
fn a_vat_cannot_send_a_value_larger_than_its_limit() {
    let limits = VatLimits::default().with_message_bytes(1000);
    let (test, probe, _) = limited_probe(limits);
    assert_eq!(
        call(&test.kernel, probe, "big", vec![Value::Int(100)]),
        Ok(Value::str("x".repeat(100)))
    );
    assert_over_limit(
        &test,
        probe,
        "big",
        vec![Value::Int(2000)],
        LimitExceeded::MessageSize.reason(),
    );
    test.assert_refcounts_consistent();
}

#[test]
fn a_vat_cannot_have_more_messages_queued_than_its_limit() {
    let limits = VatLimits::default().with_queued_messages(5);
    let (test, probe, vat) = limited_probe(limits);
    let queued = |test: &TestKernel| {
        let ep = EndpointId::Vat(vat);
        test.kernel
            .inspect(move |s| s.queued_by(ep))
            .unwrap()
            .unwrap()
    };
    // Messages that are delivered stop counting: five, then five more once they are gone.
    for _ in 0..2 {
        let sent = call(&test.kernel, probe, "flood", vec![Value::Int(5)]);
        assert_eq!(sent, Ok(Value::str("sent")));
        test.kernel.run_until_idle(WAIT).unwrap();
        assert_eq!(queued(&test), 0);
    }
    // Messages waiting on a promise nobody settles count for as long as they wait.
    let stalled = call(&test.kernel, probe, "stall", vec![Value::Int(3)]);
    assert_eq!(stalled, Ok(Value::str("stalled")));
    assert_eq!(queued(&test), 3);
    test.assert_refcounts_consistent();
    assert_eq!(
        call(&test.kernel, probe, "flood", vec![Value::Int(2)]),
        Ok(Value::str("sent"))
    );
    test.kernel.run_until_idle(WAIT).unwrap();
    assert_over_limit(
        &test,
        probe,
        "stall",
        vec![Value::Int(3)],
        LimitExceeded::QueuedMessages.reason(),
    );
    test.assert_refcounts_consistent();
}

/// One delivery's vat-store changes are bounded too, alike for a vat in the kernel's
/// process and one in a worker, whose changes travel in one frame: past the frame, a
/// worker's delivery used to fail with the worker's own report, while the same vat in the
/// kernel's process went on.
#[test]
fn a_vat_cannot_change_more_of_its_store_in_one_delivery_than_its_limit() {
    let limits = VatLimits::default().with_delivery_vatstore_bytes(1000);
    let (test, probe, _) = limited_probe(limits);
    assert_eq!(put(&test, probe, "a", 600), Ok(Value::str("put")));
    assert_over_limit(
        &test,
        probe,
        "put",
        vec![Value::str("b"), Value::Int(2000)],
        LimitExceeded::DeliveryVatstore.reason(),
    );
    test.assert_refcounts_consistent();
}

#[test]
fn limits_that_cannot_work_are_refused_at_launch() {
    let test = TestKernel::new();
    let mut config = cluster(&[("probe", "probe")]);
    config.vats.0[0].1.limits = VatLimits::default().with_vatstore_key_bytes(100_000);
    let err = test.try_launch(&config).unwrap_err();
    assert!(err.to_string().contains("vatstoreKeyBytes"), "{err}");
    config.vats.0[0].1.limits = VatLimits::default()
        .with_delivery_vatstore_bytes(ocap_types::MAX_DELIVERY_VATSTORE_BYTES + 1);
    let err = test.try_launch(&config).unwrap_err();
    assert!(err.to_string().contains("deliveryVatstoreBytes"), "{err}");
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    test.assert_refcounts_consistent();
}

/// A vat is never blamed for the kernel's own failure: when the store fails while the kernel
/// carries out a syscall (here b's c-list entry for its import is damaged on disk, and b
/// sends to that import), the delivery fails inside the kernel. Before, the failure was
/// taken for an illegal syscall and b was terminated.
#[test]
fn a_store_failure_during_a_syscall_is_the_kernels_fault_not_the_vats() {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
    let all = roots(&test.kernel);
    let ((_, a), (b_vat, b)) = (all[0], all[1]);
    // b imports a's root, and learns its vref.
    let slot = Value::Slot {
        index: 0,
        iface: None,
    };
    let echoed = test
        .kernel
        .queue_message_with_slots(b, "echo", vec![slot.clone()], vec![a])
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(echoed.slots, vec![a]);
    let b_ep = EndpointId::Vat(b_vat);
    let vref = test
        .kernel
        .inspect(move |s| s.clist_entry(b_ep, a))
        .unwrap()
        .unwrap()
        .unwrap()
        .vref;
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();

    let mut store = ocap_store::KernelStore::new(ocap_store::Store::open(dir.path()).unwrap());
    store.start_crank().unwrap();
    store
        .kv_mut()
        .set(format!("{b_ep}.c.{vref}").as_bytes(), b"damaged")
        .unwrap();
    store.end_crank().unwrap();
    store.kv_mut().flush().unwrap();
    drop(store);

    let kernel = Kernel::open(dir.path(), config()).unwrap();
    // `forward(a, "data")`: b sends `data()` to its import of a, whose entry is damaged.
    let text = kernel
        .queue_message_with_slots(b, "forward", vec![slot, Value::str("data")], vec![a])
        .unwrap()
        .wait(WAIT)
        .map_err(ocap_tests::rejection)
        .unwrap_err();
    assert_eq!(
        text,
        "[KERNEL:VAT_FATAL:INTERNAL_ERROR] delivery failed inside the kernel (store)"
    );
    assert!(!has_ref_shaped_text(&text), "{text}");
    // b was not terminated, and answers.
    assert_eq!(kernel.vat_ids().unwrap().len(), 2);
    assert_eq!(call(&kernel, b, "data", vec![]), Ok(Value::Int(42)));
    kernel.shutdown().unwrap();
}

/// The probe whose root is `probe` answers, its last start was given the whole vat store
/// (`entries` entries holding `bytes` bytes of keys and values), and `count` answers `count`.
fn assert_started_whole(kernel: &Kernel, probe: KRef, entries: usize, bytes: usize, count: i64) {
    let int = |n: usize| Value::Int(i64::try_from(n).unwrap());
    assert_eq!(
        call(kernel, probe, "started", vec![]),
        Ok(Value::List(vec![int(entries), int(bytes)]))
    );
    // `count` sorts after every `big…` key, so it travels in the store's last part.
    assert_eq!(call(kernel, probe, "count", vec![]), Ok(Value::Int(count)));
}

#[test]
fn a_subprocess_vat_with_a_store_larger_than_a_frame_restarts() {
    // 20 values of 1 MiB (the default value limit; the default store limit is 1 GiB), each
    // written by its own delivery: the whole store is past one frame (16 MiB), no single
    // write is. Before D23 was fixed, the restart failed with `the delivery exceeds the
    // frame size limit`, and the reopened kernel left the vat stopped.
    const N_VALUES: usize = 20;
    const VALUE: usize = 1 << 20;
    let test = TestKernel::with_workers(WorkerKind::Subprocess);
    test.launch(&cluster(&[("probe", "probe")]));
    let (vat, probe) = roots(&test.kernel)[0];
    for value_idx in 0..N_VALUES {
        let key = Value::str(format!("big{value_idx:02}"));
        let put = call(
            &test.kernel,
            probe,
            "put",
            vec![key, Value::Int(VALUE as i64)],
        );
        assert_eq!(put, Ok(Value::str("put")));
    }
    assert_eq!(
        call(&test.kernel, probe, "count", vec![]),
        Ok(Value::Int(1))
    );
    let stored = test
        .kernel
        .inspect(move |s| s.vatstore_usage(vat))
        .unwrap()
        .unwrap();
    let n_bytes = N_VALUES * (VALUE + "big00".len()) + "count".len() + 1;
    assert_eq!(stored, n_bytes as u64);
    assert!(n_bytes > ocap_types::MAX_FRAME_LEN);
    let n_entries = N_VALUES + 1;

    test.kernel.restart_vat(vat).unwrap();
    assert_started_whole(&test.kernel, probe, n_entries, n_bytes, 2);

    // Reopening the kernel relaunches the vat from the store the same way.
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    let mut reopened = ocap_tests::config();
    reopened.workers.program = Some(ocap_tests::worker_program());
    let kernel = Kernel::open(dir.path(), reopened).unwrap();
    assert!(kernel.stopped_vats().unwrap().is_empty());
    assert_started_whole(&kernel, probe, n_entries, n_bytes, 3);
    let values = kernel
        .inspect(move |s| s.vatstore_entries(vat))
        .unwrap()
        .unwrap();
    assert_eq!(values.len(), n_entries);
    assert!(
        values[..N_VALUES]
            .iter()
            .all(|(_, v)| v.0 == vec![b'x'; VALUE])
    );
    kernel.shutdown().unwrap();
}

#[test]
fn the_kernel_ignores_every_syscall_after_an_illegal_one() {
    let (test, probe, vat) = limited_probe(VatLimits::default());
    let rejection = call(&test.kernel, probe, "forge", vec![Value::Int(5)]).unwrap_err();
    assert!(rejection.contains("ILLEGAL_SYSCALL"), "{rejection}");
    let counters = test.kernel.vat_counters().unwrap()[&vat];
    // The bootstrap's answer, the forged send; the five after it were not carried out.
    assert_eq!(
        (counters.syscalls, counters.denials),
        (2, 1),
        "{counters:?}"
    );
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(test.kernel.vat_ids().unwrap().is_empty());
    test.assert_refcounts_consistent();
}

#[test]
fn a_vat_cannot_drop_its_own_export_as_if_it_were_an_import() {
    let (test, probe, vat) = limited_probe(VatLimits::default());
    let rejection = call(&test.kernel, probe, "drop_own", vec![]).unwrap_err();
    assert!(rejection.contains("ILLEGAL_SYSCALL"), "{rejection}");
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(!test.kernel.vat_ids().unwrap().contains(&vat));
    test.assert_refcounts_consistent();
}
