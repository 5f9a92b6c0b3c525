//! State across restarts (spec §12.6, §12.8, §16.3, §16.4; scenarios §21.12, §21.13):
//! baggage and durable objects survive vat and kernel restarts, ephemeral objects do not,
//! and queued work carries on in the new incarnation.

use ocap_store::{KernelStore, Store};
use ocap_tests::{TestKernel, WAIT, cluster};
use ocap_types::{CapData, KRef, Message, RunQueueItem, Value, cbor};

use super::{call, call_str, cluster_with, decode_text, kernel_with_logs, params, reopen, vat};

#[test]
fn a_restarted_vat_keeps_its_baggage_and_is_not_bootstrapped_again() {
    let (test, logs) = kernel_with_logs();
    let launched = test.launch(&cluster(&[("counter", "persistence-counter")]));
    assert_eq!(
        decode_text(&launched.bootstrap_result),
        "Counter initialized with count: 1"
    );
    let root = launched.root;
    assert_eq!(
        call_str(&test.kernel, root, "resume"),
        "Counter incremented to: 2"
    );
    assert_eq!(logs.tests_of(vat(1)), ["initialized with count: 1"]);
    test.kernel.restart_vat(vat(1)).unwrap();
    assert_eq!(logs.tests_of(vat(1)), ["resumed with count: 2"]);
    assert_eq!(
        call_str(&test.kernel, root, "resume"),
        "Counter incremented to: 3"
    );
    // Twice more: same id, same root, one running incarnation.
    test.kernel.restart_vat(vat(1)).unwrap();
    test.kernel.restart_vat(vat(1)).unwrap();
    assert_eq!(test.kernel.vat_ids().unwrap(), [vat(1)]);
    assert_eq!(test.kernel.vat_root(vat(1)).unwrap(), Some(root));
    assert_eq!(
        call_str(&test.kernel, root, "resume"),
        "Counter incremented to: 4"
    );
    for missing in [vat(2), vat(99)] {
        let err = test.kernel.restart_vat(missing).unwrap_err();
        assert_eq!(err.to_string(), "Vat does not exist.");
    }
    test.kernel.terminate_vat(vat(1), None).unwrap();
    let err = test.kernel.restart_vat(vat(1)).unwrap_err();
    assert_eq!(err.to_string(), "Vat does not exist.");
    test.assert_refcounts_consistent();
}

#[test]
fn a_counter_survives_kernel_restarts() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("counter", "persistence-counter")]));
    assert_eq!(
        call_str(&test.kernel, launched.root, "resume"),
        "Counter incremented to: 2"
    );
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    let kernel = reopen(dir.path());
    assert_eq!(kernel.vat_ids().unwrap(), [vat(1)]);
    assert_eq!(
        call_str(&kernel, launched.root, "resume"),
        "Counter incremented to: 3"
    );
    kernel.shutdown().unwrap();
    let kernel = reopen(dir.path());
    assert_eq!(
        call_str(&kernel, launched.root, "resume"),
        "Counter incremented to: 4"
    );
    ocap_tests::assert_refcounts_consistent(&kernel);
}

#[test]
fn reset_storage_on_restart_wipes_everything() {
    let test = TestKernel::new();
    let config = cluster(&[("counter", "persistence-counter")]);
    let launched = test.launch(&config);
    assert_eq!(
        call_str(&test.kernel, launched.root, "resume"),
        "Counter incremented to: 2"
    );
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    let mut reset = ocap_tests::config();
    reset.reset_storage = true;
    let kernel = ocap_kernel::Kernel::open(dir.path(), reset).unwrap();
    assert!(kernel.vat_ids().unwrap().is_empty());
    assert!(kernel.subclusters().unwrap().is_empty());
    let relaunched = kernel.launch_subcluster(&config).unwrap();
    assert_eq!(
        relaunched.bootstrap_result.decode().unwrap(),
        Value::str("Counter initialized with count: 1")
    );
    // Ids start again: the new root is the old root's kref.
    assert_eq!(relaunched.root, launched.root);
    ocap_tests::assert_refcounts_consistent(&kernel);
    kernel.shutdown().unwrap();
}

#[test]
fn references_kept_in_baggage_work_after_a_kernel_restart() {
    let test = TestKernel::new();
    let worker = |id: i64| params(&[("id", Value::Int(id))]);
    let launched = test.launch(&cluster_with(
        &[
            ("coordinator", "persistence-coordinator", Value::Null),
            ("worker1", "persistence-worker", worker(1)),
            ("worker2", "persistence-worker", worker(2)),
        ],
        &[],
    ));
    assert_eq!(
        decode_text(&launched.bootstrap_result),
        "Coordinator initialized with 2 workers"
    );
    assert_eq!(
        call_str(&test.kernel, launched.root, "resume"),
        "Work completed: Worker1(1), Worker2(1)"
    );
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    let kernel = reopen(dir.path());
    assert_eq!(
        call_str(&kernel, launched.root, "resume"),
        "Work completed: Worker1(2), Worker2(2)"
    );
    ocap_tests::assert_refcounts_consistent(&kernel);
}

#[test]
fn durable_objects_answer_after_vat_and_kernel_restarts() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("counter", "persistence-counter")]));
    let Ok(Value::Slot { .. }) = call(&test.kernel, launched.root, "tally", vec![]) else {
        panic!("tally is an object");
    };
    let tally = test
        .kernel
        .queue_message(launched.root, "tally", vec![])
        .unwrap()
        .wait(WAIT)
        .unwrap()
        .slots[0];
    let add = |kernel: &ocap_kernel::Kernel| call(kernel, tally, "add", vec![Value::Int(5)]);
    assert_eq!(add(&test.kernel), Ok(Value::Int(5)));
    test.kernel.restart_vat(vat(1)).unwrap();
    assert_eq!(add(&test.kernel), Ok(Value::Int(10)));
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    let kernel = reopen(dir.path());
    assert_eq!(add(&kernel), Ok(Value::Int(15)));
    // The same object, whichever way it is reached.
    let again = kernel
        .queue_message(launched.root, "tally", vec![])
        .unwrap()
        .wait(WAIT)
        .unwrap();
    assert_eq!(again.slots, [tally]);
    assert_eq!(call(&kernel, tally, "total", vec![]), Ok(Value::Int(15)));
    ocap_tests::assert_refcounts_consistent(&kernel);
}

/// Spec §12.8, taking the reference kernel's path rather than the MAY option: the restarted
/// provider gets a message for an ephemeral object it no longer has, which is a delivery
/// error; it is terminated, and the retried message finds the object without an owner.
#[test]
fn a_stale_ephemeral_reference_after_a_restart_rejects_as_deleted() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[
        ("consumer", "orphan-consumer"),
        ("provider", "orphan-provider"),
    ]));
    let consumer = launched.root;
    assert_eq!(
        call(&test.kernel, consumer, "useEphemeral", vec![]),
        Ok(Value::Int(999))
    );
    let info = test
        .kernel
        .subcluster(launched.subcluster)
        .unwrap()
        .unwrap();
    let provider = info.vat("provider").unwrap();
    test.kernel.restart_vat(provider).unwrap();
    test.kernel.run_until_idle(WAIT).unwrap();
    let err = call(&test.kernel, consumer, "useEphemeral", vec![]).unwrap_err();
    assert!(err.contains("[KERNEL:OBJECT_DELETED]"), "{err}");
    // The side effect of that path: the provider was terminated; the consumer carries on.
    let running: Vec<_> = test.kernel.vats().unwrap().iter().map(|v| v.id).collect();
    assert_eq!(running, [vat(1)]);
    test.assert_refcounts_consistent();
}

/// The kernel-restart variant of §21.12 (spec §12.8: "vat restart or kernel restart"): the
/// whole kernel is shut down and reopened, so both vats start again. The consumer's
/// reference, kept in its baggage, names an ephemeral object the new provider incarnation
/// never made: the send is its delivery error, the provider is terminated, and the retried
/// message finds the object without an owner.
#[test]
fn a_stale_ephemeral_reference_after_a_kernel_restart_rejects_as_deleted() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[
        ("consumer", "orphan-consumer"),
        ("provider", "orphan-provider"),
    ]));
    let consumer = launched.root;
    assert_eq!(
        call(&test.kernel, consumer, "useEphemeral", vec![]),
        Ok(Value::Int(999))
    );
    let info = test
        .kernel
        .subcluster(launched.subcluster)
        .unwrap()
        .unwrap();
    let (consumer_vat, provider) = (info.vat("consumer").unwrap(), info.vat("provider").unwrap());
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();

    let kernel = reopen(dir.path());
    assert_eq!(kernel.vat_ids().unwrap(), [consumer_vat, provider]);
    let err = call(&kernel, consumer, "useEphemeral", vec![]).unwrap_err();
    assert!(err.contains("[KERNEL:OBJECT_DELETED]"), "{err}");
    kernel.run_until_idle(WAIT).unwrap();
    assert_eq!(kernel.vat_ids().unwrap(), [consumer_vat]);
    // The outcome is stored: after one more restart the consumer is there and the
    // reference still rejects the same way.
    kernel.shutdown().unwrap();
    let kernel = reopen(dir.path());
    assert_eq!(kernel.vat_ids().unwrap(), [consumer_vat]);
    let err = call(&kernel, consumer, "useEphemeral", vec![]).unwrap_err();
    assert!(err.contains("[KERNEL:OBJECT_DELETED]"), "{err}");
    kernel.shutdown().unwrap();
}

/// Appends `resume()` to `target`, with a fresh result promise, to the run queue of the
/// closed store at `path`, as the reference test does by writing the store directly.
fn inject_resume(path: &std::path::Path, target: KRef, n_times: usize) {
    let mut store = KernelStore::new(Store::open(path).unwrap());
    store.start_crank().unwrap();
    for _ in 0..n_times {
        let result = KRef::Promise(store.create_promise(None).unwrap());
        store.incref(target).unwrap();
        store.incref(result).unwrap();
        let methargs = Value::List(vec![Value::str("resume"), Value::List(vec![])]);
        let item = RunQueueItem::Send {
            target,
            message: Message {
                methargs: CapData::new(&methargs, vec![]),
                result: Some(result),
            },
            sender: None,
        };
        store.queue_push("run", &cbor::to_vec(&item)).unwrap();
    }
    store.end_crank().unwrap();
    store.kv_mut().flush().unwrap();
}

#[test]
fn messages_queued_before_a_kernel_restart_reach_the_new_incarnation_first() {
    let test = TestKernel::new();
    let launched = test.launch(&cluster(&[("counter", "persistence-counter")]));
    assert_eq!(
        call_str(&test.kernel, launched.root, "resume"),
        "Counter incremented to: 2"
    );
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    inject_resume(dir.path(), launched.root, 1);
    let kernel = reopen(dir.path());
    // FIFO: the injected resume ran before this one.
    assert_eq!(
        call_str(&kernel, launched.root, "resume"),
        "Counter incremented to: 4"
    );
    let queued = kernel
        .inspect(|s| s.queue_bounds("run").map(|b| b.map(|b| b.len())))
        .unwrap()
        .unwrap();
    assert_eq!(queued, Some(0));
    ocap_tests::assert_refcounts_consistent(&kernel);
}

/// Drives `n` resumes through a relay: the host asks the tester to `send_only` each one, so
/// the counter's resumes are vat-to-vat sends waiting in the run queue.
fn relay_resumes(kernel: &ocap_kernel::Kernel, relay: KRef, counter: KRef, n: usize) {
    let mut handles = Vec::new();
    for _ in 0..n {
        let args = vec![
            Value::Slot {
                index: 0,
                iface: None,
            },
            Value::str("resume"),
        ];
        handles.push(
            kernel
                .queue_message_with_slots(relay, "send_only", args, vec![counter])
                .unwrap(),
        );
    }
    for handle in handles {
        assert_eq!(
            handle.wait(WAIT).map(|d| d.decode().unwrap()).ok(),
            Some(Value::str("sent"))
        );
    }
}

#[test]
fn a_kernel_stopped_mid_run_and_reopened_reaches_the_same_result() {
    const N: usize = 120;
    let pair = cluster(&[("relay", "tester"), ("counter", "persistence-counter")]);
    // The uninterrupted run.
    let test = TestKernel::new();
    let launched = test.launch(&pair);
    let counter = test.kernel.vat_root(vat(2)).unwrap().unwrap();
    relay_resumes(&test.kernel, launched.root, counter, N);
    test.kernel.run_until_idle(WAIT).unwrap();
    let expected = call(&test.kernel, counter, "count", vec![]).unwrap();
    assert_eq!(expected, Value::Int(i64::try_from(N).unwrap() + 1));

    // The same work, with the kernel stopped while the relayed sends are still queued and
    // more resumes written into the stopped store.
    let test = TestKernel::new();
    let launched = test.launch(&pair);
    let counter = test.kernel.vat_root(vat(2)).unwrap().unwrap();
    relay_resumes(&test.kernel, launched.root, counter, N / 2);
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    inject_resume(dir.path(), counter, N / 2);
    let kernel = reopen(dir.path());
    kernel.run_until_idle(WAIT).unwrap();
    assert_eq!(call(&kernel, counter, "count", vec![]), Ok(expected));
    ocap_tests::assert_refcounts_consistent(&kernel);
}

/// Runs `ocap-test-kernel` on the store at `path` (with group commit if `group`) and kills it
/// (SIGKILL) once it reports `kill_at` cranks; returns true if it was killed rather than
/// finishing first.
fn run_kernel_process_until(path: &std::path::Path, group: bool, kill_at: u64) -> bool {
    use std::io::BufRead;
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_ocap-test-kernel"))
        .arg(path)
        .args(group.then_some("group"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, reports) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if lines.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let killed = loop {
        // The guard: a silent child fails the test instead of hanging it.
        let Ok(line) = reports.recv_timeout(WAIT) else {
            child.kill().unwrap();
            panic!("ocap-test-kernel stopped reporting");
        };
        if line == "idle" || line.is_empty() {
            break false;
        }
        if line.parse::<u64>().unwrap() >= kill_at {
            child.kill().unwrap();
            break true;
        }
    };
    drop(reports);
    child.wait().unwrap();
    reader.join().unwrap();
    killed
}

/// A whole kernel process killed at several points and reopened: every crank is atomic, so
/// the work resumes and ends exactly where an uninterrupted run ends. With group commit a
/// kill may lose the last cranks, but only whole ones, which then run again.
#[test]
fn a_kernel_process_killed_at_any_point_resumes_to_the_same_result() {
    const PER_ROUND: usize = 40;
    const KILL_AT: [u64; 5] = [0, 2, 7, 19, 31];
    for group in [false, true] {
        let test = TestKernel::new();
        let launched = test.launch(&cluster(&[("counter", "persistence-counter")]));
        let TestKernel { kernel, dir, .. } = test;
        kernel.shutdown().unwrap();
        let mut kills = 0;
        for kill_at in KILL_AT {
            inject_resume(dir.path(), launched.root, PER_ROUND);
            kills += usize::from(run_kernel_process_until(dir.path(), group, kill_at));
        }
        // The first kill comes at the first report, before the work can be done.
        assert!(kills >= 1, "no kernel process was killed (group: {group})");
        let kernel = reopen(dir.path());
        kernel.run_until_idle(WAIT).unwrap();
        let expected = i64::try_from(1 + KILL_AT.len() * PER_ROUND).unwrap();
        assert_eq!(
            call(&kernel, launched.root, "count", vec![]),
            Ok(Value::Int(expected)),
            "group: {group}"
        );
        ocap_tests::assert_refcounts_consistent(&kernel);
    }
}

#[test]
fn a_failed_restart_leaves_the_vat_stopped_and_terminable() {
    let test = TestKernel::new();
    test.launch(&cluster(&[
        ("main", "tester"),
        ("fragile", "throw-restart"),
    ]));
    let root = test.kernel.vat_root(vat(2)).unwrap().unwrap();
    assert_eq!(
        call(&test.kernel, root, "echo", vec![Value::Int(1)]),
        Ok(Value::Int(1))
    );
    let err = test.kernel.restart_vat(vat(2)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "Failed to initialize vat v2: build function failed: from the second build"
    );
    // Stopped, not terminated: its state stays, sends find no running vat.
    assert_eq!(test.kernel.vat_ids().unwrap(), [vat(1)]);
    assert_eq!(test.kernel.vat_root(vat(2)).unwrap(), Some(root));
    let err = call(&test.kernel, root, "echo", vec![]).unwrap_err();
    assert!(err.starts_with("[KERNEL:ENDPOINT_UNREACHABLE]"), "{err}");
    // Trying again fails the same way; terminating it works.
    assert!(test.kernel.restart_vat(vat(2)).is_err());
    test.kernel.terminate_vat(vat(2), None).unwrap();
    let err = test.kernel.restart_vat(vat(2)).unwrap_err();
    assert_eq!(err.to_string(), "Vat does not exist.");
    let err = call(&test.kernel, root, "echo", vec![]).unwrap_err();
    assert!(err.starts_with("[KERNEL:OBJECT_DELETED]"), "{err}");
    test.assert_refcounts_consistent();
}

#[test]
fn messages_a_vat_sends_while_it_restarts_are_delivered() {
    let (config, logs) = super::config_with_logs();
    let test = TestKernel::with_config(config);
    let launched = test.launch(&cluster(&[
        ("announcer", "persistence-announcer"),
        ("listener", "tester"),
    ]));
    assert_eq!(decode_text(&launched.bootstrap_result), "announcer ready");
    test.kernel.restart_vat(vat(1)).unwrap();
    test.kernel.run_until_idle(WAIT).unwrap();
    assert_eq!(logs.tests_of(vat(2)), ["announcer is back"]);
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();

    let (config, logs) = super::config_with_logs();
    let kernel = ocap_kernel::Kernel::open(dir.path(), config).unwrap();
    kernel.run_until_idle(WAIT).unwrap();
    assert_eq!(logs.tests_of(vat(2)), ["announcer is back"]);
    ocap_tests::assert_refcounts_consistent(&kernel);
}

#[test]
fn a_restarted_vat_moves_to_the_end_of_the_vat_list() {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "probe"), ("b", "probe"), ("c", "probe")]));
    assert_eq!(test.kernel.vat_ids().unwrap(), [vat(1), vat(2), vat(3)]);
    test.kernel.restart_vat(vat(1)).unwrap();
    assert_eq!(test.kernel.vat_ids().unwrap(), [vat(2), vat(3), vat(1)]);
    test.assert_refcounts_consistent();
}
