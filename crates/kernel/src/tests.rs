//! Unit tests of the kernel, with vats written directly against the vat protocol (no SDK),
//! so that they test the kernel alone.

use std::time::Duration;

use ocap_types::{
    CapData, ClusterConfig, Delivery, DeliveryOutcome, KRef, Message, Resolution, Syscall, VRef,
    Value, VatConfig, VatHost, VatRuntime, VatStart,
};
use ocap_vat_manager::VatRegistry;

use crate::{Kernel, KernelConfig, KernelError};

const WAIT: Duration = Duration::from_secs(10);

/// Answers every method with `"<method> ok"`; `bootstrap` sends `hello` to the root named
/// `peer` in its first argument and resolves its result with the reply when notified.
#[derive(Default)]
struct RawVat {
    next_promise: u64,
    waiting: Option<(VRef, VRef)>,
}

impl VatRuntime for RawVat {
    fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        match delivery {
            Delivery::Message { message, .. } => {
                let Ok((method, args)) = message.method_and_args() else {
                    return DeliveryOutcome::failed("bad methargs");
                };
                let Some(result) = message.result else {
                    return DeliveryOutcome::default();
                };
                if method == "bootstrap" {
                    let Some(Value::Record(roots)) = args.first() else {
                        return DeliveryOutcome::failed("no roots");
                    };
                    let Some(Value::Slot { index, .. }) = roots.get("peer") else {
                        return DeliveryOutcome::failed("no peer");
                    };
                    let peer = message.methargs.slots[*index as usize];
                    self.next_promise += 1;
                    let answer = VRef::ExportPromise(self.next_promise);
                    host.syscall(Syscall::Send {
                        target: peer,
                        message: Message::new("hello", vec![], vec![], Some(answer)),
                    });
                    host.syscall(Syscall::Subscribe(answer));
                    self.waiting = Some((answer, result));
                } else {
                    let reply = Value::str(format!("{method} ok"));
                    host.syscall(Syscall::Resolve(vec![Resolution {
                        promise: result,
                        rejected: false,
                        data: CapData::data(&reply),
                    }]));
                }
                DeliveryOutcome::default()
            }
            Delivery::Notify(resolutions) => {
                for resolution in resolutions {
                    if let Some((answer, result)) = self.waiting
                        && resolution.promise == answer
                    {
                        let reply = resolution.data.decode().unwrap_or_default();
                        let text = Value::str(format!("peer said: {reply}"));
                        host.syscall(Syscall::Resolve(vec![Resolution {
                            promise: result,
                            rejected: resolution.rejected,
                            data: CapData::data(&text),
                        }]));
                        self.waiting = None;
                    }
                }
                DeliveryOutcome::default()
            }
            _ => DeliveryOutcome::default(),
        }
    }
}

fn registry() -> VatRegistry {
    let mut registry = VatRegistry::new();
    registry.register("raw", || Box::new(RawVat::default()));
    registry
}

fn two_vats() -> ClusterConfig {
    ClusterConfig::builder("main")
        .vat("main", VatConfig::named("raw"))
        .vat("peer", VatConfig::named("raw"))
        .build()
        .unwrap()
}

#[test]
fn bootstrap_result_comes_from_the_other_vat() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    let launched = kernel.launch_subcluster(&two_vats()).unwrap();
    assert_eq!(
        launched.bootstrap_result.decode().unwrap(),
        Value::str("peer said: hello ok")
    );
    assert_eq!(kernel.vat_ids().unwrap().len(), 2);
}

#[test]
fn message_to_object_without_owner_is_rejected_without_refs() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    let handle = kernel
        .queue_message("ko99".parse::<KRef>().unwrap(), "hello", vec![])
        .unwrap();
    let err = handle.wait(WAIT).unwrap_err();
    let KernelError::Rejected(rejection) = err else {
        panic!("expected a rejection, got {err:?}");
    };
    assert_eq!(
        rejection.message(),
        "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted"
    );
}

#[test]
fn revoked_root_rejects_later_messages() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    let launched = kernel.launch_subcluster(&two_vats()).unwrap();
    let ok = kernel.queue_message(launched.root, "ping", vec![]).unwrap();
    assert_eq!(
        ok.wait(WAIT).unwrap().decode().unwrap(),
        Value::str("ping ok")
    );
    kernel.revoke(launched.root).unwrap();
    let err = kernel
        .queue_message(launched.root, "ping", vec![])
        .unwrap()
        .wait(WAIT)
        .unwrap_err();
    assert!(
        err.to_string().starts_with("[KERNEL:OBJECT_REVOKED]"),
        "{err}"
    );
}

#[test]
fn vats_come_back_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
        kernel.launch_subcluster(&two_vats()).unwrap().root
    };
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    assert_eq!(kernel.vat_ids().unwrap().len(), 2);
    let reply = kernel.queue_message(root, "ping", vec![]).unwrap();
    assert_eq!(
        reply.wait(WAIT).unwrap().decode().unwrap(),
        Value::str("ping ok")
    );
}

#[test]
fn queue_message_returns_at_once_and_keeps_the_callers_order() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    let launched = kernel.launch_subcluster(&two_vats()).unwrap();
    let handles: Vec<_> = (0..100)
        .map(|i| {
            kernel
                .queue_message(launched.root, &format!("m{i}"), vec![])
                .unwrap()
        })
        .collect();
    let mut last = None;
    for (i, handle) in handles.iter().enumerate() {
        let promise = handle.promise().unwrap();
        assert!(
            last < Some(promise),
            "result promises follow the call order"
        );
        last = Some(promise);
        let answer = handle.wait(WAIT).unwrap().decode().unwrap();
        assert_eq!(answer, Value::str(format!("m{i} ok")));
    }
}

#[test]
fn a_message_to_a_stopped_kernel_is_the_stopped_error() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    let launched = kernel.launch_subcluster(&two_vats()).unwrap();
    let handle = kernel.queue_message(launched.root, "ping", vec![]).unwrap();
    kernel.shutdown().unwrap();
    // Queued before the stop: either answered or, if the kernel stopped first, `Stopped`;
    // never a hang.
    match handle.wait(WAIT) {
        Ok(value) => assert_eq!(value.decode().unwrap(), Value::str("ping ok")),
        Err(err) => assert!(matches!(err, KernelError::Stopped), "{err:?}"),
    }
}

/// Calls a service whose body, running on the kernel thread, does `reenter` with the kernel
/// itself, and returns the caller's error text.
fn reentrant_service_error(
    reenter: impl Fn(&Kernel, KRef) -> Result<(), KernelError> + Send + 'static,
) -> String {
    use std::sync::{Arc, OnceLock, Weak};
    let dir = tempfile::tempdir().unwrap();
    let kernel = Arc::new(Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap());
    let root = kernel.launch_subcluster(&two_vats()).unwrap().root;
    let slot: Arc<OnceLock<Weak<Kernel>>> = Arc::new(OnceLock::new());
    let inside = Arc::clone(&slot);
    let service = kernel
        .register_service("reentrant", move |_: &crate::ServiceCall| {
            let kernel = inside.get().and_then(Weak::upgrade).ok_or("no kernel")?;
            reenter(&kernel, root).map_err(|err| err.to_string())?;
            Ok(CapData::data(&Value::str("no guard")))
        })
        .unwrap();
    slot.set(Arc::downgrade(&kernel)).unwrap();
    let err = kernel
        .queue_message(service, "anything", vec![])
        .unwrap()
        .wait(WAIT)
        .unwrap_err();
    err.to_string()
}

#[test]
fn the_api_called_from_the_kernel_thread_is_an_error_not_a_deadlock() {
    // Services run on the kernel thread: this must fail fast, not wait forever.
    let text = reentrant_service_error(|kernel, _| kernel.vat_ids().map(drop));
    assert_eq!(
        text,
        "[KERNEL:DELIVERY_FAILED] the kernel API cannot be called from the kernel thread (a service or log sink)"
    );
}

#[test]
fn awaiting_a_result_on_the_kernel_thread_is_an_error_not_a_deadlock() {
    // Queuing is fine (it only sends a job); waiting here would wait for ourselves.
    let text = reentrant_service_error(|kernel, root| {
        kernel
            .queue_message(root, "ping", vec![])?
            .wait(WAIT)
            .map(drop)
    });
    assert_eq!(
        text,
        "[KERNEL:DELIVERY_FAILED] a result cannot be awaited on the kernel thread (a service or log sink)"
    );
}

#[test]
fn refused_host_input_stays_typed_on_every_path() {
    use ocap_types::MethargsError;

    use crate::InputError;
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    let root = kernel.launch_subcluster(&two_vats()).unwrap().root;
    // Refused on the caller's thread, before a job is sent.
    let mut deep = Value::Null;
    for _ in 0..200_000 {
        deep = Value::List(vec![deep]);
    }
    let err = kernel.queue_message(root, "ping", vec![deep]).unwrap_err();
    assert!(
        matches!(
            err,
            KernelError::Input(InputError::Args(MethargsError::TooDeep(_)))
        ),
        "{err:?}"
    );
    // Refused on the kernel thread, and reported through the handle, every time it is asked.
    let slot = Value::Slot {
        index: 0,
        iface: None,
    };
    let dangling: KRef = "ko777".parse().unwrap();
    let handle = kernel
        .queue_message_with_slots(root, "ping", vec![slot], vec![dangling])
        .unwrap();
    for _ in 0..2 {
        let err = handle.wait(WAIT).unwrap_err();
        assert_eq!(
            err.to_string(),
            "host message refused: ko777 does not exist"
        );
        assert!(matches!(
            err,
            KernelError::Input(InputError::Unknown { .. })
        ));
    }
    // A service answer is checked like host input: a body naming a missing slot rejects
    // the caller instead of killing the vat that receives it.
    let service = kernel
        .register_service("sloppy", |_: &crate::ServiceCall| {
            Ok(CapData::data(&Value::Slot {
                index: 3,
                iface: None,
            }))
        })
        .unwrap();
    let err = kernel
        .queue_message(service, "anything", vec![])
        .unwrap()
        .wait(WAIT)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "[KERNEL:DELIVERY_FAILED] the service answered with a malformed value"
    );
    assert_eq!(
        kernel
            .queue_message(root, "ping", vec![])
            .unwrap()
            .wait(WAIT)
            .unwrap()
            .decode()
            .unwrap(),
        Value::str("ping ok")
    );
}

mod discard;
mod errors;
mod future;

#[test]
fn vat_counters_count_deliveries_syscalls_and_denials_and_restart_at_zero() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    let launched = kernel.launch_subcluster(&two_vats()).unwrap();
    let info = kernel.subcluster(launched.subcluster).unwrap().unwrap();
    let (main, peer) = (info.vat("main").unwrap(), info.vat("peer").unwrap());
    for _ in 0..3 {
        let reply = kernel.queue_message(launched.root, "ping", vec![]).unwrap();
        reply.wait(WAIT).unwrap();
    }
    let counters = kernel.vat_counters().unwrap();
    // main: bootstrap (send + subscribe), the notify of its answer (resolve), three pings
    // (a resolve each). peer: one hello (a resolve).
    let main_counts = counters[&main];
    assert_eq!(
        (
            main_counts.deliveries,
            main_counts.syscalls,
            main_counts.denials
        ),
        (5, 6, 0)
    );
    let peer_counts = counters[&peer];
    assert_eq!(
        (
            peer_counts.deliveries,
            peer_counts.syscalls,
            peer_counts.denials
        ),
        (1, 1, 0)
    );

    // A vat allowed one syscall per delivery makes two in its bootstrap: denied, and the
    // launch fails; its counters say so.
    let mut limits = ocap_types::VatLimits::default();
    limits.syscalls_per_delivery = 1;
    let strict = ClusterConfig::builder("main")
        .vat("main", VatConfig::named("raw").with_limits(limits))
        .vat("peer", VatConfig::named("raw"))
        .build()
        .unwrap();
    assert!(kernel.launch_subcluster(&strict).is_err());
    let counters = kernel.vat_counters().unwrap();
    let denied: u64 = counters.values().map(|c| c.denials).sum();
    assert_eq!(denied, 1, "{counters:?}");
    kernel.shutdown().unwrap();

    // In memory only: a reopened kernel starts from nothing.
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    assert!(kernel.vat_counters().unwrap().is_empty());
}
