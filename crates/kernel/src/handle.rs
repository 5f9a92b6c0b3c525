//! `ResultHandle`: what `queue_message` hands back, to wait on a message's result.
//!
//! `queue_message` does not wait for the kernel thread: the message is queued as a job, and
//! the handle learns the result promise's id when the job has run. So a host can queue many
//! messages back to back and the kernel takes them between cranks as fast as it can.
//!
//! A handle is waited on by blocking ([`ResultHandle::wait`]) or, by an async host, awaited
//! as a [`Future`]: both read the same one-value slots (`crate::oneshot`), which wake a
//! polling task when the kernel thread fills them or stops. No async runtime is needed.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::thread::ThreadId;
use std::time::{Duration, Instant};

use ocap_types::{CapData, KPromiseId, KRef};

use crate::error::{InputError, KernelError, Rejection};
use crate::oneshot::{Receiver, RecvError};

/// A settled result: fulfilled (`Ok`) or rejected (`Err`), as a value.
pub(crate) type Settlement = Result<CapData<KRef>, CapData<KRef>>;

/// Whether the kernel queued the message: the result promise, or why not.
pub(crate) type Queued = Result<KPromiseId, NotQueued>;

/// Why the kernel did not queue a host message, kept for every later call on the handle.
#[derive(Debug, Clone)]
pub(crate) enum NotQueued {
    /// The host's input was refused.
    Input(InputError),
    /// The kernel failed; its error, shared (a [`KernelError`] is not `Clone`).
    Failed(Arc<KernelError>),
}

impl From<KernelError> for NotQueued {
    fn from(error: KernelError) -> Self {
        match error {
            KernelError::Input(input) => NotQueued::Input(input),
            other => NotQueued::Failed(Arc::new(other)),
        }
    }
}

impl From<NotQueued> for KernelError {
    fn from(not_queued: NotQueued) -> Self {
        match not_queued {
            NotQueued::Input(input) => KernelError::Input(input),
            NotQueued::Failed(error) => KernelError::NotQueued(error),
        }
    }
}

/// The eventual result of a message queued by the host: wait for it with
/// [`ResultHandle::wait`], or `.await` it (a [`Future`] whose output is what `wait`
/// returns, without a time limit; it needs no particular async runtime).
///
/// The result is handed over once: after `wait` or the future returned it, asking again
/// says [`KernelError::Stopped`].
#[derive(Debug)]
pub struct ResultHandle {
    promise: OnceCell<Queued>,
    queued: Option<Receiver<Queued>>,
    receiver: Receiver<Settlement>,
    /// Waiting on this thread would be waiting for ourselves.
    kernel_thread: Option<ThreadId>,
}

impl ResultHandle {
    /// A handle for a message already queued as `promise`.
    pub(crate) fn new(promise: KPromiseId, receiver: Receiver<Settlement>) -> Self {
        ResultHandle {
            promise: OnceCell::from(Ok(promise)),
            queued: None,
            receiver,
            kernel_thread: None,
        }
    }

    /// A handle for a message whose job has not run yet.
    pub(crate) fn pending(
        queued: Receiver<Queued>,
        receiver: Receiver<Settlement>,
        kernel_thread: Option<ThreadId>,
    ) -> Self {
        ResultHandle {
            promise: OnceCell::new(),
            queued: Some(queued),
            receiver,
            kernel_thread,
        }
    }

    /// Refuses to block the kernel thread on work only the kernel thread can do.
    fn check_thread(&self, timeout: Duration) -> Result<(), KernelError> {
        if timeout > Duration::ZERO && self.kernel_thread == Some(std::thread::current().id()) {
            return Err(KernelError::AwaitedOnKernelThread);
        }
        Ok(())
    }

    /// Waits at most `timeout` for the kernel to have queued the message.
    fn queued(&self, timeout: Duration) -> Result<KPromiseId, KernelError> {
        if let Some(res) = self.promise.get() {
            return res.clone().map_err(KernelError::from);
        }
        let Some(queued) = &self.queued else {
            return Err(KernelError::Stopped);
        };
        self.check_thread(timeout)?;
        let res = queued.recv_timeout(timeout).map_err(recv_error)?;
        self.promise
            .get_or_init(|| res)
            .clone()
            .map_err(KernelError::from)
    }

    /// The kernel promise that carries the result, once the kernel has queued the message.
    ///
    /// # Errors
    /// [`KernelError::Stopped`] if the kernel stopped first, [`KernelError::Input`] if it
    /// refused the message (a slot naming nothing), [`KernelError::NotQueued`] if it could
    /// not queue it.
    pub fn promise(&self) -> Result<KPromiseId, KernelError> {
        self.queued(Duration::MAX)
    }

    /// Waits at most `timeout` for the result.
    ///
    /// # Errors
    /// [`KernelError::Rejected`] when the result is rejected, [`KernelError::Timeout`],
    /// [`KernelError::Stopped`] if the kernel stopped before settling it,
    /// [`KernelError::Input`] if it refused the message, [`KernelError::NotQueued`] if it
    /// could not queue it.
    pub fn wait(&self, timeout: Duration) -> Result<CapData<KRef>, KernelError> {
        let deadline = Instant::now().checked_add(timeout);
        self.queued(timeout)?;
        self.check_thread(timeout)?;
        let left = deadline.map_or(Duration::MAX, |d| {
            d.saturating_duration_since(Instant::now())
        });
        self.receiver
            .recv_timeout(left)
            .map_err(recv_error)
            .and_then(settled)
    }

    /// The result if it has arrived, without waiting.
    pub fn try_result(&self) -> Option<Result<CapData<KRef>, KernelError>> {
        if let Err(error) = self.queued(Duration::ZERO) {
            return match error {
                KernelError::Timeout => None,
                other => Some(Err(other)),
            };
        }
        match self.receiver.try_recv() {
            Ok(settlement) => Some(settled(settlement)),
            Err(RecvError::Empty) => None,
            Err(RecvError::Closed) => Some(Err(KernelError::Stopped)),
        }
    }
}

/// Polls the same slots as [`ResultHandle::wait`]: first whether the kernel queued the
/// message, then its settlement. A refused message is ready at once with the refusal.
impl Future for ResultHandle {
    type Output = Result<CapData<KRef>, KernelError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        if this.promise.get().is_none() {
            let Some(queued) = &this.queued else {
                return Poll::Ready(Err(KernelError::Stopped));
            };
            match queued.poll_recv(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Err(error)) => return Poll::Ready(Err(recv_error(error))),
                Poll::Ready(Ok(res)) => {
                    let _ = this.promise.set(res);
                }
            }
        }
        if let Some(Err(not_queued)) = this.promise.get() {
            return Poll::Ready(Err(not_queued.clone().into()));
        }
        this.receiver
            .poll_recv(cx)
            .map(|res| res.map_err(recv_error).and_then(settled))
    }
}

/// A settlement as the host sees it: a rejection is an error.
fn settled(settlement: Settlement) -> Result<CapData<KRef>, KernelError> {
    settlement.map_err(|value| Rejection::new(value).into())
}

/// Nothing before the deadline is a timeout; a slot closed empty means the kernel stopped.
fn recv_error(error: RecvError) -> KernelError {
    match error {
        RecvError::Empty => KernelError::Timeout,
        RecvError::Closed => KernelError::Stopped,
    }
}
