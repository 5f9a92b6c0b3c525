//! `ResultHandle`: what `queue_message` hands back, to wait on a message's result.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use ocap_types::{CapData, KPromiseId, KRef};

use crate::error::{KernelError, Rejection};

/// A settled result: fulfilled (`Ok`) or rejected (`Err`), as a value.
pub(crate) type Settlement = Result<CapData<KRef>, CapData<KRef>>;

/// The eventual result of a message queued by the host.
#[derive(Debug)]
pub struct ResultHandle {
    promise: KPromiseId,
    receiver: Receiver<Settlement>,
}

impl ResultHandle {
    pub(crate) fn new(promise: KPromiseId, receiver: Receiver<Settlement>) -> Self {
        ResultHandle { promise, receiver }
    }

    /// The kernel promise that carries the result.
    pub fn promise(&self) -> KPromiseId {
        self.promise
    }

    /// Waits at most `timeout` for the result.
    ///
    /// # Errors
    /// [`KernelError::Rejected`] when the result is rejected, [`KernelError::Timeout`],
    /// [`KernelError::Stopped`] if the kernel stopped before settling it.
    pub fn wait(&self, timeout: Duration) -> Result<CapData<KRef>, KernelError> {
        match self.receiver.recv_timeout(timeout) {
            Ok(settlement) => settlement.map_err(|value| Rejection::new(value).into()),
            Err(RecvTimeoutError::Timeout) => Err(KernelError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(KernelError::Stopped),
        }
    }

    /// The result if it has arrived, without waiting.
    pub fn try_result(&self) -> Option<Result<CapData<KRef>, KernelError>> {
        self.receiver
            .try_recv()
            .ok()
            .map(|settlement| settlement.map_err(|value| Rejection::new(value).into()))
    }

    /// The channel the settlement arrives on, for callers that select over several.
    pub fn into_receiver(self) -> Receiver<Result<CapData<KRef>, CapData<KRef>>> {
        self.receiver
    }
}
