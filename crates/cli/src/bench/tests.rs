//! The benchmark's arithmetic.

use std::time::Duration;

use super::{limits_for, percentile};

#[test]
fn percentiles_take_the_nearest_rank() {
    let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(percentile(&values, 50), Duration::from_millis(50));
    assert_eq!(percentile(&values, 99), Duration::from_millis(99));
    assert_eq!(percentile(&values[..1], 99), Duration::from_millis(1));
    assert_eq!(percentile(&[], 50), Duration::ZERO);
}

#[test]
fn the_vats_limits_fit_a_burst_of_the_size_run() {
    // burst(peer, n): a send and a subscribe per message in one delivery, n queued.
    let limits = limits_for(100_000);
    assert!(limits.syscalls_per_delivery >= 200_000);
    assert!(limits.queued_messages >= 100_000);
    assert_eq!(limits.problem(), None);
    // Small sizes keep the defaults.
    assert!(limits_for(1_000).is_default());
    assert_eq!(limits_for(u64::MAX).syscalls_per_delivery, u32::MAX);
}
