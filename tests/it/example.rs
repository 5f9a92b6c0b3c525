//! The example clusters run end to end, through the library the `ocap` command uses: the
//! cluster file with in-process vats, or (when `ocap_tests::default_workers` says
//! `subprocess`) the same cluster with subprocess vats and the tests' worker program.

use std::path::PathBuf;

use ocap_cli::{RunOptions, render, run_cluster};
use ocap_kernel::Kernel;
use ocap_tests::{TestKernel, WAIT, cluster, decode, default_workers, repo_root};
use ocap_types::{KRef, Value, WorkerKind};

/// The alice-bob example for this run's worker kind, and the options that run it.
fn alice_bob() -> (PathBuf, RunOptions) {
    match default_workers() {
        WorkerKind::InProcess => (
            repo_root().join("examples/alice-bob.json"),
            RunOptions::default(),
        ),
        WorkerKind::Subprocess => (
            repo_root().join("examples/alice-bob-subprocess.json"),
            RunOptions {
                worker_program: Some(ocap_tests::worker_program()),
                ..RunOptions::default()
            },
        ),
    }
}

#[test]
fn alice_bob_example_returns_bobs_reply() {
    let (path, options) = alice_bob();
    let result = run_cluster(&path, &options).unwrap();
    assert_eq!(render(&result), "alice got: hello, alice, from bob");
}

#[test]
fn alice_bob_example_in_group_commit_mode() {
    let (path, options) = alice_bob();
    let options = RunOptions {
        group_commit: true,
        ..options
    };
    let result = run_cluster(&path, &options).unwrap();
    assert_eq!(render(&result), "alice got: hello, alice, from bob");
}

fn bob_root(kernel: &Kernel) -> KRef {
    let bob = kernel.vat_ids().unwrap()[1];
    kernel.vat_root(bob).unwrap().unwrap()
}

#[test]
fn bob_answers_a_host_message_after_bootstrap() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("alice", "alice"), ("bob", "bob")]));
    assert_eq!(
        decode(&launched.bootstrap_result),
        Value::str("alice got: hello, alice, from bob")
    );
    let answer = test
        .kernel
        .queue_message(bob_root(&test.kernel), "hello", vec![Value::str("carol")])
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(decode(&answer), Value::str("hello, carol, from bob"));
    test.kernel.run_until_idle(WAIT).unwrap();
    test.assert_refcounts_consistent();
}
