//! Subcluster management (spec §21.19, §15.1), vat queries, pins (§4.5, §21.30.3) and
//! reaping (§6.5).

use ocap_tests::{TestKernel, WAIT, cluster};
use ocap_types::{KRef, SubclusterId};

use super::{call, vat};

fn sc(id: u32) -> SubclusterId {
    SubclusterId(id)
}

fn pair() -> ocap_types::ClusterConfig {
    cluster(&[("alice", "tester"), ("bob", "tester")])
}

#[test]
fn launched_subclusters_are_listed_with_their_vats_in_order() {
    let test = TestKernel::new();
    let first = test.launch(&pair());
    let second = test.launch(&pair());
    assert_eq!(first.subcluster, sc(1));
    assert_eq!(second.subcluster, sc(2));
    assert_eq!(super::decode_text(&first.bootstrap_result), "bootstrapped");
    let ids: Vec<SubclusterId> = test
        .kernel
        .subclusters()
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(ids, [sc(1), sc(2)]);
    let vats = test.kernel.vats().unwrap();
    assert_eq!(vats.len(), 4);
    assert_eq!(vats[2].name, "alice");
    assert_eq!(vats[2].subcluster, Some(sc(2)));
    assert_eq!(
        test.kernel.subcluster_vats(sc(1)).unwrap(),
        [vat(1), vat(2)]
    );
    assert_eq!(
        test.kernel.subcluster_vats(sc(2)).unwrap(),
        [vat(3), vat(4)]
    );
    let info = test.kernel.subcluster(sc(2)).unwrap().unwrap();
    assert_eq!(info.vat("bob"), Some(vat(4)));
    assert_eq!(info.config, pair());
    assert!(test.kernel.is_vat_in_subcluster(vat(1), sc(1)).unwrap());
    assert!(test.kernel.is_vat_in_subcluster(vat(2), sc(1)).unwrap());
    assert!(!test.kernel.is_vat_in_subcluster(vat(1), sc(2)).unwrap());
    test.assert_refcounts_consistent();
}

#[test]
fn terminating_a_subcluster_terminates_and_cleans_up_its_vats() {
    let test = TestKernel::new();
    let launched = test.launch(&pair());
    let roots: Vec<KRef> = [vat(1), vat(2)]
        .iter()
        .map(|v| test.kernel.vat_root(*v).unwrap().unwrap())
        .collect();
    test.kernel
        .terminate_subcluster(launched.subcluster)
        .unwrap();
    assert!(test.kernel.subclusters().unwrap().is_empty());
    assert!(test.kernel.vats().unwrap().is_empty());
    assert_eq!(test.kernel.subcluster(launched.subcluster).unwrap(), None);
    // Cleaned up already: no root entries, nothing left to clean, and sends see no owner.
    assert_eq!(test.kernel.vat_root(vat(1)).unwrap(), None);
    assert_eq!(test.kernel.vat_root(vat(2)).unwrap(), None);
    assert!(
        test.kernel
            .inspect(|s| s.terminated_vats())
            .unwrap()
            .unwrap()
            .is_empty()
    );
    let err = call(&test.kernel, roots[0], "echo", vec![]).unwrap_err();
    assert!(err.starts_with("[KERNEL:OBJECT_DELETED]"), "{err}");
    test.assert_refcounts_consistent();
}

#[test]
fn unknown_subclusters_are_reported() {
    let test = TestKernel::new();
    test.launch(&pair());
    let err = test.kernel.subcluster_vats(sc(9)).unwrap_err();
    assert_eq!(err.to_string(), "Subcluster does not exist.");
    let err = test.kernel.terminate_subcluster(sc(9)).unwrap_err();
    assert_eq!(err.to_string(), "Subcluster does not exist.");
    assert_eq!(test.kernel.subcluster(sc(9)).unwrap(), None);
    assert_eq!(test.kernel.vats().unwrap().len(), 2);
    test.assert_refcounts_consistent();
}

#[test]
fn a_terminated_vat_leaves_its_subcluster_and_the_last_one_takes_it_along() {
    let test = TestKernel::new();
    test.launch(&pair());
    test.kernel.terminate_vat(vat(2), None).unwrap();
    test.kernel.collect_garbage().unwrap();
    assert_eq!(test.kernel.subcluster_vats(sc(1)).unwrap(), [vat(1)]);
    test.kernel.terminate_vat(vat(1), None).unwrap();
    test.kernel.collect_garbage().unwrap();
    assert!(test.kernel.subclusters().unwrap().is_empty());
    test.assert_refcounts_consistent();
}

#[test]
fn pinning_a_root_holds_it_once_per_pin() {
    let test = TestKernel::new();
    test.launch(&pair());
    let counts = |test: &TestKernel, root: KRef| {
        let KRef::Object(id) = root else { panic!() };
        test.kernel
            .inspect(move |s| s.object(id))
            .unwrap()
            .unwrap()
            .unwrap()
            .counts
    };
    let root = test.kernel.vat_root(vat(1)).unwrap().unwrap();
    let before = counts(&test, root);
    assert_eq!(test.kernel.pin_vat_root(vat(1)).unwrap(), root);
    assert_eq!(test.kernel.pin_vat_root(vat(1)).unwrap(), root);
    assert_eq!(counts(&test, root).reachable, before.reachable + 2);
    test.kernel.unpin_vat_root(vat(1)).unwrap();
    test.kernel.unpin_vat_root(vat(1)).unwrap();
    test.kernel.unpin_vat_root(vat(1)).unwrap();
    assert_eq!(counts(&test, root), before);
    for err in [
        test.kernel.pin_vat_root(vat(7)).unwrap_err(),
        test.kernel.unpin_vat_root(vat(7)).unwrap_err(),
    ] {
        assert_eq!(err.to_string(), "Vat does not exist.");
    }
    test.assert_refcounts_consistent();
}

#[test]
fn reaping_delivers_one_bring_out_your_dead_per_running_vat() {
    let test = TestKernel::new();
    test.launch(&pair());
    test.kernel.run_until_idle(WAIT).unwrap();
    let before = test.kernel.crank_count().unwrap();
    test.kernel.reap_vats().unwrap();
    test.kernel.run_until_idle(WAIT).unwrap();
    assert_eq!(test.kernel.crank_count().unwrap(), before + 2);
    assert!(
        test.kernel
            .inspect(|s| s.reap_queue())
            .unwrap()
            .unwrap()
            .is_empty()
    );
    test.assert_refcounts_consistent();
}
