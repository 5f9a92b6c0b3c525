//! Who may settle a promise (D20), and a vat that cannot start again (D21).

use super::*;

/// A kernel running `driver` (bootstrap) and `probe`, with their roots.
struct Pair {
    test: TestKernel,
    driver: KRef,
    probe: KRef,
    probe_vat: VatId,
}

impl Pair {
    fn new() -> Pair {
        let test = TestKernel::new();
        let launched = test.launch(&cluster(&[("driver", "driver"), ("probe", "probe")]));
        let sub = test
            .kernel
            .subcluster(launched.subcluster)
            .unwrap()
            .unwrap();
        let probe_vat = sub.vat("probe").unwrap();
        let probe = test.kernel.vat_root(probe_vat).unwrap().unwrap();
        Pair {
            test,
            driver: launched.root,
            probe,
            probe_vat,
        }
    }

    fn kernel(&self) -> &Kernel {
        &self.test.kernel
    }

    /// Has the driver carry out `ops` in one delivery; its answer, or the rejection.
    fn script(&self, ops: Vec<Value>) -> Result<Value, String> {
        call(self.kernel(), self.driver, "script", vec![Value::List(ops)])
    }

    /// The probe still runs and answers.
    fn assert_probe_lives(&self) {
        self.kernel().run_until_idle(WAIT).unwrap();
        assert!(
            self.kernel().vat_ids().unwrap().contains(&self.probe_vat),
            "the receiver was terminated"
        );
        assert_eq!(
            call(self.kernel(), self.probe, "data", vec![]),
            Ok(Value::Int(42))
        );
    }
}

fn r(k: i64) -> Value {
    record(&[("r", Value::Int(k))])
}

#[test]
fn a_vat_cannot_resolve_the_result_of_its_own_send() {
    let pair = Pair::new();
    let answer = pair.script(vec![
        send_r(vat("probe"), "echo", vec![Value::str("honest")], 0),
        resolve(vec![(r(0), false, Value::str("forged"))]),
    ]);
    // The sender gave the right to decide away with the send: its resolve is illegal, and
    // the sender, not the receiver, is terminated.
    pair.assert_probe_lives();
    let rejection = answer.unwrap_err();
    assert!(
        rejection.contains("VAT_TERMINATED") || rejection.contains("ILLEGAL_SYSCALL"),
        "{rejection}"
    );
    assert_eq!(pair.kernel().vat_ids().unwrap(), vec![pair.probe_vat]);
    pair.test.assert_refcounts_consistent();
}

#[test]
fn a_vat_cannot_name_one_result_promise_for_two_sends() {
    let pair = Pair::new();
    let answer = pair.script(vec![
        send_r(vat("probe"), "echo", vec![Value::str("first")], 0),
        send_r(vat("probe"), "echo", vec![Value::str("second")], 0),
    ]);
    pair.assert_probe_lives();
    assert!(answer.is_err(), "the reuse is the sender's illegal syscall");
    assert_eq!(pair.kernel().vat_ids().unwrap(), vec![pair.probe_vat]);
    pair.test.assert_refcounts_consistent();
}

#[test]
fn the_receiver_decides_the_result_of_a_delivered_send() {
    let pair = Pair::new();
    // A well-behaved send: the receiver answers and nobody is hurt.
    assert_eq!(
        pair.script(vec![send_r(
            vat("probe"),
            "echo",
            vec![Value::str("hi")],
            0
        )]),
        Ok(Value::str("done"))
    );
    pair.assert_probe_lives();
    assert_eq!(pair.kernel().vat_ids().unwrap().len(), 2);
    pair.test.assert_refcounts_consistent();
}

/// The driver sends `pending()` to the probe with result `R0`; once delivered, the probe
/// decides `R0` (and never settles it).
fn probe_decides_r0(pair: &Pair) {
    assert_eq!(
        pair.script(vec![send_r(vat("probe"), "pending", vec![], 0)]),
        Ok(Value::str("done"))
    );
    pair.kernel().run_until_idle(WAIT).unwrap();
}

/// The driver was terminated for an illegal syscall (not blamed on the kernel), and the
/// probe lives on.
fn assert_driver_refused(pair: &Pair, answer: Result<Value, String>) {
    let rejection = answer.unwrap_err();
    assert!(rejection.contains("ILLEGAL_SYSCALL"), "{rejection}");
    pair.assert_probe_lives();
    assert_eq!(pair.kernel().vat_ids().unwrap(), vec![pair.probe_vat]);
    pair.test.assert_refcounts_consistent();
}

#[test]
fn a_vat_cannot_name_as_a_result_a_promise_the_receiver_of_its_earlier_send_decides() {
    let pair = Pair::new();
    probe_decides_r0(&pair);
    let answer = pair.script(vec![send_r(
        vat("probe"),
        "echo",
        vec![Value::str("again")],
        0,
    )]);
    assert_driver_refused(&pair, answer);
}

/// Has the driver export `P0` (it decides it); its kernel promise.
fn driver_exports_p0(pair: &Pair) -> ocap_types::KPromiseId {
    let promises = pair
        .kernel()
        .queue_message(pair.driver, "promises", vec![Value::Int(1)]);
    let p0 = promises.unwrap().wait(WAIT).unwrap().slots[0];
    let ocap_types::KRef::Promise(id) = p0 else {
        panic!("P0 is a promise: {p0}")
    };
    id
}

fn p0() -> Value {
    record(&[("p", Value::Int(0))])
}

/// A result need not be a promise the send makes: one the sender exported earlier and
/// still decides may be named, and the receiver settles it.
#[test]
fn a_vat_may_name_as_a_result_a_promise_it_exported_and_still_decides() {
    let pair = Pair::new();
    let id = driver_exports_p0(&pair);
    let through_p0 = vec![Value::str("through P0")];
    assert_eq!(
        pair.script(vec![ocap_tests::driver::send_as(
            vat("probe"),
            "echo",
            through_p0,
            p0(),
        )]),
        Ok(Value::str("done"))
    );
    pair.assert_probe_lives();
    assert_eq!(
        pair.kernel().vat_ids().unwrap().len(),
        2,
        "nobody was terminated"
    );
    let state = pair
        .kernel()
        .inspect(move |s| s.promise_state(id))
        .unwrap()
        .unwrap();
    let Some(ocap_store::PromiseState::Fulfilled(value)) = state else {
        panic!("the receiver settled P0: {state:?}")
    };
    assert_eq!(value.decode().unwrap(), Value::str("through P0"));
    pair.test.assert_refcounts_consistent();
}

/// Naming an exported promise as a result gives the right to decide it away (D20).
#[test]
fn a_vat_cannot_resolve_a_promise_it_named_as_a_result() {
    let pair = Pair::new();
    driver_exports_p0(&pair);
    let answer = pair.script(vec![
        ocap_tests::driver::send_as(vat("probe"), "echo", vec![Value::str("x")], p0()),
        resolve(vec![(p0(), false, Value::str("forged"))]),
    ]);
    assert_driver_refused(&pair, answer);
}

/// A resolve syscall naming one promise twice is refused before any c-list entry is
/// retired: the resolver's entries are deleted without reading them again, so a promise
/// retired twice would be released twice (the audit in `assert_driver_refused` would see
/// it). Both for a promise the vat exported before and for one first named by the resolve.
#[test]
fn a_vat_cannot_resolve_one_promise_twice_in_one_syscall() {
    for promise in [0, 8] {
        let pair = Pair::new();
        driver_exports_p0(&pair);
        let p = record(&[("p", Value::Int(promise))]);
        let answer = pair.script(vec![resolve(vec![
            (p.clone(), false, Value::str("first")),
            (p, false, Value::str("second")),
        ])]);
        assert_driver_refused(&pair, answer);
    }
}

#[test]
fn a_vat_cannot_name_an_object_as_the_result_of_its_send() {
    let pair = Pair::new();
    let answer = pair.script(vec![ocap_tests::driver::send_as(
        vat("probe"),
        "echo",
        vec![Value::str("x")],
        ocap_tests::driver::o(0),
    )]);
    assert_driver_refused(&pair, answer);
}

#[test]
fn a_vat_cannot_resolve_the_result_of_its_send_after_the_receiver_got_it() {
    let pair = Pair::new();
    probe_decides_r0(&pair);
    let answer = pair.script(vec![resolve(vec![(r(0), false, Value::str("forged"))])]);
    assert_driver_refused(&pair, answer);
}

/// A vat is not blamed for the kernel's damaged state when it settles a promise: a message
/// queued on the driver's own promise is damaged on disk, and the driver resolves the
/// promise, which moves that message. The delivery fails inside the kernel; the driver is
/// not terminated for it.
#[test]
fn a_damaged_promise_queue_is_the_kernels_fault_not_the_resolving_vats() {
    let pair = Pair::new();
    let id = driver_exports_p0(&pair);
    assert_eq!(
        pair.script(vec![ocap_tests::driver::send(p0(), "echo", vec![])]),
        Ok(Value::str("done"))
    );
    let Pair {
        test,
        driver,
        probe_vat,
        ..
    } = pair;
    let vats = test.kernel.vat_ids().unwrap();
    let driver_vat = *vats.iter().find(|v| **v != probe_vat).unwrap();
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();

    let mut store = ocap_store::KernelStore::new(ocap_store::Store::open(dir.path()).unwrap());
    let queued: Vec<Vec<u8>> = store
        .kv()
        .scan_prefix(format!("queue.{id}.").as_bytes())
        .unwrap()
        .into_iter()
        .map(|(key, _)| key)
        .filter(|key| !key.ends_with(b"head") && !key.ends_with(b"tail"))
        .collect();
    assert_eq!(queued.len(), 1, "the send waits on P0");
    store.start_crank().unwrap();
    store.kv_mut().set(&queued[0], b"damaged").unwrap();
    store.end_crank().unwrap();
    store.kv_mut().flush().unwrap();
    drop(store);

    let kernel = Kernel::open(dir.path(), config()).unwrap();
    let answer = call(
        &kernel,
        driver,
        "script",
        vec![Value::List(vec![resolve(vec![(
            p0(),
            false,
            Value::str("v"),
        )])])],
    );
    let rejection = answer.unwrap_err();
    assert!(rejection.contains("INTERNAL_ERROR"), "{rejection}");
    assert!(!has_ref_shaped_text(&rejection), "{rejection}");
    assert!(
        kernel.vat_ids().unwrap().contains(&driver_vat),
        "driver terminated"
    );
    kernel.shutdown().unwrap();
}

#[test]
fn a_vat_that_cannot_restart_leaves_the_store_openable_and_can_be_terminated() {
    let pair = Pair::new();
    let subcluster = pair.kernel().subclusters().unwrap()[0].id;
    assert_eq!(
        call(pair.kernel(), pair.probe, "poison", vec![]),
        Ok(Value::str("poisoned"))
    );
    let Pair {
        test, probe_vat, ..
    } = pair;
    let dir = test.dir;
    test.kernel.shutdown().unwrap();
    // The store opens although one of its vats cannot start; the others run.
    let kernel = Kernel::open(dir.path(), ocap_tests::config()).unwrap();
    let stopped = kernel.stopped_vats().unwrap();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert_eq!(stopped[0].0, probe_vat);
    assert!(stopped[0].1.contains("poisoned"), "{}", stopped[0].1);
    assert_eq!(kernel.vat_ids().unwrap().len(), 1);
    let driver = kernel.subcluster(subcluster).unwrap().unwrap().vats[0].1;
    let driver_root = kernel.vat_root(driver).unwrap().unwrap();
    assert_eq!(
        call(&kernel, driver_root, "promises", vec![Value::Int(0)]),
        Ok(Value::List(vec![]))
    );
    // A restart fails the same way and changes nothing.
    assert!(kernel.restart_vat(probe_vat).is_err());
    assert_eq!(kernel.stopped_vats().unwrap().len(), 1);
    // Terminating the subcluster decides from the store, not from running workers: the
    // stopped vat is terminated too, and nothing of the subcluster is left.
    kernel.terminate_subcluster(subcluster).unwrap();
    assert!(kernel.subclusters().unwrap().is_empty());
    assert!(kernel.stopped_vats().unwrap().is_empty());
    assert!(kernel.vat_ids().unwrap().is_empty());
    ocap_tests::assert_refcounts_consistent(&kernel);
    kernel.shutdown().unwrap();
}

/// While a vat is stopped, a notify for it is skipped, not failed: `a` subscribed to the
/// result of a message `b` never answered, `a` cannot start after a reopen, and `b` is
/// terminated, which rejects that result.
#[test]
fn a_notify_for_a_stopped_vat_is_skipped_not_failed_inside_the_kernel() {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "probe"), ("b", "probe")]));
    let all = roots(&test.kernel);
    let ((a_vat, a), (b_vat, b)) = (all[0], all[1]);
    let slot = Value::Slot {
        index: 0,
        iface: None,
    };
    // `forward(b, "pending")`: a sends `pending()` to b and subscribes to its result.
    let _waiting = test
        .kernel
        .queue_message_with_slots(a, "forward", vec![slot, Value::str("pending")], vec![b])
        .unwrap();
    test.kernel.run_until_idle(WAIT).unwrap();
    assert_eq!(
        call(&test.kernel, a, "poison", vec![]),
        Ok(Value::str("poisoned"))
    );
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();

    let (records, sink) = std::sync::mpsc::channel();
    let mut config = ocap_tests::config();
    config.crank_log = Some(std::sync::Arc::new(
        move |record: &ocap_kernel::CrankRecord| {
            let _ = records.send(record.clone());
        },
    ));
    let kernel = Kernel::open(dir.path(), config).unwrap();
    assert_eq!(kernel.stopped_vats().unwrap()[0].0, a_vat);
    kernel.terminate_vat(b_vat, None).unwrap();
    kernel.run_until_idle(WAIT).unwrap();
    let notifies: Vec<_> = sink
        .try_iter()
        .filter(|r| {
            matches!(r.item, ocap_kernel::RunQueueItem::Notify { endpoint, .. }
                if endpoint == EndpointId::Vat(a_vat))
        })
        .collect();
    assert_eq!(notifies.len(), 1, "{notifies:?}");
    assert_eq!(notifies[0].outcome, ocap_kernel::CrankOutcome::Delivered);
    assert_eq!(kernel.stopped_vats().unwrap().len(), 1);
    ocap_tests::assert_refcounts_consistent(&kernel);
    kernel.shutdown().unwrap();
}
