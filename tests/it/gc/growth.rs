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
