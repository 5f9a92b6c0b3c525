//! The per-vat executor: a single-threaded, run-until-stalled task queue. The runtime polls it
//! at the end of every delivery until no task can make progress; a task waiting on a kernel
//! promise stays parked until a later `notify` wakes it.
//!
//! Invariant: no `RefCell` of the executor is borrowed while a task is being polled, so vat
//! code may spawn tasks and wake others from inside a poll.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::task::{Context, Poll, Wake, Waker};

/// A future the executor owns.
pub(crate) type LocalFuture<T> = Pin<Box<dyn Future<Output = T>>>;

struct Task {
    future: LocalFuture<()>,
    waker: Arc<TaskWaker>,
}

/// Wakes a task by queueing its id. `Waker` must be `Send + Sync`, so the ready queue is an
/// mpsc channel (FIFO, no lock) rather than an `Rc`: wake order is replay order.
struct TaskWaker {
    task_id: u64,
    queued: AtomicBool,
    ready: mpsc::Sender<u64>,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::SeqCst) {
            // The receiver lives as long as the executor; a send after it is gone has
            // nobody to wake.
            let _ = self.ready.send(self.task_id);
        }
    }
}

pub(crate) struct Executor {
    tasks: RefCell<BTreeMap<u64, Task>>,
    next_task_id: Cell<u64>,
    ready_tx: mpsc::Sender<u64>,
    ready_rx: mpsc::Receiver<u64>,
}

impl Executor {
    pub(crate) fn new() -> Self {
        let (ready_tx, ready_rx) = mpsc::channel();
        Executor {
            tasks: RefCell::new(BTreeMap::new()),
            next_task_id: Cell::new(1),
            ready_tx,
            ready_rx,
        }
    }

    /// Queues `future` to run at the next step; it does not run now.
    pub(crate) fn spawn(&self, future: impl Future<Output = ()> + 'static) {
        let task_id = self.next_task_id.get();
        self.next_task_id.set(task_id + 1);
        let waker = Arc::new(TaskWaker {
            task_id,
            queued: AtomicBool::new(false),
            ready: self.ready_tx.clone(),
        });
        self.tasks.borrow_mut().insert(
            task_id,
            Task {
                future: Box::pin(future),
                waker: Arc::clone(&waker),
            },
        );
        waker.wake_by_ref();
    }

    /// Polls ready tasks in wake order until none is ready, calling `after_step` after each
    /// poll (the runtime flushes syscalls there, so they keep their emission order).
    pub(crate) fn run_until_stalled(&self, mut after_step: impl FnMut()) {
        while let Ok(task_id) = self.ready_rx.try_recv() {
            // Take the task out: its poll may spawn or wake tasks, which borrows the map.
            let Some(mut task) = self.tasks.borrow_mut().remove(&task_id) else {
                continue;
            };
            task.waker.queued.store(false, Ordering::SeqCst);
            let waker = Waker::from(Arc::clone(&task.waker));
            let mut cx = Context::from_waker(&waker);
            if task.future.as_mut().poll(&mut cx) == Poll::Pending {
                self.tasks.borrow_mut().insert(task_id, task);
            }
            after_step();
        }
    }

    /// Tasks that exist but are waiting.
    #[cfg(test)]
    pub(crate) fn n_parked(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Drops every task (their futures may hold handles into the vat).
    pub(crate) fn clear(&self) {
        let tasks = std::mem::take(&mut *self.tasks.borrow_mut());
        drop(tasks);
    }
}
