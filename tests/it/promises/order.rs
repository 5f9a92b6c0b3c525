//! Property: messages one vat sends through a promise reach the object it resolves to in the
//! order they were sent, and exactly once, however sends and resolutions interleave (spec
//! §5.4, §5.5, §8.1, §8.6, D11).
//!
//! The driver vat sends `log("d<i>:<seq>")` to its pending promises `P0..Pn` (a resolved
//! one's vref is retired, so it no longer names it) and resolves each
//! either to the target vat's root or to another pending promise, in random batches (one
//! delivery each), with or without waiting for the kernel in between; the host sends
//! `log("h<i>:<seq>")` to the same promises between batches. At the end every pending
//! promise is resolved to the target. The target's test log must then hold every message
//! once, and the messages of each sender through each `Pi` in sending order.

use std::collections::{BTreeMap, BTreeSet};

use ocap_store::Durability;
use proptest::prelude::*;

use ocap_types::Value;

use ocap_tests::driver::{p, resolve, send, vat};

use super::{Logged, cluster_with};

#[derive(Debug, Clone)]
enum Step {
    /// The driver sends the next message to `Pi`.
    Send(usize),
    /// The host sends the next message to `Pi` (right after queueing the batch).
    HostSend(usize),
    /// Resolve `Pi` (if pending) to the target.
    ToTarget(usize),
    /// Resolve `Pi` (if pending) to another pending promise, chosen by the number.
    ToPromise(usize, usize),
}

fn step(n_promises: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..n_promises).prop_map(Step::Send),
        1 => (0..n_promises).prop_map(Step::HostSend),
        1 => (0..n_promises).prop_map(Step::ToTarget),
        1 => (0..n_promises, any::<usize>()).prop_map(|(i, j)| Step::ToPromise(i, j)),
    ]
}

/// Batches of steps, each with whether to wait for the kernel to be idle after it.
fn batches() -> impl Strategy<Value = (usize, Vec<(Vec<Step>, bool)>)> {
    (1..=4_usize).prop_flat_map(|n_promises| {
        let batch = (prop::collection::vec(step(n_promises), 1..6), any::<bool>());
        (Just(n_promises), prop::collection::vec(batch, 1..8))
    })
}

/// Turns steps into the driver's ops and the host's sends, keeping track of what is pending
/// and what was sent.
#[derive(Debug, Default)]
struct Model {
    pending: BTreeSet<usize>,
    /// `(sender, i, seq)` of every message, in sending order.
    sent: Vec<(char, usize, usize)>,
}

impl Model {
    /// The driver's ops for `steps`, and the `(i, text)` of the host's sends.
    fn ops(&mut self, steps: &[Step]) -> (Vec<Value>, Vec<(usize, String)>) {
        let mut ops = Vec::new();
        let mut host = Vec::new();
        for step in steps {
            match *step {
                // A vat names only promises it has not resolved: resolving one retires
                // its vref (SwingSet's rule), and the same vref later is a new promise.
                Step::Send(i) if self.pending.contains(&i) => {
                    let text = self.text('d', i);
                    ops.push(send(p(i), "log", vec![Value::str(text)]));
                }
                Step::Send(_) => {}
                Step::HostSend(i) => host.push((i, self.text('h', i))),
                Step::ToTarget(i) => {
                    if self.pending.remove(&i) {
                        ops.push(resolve(vec![(p(i), false, vat("target"))]));
                    }
                }
                Step::ToPromise(i, pick) => {
                    let others: Vec<usize> =
                        self.pending.iter().copied().filter(|j| *j != i).collect();
                    if self.pending.contains(&i) && !others.is_empty() {
                        let j = others[pick % others.len()];
                        self.pending.remove(&i);
                        ops.push(resolve(vec![(p(i), false, p(j))]));
                    }
                }
            }
        }
        (ops, host)
    }

    fn text(&mut self, sender: char, i: usize) -> String {
        let seq = self.sent.len();
        self.sent.push((sender, i, seq));
        format!("{sender}{i}:{seq}")
    }
}

fn run_case(n_promises: usize, batches: &[(Vec<Step>, bool)]) -> Result<(), TestCaseError> {
    let mut config = ocap_tests::config();
    config.durability = Durability::GROUP;
    let logged = Logged::open(tempfile::tempdir().unwrap(), config);
    let launched = logged
        .kernel
        .launch_subcluster(&cluster_with(&[
            ("driver", "driver", Value::Null),
            ("target", "tester", Value::Null),
        ]))
        .unwrap();
    let target_vat = logged.kernel.vat_ids().unwrap()[1];
    // The host learns P0..Pn (the driver exports them).
    let promises = logged
        .kernel
        .queue_message(
            launched.root,
            "promises",
            vec![Value::Int(i64::try_from(n_promises).unwrap())],
        )
        .unwrap()
        .wait(ocap_tests::WAIT)
        .unwrap()
        .slots;
    let mut model = Model {
        pending: (0..n_promises).collect(),
        sent: Vec::new(),
    };
    let run = |(ops, host): (Vec<Value>, Vec<(usize, String)>)| {
        let handle = logged
            .kernel
            .queue_message(launched.root, "script", vec![Value::List(ops)])
            .unwrap();
        for (i, text) in host {
            let args = vec![Value::str(text)];
            drop(
                logged
                    .kernel
                    .queue_message(promises[i], "log", args)
                    .unwrap(),
            );
        }
        handle
    };
    for (steps, wait) in batches {
        let handle = run(model.ops(steps));
        if *wait {
            handle.wait(ocap_tests::WAIT).unwrap();
            logged.idle();
        }
    }
    let rest: Vec<Step> = model
        .pending
        .clone()
        .into_iter()
        .map(Step::ToTarget)
        .collect();
    run(model.ops(&rest));
    logged.idle();

    let mut received: BTreeMap<(char, usize), Vec<usize>> = BTreeMap::new();
    let logs = logged.test_logs(target_vat);
    for line in &logs {
        let mut chars = line.chars();
        let sender = chars.next().expect("a sender");
        let (i, seq) = chars.as_str().split_once(':').expect("<sender><i>:<seq>");
        received
            .entry((sender, i.parse().unwrap()))
            .or_default()
            .push(seq.parse().unwrap());
    }
    let mut expected: BTreeMap<(char, usize), Vec<usize>> = BTreeMap::new();
    for (sender, i, seq) in &model.sent {
        expected.entry((*sender, *i)).or_default().push(*seq);
    }
    // Sequence numbers grow in sending order, so per sender and promise the expected order
    // is ascending.
    prop_assert_eq!(received, expected, "target log {:?}", logs);
    let audit = logged.kernel.inspect(|s| s.check()).unwrap().unwrap();
    prop_assert!(audit.is_empty(), "refcount audit:\n{}", audit);
    Ok(())
}

fn cases() -> u32 {
    if std::env::var_os("OCAP_SLOW_TESTS").is_some() {
        1024
    } else {
        64
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn messages_through_a_promise_arrive_in_sending_order((n_promises, batches) in batches()) {
        run_case(n_promises, &batches)?;
    }
}
