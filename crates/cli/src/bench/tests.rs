//! The benchmark's arithmetic.

use std::time::Duration;

use super::percentile;

#[test]
fn percentiles_take_the_nearest_rank() {
    let values: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(percentile(&values, 50), Duration::from_millis(50));
    assert_eq!(percentile(&values, 99), Duration::from_millis(99));
    assert_eq!(percentile(&values[..1], 99), Duration::from_millis(1));
    assert_eq!(percentile(&[], 50), Duration::ZERO);
}
