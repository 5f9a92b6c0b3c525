//! Flat growth (issue 13): settled promises are collected once nothing names them, so
//! traffic between vats leaves nothing behind in the store.

use ocap_tests::{TestKernel, WAIT, cluster, decode, roots};
use ocap_types::{KRef, Value};

/// The number of keys in the store.
fn key_count(test: &TestKernel) -> usize {
    test.kernel
        .inspect(|s| s.kv().scan_prefix(b"").map(|entries| entries.len()))
        .unwrap()
        .unwrap()
}

/// Has `a` make `n` calls to `b`, one after the other; returns the store's growth.
fn round_trips(test: &TestKernel, a: KRef, b: KRef, n: i64) -> usize {
    let before = key_count(test);
    let args = vec![
        Value::Slot {
            index: 0,
            iface: None,
        },
        Value::str("echo"),
        Value::Int(n),
    ];
    let answer = test
        .kernel
        .queue_message_with_slots(a, "call_many", args, vec![b])
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(decode(&answer), Value::Int(n));
    test.kernel.run_until_idle(WAIT).unwrap();
    key_count(test) - before
}

#[test]
fn round_trips_between_vats_leave_the_store_flat() {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "tester"), ("b", "tester")]));
    let all = roots(&test.kernel);
    let (a, b) = (all[0].1, all[1].1);
    // What one host call leaves (its result, pinned for the host) does not depend on how
    // many round trips the call made: each of those leaves nothing (it left six keys, a
    // promise record, its count and four c-list entries, before promises were collected).
    // The first call also makes the vats' id counters.
    round_trips(&test, a, b, 1);
    let few = round_trips(&test, a, b, 5);
    let many = round_trips(&test, a, b, 500);
    assert_eq!(many, few, "keys left by 500 round trips against 5");
    test.assert_refcounts_consistent();
}

/// Reaps every vat until the kernel has no GC work left: a reap makes importers drop and
/// retire, which tells owners to drop and retire, whose next reap lets go of the objects.
fn reap_until_quiet(test: &TestKernel) {
    for _ in 0..3 {
        test.kernel.reap_vats().unwrap();
        test.kernel.run_until_idle(WAIT).unwrap();
    }
}

/// Has `a` make `n` trades with `b` (fresh objects and promises both ways), then reaps;
/// returns the store's growth.
fn trades(test: &TestKernel, a: KRef, b: KRef, n: i64) -> i64 {
    let before = key_count(test);
    let args = vec![
        Value::Slot {
            index: 0,
            iface: None,
        },
        Value::Int(n),
    ];
    let answer = test
        .kernel
        .queue_message_with_slots(a, "trade_many", args, vec![b])
        .unwrap()
        // A trade is a dozen cranks; with worker processes on a loaded machine, 100 of
        // them can take longer than one ordinary wait.
        .wait(WAIT * 3)
        .unwrap();
    assert_eq!(decode(&answer), Value::Int(n));
    reap_until_quiet(test);
    i64::try_from(key_count(test)).unwrap() - i64::try_from(before).unwrap()
}

#[test]
fn trading_fresh_objects_and_promises_both_ways_leaves_the_store_flat() {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "tester"), ("b", "tester")]));
    let all = roots(&test.kernel);
    let (a, b) = (all[0].1, all[1].1);
    // Each trade makes two objects and four promises between the vats; once both vats
    // have been reaped, nothing of them is left but what the host's call leaves (its
    // pinned result), however many trades it made.
    trades(&test, a, b, 1);
    let few = trades(&test, a, b, 5);
    let many = trades(&test, a, b, 100);
    assert_eq!(many, few, "keys left by 100 trades against 5");
    test.assert_refcounts_consistent();
}

#[test]
fn a_host_that_releases_its_results_leaves_the_store_flat() {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "tester")]));
    let a = roots(&test.kernel)[0].1;
    // Each call answers a fresh object; the host releases the result once it has read it,
    // and with it the object, which its owner is then told to drop and retire.
    let calls = |n: usize| -> (i64, Vec<KRef>) {
        let before = key_count(&test);
        let mut objects = Vec::new();
        for _ in 0..n {
            let handle = test
                .kernel
                .queue_message(a, "make_counter", vec![])
                .unwrap();
            let answer = handle.wait(WAIT).unwrap();
            objects.extend(answer.slots);
            let result = KRef::Promise(handle.promise().unwrap());
            assert!(test.kernel.release(result).unwrap());
            assert!(
                !test.kernel.release(result).unwrap(),
                "a result is released once"
            );
        }
        reap_until_quiet(&test);
        let grown = i64::try_from(key_count(&test)).unwrap() - i64::try_from(before).unwrap();
        (grown, objects)
    };
    calls(1);
    let (grown, objects) = calls(50);
    assert_eq!(grown, 0, "keys left by 50 released calls");
    assert_eq!(objects.len(), 50);
    let left = test
        .kernel
        .inspect(move |s| {
            objects
                .iter()
                .filter_map(|kref| kref.as_object())
                .filter(|id| s.object(*id).ok().flatten().is_some())
                .count()
        })
        .unwrap();
    assert_eq!(left, 0, "every answered object is collected");
    test.assert_refcounts_consistent();
}
