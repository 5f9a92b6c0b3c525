//! Unit tests of the vat manager with scripted protocol-level vats: launch, translation of
//! deliveries, syscall validation (sticky illegal marker), panics, exits, termination and
//! cleanup.

use ocap_queue::{KernelState, Mode, QueueError};
use ocap_store::{KernelStore, Owner, PromiseState, Store, VatRecord};
use ocap_types::{
    CapData, Delivery, DeliveryOutcome, EndpointId, ErrorCode, KObjectId, KRef, Message,
    Resolution, Syscall, VRef, Value, VatConfig, VatHost, VatId, VatRuntime, VatStart,
};

use crate::{VatError, VatManager, VatRegistry};

type Script = fn(&Delivery, &mut dyn VatHost) -> DeliveryOutcome;

/// A vat whose every delivery runs `script`, and which records what it was given.
struct Scripted(Script);

impl VatRuntime for Scripted {
    fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }
    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        (self.0)(&delivery, host)
    }
}

fn answer(delivery: &Delivery, host: &mut dyn VatHost, value: Value) {
    if let Delivery::Message { message, .. } = delivery {
        host.syscall(Syscall::Resolve(vec![Resolution {
            promise: message.result.unwrap(),
            rejected: false,
            data: CapData::data(&value),
        }]));
    }
}

fn setup(script: Script) -> (tempfile::TempDir, KernelState, VatManager, VatId, KObjectId) {
    let dir = tempfile::tempdir().unwrap();
    let mut queue = KernelState::new(KernelStore::new(Store::open(dir.path()).unwrap())).unwrap();
    let mut registry = VatRegistry::new();
    // Registry factories are plain functions; the script travels in a static table.
    SCRIPT.with(|s| s.set(Some(script)));
    registry.register("scripted", || {
        Box::new(Scripted(SCRIPT.with(|s| s.get().unwrap())))
    });
    let mut manager = VatManager::new(registry, None);
    let ((vat, root), _) = queue
        .transaction(|crank| -> Result<_, VatError> {
            let vat = crank.store_mut().allocate_vat_id()?;
            let record = VatRecord {
                name: "v".to_owned(),
                config: VatConfig::named("scripted"),
                subcluster: None,
                bundle_hash: None,
            };
            Ok((vat, manager.launch_vat(crank, vat, &record)?))
        })
        .unwrap();
    (dir, queue, manager, vat, root)
}

thread_local! {
    static SCRIPT: std::cell::Cell<Option<Script>> = const { std::cell::Cell::new(None) };
}

/// Queues a host send to `root` with a fresh result (one crank), then delivers it (the next).
fn send(
    state: &mut KernelState,
    manager: &mut VatManager,
    vat: VatId,
    root: KObjectId,
    slots: Vec<KRef>,
) -> (ocap_queue::CrankResult, ocap_types::KPromiseId) {
    let mut queue = state.begin().unwrap();
    let result = queue.store_mut().create_promise(None).unwrap();
    let args = slots
        .iter()
        .enumerate()
        .map(|(i, _)| Value::Slot {
            index: i as u32,
            iface: None,
        })
        .collect();
    let message = Message::new("m", args, slots, Some(KRef::Promise(result)));
    queue
        .enqueue_send(KRef::Object(root), message.clone(), None, Mode::Immediate)
        .unwrap();
    queue.commit().unwrap();
    // The delivery's own crank, as the crank loop runs it.
    let mut queue = state.begin().unwrap();
    let _ = queue.next_item().unwrap();
    let res = manager
        .deliver_send(&mut queue, vat, root, KRef::Object(root), &message, None)
        .unwrap();
    if res.is_failed() {
        queue.rollback().unwrap();
    } else {
        queue.flush_buffer().unwrap();
    }
    queue.commit().unwrap();
    (res, result)
}

#[test]
fn launch_exports_the_root_held_by_its_export_entry() {
    let (_dir, queue, manager, vat, root) = setup(|_, _| DeliveryOutcome::default());
    assert!(manager.is_running(vat));
    let store = queue.store();
    let ep = EndpointId::Vat(vat);
    assert_eq!(
        store.clist_kref(ep, VRef::ROOT).unwrap(),
        Some(KRef::Object(root))
    );
    let record = store.object(root).unwrap().unwrap();
    assert_eq!(record.owner, Some(Owner::Endpoint(ep)));
    assert_eq!(
        (record.counts.reachable, record.counts.recognizable),
        (1, 1)
    );
    assert!(store.vat(vat).unwrap().is_some());
}

#[test]
fn a_delivery_sees_only_vrefs_and_the_vat_becomes_decider() {
    fn script(delivery: &Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        let Delivery::Message { target, message } = delivery else {
            return DeliveryOutcome::failed("not a message");
        };
        assert_eq!(*target, VRef::ROOT);
        assert_eq!(message.result, Some(VRef::ImportPromise(1)));
        assert_eq!(message.methargs.slots, vec![VRef::ImportObject(1)]);
        answer(delivery, host, Value::str("ok"));
        DeliveryOutcome::default()
    }
    let (_dir, mut queue, mut manager, vat, root) = setup(script);
    let (other, _) = queue
        .transaction(|crank| -> Result<_, QueueError> {
            Ok(crank.store_mut().create_object(Owner::Kernel)?)
        })
        .unwrap();
    let (res, result) = send(
        &mut queue,
        &mut manager,
        vat,
        root,
        vec![KRef::Object(other)],
    );
    assert_eq!(res, ocap_queue::CrankResult::Delivered);
    let record = queue.store().promise(result).unwrap().unwrap();
    assert_eq!(
        record.state,
        PromiseState::Fulfilled(CapData::data(&Value::str("ok")))
    );
    // Holds taken by the send were released: the root is held by its export entry, the
    // slot by the vat's new import of it.
    let counts = |id| queue.store().object(id).unwrap().unwrap().counts;
    assert_eq!(counts(root).reachable, 1);
    assert_eq!(counts(other).reachable, 1);
}

#[test]
fn the_first_illegal_syscall_wins_and_aborts_the_delivery() {
    fn script(delivery: &Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        // A forged import, then a perfectly legal answer that must not hide it.
        host.syscall(Syscall::Send {
            target: VRef::ImportObject(42),
            message: Message::new("x", vec![], vec![], None),
        });
        answer(delivery, host, Value::Null);
        DeliveryOutcome::default()
    }
    let (_dir, mut queue, mut manager, vat, root) = setup(script);
    let (res, result) = send(&mut queue, &mut manager, vat, root, vec![]);
    assert!(res.is_failed());
    let termination = res.termination().unwrap();
    assert_eq!(termination.vat, vat);
    assert_eq!(
        termination.info.decode().unwrap(),
        Value::error(
            ErrorCode::IllegalSyscall.message("Syscall translation error: prepare to die")
        )
    );
    // The rollback undid the delivery: the result is unsettled again, decided by nobody.
    let record = queue.store().promise(result).unwrap().unwrap();
    assert_eq!(record.decider(), None);
    assert!(record.is_unresolved());
}

#[test]
fn resolving_a_promise_the_vat_does_not_decide_is_illegal() {
    fn script(_: &Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        host.syscall(Syscall::Resolve(vec![Resolution {
            promise: VRef::ImportPromise(7),
            rejected: false,
            data: CapData::data(&Value::Null),
        }]));
        DeliveryOutcome::default()
    }
    let (_dir, mut queue, mut manager, vat, root) = setup(script);
    let (res, _) = send(&mut queue, &mut manager, vat, root, vec![]);
    assert!(matches!(res, ocap_queue::CrankResult::Failed(_)));
}

#[test]
fn a_panicking_vat_reports_a_delivery_error() {
    fn script(_: &Delivery, _: &mut dyn VatHost) -> DeliveryOutcome {
        panic!("scripted panic")
    }
    let (_dir, mut queue, mut manager, vat, root) = setup(script);
    let (res, _) = send(&mut queue, &mut manager, vat, root, vec![]);
    assert!(res.is_failed());
    let info = res.termination().unwrap().info.decode().unwrap();
    assert_eq!(
        info,
        Value::error("[KERNEL:VAT_FATAL:INTERNAL_ERROR] vat panicked: scripted panic")
    );
}

#[test]
fn a_clean_exit_keeps_the_delivery_and_a_failing_one_aborts_it() {
    fn clean(delivery: &Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        answer(delivery, host, Value::Int(1));
        host.syscall(Syscall::Exit {
            failure: false,
            info: CapData::error("bye"),
        });
        DeliveryOutcome::default()
    }
    fn failing(delivery: &Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        answer(delivery, host, Value::Int(1));
        host.syscall(Syscall::Exit {
            failure: true,
            info: CapData::error("bye"),
        });
        DeliveryOutcome::default()
    }
    let (_dir, mut queue, mut manager, vat, root) = setup(clean);
    let (res, result) = send(&mut queue, &mut manager, vat, root, vec![]);
    assert!(matches!(res, ocap_queue::CrankResult::Exited(_)));
    assert!(
        !queue
            .store()
            .promise(result)
            .unwrap()
            .unwrap()
            .is_unresolved()
    );
    let (_dir, mut queue, mut manager, vat, root) = setup(failing);
    let (res, result) = send(&mut queue, &mut manager, vat, root, vec![]);
    assert!(matches!(res, ocap_queue::CrankResult::Failed(_)));
    assert!(
        queue
            .store()
            .promise(result)
            .unwrap()
            .unwrap()
            .is_unresolved()
    );
}

#[test]
fn termination_rejects_decided_promises_and_cleanup_orphans_exports() {
    fn script(_: &Delivery, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default() // never answers: the vat stays decider
    }
    let (_dir, mut queue, mut manager, vat, root) = setup(script);
    let (_, result) = send(&mut queue, &mut manager, vat, root, vec![]);
    let ((), settled) = queue
        .transaction(|crank| manager.terminate(crank, vat, Some(CapData::error("enough"))))
        .unwrap();
    assert_eq!(settled, vec![result]);
    let record = queue.store().promise(result).unwrap().unwrap();
    assert_eq!(
        record.state,
        PromiseState::Rejected(CapData::error(
            "[KERNEL:VAT_TERMINATED] Vat termination: enough"
        ))
    );
    assert!(!manager.is_running(vat));
    assert!(queue.store().vat(vat).unwrap().is_none());
    assert_eq!(
        queue.store().terminated_vats().unwrap(),
        vec![EndpointId::Vat(vat)]
    );
    let mut crank = queue.begin().unwrap();
    crank.cleanup_next_terminated().unwrap().unwrap();
    crank.commit().unwrap();
    assert_eq!(queue.store().object(root).unwrap().unwrap().owner, None);
    assert!(
        queue
            .store()
            .clist_entries(EndpointId::Vat(vat))
            .unwrap()
            .is_empty()
    );
    assert!(queue.store().terminated_vats().unwrap().is_empty());
    assert!(matches!(
        queue.transaction(|crank| manager.terminate(crank, vat, None)),
        Err(VatError::NoSuchVat(_))
    ));
}

#[test]
fn a_send_to_a_vat_without_a_worker_is_the_no_such_endpoint_error() {
    let (_dir, mut queue, mut manager, vat, root) = setup(|_, _| DeliveryOutcome::default());
    manager.forget(vat);
    let mut crank = queue.begin().unwrap();
    let message = Message::new("m", vec![], vec![], None);
    let err = manager
        .deliver_send(&mut crank, vat, root, KRef::Object(root), &message, None)
        .unwrap_err();
    assert!(matches!(err, VatError::NoSuchVat(v) if v == vat));
    crank.commit().unwrap();
}

#[test]
fn malformed_messages_and_values_are_the_senders_illegal_syscall() {
    fn garbage_send(_: &Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        host.syscall(Syscall::Send {
            target: VRef::ROOT,
            message: Message {
                methargs: CapData {
                    body: vec![0xff, 0x00],
                    slots: vec![],
                },
                result: None,
            },
        });
        DeliveryOutcome::default()
    }
    fn missing_slot(delivery: &Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        if let Delivery::Message { message, .. } = delivery {
            host.syscall(Syscall::Resolve(vec![Resolution {
                promise: message.result.unwrap(),
                rejected: false,
                data: CapData::data(&Value::Slot {
                    index: 3,
                    iface: None,
                }),
            }]));
        }
        DeliveryOutcome::default()
    }
    fn not_methargs(_: &Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        host.syscall(Syscall::Send {
            target: VRef::ROOT,
            message: Message {
                methargs: CapData::data(&Value::Int(7)),
                result: None,
            },
        });
        DeliveryOutcome::default()
    }
    for script in [garbage_send as Script, missing_slot, not_methargs] {
        let (_dir, mut queue, mut manager, vat, root) = setup(script);
        let (res, _) = send(&mut queue, &mut manager, vat, root, vec![]);
        assert!(res.is_failed(), "the crank is rolled back");
        let info = res.termination().unwrap().info.decode().unwrap();
        assert_eq!(
            info,
            Value::error(
                "[KERNEL:VAT_FATAL:ILLEGAL_SYSCALL] Syscall translation error: prepare to die"
            )
        );
        // Only the rolled-back delivery itself is back in the run queue; nothing it sent.
        assert_eq!(queue.run_queue_len().unwrap(), 1);
    }
}

/// The kernel's own inconsistency met while carrying out a syscall (here the vat's c-list
/// names a promise whose record is gone) is a failure inside the kernel: the delivery
/// returns the error for the crank loop to discard, and the vat is neither blamed nor
/// terminated.
#[test]
fn a_kernel_side_failure_during_a_syscall_does_not_terminate_the_vat() {
    let (_dir, mut state, mut manager, vat, root) = setup(|_, host| {
        host.syscall(Syscall::Resolve(vec![Resolution {
            promise: VRef::ImportPromise(50),
            rejected: false,
            data: CapData::data(&Value::Int(1)),
        }]));
        DeliveryOutcome::default()
    });
    let ep = EndpointId::Vat(vat);
    let missing = ocap_types::KPromiseId(99);
    state
        .transaction(|crank| -> Result<(), QueueError> {
            let store = crank.store_mut();
            Ok(store.add_clist_entry(ep, KRef::Promise(missing), VRef::ImportPromise(50))?)
        })
        .unwrap();
    let mut crank = state.begin().unwrap();
    let message = Message::new("m", vec![], vec![], None);
    let res = manager.deliver_send(&mut crank, vat, root, KRef::Object(root), &message, None);
    assert!(
        matches!(
            res,
            Err(VatError::Queue(QueueError::Resolve(
                ocap_queue::ResolveError::Unknown(p)
            ))) if p == missing
        ),
        "{res:?}"
    );
    crank.abort().unwrap();
    assert!(manager.is_running(vat), "the vat was not blamed");
    assert!(state.store().vat(vat).unwrap().is_some());
}

/// A vat whose start subscribes to its import `p-5`.
struct SubscribesAtStart;

impl VatRuntime for SubscribesAtStart {
    fn start(&mut self, _: VatStart, host: &mut dyn VatHost) -> DeliveryOutcome {
        host.syscall(Syscall::Subscribe(VRef::ImportPromise(5)));
        DeliveryOutcome::default()
    }
    fn deliver(&mut self, _: Delivery, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }
}

/// A store failure while a vat is launched is the store's, surfaced once as
/// [`VatError::Store`]: not wrapped in [`VatError::Launch`] as if the vat had failed to
/// start, nor in [`VatError::Queue`].
#[test]
fn a_store_failure_during_a_launch_is_the_store_error_not_a_launch_failure() {
    let dir = tempfile::tempdir().unwrap();
    let mut state = KernelState::new(KernelStore::new(Store::open(dir.path()).unwrap())).unwrap();
    let mut registry = VatRegistry::new();
    registry.register("subscriber", || Box::new(SubscribesAtStart));
    let mut manager = VatManager::new(registry, None);
    let err = state
        .transaction(|crank| -> Result<_, VatError> {
            let vat = crank.store_mut().allocate_vat_id()?;
            // The c-list entry the vat's start will name is damaged on disk.
            let key = format!("{}.c.{}", EndpointId::Vat(vat), VRef::ImportPromise(5));
            crank.store_mut().kv_mut().set(key.as_bytes(), b"damaged")?;
            let record = VatRecord {
                name: "v".to_owned(),
                config: VatConfig::named("subscriber"),
                subcluster: None,
                bundle_hash: None,
            };
            manager.launch_vat(crank, vat, &record)
        })
        .unwrap_err();
    assert!(
        matches!(err, VatError::Store(ocap_store::StoreError::Corrupt { .. })),
        "{err:?}"
    );
}
