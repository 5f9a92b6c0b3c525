//! The garbage-collection scenario (spec §21.6): the `gc-exporter` and `gc-importer` vats
//! through the kernel, checking the absolute refcounts of the reference accounting (§14.2)
//! as the importer lets go of an import and `bringOutYourDead` reports it. The GC syscalls
//! on exact refs (§21.27, D10) are in `retire`.

mod growth;
mod retire;

use ocap_kernel::Kernel;
use ocap_tests::{TestKernel, WAIT, call, cluster, decode, roots};
use ocap_types::{EndpointId, KObjectId, KRef, VRef, Value, VatId};

/// The scenario's subcluster on a fresh kernel: the kernel and (exporter, importer) with
/// their roots.
struct Gc {
    test: TestKernel,
    exporter: (VatId, KRef),
    importer: (VatId, KRef),
}

impl Gc {
    fn launch() -> Gc {
        let test = TestKernel::new();
        let launched = test.launch(&cluster(&[
            ("exporter", "gc-exporter"),
            ("importer", "gc-importer"),
        ]));
        let all = roots(&test.kernel);
        let exporter = *all.iter().find(|(_, root)| *root == launched.root).unwrap();
        let importer = *all.iter().find(|(_, root)| *root != launched.root).unwrap();
        Gc {
            test,
            exporter,
            importer,
        }
    }

    fn kernel(&self) -> &Kernel {
        &self.test.kernel
    }

    /// `createObject(id)` on the exporter: the new object's kref.
    fn create_object(&self, id: &str) -> KObjectId {
        let data = self
            .kernel()
            .queue_message(self.exporter.1, "createObject", vec![Value::str(id)])
            .unwrap()
            .wait(WAIT)
            .unwrap();
        match data.slots.as_slice() {
            [KRef::Object(object)] => *object,
            other => panic!("createObject answered {other:?}"),
        }
    }

    /// `storeImport(object, id...)` on the importer; returns the result promise's kref.
    fn store_import(&self, object: KObjectId, id: Option<&str>) -> KRef {
        let mut args = vec![Value::Slot {
            index: 0,
            iface: None,
        }];
        args.extend(id.map(Value::str));
        let handle = self
            .kernel()
            .queue_message_with_slots(
                self.importer.1,
                "storeImport",
                args,
                vec![KRef::Object(object)],
            )
            .unwrap();
        assert_eq!(decode(&handle.wait(WAIT).unwrap()), Value::Undefined);
        KRef::Promise(handle.promise().unwrap())
    }

    fn exporter_call(&self, method: &str, args: Vec<Value>) -> Value {
        call(self.kernel(), self.exporter.1, method, args).unwrap()
    }

    fn importer_call(&self, method: &str, args: Vec<Value>) -> Value {
        call(self.kernel(), self.importer.1, method, args).unwrap()
    }

    /// The object's (reachable, recognizable) counts.
    fn counts(&self, object: KObjectId) -> (u32, u32) {
        let record = self
            .kernel()
            .inspect(move |s| s.object(object))
            .unwrap()
            .unwrap()
            .expect("the object exists");
        (record.counts.reachable, record.counts.recognizable)
    }

    /// Schedules a reap (of every vat, the importer included) and sends `noops` noops to
    /// `target`, waiting after each, so the reap and the GC actions it causes are done.
    fn reap_then_noops(&self, target: KRef, noops: usize) {
        self.kernel().reap_vats().unwrap();
        for _ in 0..noops {
            assert_eq!(
                call(self.kernel(), target, "noop", Vec::new()).unwrap(),
                Value::str("noop")
            );
        }
    }
}

#[test]
fn refcounts_count_every_holder() {
    let gc = Gc::launch();
    let object = gc.create_object("test-object");
    assert_eq!(
        gc.counts(object),
        (1, 1),
        "the value of the host's (pinned) result; the exporter's entry holds nothing"
    );

    let result = gc.store_import(object, None);
    assert_eq!(gc.counts(object), (2, 2), "and the importer's import");
    let (exporter_vat, importer_vat) = (gc.exporter.0, gc.importer.0);
    let entry = gc
        .kernel()
        .inspect(move |s| s.clist_entry(EndpointId::Vat(exporter_vat), KRef::Object(object)))
        .unwrap()
        .unwrap()
        .expect("the exporter's c-list has the object");
    assert!(entry.reachable, "the exporter's entry is flagged reachable");

    // The result of storeImport was the first promise ever imported into the importer.
    let first_import: VRef = "p-1".parse().unwrap();
    let (kref, entry) = gc
        .kernel()
        .inspect(move |s| {
            let kref = s.clist_kref(EndpointId::Vat(importer_vat), first_import)?;
            let entry = match kref {
                Some(kref) => s.clist_entry(EndpointId::Vat(importer_vat), kref)?,
                None => None,
            };
            Ok::<_, ocap_store::StoreError>((kref, entry))
        })
        .unwrap()
        .unwrap();
    // The importer answered the call: its entry of the result is retired, so that nothing
    // but the host's pin keeps the settled promise.
    assert_eq!((kref, entry), (None, None));
    let KRef::Promise(promise) = result else {
        unreachable!("store_import returns a promise");
    };
    let record = gc
        .kernel()
        .inspect(move |s| s.promise(promise))
        .unwrap()
        .unwrap()
        .expect("the promise exists");
    assert_eq!(record.refcount, 1);

    assert_eq!(
        gc.importer_call("useImport", Vec::new()),
        Value::str("test-object")
    );
    gc.test.assert_refcounts_consistent();
}

#[test]
fn bring_out_your_dead_drops_then_retires_an_import() {
    let gc = Gc::launch();
    let object = gc.create_object("test-object");
    assert_eq!(gc.counts(object), (1, 1));

    gc.store_import(object, Some("test-object"));
    assert_eq!(gc.counts(object), (2, 2), "the import holds it");
    assert_eq!(
        gc.importer_call("listImportedObjects", Vec::new()),
        Value::List(vec![Value::str("test-object")])
    );
    assert_eq!(
        gc.exporter_call("isObjectPresent", vec![Value::str("test-object")]),
        Value::Bool(true)
    );
    let importer_vat = gc.importer.0;
    let importer_entry = move |gc: &Gc| {
        gc.kernel()
            .inspect(move |s| s.clist_entry(EndpointId::Vat(importer_vat), KRef::Object(object)))
            .unwrap()
            .unwrap()
    };
    assert!(importer_entry(&gc).expect("imported").reachable);

    // Only the weak map holds it now: the reap drops it (reachable −1).
    gc.importer_call("makeWeak", vec![Value::str("test-object")]);
    gc.reap_then_noops(gc.importer.1, 3);
    assert_eq!(gc.counts(object), (1, 2));
    let entry = importer_entry(&gc).expect("still recognisable");
    assert!(!entry.reachable, "the importer's flag is cleared");

    // Nothing recognises it any more: the reap retires it (recognizable −1).
    gc.importer_call("forgetImport", Vec::new());
    gc.reap_then_noops(gc.importer.1, 3);
    assert_eq!(gc.counts(object), (1, 1));
    assert_eq!(importer_entry(&gc), None, "the importer's entry is gone");

    gc.exporter_call("forgetObject", vec![Value::str("test-object")]);
    gc.reap_then_noops(gc.exporter.1, 1);
    assert_eq!(
        gc.exporter_call("isObjectPresent", vec![Value::str("test-object")]),
        Value::Bool(false)
    );
    gc.test.assert_refcounts_consistent();
}

#[test]
fn reaping_one_vat_reaps_that_vat_alone() {
    let gc = Gc::launch();
    let object = gc.create_object("test-object");
    gc.store_import(object, Some("test-object"));
    // Only the importer's weak map holds it now.
    gc.importer_call("makeWeak", vec![Value::str("test-object")]);
    let importer_vat = gc.importer.0;
    let reachable = || {
        gc.kernel()
            .inspect(move |s| s.clist_entry(EndpointId::Vat(importer_vat), KRef::Object(object)))
            .unwrap()
            .unwrap()
            .map(|entry| entry.reachable)
    };
    // Reaping the exporter leaves the importer's import as it was.
    gc.kernel().reap_vat(gc.exporter.0).unwrap();
    gc.kernel().run_until_idle(WAIT).unwrap();
    assert_eq!(reachable(), Some(true));
    assert_eq!(gc.counts(object), (2, 2));
    // Reaping the importer drops it.
    gc.kernel().reap_vat(importer_vat).unwrap();
    gc.kernel().run_until_idle(WAIT).unwrap();
    assert_eq!(reachable(), Some(false));
    assert_eq!(gc.counts(object), (1, 2));
    // Only a running vat can be reaped.
    let err = gc.kernel().reap_vat(ocap_types::VatId(99)).unwrap_err();
    assert_eq!(err.to_string(), "Vat does not exist.");
    gc.test.assert_refcounts_consistent();
}

/// A host's result is pinned, so cleaning up the vat that imported and settled it releases
/// only that vat's holds: the result, fulfilled with another vat's object, stays and still
/// forwards what the host sends to it.
#[test]
fn a_settled_result_outlives_the_cleanup_of_the_vat_that_settled_it() {
    let test = TestKernel::new();
    test.launch(&cluster(&[
        ("boot", "probe"),
        ("answerer", "probe"),
        ("keeper", "probe"),
    ]));
    let vats = roots(&test.kernel);
    let ((answerer, answerer_root), (_, keeper_root)) = (vats[1], vats[2]);
    // The answerer imports the result promise and settles it with the keeper's root.
    let handle = test
        .kernel
        .queue_message_with_slots(
            answerer_root,
            "echo",
            vec![Value::Slot {
                index: 0,
                iface: None,
            }],
            vec![keeper_root],
        )
        .unwrap();
    assert_eq!(handle.wait(WAIT).unwrap().slots, [keeper_root]);
    let result = handle.promise().unwrap();

    test.kernel.terminate_vat(answerer, None).unwrap();
    test.kernel.collect_garbage().unwrap();
    let state = test
        .kernel
        .inspect(move |s| s.promise(result).map(|r| r.map(|r| (r.state, r.refcount))))
        .unwrap()
        .unwrap();
    assert!(
        matches!(state, Some((ocap_store::PromiseState::Fulfilled(_), 1))),
        "the result is settled and keeps its resolution's hold: {state:?}"
    );
    // Pipelined through the result, the message reaches the keeper.
    assert_eq!(
        call(
            &test.kernel,
            KRef::Promise(result),
            "echo",
            vec![Value::str("still here")]
        ),
        Ok(Value::str("still here"))
    );
    test.assert_refcounts_consistent();
}
