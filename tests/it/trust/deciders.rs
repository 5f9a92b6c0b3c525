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
