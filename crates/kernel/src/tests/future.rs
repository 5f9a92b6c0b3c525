//! `ResultHandle` as a `Future`, driven by a hand-written executor (park the thread until a
//! waker unparks it): results, rejections and refusals arrive through the waker, with no
//! async runtime.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

use ocap_types::{KRef, Value};

use super::{registry, two_vats};
use crate::oneshot::{self, RecvError};
use crate::{InputError, Kernel, KernelConfig, KernelError};

/// Unparks the thread blocked in [`block_on`], and counts how often it was woken.
struct ThreadWaker {
    thread: Thread,
    wakes: AtomicUsize,
}

impl Wake for ThreadWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
        self.thread.unpark();
    }
}

/// Polls `future` on this thread, parking between polls until its waker is woken.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = Waker::from(Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    }));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake-up that came before the park makes it return at once: none is lost.
        thread::park();
    }
}

fn open() -> (tempfile::TempDir, Kernel) {
    let dir = tempfile::tempdir().unwrap();
    let kernel = Kernel::open(dir.path(), KernelConfig::new(registry())).unwrap();
    (dir, kernel)
}

#[test]
fn an_awaited_handle_gives_the_result() {
    let (_dir, kernel) = open();
    let root = kernel.launch_subcluster(&two_vats()).unwrap().root;
    let handle = kernel.queue_message(root, "ping", vec![]).unwrap();
    let result = block_on(handle).unwrap();
    assert_eq!(result.decode().unwrap(), Value::str("ping ok"));
    // Many handles awaited in one task, in order.
    let handles: Vec<_> = (0..20)
        .map(|i| {
            kernel
                .queue_message(root, &format!("m{i}"), vec![])
                .unwrap()
        })
        .collect();
    let answers = block_on(async {
        let mut answers = Vec::new();
        for handle in handles {
            answers.push(handle.await?.decode().unwrap());
        }
        Ok::<_, KernelError>(answers)
    })
    .unwrap();
    let expected: Vec<_> = (0..20).map(|i| Value::str(format!("m{i} ok"))).collect();
    assert_eq!(answers, expected);
}

#[test]
fn an_awaited_rejection_is_the_rejected_error() {
    let (_dir, kernel) = open();
    let handle = kernel
        .queue_message("ko99".parse::<KRef>().unwrap(), "hello", vec![])
        .unwrap();
    let err = block_on(handle).unwrap_err();
    let KernelError::Rejected(rejection) = err else {
        panic!("expected a rejection, got {err:?}");
    };
    assert_eq!(
        rejection.message(),
        "[KERNEL:OBJECT_DELETED] Target object has no owner; it may have been deleted"
    );
}

#[test]
fn an_awaited_refused_message_is_the_input_error() {
    let (_dir, kernel) = open();
    let root = kernel.launch_subcluster(&two_vats()).unwrap().root;
    let slot = Value::Slot {
        index: 0,
        iface: None,
    };
    let dangling: KRef = "ko777".parse().unwrap();
    let handle = kernel
        .queue_message_with_slots(root, "ping", vec![slot], vec![dangling])
        .unwrap();
    let err = block_on(handle).unwrap_err();
    assert!(
        matches!(err, KernelError::Input(InputError::Unknown { kref }) if kref == dangling),
        "{err:?}"
    );
}

#[test]
fn an_awaited_handle_of_a_stopped_kernel_ends() {
    let (_dir, kernel) = open();
    let root = kernel.launch_subcluster(&two_vats()).unwrap().root;
    let handle = kernel.queue_message(root, "ping", vec![]).unwrap();
    kernel.shutdown().unwrap();
    // Either answered before the stop or told that the kernel stopped; never a hang.
    match block_on(handle) {
        Ok(value) => assert_eq!(value.decode().unwrap(), Value::str("ping ok")),
        Err(err) => assert!(matches!(err, KernelError::Stopped), "{err:?}"),
    }
}

#[test]
fn a_slot_wakes_its_poller_when_filled_and_when_closed_empty() {
    let waker = Arc::new(ThreadWaker {
        thread: thread::current(),
        wakes: AtomicUsize::new(0),
    });
    let as_waker = Waker::from(Arc::clone(&waker));
    let mut cx = Context::from_waker(&as_waker);

    let (sender, receiver) = oneshot::channel::<u32>();
    assert_eq!(receiver.poll_recv(&mut cx), Poll::Pending);
    assert_eq!(receiver.poll_recv(&mut cx), Poll::Pending);
    thread::spawn(move || sender.send(7))
        .join()
        .unwrap()
        .unwrap();
    assert_eq!(waker.wakes.load(Ordering::SeqCst), 1, "woken once");
    assert_eq!(receiver.poll_recv(&mut cx), Poll::Ready(Ok(7)));
    assert_eq!(
        receiver.try_recv(),
        Err(RecvError::Closed),
        "handed over once"
    );

    let (sender, receiver) = oneshot::channel::<u32>();
    assert_eq!(receiver.poll_recv(&mut cx), Poll::Pending);
    thread::spawn(move || drop(sender)).join().unwrap();
    assert_eq!(waker.wakes.load(Ordering::SeqCst), 2);
    assert_eq!(
        receiver.poll_recv(&mut cx),
        Poll::Ready(Err(RecvError::Closed))
    );

    // Nobody waits any more: the value comes back, as from a disconnected `mpsc` channel.
    let (sender, receiver) = oneshot::channel::<u32>();
    drop(receiver);
    assert_eq!(sender.send(7), Err(7));
}
