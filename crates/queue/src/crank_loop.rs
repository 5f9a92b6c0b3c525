//! The crank loop (spec §7.1): exactly one work item per crank, commit or roll back, then
//! sleep until new work arrives. What a crank *does* is the [`CrankHandler`]'s business.
//!
//! Invariant: one `start_crank`/`end_crank` pair delivers at most one item, and an aborted
//! delivery rolls back to that crank's own start savepoint, so a rollback can never undo an
//! earlier delivery.

use std::sync::mpsc::Receiver;

use ocap_types::{CapData, KPromiseId, KRef, RunQueueItem, VatId};

use crate::error::QueueError;
use crate::kernel_queue::KernelQueue;

/// A request, from the delivery, to terminate the vat it was delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The vat.
    pub vat: VatId,
    /// True for a failure.
    pub failure: bool,
    /// The reason (an `Error` value for kernel-authored reasons).
    pub info: CapData<KRef>,
}

/// What a delivery asks the crank loop to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CrankResult {
    /// Roll the crank back to its start.
    pub abort: bool,
    /// Terminate the delivered-to vat.
    pub terminate: Option<Termination>,
}

/// What one crank did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrankReport {
    /// There was no work; nothing was delivered.
    Idle,
    /// One item was handled.
    Delivered {
        /// The item's kind (`send`, `notify`, …).
        kind: &'static str,
        /// True if the delivery was rolled back.
        aborted: bool,
        /// Promises settled by the crank (committed).
        settled: Vec<KPromiseId>,
    },
}

/// What a crank does with its item; implemented by the kernel.
pub trait CrankHandler {
    /// Runs at the start of every crank that has an item, before the delivery (spec
    /// §12.5.5: terminated-vat cleanup).
    ///
    /// # Errors
    /// A store failure.
    fn before_delivery(&mut self, queue: &mut KernelQueue) -> Result<(), QueueError>;

    /// Routes and delivers one item.
    ///
    /// # Errors
    /// An internal failure: the crank is rolled back and the item discarded (spec §7.11).
    fn deliver(
        &mut self,
        queue: &mut KernelQueue,
        item: &RunQueueItem,
    ) -> Result<CrankResult, QueueError>;

    /// After a rollback that also terminates the vat: the host waiting on `item`'s result
    /// must be told now (spec §7.5 step 3).
    fn aborted_with_termination(&mut self, item: &RunQueueItem, info: &CapData<KRef>);

    /// Terminates a vat from inside the crank; must not wait for the crank (spec §7.8).
    ///
    /// # Errors
    /// A store failure.
    fn terminate_in_crank(
        &mut self,
        queue: &mut KernelQueue,
        termination: Termination,
    ) -> Result<(), QueueError>;

    /// End-of-crank garbage collection (spec §14.3).
    ///
    /// # Errors
    /// A store failure.
    fn collect_garbage(&mut self, queue: &mut KernelQueue) -> Result<(), QueueError>;

    /// After the crank committed: fire host subscriptions of the settled promises.
    fn after_commit(&mut self, queue: &KernelQueue, settled: &[KPromiseId]);

    /// An item whose delivery failed internally was discarded (spec §7.11).
    fn discarded(&mut self, item: &RunQueueItem, error: &QueueError);
}

/// Runs one crank: picks at most one item and delivers it.
///
/// # Errors
/// [`QueueError`] when the store itself fails (the kernel cannot continue).
pub fn run_crank(
    queue: &mut KernelQueue,
    handler: &mut impl CrankHandler,
) -> Result<CrankReport, QueueError> {
    queue.start_crank()?;
    let Some(item) = queue.next_item()? else {
        queue.end_crank()?;
        return Ok(CrankReport::Idle);
    };
    let kind = item.kind();
    let _span = tracing::debug_span!("crank", kind).entered();
    handler.before_delivery(queue)?;
    let result = match handler.deliver(queue, &item) {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(%error, kind, "internal error while delivering; item discarded");
            // Undo whatever the failed delivery did, but keep the item consumed so that it is
            // not retried forever.
            queue.abort_crank()?;
            let again = queue.next_item()?;
            debug_assert_eq!(again.as_ref(), Some(&item));
            handler.discarded(&item, &error);
            handler.collect_garbage(queue)?;
            let settled = queue.end_crank()?;
            handler.after_commit(queue, &settled);
            return Ok(CrankReport::Delivered {
                kind,
                aborted: true,
                settled,
            });
        }
    };
    if result.abort {
        queue.abort_crank()?;
        if let Some(termination) = &result.terminate {
            handler.aborted_with_termination(&item, &termination.info);
        }
    } else {
        queue.flush_buffer()?;
    }
    if let Some(termination) = result.terminate {
        handler.terminate_in_crank(queue, termination)?;
    }
    handler.collect_garbage(queue)?;
    let settled = queue.end_crank()?;
    handler.after_commit(queue, &settled);
    Ok(CrankReport::Delivered {
        kind,
        aborted: result.abort,
        settled,
    })
}

/// Something to do between cranks, sent to the loop from any thread.
pub trait Command<H> {
    /// Carries the command out. Returns false to stop the loop.
    fn run(self, handler: &mut H, queue: &mut KernelQueue) -> bool;
}

/// Runs cranks until told to stop: between cranks it carries out pending commands; with no
/// work it flushes the store and blocks until a command arrives (no polling).
///
/// # Errors
/// [`QueueError`] when the store fails; the kernel cannot continue.
pub fn run_loop<H, C>(
    queue: &mut KernelQueue,
    handler: &mut H,
    commands: &Receiver<C>,
    mut on_idle: impl FnMut(&mut H, &mut KernelQueue),
) -> Result<(), QueueError>
where
    H: CrankHandler,
    C: Command<H>,
{
    loop {
        while let Ok(command) = commands.try_recv() {
            if !command.run(handler, queue) {
                return Ok(());
            }
        }
        if run_crank(queue, handler)? == CrankReport::Idle {
            queue.store_mut().kv_mut().flush()?;
            on_idle(handler, queue);
            match commands.recv() {
                Ok(command) => {
                    if !command.run(handler, queue) {
                        return Ok(());
                    }
                }
                Err(_) => return Ok(()),
            }
        }
    }
}
