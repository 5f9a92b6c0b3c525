//! How `ocap check` judges its page-walking child: a signal or a failure is damage, a
//! child that does not finish is killed and reported, a good walk parses.

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, ExitStatus};
use std::time::{Duration, Instant};

use super::{judge, parse_walk, wait_with_timeout};
use crate::CliError;

#[test]
fn a_child_killed_by_a_signal_means_the_store_is_damaged() {
    // A raw wait status of 11 is "killed by SIGSEGV".
    let err = judge(ExitStatus::from_raw(11), "", "").unwrap_err();
    assert!(matches!(err, CliError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("signal 11"), "{err}");
}

#[test]
fn a_child_that_fails_passes_on_its_reason() {
    let stderr = "ocap check-pages: store file at /s is corrupt: truncated\n";
    let err = judge(ExitStatus::from_raw(4 << 8), "", stderr).unwrap_err();
    assert!(matches!(err, CliError::Damaged { .. }), "{err}");
    assert!(err.to_string().contains("corrupt: truncated"), "{err}");
}

#[test]
fn a_good_walk_parses_and_garbage_is_no_walk() {
    let walk = judge(
        ExitStatus::from_raw(0),
        "entries=3 bytes=40 pages=2 pageSize=4096\n",
        "",
    )
    .unwrap();
    assert_eq!((walk.entries, walk.bytes, walk.pages), (3, 40, 2));
    assert_eq!(walk.page_size, 4096);
    assert!(parse_walk("entries=x").is_none());
    assert!(judge(ExitStatus::from_raw(0), "hello", "").is_err());
}

#[test]
fn a_child_that_does_not_finish_in_time_is_killed() {
    let mut child = Command::new("sleep").arg("30").spawn().unwrap();
    let started = Instant::now();
    let status = wait_with_timeout(&mut child, Duration::from_millis(100)).unwrap();
    assert!(status.is_none());
    assert!(started.elapsed() < Duration::from_secs(10));
    // Reaped: nothing is left to wait for.
    assert!(child.try_wait().unwrap().is_some());
}
