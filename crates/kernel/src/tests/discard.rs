//! The internal-error path of a crank (spec §7.11, D7): a delivery that fails inside the
//! kernel after the vat ran is rolled back and its item consumed; whoever waits on the
//! result is told, and the vat, whose memory had moved on, is reloaded from the store.

use ocap_queue::{
    Crank, CrankHandler, CrankReport, CrankResult, KernelState, Mode, QueueError, Termination,
    run_crank,
};
use ocap_store::{KernelStore, PromiseState, Store};
use ocap_types::{
    ByteBuf, CapData, Checkpoint, ClusterConfig, Delivery, DeliveryOutcome, EndpointId, KPromiseId,
    KRef, Resolution, RunQueueItem, Syscall, Value, VatConfig, VatHost, VatRuntime, VatStart,
};
use ocap_vat_manager::{VatManager, VatRegistry};

use crate::core::Core;
use crate::handle::Settlement;
use crate::oneshot;
use crate::subcluster::{launch, queue_host_message};

/// `count()` adds one to a counter kept in memory and in its vat store, and answers it;
/// `since_start()` answers how many messages this incarnation has had (memory only, so a
/// restart shows as a reset).
#[derive(Default)]
struct Counter(i64, i64);

impl VatRuntime for Counter {
    fn start(&mut self, start: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        if let Some((_, bytes)) = start.state.iter().find(|(k, _)| k == "count") {
            self.0 = Value::from_cbor(&bytes.0).unwrap().as_int().unwrap();
        }
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        let Delivery::Message { message, .. } = delivery else {
            return DeliveryOutcome::default();
        };
        self.1 += 1;
        if message
            .method_and_args()
            .is_ok_and(|(m, _)| m == "since_start")
        {
            if let Some(result) = message.result {
                host.syscall(Syscall::Resolve(vec![Resolution {
                    promise: result,
                    rejected: false,
                    data: CapData::data(&Value::Int(self.1)),
                }]));
            }
            return DeliveryOutcome::default();
        }
        self.0 += 1;
        if let Some(result) = message.result {
            host.syscall(Syscall::Resolve(vec![Resolution {
                promise: result,
                rejected: false,
                data: CapData::data(&Value::Int(self.0)),
            }]));
        }
        DeliveryOutcome {
            checkpoint: Checkpoint {
                sets: vec![("count".to_owned(), ByteBuf(Value::Int(self.0).to_cbor()))],
                deletes: Vec::new(),
            },
            error: None,
        }
    }
}

/// The kernel's handler, except that the next delivery fails inside the kernel after the
/// vat ran, when `fail_next` says so.
struct Faulty {
    core: Core,
    fail_next: bool,
}

impl CrankHandler for Faulty {
    fn before_delivery(&mut self, crank: &mut Crank<'_>) -> Result<(), QueueError> {
        self.core.before_delivery(crank)
    }
    fn deliver(
        &mut self,
        crank: &mut Crank<'_>,
        item: &RunQueueItem,
    ) -> Result<CrankResult, QueueError> {
        let result = self.core.deliver(crank, item)?;
        if std::mem::take(&mut self.fail_next) {
            return Err(QueueError::StaleCache {
                name: "injected".to_owned(),
            });
        }
        Ok(result)
    }
    fn aborted_with_termination(&mut self, item: &RunQueueItem, info: &CapData<KRef>) {
        self.core.aborted_with_termination(item, info);
    }
    fn terminate_in_crank(
        &mut self,
        crank: &mut Crank<'_>,
        termination: Termination,
    ) -> Result<(), QueueError> {
        self.core.terminate_in_crank(crank, termination)
    }
    fn after_commit(&mut self, state: &KernelState, settled: &[KPromiseId]) {
        self.core.after_commit(state, settled);
    }
    fn discarded(
        &mut self,
        crank: &mut Crank<'_>,
        item: &RunQueueItem,
        error: &QueueError,
    ) -> Result<(), QueueError> {
        self.core.discarded(crank, item, error)
    }
}

fn run_until_idle(state: &mut KernelState, handler: &mut Faulty) {
    for _ in 0..1000 {
        if run_crank(state, handler).unwrap() == CrankReport::Idle {
            return;
        }
    }
    panic!("the kernel never went idle");
}

/// Queues `count()` to `root` from the host; the result promise and where it is told.
fn count(
    state: &mut KernelState,
    handler: &mut Faulty,
    root: KRef,
) -> (KPromiseId, oneshot::Receiver<Settlement>) {
    send(state, handler, root, "count")
}

/// Queues `method()` to `target` from the host; the result promise and where it is told.
fn send(
    state: &mut KernelState,
    handler: &mut Faulty,
    target: KRef,
    method: &str,
) -> (KPromiseId, oneshot::Receiver<Settlement>) {
    let (tx, rx) = oneshot::channel();
    let (promise, _) = state
        .transaction(|crank| {
            queue_host_message(&mut handler.core, crank, target, method, vec![], vec![], tx)
        })
        .unwrap();
    (promise, rx)
}

/// A kernel with one counter vat, launched and idle: its store, state, handler and root.
fn counter_kernel() -> (tempfile::TempDir, KernelState, Faulty, KRef) {
    let dir = tempfile::tempdir().unwrap();
    let mut state = KernelState::new(KernelStore::new(Store::open(dir.path()).unwrap())).unwrap();
    let mut registry = VatRegistry::new();
    registry.register("counter", || Box::new(Counter::default()));
    let mut handler = Faulty {
        core: Core::new(VatManager::new(registry, None)),
        fail_next: false,
    };
    let config = ClusterConfig::builder("counter")
        .vat("counter", VatConfig::named("counter"))
        .build()
        .unwrap();
    let launched = launch(&mut handler.core, &mut state, &config).unwrap();
    run_until_idle(&mut state, &mut handler);
    let root = KRef::Object(launched.root);
    (dir, state, handler, root)
}

#[test]
fn a_delivery_that_fails_in_the_kernel_rejects_its_result_and_reloads_the_vat() {
    let (_dir, mut state, mut handler, root) = counter_kernel();
    let vat = handler.core.vats.running().next().unwrap();
    // Bootstrap counted once.
    let stored = |state: &KernelState| state.store().vatstore_get(vat, "count").unwrap();
    assert_eq!(stored(&state), Some(Value::Int(1).to_cbor()));

    handler.fail_next = true;
    let (promise, told) = count(&mut state, &mut handler, root);
    run_until_idle(&mut state, &mut handler);
    // The waiter is told, with a fixed text; the store shows the rejection too, so a vat
    // subscribed to the result would have been notified.
    let rejection = told.try_recv().unwrap().unwrap_err().decode().unwrap();
    let Value::Error { message, .. } = rejection else {
        panic!("an error value");
    };
    assert_eq!(
        message,
        "[KERNEL:VAT_FATAL:INTERNAL_ERROR] delivery failed inside the kernel (internal)"
    );
    let record = state.store().promise(promise).unwrap();
    assert!(matches!(
        record.map(|r| r.state),
        None | Some(PromiseState::Rejected(_))
    ));
    // Nothing of the failed delivery is in the store, and the vat was reloaded from it:
    // its next answer continues from the stored count, not from its lost memory.
    assert_eq!(stored(&state), Some(Value::Int(1).to_cbor()));
    let (_, told) = count(&mut state, &mut handler, root);
    run_until_idle(&mut state, &mut handler);
    assert_eq!(
        told.try_recv().unwrap().unwrap().decode().unwrap(),
        Value::Int(2)
    );
    assert!(handler.core.vats.is_running(vat));
}

/// Only a vat that ran in the failed crank is reloaded: the marker of which vat ran is
/// cleared at the start of every crank, so a failure in a crank where no vat ran (here a
/// send to an object nobody owns) leaves an earlier crank's vat, and its memory, alone.
#[test]
fn a_failure_in_a_crank_where_no_vat_ran_reloads_no_vat() {
    let (_dir, mut state, mut handler, root) = counter_kernel();
    // The counter ran in the last crank (bootstrap, then this count).
    let (_, told) = count(&mut state, &mut handler, root);
    run_until_idle(&mut state, &mut handler);
    assert!(told.try_recv().unwrap().is_ok());

    handler.fail_next = true;
    let nobody: KRef = "ko999".parse().unwrap();
    let (_, told) = send(&mut state, &mut handler, nobody, "anything");
    run_until_idle(&mut state, &mut handler);
    assert!(told.try_recv().unwrap().is_err());
    // Not reloaded: this incarnation has now had bootstrap, count and this call.
    let (_, told) = send(&mut state, &mut handler, root, "since_start");
    run_until_idle(&mut state, &mut handler);
    assert_eq!(
        told.try_recv().unwrap().unwrap().decode().unwrap(),
        Value::Int(3)
    );
}

/// A notify whose delivery fails inside the kernel is consumed like a send: its hold on the
/// promise goes with it, so the refcount audit finds nothing held by an item that is gone.
#[test]
fn a_notify_that_fails_in_the_kernel_releases_its_hold_on_the_promise() {
    let (_dir, mut state, mut handler, root) = counter_kernel();
    let vat = handler.core.vats.running().next().unwrap();
    let (promise, told) = count(&mut state, &mut handler, root);
    run_until_idle(&mut state, &mut handler);
    assert!(told.try_recv().unwrap().is_ok());
    assert!(state.store().check().unwrap().is_empty());

    state
        .transaction(|crank| crank.enqueue_notify(EndpointId::Vat(vat), promise, Mode::Immediate))
        .unwrap();
    handler.fail_next = true;
    run_until_idle(&mut state, &mut handler);
    assert!(!handler.fail_next, "the notify's delivery failed");
    assert_eq!(state.run_queue_len().unwrap(), 0);
    let report = state.store().check().unwrap();
    assert!(report.is_empty(), "{report}");
}
