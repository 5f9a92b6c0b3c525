//! The crank loop (spec §7.1): exactly one work item per crank, commit or roll back, then
//! sleep until new work arrives. What a crank *does* is the [`CrankHandler`]'s business.
//!
//! Invariant: one [`Crank`] delivers at most one item, and an aborted delivery rolls back
//! to that crank's own start savepoint, so a rollback can never undo an earlier delivery.
//! A store failure in the middle of a crank drops the [`Crank`], which aborts it: the loop
//! stops with the error and nothing of the crank is kept.

use std::sync::mpsc::Receiver;

use ocap_types::{CapData, KPromiseId, KRef, RunQueueItem, VatId};

use crate::error::QueueError;
use crate::state::{Crank, KernelState};

/// A request, from the delivery, to terminate the vat it was delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Termination {
    /// The vat.
    pub vat: VatId,
    /// The reason (an `Error` value for kernel-authored reasons).
    pub info: CapData<KRef>,
}

/// What a delivery asks the crank loop to do. A rollback always ends the vat, so "roll
/// back and carry on" cannot be said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum CrankResult {
    /// The delivery's effects stand.
    #[default]
    Delivered,
    /// The vat asked to exit cleanly: the delivery's effects stand, then it is terminated.
    Exited(Termination),
    /// The delivery failed (an illegal syscall, a limit, a vat error, an exit as a
    /// failure): it is rolled back to the crank's start, then the vat is terminated.
    Failed(Termination),
}

impl CrankResult {
    /// True if the delivery is to be rolled back.
    pub fn is_failed(&self) -> bool {
        matches!(self, CrankResult::Failed(_))
    }

    /// The termination asked for, if any.
    pub fn termination(self) -> Option<Termination> {
        match self {
            CrankResult::Delivered => None,
            CrankResult::Exited(termination) | CrankResult::Failed(termination) => {
                Some(termination)
            }
        }
    }
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
    /// Runs at the start of every crank that has an item, before the delivery (and after
    /// the crank's step of terminated-vat cleanup, spec §12.5.5).
    ///
    /// # Errors
    /// A store failure.
    fn before_delivery(&mut self, crank: &mut Crank<'_>) -> Result<(), QueueError>;

    /// Routes and delivers one item.
    ///
    /// # Errors
    /// An internal failure: the crank is rolled back and the item discarded (spec §7.11).
    fn deliver(
        &mut self,
        crank: &mut Crank<'_>,
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
        crank: &mut Crank<'_>,
        termination: Termination,
    ) -> Result<(), QueueError>;

    /// After the crank committed: fire host subscriptions of the settled promises.
    fn after_commit(&mut self, state: &KernelState, settled: &[KPromiseId]);

    /// An item whose delivery failed inside the kernel was rolled back and consumed (spec
    /// §7.11): release its holds, tell whoever waits on its result, and make any vat that
    /// ran during the delivery consistent with the rolled-back store again.
    ///
    /// # Errors
    /// A store failure.
    fn discarded(
        &mut self,
        crank: &mut Crank<'_>,
        item: &RunQueueItem,
        error: &QueueError,
    ) -> Result<(), QueueError>;
}

/// Runs one crank: picks at most one item and delivers it.
///
/// # Errors
/// [`QueueError`] when the store itself fails (the kernel cannot continue); the crank is
/// then aborted.
pub fn run_crank(
    state: &mut KernelState,
    handler: &mut impl CrankHandler,
) -> Result<CrankReport, QueueError> {
    let mut crank = state.begin()?;
    let Some(item) = crank.next_item()? else {
        // Dropping stale GC actions is the only change an idle crank can have made.
        crank.commit()?;
        return Ok(CrankReport::Idle);
    };
    let kind = item.kind();
    let _span = tracing::debug_span!("crank", kind).entered();
    crank.cleanup_next_terminated()?;
    handler.before_delivery(&mut crank)?;
    let result = match handler.deliver(&mut crank, &item) {
        Ok(result) => result,
        Err(error) => {
            tracing::error!(%error, kind, "internal error while delivering; item discarded");
            // Undo whatever the failed delivery did, but keep the item consumed so that it is
            // not retried forever.
            crank.rollback()?;
            let again = crank.next_item()?;
            debug_assert_eq!(again.as_ref(), Some(&item));
            handler.discarded(&mut crank, &item, &error)?;
            crank.flush_buffer()?;
            crank.collect_garbage()?;
            let settled = crank.commit()?;
            handler.after_commit(state, &settled);
            return Ok(CrankReport::Delivered {
                kind,
                aborted: true,
                settled,
            });
        }
    };
    let aborted = result.is_failed();
    let termination = match result {
        CrankResult::Delivered => {
            crank.flush_buffer()?;
            None
        }
        CrankResult::Exited(termination) => {
            crank.flush_buffer()?;
            Some(termination)
        }
        CrankResult::Failed(termination) => {
            crank.rollback()?;
            handler.aborted_with_termination(&item, &termination.info);
            Some(termination)
        }
    };
    if let Some(termination) = termination {
        handler.terminate_in_crank(&mut crank, termination)?;
    }
    crank.collect_garbage()?;
    let settled = crank.commit()?;
    handler.after_commit(state, &settled);
    Ok(CrankReport::Delivered {
        kind,
        aborted,
        settled,
    })
}

/// Something to do between cranks, sent to the loop from any thread.
pub trait Command<H>: Sized {
    /// Carries out `batch`, commands taken from the channel together, in order (so that
    /// commands of one kind can share a transaction). Returns false to stop the loop.
    fn run_batch(batch: Vec<Self>, handler: &mut H, state: &mut KernelState) -> bool;
}

/// At most this many commands run between two cranks: host work and cranks take turns, so
/// neither can starve the other.
pub const COMMANDS_PER_TURN: usize = 256;

/// Runs cranks until told to stop: between two cranks it carries out at most
/// [`COMMANDS_PER_TURN`] pending commands; with no work it flushes the store and blocks
/// until a command arrives (no polling).
///
/// # Errors
/// [`QueueError`] when the store fails; the kernel cannot continue.
pub fn run_loop<H, C>(
    state: &mut KernelState,
    handler: &mut H,
    commands: &Receiver<C>,
    mut on_idle: impl FnMut(&mut H, &mut KernelState),
) -> Result<(), QueueError>
where
    H: CrankHandler,
    C: Command<H>,
{
    // Each turn: at most one batch of commands, then one crank.
    let mut batch: Vec<C> = commands.try_iter().take(COMMANDS_PER_TURN).collect();
    loop {
        if !batch.is_empty() && !C::run_batch(batch, handler, state) {
            return Ok(());
        }
        if run_crank(state, handler)? == CrankReport::Idle {
            state.flush()?;
            on_idle(handler, state);
            let Ok(first) = commands.recv() else {
                return Ok(());
            };
            batch = vec![first];
            batch.extend(commands.try_iter().take(COMMANDS_PER_TURN - 1));
        } else {
            batch = commands.try_iter().take(COMMANDS_PER_TURN).collect();
        }
    }
}
