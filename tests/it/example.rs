//! The example clusters run end to end, through the library the `ocap` command uses.

use ocap_cli::{RunOptions, render, run_cluster};
use ocap_tests::{TestKernel, WAIT, cluster, decode, repo_root};
use ocap_types::Value;

#[test]
fn alice_bob_example_returns_bobs_reply() {
    let path = repo_root().join("examples/alice-bob.json");
    let result = run_cluster(&path, &RunOptions::default()).unwrap();
    assert_eq!(render(&result), "alice got: hello, alice, from bob");
}

#[test]
fn alice_bob_example_in_group_commit_mode() {
    let path = repo_root().join("examples/alice-bob.json");
    let options = RunOptions {
        group_commit: true,
        ..RunOptions::default()
    };
    let result = run_cluster(&path, &options).unwrap();
    assert_eq!(render(&result), "alice got: hello, alice, from bob");
}

#[test]
fn bob_answers_a_host_message_after_bootstrap() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("alice", "alice"), ("bob", "bob")]));
    assert_eq!(
        decode(&launched.bootstrap_result),
        Value::str("alice got: hello, alice, from bob")
    );
    test.kernel.run_until_idle(WAIT).unwrap();
}
