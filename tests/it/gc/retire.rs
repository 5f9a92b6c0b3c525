//! The GC syscalls a vat makes on exact refs (spec §11.3.5–§11.3.8, §14.5; scenario §21.27
//! items 5–7; D10), made by two `driver` vats, an owner and an importer of its objects:
//! `retireImports` forgets a dropped import, `retireExports` a dropped export and
//! `abandonExports` any export; retiring what is still reachable, or retiring or abandoning
//! what is not the vat's export, is an illegal syscall. Retiring or abandoning an export
//! orphans the object: it loses its owner, later sends splat as deleted, and its importers
//! are told to retire it once nothing can reach it. An export the kernel dropped becomes
//! reachable again when its owner sends it out again.

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};

use ocap_kernel::Kernel;
use ocap_store::{CListEntry, ObjectRecord};
use ocap_tests::driver::{gc, kept, o, o_vref, p, resolve, send, send_r, vat};
use ocap_tests::{TestKernel, WAIT, call, cluster, config};
use ocap_types::{EndpointId, KObjectId, KRef, Value, VatId, VatLog};

const DELETED: &str =
    "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted";
const ILLEGAL: &str =
    "[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL] Syscall translation error: prepare to die";

/// A kernel running two drivers, `owner` (bootstrap) and `importer`, collecting their logs.
struct Drivers {
    test: TestKernel,
    logs: Receiver<(VatId, VatLog)>,
    seen: RefCell<Vec<(VatId, VatLog)>>,
    owner: VatId,
    importer: VatId,
}

impl Drivers {
    fn new() -> Drivers {
        let (sender, logs) = mpsc::channel();
        let mut config = config();
        config.log_sink = Some(Arc::new(move |vat, log: &VatLog| {
            // The test may have finished reading; a late line is of no interest then.
            let _ = sender.send((vat, log.clone()));
        }));
        let test = TestKernel::with_config(config);
        let launched = test.launch(&cluster(&[("owner", "driver"), ("importer", "driver")]));
        let sub = test
            .kernel
            .subcluster(launched.subcluster)
            .unwrap()
            .unwrap();
        Drivers {
            owner: sub.vat("owner").unwrap(),
            importer: sub.vat("importer").unwrap(),
            test,
            logs,
            seen: RefCell::default(),
        }
    }

    fn kernel(&self) -> &Kernel {
        &self.test.kernel
    }

    /// Has the driver `vat` carry out `ops` in one delivery, then waits until the kernel is
    /// idle: the script's answer, or the rejection's text.
    fn script(&self, vat: VatId, ops: Vec<Value>) -> Result<Value, String> {
        let root = self.kernel().vat_root(vat).unwrap().unwrap();
        let res = call(self.kernel(), root, "script", vec![Value::List(ops)]);
        self.kernel().run_until_idle(WAIT).unwrap();
        res
    }

    /// Like [`Drivers::script`], for a script that must succeed.
    #[track_caller]
    fn run(&self, vat: VatId, ops: Vec<Value>) {
        assert_eq!(self.script(vat, ops), Ok(Value::str("done")));
    }

    /// The owner sends its object `o+n` to the importer, which keeps it as `name`; the
    /// object's kref.
    fn export(&self, n: u64, name: &str) -> KObjectId {
        let keep = send(vat("importer"), "keep", vec![Value::str(name), o(n)]);
        self.run(self.owner, vec![keep]);
        self.exported(n).expect("the owner exported it")
    }

    /// The kernel object the owner's `o+n` stands for, if its c-list still has it.
    fn exported(&self, n: u64) -> Option<KObjectId> {
        let ep = EndpointId::Vat(self.owner);
        let kref = self
            .kernel()
            .inspect(move |s| s.clist_kref(ep, o_vref(n)))
            .unwrap()
            .unwrap();
        kref.map(|kref| kref.as_object().expect("an object"))
    }

    fn object(&self, id: KObjectId) -> Option<ObjectRecord> {
        self.kernel()
            .inspect(move |s| s.object(id))
            .unwrap()
            .unwrap()
    }

    fn counts(&self, id: KObjectId) -> (u32, u32) {
        let record = self.object(id).expect("the object exists");
        (record.counts.reachable, record.counts.recognizable)
    }

    fn entry(&self, vat: VatId, id: KObjectId) -> Option<CListEntry> {
        let ep = EndpointId::Vat(vat);
        self.kernel()
            .inspect(move |s| s.clist_entry(ep, KRef::Object(id)))
            .unwrap()
            .unwrap()
    }

    fn running(&self, vat: VatId) -> bool {
        self.kernel().vat_ids().unwrap().contains(&vat)
    }

    /// The lines `vat` logged so far with the tag `tag`, in order.
    fn logs(&self, vat: VatId, tag: &str) -> Vec<String> {
        let mut seen = self.seen.borrow_mut();
        seen.extend(self.logs.try_iter());
        seen.iter()
            .filter(|(from, log)| *from == vat && log.tags.iter().any(|t| t == tag))
            .map(|(_, log)| log.message.clone())
            .collect()
    }

    /// The GC deliveries `vat` got so far (see `ocap_tests::driver`).
    fn gc_logs(&self, vat: VatId) -> Vec<String> {
        self.logs(vat, "gc")
    }

    /// The importer sends `hello()` to what it keeps as `name` and is told the result was
    /// rejected as deleted; so is the host sending to `id`.
    #[track_caller]
    fn assert_sends_splat_as_deleted(&self, name: &str, id: KObjectId) {
        let before = self.logs(self.importer, "test").len();
        self.run(self.importer, vec![send_r(kept(name), "hello", vec![], 0)]);
        assert_eq!(
            self.logs(self.importer, "test")[before..],
            [format!("notify p+1000 rejected Error({DELETED})")]
        );
        let host = call(self.kernel(), KRef::Object(id), "hello", vec![]);
        assert_eq!(host, Err(DELETED.to_owned()));
    }
}

/// §21.27.6 and D10: the importer drops the object, so its owner is told to drop it too;
/// the owner may then retire it. The owner's entry is forgotten and the object orphaned;
/// the importer, which still recognizes it, is told to retire it, and the object is
/// deleted. Undone, the object kept its owner, which no longer knows it.
#[test]
fn retiring_a_dropped_export_forgets_it_and_orphans_the_object() {
    let drivers = Drivers::new();
    let (owner, importer) = (drivers.owner, drivers.importer);
    let thing = drivers.export(5, "thing");
    assert_eq!(drivers.counts(thing), (1, 1), "the importer's import");
    let imported = drivers.entry(importer, thing).unwrap();
    drivers.run(importer, vec![gc("dropImports", vec![kept("thing")])]);
    assert_eq!(drivers.gc_logs(owner), ["dropExports o+5"]);
    assert_eq!(
        drivers.entry(owner, thing).map(|e| e.reachable),
        Some(false)
    );
    assert_eq!(
        drivers.counts(thing),
        (0, 1),
        "recognizable by the importer"
    );

    drivers.run(owner, vec![gc("retireExports", vec![o(5)])]);
    assert!(drivers.running(owner));
    assert_eq!(drivers.entry(owner, thing), None);
    assert_eq!(drivers.exported(5), None);
    assert_eq!(
        drivers.gc_logs(importer),
        [format!("retireImports {}", imported.vref)]
    );
    assert_eq!(drivers.entry(importer, thing), None);
    assert_eq!(drivers.object(thing), None, "orphaned and collected");
    // The owner was told nothing more: a retired export is not retired again.
    assert_eq!(drivers.gc_logs(owner), ["dropExports o+5"]);
}

/// Issue 13 item 2, spec §2.6: an export the kernel dropped that its owner sends out again
/// is reachable again, so when its importer lets go once more the owner is told again, and
/// once nothing recognizes it, it is retired and deleted. Undone (the reference kernel's
/// rule that a flag is set only when the entry is made), the second drop told the owner
/// nothing and the object and both entries stayed for ever.
#[test]
fn a_dropped_export_sent_again_is_dropped_again_and_then_retired() {
    let drivers = Drivers::new();
    let (owner, importer) = (drivers.owner, drivers.importer);
    let thing = drivers.export(5, "thing");
    drivers.run(importer, vec![gc("dropImports", vec![kept("thing")])]);
    assert_eq!(drivers.gc_logs(owner), ["dropExports o+5"]);
    assert_eq!(drivers.counts(thing), (0, 1));

    // The owner sends it again: its entry and the importer's are reachable again.
    assert_eq!(drivers.export(5, "again"), thing);
    let reachable = |vat| drivers.entry(vat, thing).map(|e| e.reachable);
    assert_eq!(
        (reachable(owner), reachable(importer)),
        (Some(true), Some(true))
    );
    assert_eq!(drivers.counts(thing), (1, 1));
    drivers.test.assert_refcounts_consistent();

    drivers.run(
        importer,
        vec![
            gc("dropImports", vec![kept("again")]),
            gc("retireImports", vec![kept("again")]),
        ],
    );
    assert_eq!(
        drivers.gc_logs(owner),
        ["dropExports o+5", "dropExports o+5", "retireExports o+5"]
    );
    assert_eq!((reachable(owner), reachable(importer)), (None, None));
    assert_eq!(drivers.object(thing), None);
    drivers.test.assert_refcounts_consistent();
}

/// §21.27.6, the other half: an export some importer can still reach cannot be retired.
#[test]
fn retiring_a_reachable_export_is_an_illegal_syscall() {
    let drivers = Drivers::new();
    let thing = drivers.export(5, "thing");
    let res = drivers.script(drivers.owner, vec![gc("retireExports", vec![o(5)])]);
    assert_eq!(res, Err(ILLEGAL.to_owned()));
    assert!(!drivers.running(drivers.owner));
    assert!(drivers.running(drivers.importer));
    // The retirement had no effect; the owner's termination orphaned the object instead.
    assert!(drivers.object(thing).is_none_or(|r| r.owner.is_none()));
}

/// §21.27.7 and D10: an export the importer still reaches can be abandoned. The object
/// outlives the abandonment without an owner, held by the importer's import (P0, which the
/// owner fulfilled with it, is collected: the owner's entry was retired at its resolve and
/// nothing else names it; the owner's entry of the object held nothing). Sends to it splat
/// as deleted; once the importer drops it nothing can reach it, and the importer, which can
/// still recognize it, is told to retire it (§14.4). Undone, the object kept its owner.
#[test]
fn abandoning_a_reachable_export_orphans_it_and_its_importer_is_told_to_retire_it() {
    let drivers = Drivers::new();
    let (owner, importer) = (drivers.owner, drivers.importer);
    drivers.run(
        owner,
        vec![
            send(vat("importer"), "keep", vec![Value::str("thing"), o(5)]),
            resolve(vec![(p(0), false, o(5))]),
        ],
    );
    let thing = drivers.exported(5).unwrap();
    assert_eq!(drivers.counts(thing), (1, 1), "the importer's import");
    let imported = drivers.entry(importer, thing).unwrap();
    assert!(imported.reachable);

    drivers.run(owner, vec![gc("abandonExports", vec![o(5)])]);
    assert!(drivers.running(owner));
    assert_eq!(drivers.entry(owner, thing), None);
    let record = drivers.object(thing).expect("the import still holds it");
    assert_eq!(record.owner, None);
    assert_eq!(
        drivers.counts(thing),
        (1, 1),
        "the owner's entry held nothing"
    );
    drivers.assert_sends_splat_as_deleted("thing", thing);

    drivers.run(importer, vec![gc("dropImports", vec![kept("thing")])]);
    assert_eq!(
        drivers.gc_logs(importer),
        [format!("retireImports {}", imported.vref)]
    );
    assert_eq!(drivers.entry(importer, thing), None);
    assert_eq!(drivers.object(thing), None);
    assert!(drivers.gc_logs(owner).is_empty());
    drivers.test.assert_refcounts_consistent();
}

/// §21.27.7, invalid refs: a vat abandons only its own exports, never an import or a promise.
#[test]
fn abandoning_an_import_or_a_promise_is_an_illegal_syscall() {
    for (what, vref) in [("an import", vat("importer")), ("a promise", p(0))] {
        let drivers = Drivers::new();
        let res = drivers.script(drivers.owner, vec![gc("abandonExports", vec![vref])]);
        assert_eq!(res, Err(ILLEGAL.to_owned()), "{what}");
        assert!(!drivers.running(drivers.owner), "{what}");
        assert!(drivers.running(drivers.importer), "{what}");
    }
}

/// §21.27.5: an import the vat dropped can be retired: its entry is forgotten, and the
/// owner, whose object nobody else knows any more, is told to drop and retire it. An
/// import still reachable cannot be retired.
#[test]
fn retiring_a_dropped_import_forgets_it_and_retiring_a_reachable_one_is_illegal() {
    let drivers = Drivers::new();
    let (owner, importer) = (drivers.owner, drivers.importer);
    let dropped = drivers.export(5, "dropped");
    drivers.export(6, "held");
    drivers.run(
        importer,
        vec![
            gc("dropImports", vec![kept("dropped")]),
            gc("retireImports", vec![kept("dropped")]),
        ],
    );
    assert!(drivers.running(importer));
    assert_eq!(drivers.entry(importer, dropped), None);
    assert_eq!(
        drivers.gc_logs(owner),
        ["dropExports o+5", "retireExports o+5"]
    );
    // Nothing names the object any more (every import held it): with `retireExports` the
    // owner's entry and the object go. (The reference kernel keeps both for ever.)
    assert_eq!(drivers.entry(owner, dropped), None);
    assert_eq!(drivers.object(dropped), None);

    let res = drivers.script(importer, vec![gc("retireImports", vec![kept("held")])]);
    assert_eq!(res, Err(ILLEGAL.to_owned()));
    assert!(!drivers.running(importer));
    assert!(drivers.running(owner));
}
