//! Unit tests of the queue crate: the cached run queue across rollbacks, one item per
//! crank, the crank buffer, and promise resolution rules.

use ocap_store::{GcAction, GcKind, KernelStore, Owner, PromiseState, Store};
use ocap_types::{
    CapData, EndpointId, ExportId, KObjectId, KPromiseId, KRef, Message, RunQueueItem, VRef, Value,
    VatId,
};

use crate::{
    COMMANDS_PER_TURN, Command, Crank, CrankHandler, CrankReport, CrankResult, KernelResolution,
    KernelState, Mode, QueueError, StoredQueue, Termination, run_crank,
};

mod collect;

fn queue() -> (tempfile::TempDir, KernelState) {
    let dir = tempfile::tempdir().unwrap();
    let store = KernelStore::new(Store::open(dir.path()).unwrap());
    (dir, KernelState::new(store).unwrap())
}

fn vat(n: u32) -> EndpointId {
    EndpointId::Vat(VatId(n))
}

fn send(target: u64, method: &str) -> (KRef, Message<KRef>) {
    (
        format!("ko{target}").parse().unwrap(),
        Message::new(method, vec![], vec![], None),
    )
}

/// Counts the entries of the stored run queue by scanning the store.
fn stored_run_queue_len(queue: &KernelState) -> u64 {
    let entries = queue.store().kv().scan_prefix(b"queue.run.").unwrap();
    entries
        .iter()
        .filter(|(k, _)| !k.ends_with(b"head") && !k.ends_with(b"tail"))
        .count() as u64
}

#[derive(Default)]
struct Scripted {
    /// What happened, in order: `crank` per delivery, `command` per command carried out.
    events: Vec<&'static str>,
    abort_first: bool,
    fail_first: bool,
    /// Fail the next crank after its item was taken (a store failure midway).
    fail_gc: bool,
    discarded: Vec<RunQueueItem>,
    delivered: Vec<RunQueueItem>,
    aborted_terminations: usize,
}

impl CrankHandler for Scripted {
    fn before_delivery(&mut self, _: &mut Crank<'_>) -> Result<(), QueueError> {
        if std::mem::take(&mut self.fail_gc) {
            return Err(QueueError::StaleCache {
                name: "injected store failure".to_owned(),
            });
        }
        Ok(())
    }
    fn deliver(
        &mut self,
        queue: &mut Crank<'_>,
        item: &RunQueueItem,
    ) -> Result<CrankResult, QueueError> {
        self.delivered.push(item.clone());
        self.events.push("crank");
        // Every delivery emits one more send, buffered.
        let (target, message) = send(500, "echo");
        queue.enqueue_send(target, message, None, Mode::Buffered)?;
        queue.store_mut().create_object(Owner::Kernel)?;
        if std::mem::take(&mut self.fail_first) {
            return Err(QueueError::StaleCache {
                name: "injected internal error".to_owned(),
            });
        }
        if std::mem::take(&mut self.abort_first) {
            return Ok(CrankResult::Failed(Termination {
                vat: VatId(1),
                info: CapData::error("boom"),
            }));
        }
        Ok(CrankResult::Delivered)
    }
    fn aborted_with_termination(&mut self, _: &RunQueueItem, _: &CapData<KRef>) {
        self.aborted_terminations += 1;
    }
    fn terminate_in_crank(&mut self, _: &mut Crank<'_>, _: Termination) -> Result<(), QueueError> {
        Ok(())
    }
    fn after_commit(&mut self, _: &KernelState, _: &[KPromiseId]) {}
    fn discarded(
        &mut self,
        _: &mut Crank<'_>,
        item: &RunQueueItem,
        _: &QueueError,
    ) -> Result<(), QueueError> {
        self.discarded.push(item.clone());
        Ok(())
    }
}

fn enqueue(state: &mut KernelState, target: u64, method: &str) {
    let mut crank = state.begin().unwrap();
    let (target, message) = send(target, method);
    crank
        .enqueue_send(target, message, None, Mode::Immediate)
        .unwrap();
    crank.commit().unwrap();
}

#[test]
fn after_an_aborted_crank_the_next_dequeue_returns_the_restored_item() {
    let (_dir, mut queue) = queue();
    enqueue(&mut queue, 1, "first");
    enqueue(&mut queue, 2, "second");
    let mut handler = Scripted {
        abort_first: true,
        ..Scripted::default()
    };
    let report = run_crank(&mut queue, &mut handler).unwrap();
    assert!(matches!(
        report,
        CrankReport::Delivered { aborted: true, .. }
    ));
    assert_eq!(handler.aborted_terminations, 1);
    // The item is back, nothing buffered survived, and the length agrees with the store.
    assert_eq!(queue.run_queue_len().unwrap(), 2);
    assert_eq!(stored_run_queue_len(&queue), 2);
    run_crank(&mut queue, &mut handler).unwrap();
    assert_eq!(
        handler.delivered[0], handler.delivered[1],
        "the restored item came next"
    );
    // The successful crank flushed its one buffered send.
    assert_eq!(queue.run_queue_len().unwrap(), 2);
    assert_eq!(stored_run_queue_len(&queue), 2);
}

#[test]
fn each_crank_delivers_exactly_one_item() {
    let (_dir, mut queue) = queue();
    enqueue(&mut queue, 1, "a");
    enqueue(&mut queue, 2, "b");
    let mut handler = Scripted::default();
    run_crank(&mut queue, &mut handler).unwrap();
    assert_eq!(handler.delivered.len(), 1);
    run_crank(&mut queue, &mut handler).unwrap();
    assert_eq!(handler.delivered.len(), 2);
}

#[test]
fn idle_crank_commits_nothing_and_reports_idle() {
    let (_dir, mut queue) = queue();
    let mut handler = Scripted::default();
    assert_eq!(
        run_crank(&mut queue, &mut handler).unwrap(),
        CrankReport::Idle
    );
    assert!(handler.delivered.is_empty());
    assert!(!queue.store().kv().in_crank());
}

/// Plain numbers through serde, as any stored type other than a run-queue item would go.
impl crate::QueueItem for i64 {
    fn encode(&self) -> Vec<u8> {
        ocap_types::cbor::to_vec(self)
    }

    fn decode(bytes: &[u8]) -> Result<Self, ocap_types::DecodeError> {
        ocap_types::cbor::from_slice(bytes)
    }
}

#[test]
fn stored_queue_refuses_a_stale_cache_until_refreshed() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = KernelStore::new(Store::open(dir.path()).unwrap());
    store.start_crank().unwrap();
    let mut q: StoredQueue<i64> = StoredQueue::open(&mut store, "q").unwrap();
    q.push(&mut store, &1).unwrap();
    let s = store.savepoint().unwrap();
    q.push(&mut store, &2).unwrap();
    assert_eq!(q.pop(&mut store).unwrap(), Some(1));
    store.rollback_to(s).unwrap();
    assert!(matches!(
        q.pop(&mut store),
        Err(QueueError::StaleCache { .. })
    ));
    assert!(matches!(q.len(&store), Err(QueueError::StaleCache { .. })));
    q.refresh(&store).unwrap();
    assert_eq!(q.len(&store).unwrap(), 1);
    assert_eq!(q.pop(&mut store).unwrap(), Some(1));
    assert_eq!(q.pop(&mut store).unwrap(), None);
    store.end_crank().unwrap();
}

#[test]
fn enqueue_send_takes_a_hold_on_target_result_and_slots() {
    let (_dir, mut state) = queue();
    let mut queue = state.begin().unwrap();
    let store = queue.store_mut();
    let target = store.create_object(Owner::Endpoint(vat(1))).unwrap();
    let slot = store.create_object(Owner::Endpoint(vat(2))).unwrap();
    let result = store.create_promise(None).unwrap();
    let message = Message::new(
        "m",
        vec![Value::Slot {
            index: 0,
            iface: None,
        }],
        vec![KRef::Object(slot)],
        Some(KRef::Promise(result)),
    );
    queue
        .enqueue_send(KRef::Object(target), message, None, Mode::Immediate)
        .unwrap();
    // New objects are held by nothing yet; a new promise by its decider baseline.
    let store = queue.store();
    assert_eq!(store.object(target).unwrap().unwrap().counts.reachable, 1);
    assert_eq!(store.object(slot).unwrap().unwrap().counts.recognizable, 1);
    assert_eq!(store.promise(result).unwrap().unwrap().refcount, 2);
    queue.commit().unwrap();
}

#[test]
fn resolution_rules_name_the_refused_resolver() {
    let (_dir, mut state) = queue();
    let mut queue = state.begin().unwrap();
    let decided = queue
        .store_mut()
        .create_promise(Some(Owner::Endpoint(vat(2))))
        .unwrap();
    let err = queue
        .resolve_promises(
            Some(Owner::Endpoint(vat(1))),
            vec![KernelResolution::fulfil(
                decided,
                CapData::data(&Value::Null),
            )],
            Mode::Immediate,
        )
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("v1 not permitted to resolve {decided} because its decider is v2")
    );
    let open = queue.store_mut().create_promise(None).unwrap();
    queue
        .resolve_promises(
            None,
            vec![KernelResolution::reject(open, CapData::error("no"))],
            Mode::Immediate,
        )
        .unwrap();
    let err = queue
        .resolve_promises(
            None,
            vec![KernelResolution::fulfil(open, CapData::data(&Value::Null))],
            Mode::Immediate,
        )
        .unwrap_err();
    assert_eq!(err.to_string(), format!("{open} was already resolved"));
    let record = queue.store().promise(open).unwrap().unwrap();
    assert!(matches!(record.state, PromiseState::Rejected(_)));
    queue.commit().unwrap();
}

#[test]
fn resolving_moves_queued_messages_after_the_notifies() {
    let (_dir, mut state) = queue();
    let mut queue = state.begin().unwrap();
    let promise = queue.store_mut().create_promise(None).unwrap();
    queue.store_mut().add_subscriber(promise, vat(10)).unwrap();
    queue.store_mut().add_subscriber(promise, vat(2)).unwrap();
    let (_, message) = send(1, "waiting");
    queue
        .store_mut()
        .promise_queue_push(promise, &message, None)
        .unwrap();
    queue
        .resolve_promises(
            None,
            vec![KernelResolution::fulfil(
                promise,
                CapData::data(&Value::Int(1)),
            )],
            Mode::Buffered,
        )
        .unwrap();
    assert_eq!(
        queue.run_queue_len().unwrap(),
        0,
        "buffered until the crank succeeds"
    );
    queue.flush_buffer().unwrap();
    let settled = queue.commit().unwrap();
    assert_eq!(settled, vec![promise]);
    let mut queue = state.begin().unwrap();
    let items: Vec<_> = std::iter::from_fn(|| queue.next_item().unwrap()).collect();
    queue.commit().unwrap();
    assert_eq!(
        items,
        vec![
            RunQueueItem::Notify {
                endpoint: vat(10),
                promise
            },
            RunQueueItem::Notify {
                endpoint: vat(2),
                promise
            },
            RunQueueItem::Send {
                target: KRef::Promise(promise),
                message,
                sender: None,
            },
        ],
        "subscribers in string order (v10 before v2), then the queued message"
    );
}

#[test]
fn a_dropped_crank_keeps_nothing_and_the_next_one_sees_the_committed_state() {
    let (_dir, mut state) = queue();
    enqueue(&mut state, 1, "kept");
    {
        let mut crank = state.begin().unwrap();
        let (target, message) = send(2, "dropped");
        crank
            .enqueue_send(target, message, None, Mode::Immediate)
            .unwrap();
        assert_eq!(crank.next_item().unwrap().map(|i| i.kind()), Some("send"));
        crank.store_mut().create_object(Owner::Kernel).unwrap();
        // Dropped without commit, as an early `?` return would.
    }
    assert!(!state.store().kv().in_crank());
    assert_eq!(state.run_queue_len().unwrap(), 1);
    assert_eq!(stored_run_queue_len(&state), 1);
    let mut crank = state.begin().unwrap();
    let Some(RunQueueItem::Send { message, .. }) = crank.next_item().unwrap() else {
        panic!("the committed send is still queued");
    };
    assert_eq!(message.method_and_args().unwrap().0, "kept");
    assert_eq!(crank.next_item().unwrap(), None);
    crank.commit().unwrap();
}

#[test]
fn a_failed_transaction_keeps_nothing_and_a_good_one_flushes_its_buffer() {
    let (_dir, mut state) = queue();
    let failed = state.transaction(|crank| -> Result<(), QueueError> {
        let (target, message) = send(1, "lost");
        crank.enqueue_send(target, message, None, Mode::Buffered)?;
        crank.enqueue_send(target, send(1, "lost too").1, None, Mode::Immediate)?;
        Err(QueueError::StaleCache {
            name: "injected".to_owned(),
        })
    });
    assert!(matches!(failed, Err(QueueError::StaleCache { .. })));
    assert_eq!(state.run_queue_len().unwrap(), 0);
    assert_eq!(stored_run_queue_len(&state), 0);
    let ((), settled) = state
        .transaction(|crank| -> Result<(), QueueError> {
            let (target, message) = send(1, "buffered");
            crank.enqueue_send(target, message, None, Mode::Buffered)
        })
        .unwrap();
    assert!(settled.is_empty());
    assert_eq!(state.run_queue_len().unwrap(), 1);
    assert_eq!(stored_run_queue_len(&state), 1);
}

#[test]
fn an_internal_error_rolls_the_delivery_back_and_consumes_the_item_once() {
    let (_dir, mut state) = queue();
    enqueue(&mut state, 1, "poisoned");
    enqueue(&mut state, 2, "next");
    let objects = |state: &KernelState| state.store().kv().scan_prefix(b"ko").unwrap().len();
    let before = objects(&state);
    let mut handler = Scripted {
        fail_first: true,
        ..Scripted::default()
    };
    let report = run_crank(&mut state, &mut handler).unwrap();
    assert!(matches!(
        report,
        CrankReport::Delivered { aborted: true, .. }
    ));
    // The handler heard of the discarded item; nothing the delivery did was kept, and
    // the item is gone, not retried.
    assert_eq!(handler.discarded, handler.delivered);
    assert_eq!(objects(&state), before);
    assert_eq!(state.run_queue_len().unwrap(), 1);
    assert_eq!(stored_run_queue_len(&state), 1);
    run_crank(&mut state, &mut handler).unwrap();
    let Some(RunQueueItem::Send { message, .. }) = handler.delivered.last() else {
        panic!("a send was delivered");
    };
    assert_eq!(message.method_and_args().unwrap().0, "next");
}

/// A command that only records that it ran; `Stop` ends the loop.
enum TestCommand {
    Note,
    Stop,
}

impl Command<Scripted> for TestCommand {
    fn run_batch(batch: Vec<Self>, handler: &mut Scripted, _: &mut KernelState) -> bool {
        for command in batch {
            match command {
                TestCommand::Note => handler.events.push("command"),
                TestCommand::Stop => return false,
            }
        }
        true
    }
}

#[test]
fn host_commands_and_cranks_take_turns() {
    let (_dir, mut state) = queue();
    // Every delivery of the scripted handler queues one more send: the run queue never
    // empties, and a loop that ran every pending command first would never crank.
    enqueue(&mut state, 1, "work");
    let n = 3 * COMMANDS_PER_TURN + 10;
    let (commands, receiver) = std::sync::mpsc::sync_channel(n + 1);
    for _ in 0..n {
        commands.send(TestCommand::Note).unwrap();
    }
    let mut handler = Scripted::default();
    // The stop command arrives once the loop has taken every note.
    let stopper = std::thread::spawn(move || commands.send(TestCommand::Stop).unwrap());
    crate::run_loop(&mut state, &mut handler, &receiver, |_, _| {}).unwrap();
    stopper.join().unwrap();
    let runs: Vec<usize> = handler
        .events
        .split(|e| *e == "crank")
        .map(<[_]>::len)
        .collect();
    assert_eq!(runs.iter().sum::<usize>(), n, "every command ran once");
    assert!(
        runs.iter().all(|run| *run <= COMMANDS_PER_TURN),
        "at most {COMMANDS_PER_TURN} commands between two cranks: {runs:?}"
    );
    assert!(
        runs.len() > 3,
        "cranks ran while commands were pending: {runs:?}"
    );
}

#[test]
fn a_crank_that_fails_midway_is_aborted_and_the_store_can_still_be_flushed() {
    let (_dir, mut state) = queue();
    enqueue(&mut state, 1, "doomed");
    let before = stored_run_queue_len(&state);
    let mut handler = Scripted {
        fail_gc: true,
        ..Scripted::default()
    };
    // The loop's error path: the crank is abandoned half-way through its steps.
    assert!(run_crank(&mut state, &mut handler).is_err());
    assert!(
        !state.store().kv().in_crank(),
        "the failed crank was left open"
    );
    // Nothing of it was kept (the item is still queued), and the final flush works.
    assert_eq!(state.run_queue_len().unwrap(), before);
    assert_eq!(stored_run_queue_len(&state), before);
    state.flush().unwrap();
}

#[test]
fn an_idle_loop_woken_by_many_commands_takes_at_most_one_turn_of_them() {
    let (_dir, mut state) = queue();
    let n = 2 * COMMANDS_PER_TURN + 10;
    let (commands, receiver) = std::sync::mpsc::sync_channel(n + 1);
    let mut handler = Scripted::default();
    let mut filled = false;
    // The first time the loop goes idle, every command arrives at once, before it blocks.
    crate::run_loop(&mut state, &mut handler, &receiver, |handler, _| {
        handler.events.push("idle");
        if !std::mem::replace(&mut filled, true) {
            for _ in 0..n {
                commands.send(TestCommand::Note).unwrap();
            }
            commands.send(TestCommand::Stop).unwrap();
        }
    })
    .unwrap();
    let runs: Vec<usize> = handler
        .events
        .split(|e| *e == "idle")
        .map(<[_]>::len)
        .collect();
    assert_eq!(
        runs,
        [0, COMMANDS_PER_TURN, COMMANDS_PER_TURN, 10],
        "one turn of commands per wake-up"
    );
}

/// An exported object with no reachable holder left, and the `dropExport` the GC planned
/// for its owner `v1`.
fn planned_drop(crank: &mut Crank<'_>, export: u64) -> Result<KObjectId, QueueError> {
    let store = crank.store_mut();
    let object = store.create_object(Owner::Endpoint(vat(1)))?;
    let vref = VRef::ExportObject(ExportId::Ephemeral(export));
    store.add_clist_entry(vat(1), KRef::Object(object), vref)?;
    store.decref_reachable(object)?;
    store.add_gc_actions(&[GcAction {
        endpoint: vat(1),
        kind: GcKind::DropExport,
        object,
    }])?;
    Ok(object)
}

#[test]
fn a_gc_action_that_is_no_longer_valid_is_dropped_not_delivered() {
    let (_dir, mut state) = queue();
    // Reachable again (a host send took a hold) before the planned drop was delivered.
    state
        .transaction(|crank| {
            let object = planned_drop(crank, 5)?;
            Ok::<_, QueueError>(crank.store_mut().incref(KRef::Object(object))?)
        })
        .unwrap();
    let mut crank = state.begin().unwrap();
    assert_eq!(crank.next_item().unwrap(), None);
    assert!(crank.store().gc_actions().unwrap().is_empty());
    // Still unreachable: the drop is delivered.
    let object = planned_drop(&mut crank, 6).unwrap();
    assert_eq!(
        crank.next_item().unwrap(),
        Some(RunQueueItem::DropExports {
            endpoint: vat(1),
            objects: vec![object],
        })
    );
}
