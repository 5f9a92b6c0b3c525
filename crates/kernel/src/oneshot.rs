//! A one-value channel from the kernel thread to a host: the kernel sends at most one value
//! (a settlement, a queued promise, an idle signal); the host waits for it with a deadline,
//! looks without waiting, or polls it as a future.
//!
//! Invariant: a receiver always learns the end. Dropping the sender without sending (the
//! kernel stopped) wakes every waiter and every registered waker, and they see
//! [`RecvError::Closed`]; nothing waits for a value that can no longer come.

use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The slot both ends share.
struct Shared<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

struct State<T> {
    value: Option<T>,
    /// The sender is gone: no value will come after the one in `value`, if any.
    closed: bool,
    /// The task that last polled the receiver.
    waker: Option<Waker>,
}

/// Why no value was received.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecvError {
    /// Nothing yet (`try_recv`) or nothing before the deadline (`recv_timeout`).
    Empty,
    /// The sender is gone without sending, or the value was already taken.
    Closed,
}

/// The kernel's end: sends one value, and wakes the receiver when dropped.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The host's end.
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

/// A channel for one value.
pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            value: None,
            closed: false,
            waker: None,
        }),
        changed: Condvar::new(),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

impl<T> Sender<T> {
    /// Hands `value` to the receiver (dropping the sender wakes it), or gives it back if
    /// the receiver is gone (as `mpsc::Sender::send` does; the host may have stopped
    /// waiting, which is its business).
    pub(crate) fn send(self, value: T) -> Result<(), T> {
        if Arc::strong_count(&self.shared) == 1 {
            return Err(value);
        }
        self.shared.state.lock().value = Some(value);
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let waker = {
            let mut state = self.shared.state.lock();
            state.closed = true;
            state.waker.take()
        };
        self.shared.changed.notify_all();
        // Woken outside the lock: a waker may run the task at once, and it polls again.
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

impl<T> Receiver<T> {
    /// The value if it has arrived, without waiting.
    pub(crate) fn try_recv(&self) -> Result<T, RecvError> {
        let mut state = self.shared.state.lock();
        take(&mut state)
    }

    /// Waits at most `timeout` for the value (`Duration::MAX`: without a limit).
    pub(crate) fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.state.lock();
        loop {
            match take(&mut state) {
                Err(RecvError::Empty) => {}
                done => return done,
            }
            match deadline {
                Some(deadline) => {
                    if self
                        .shared
                        .changed
                        .wait_until(&mut state, deadline)
                        .timed_out()
                    {
                        return take(&mut state);
                    }
                }
                None => self.shared.changed.wait(&mut state),
            }
        }
    }

    /// The value if it has arrived; otherwise `cx`'s waker is woken when it does (or when
    /// the sender is dropped without sending).
    pub(crate) fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<T, RecvError>> {
        let mut state = self.shared.state.lock();
        match take(&mut state) {
            Err(RecvError::Empty) => {
                // Registered under the lock the sender takes before waking: no wake-up can
                // fall between this check and the registration.
                match &mut state.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    slot => *slot = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
            done => Poll::Ready(done),
        }
    }
}

fn take<T>(state: &mut State<T>) -> Result<T, RecvError> {
    match state.value.take() {
        Some(value) => Ok(value),
        None if state.closed => Err(RecvError::Closed),
        None => Err(RecvError::Empty),
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receiver").finish_non_exhaustive()
    }
}
