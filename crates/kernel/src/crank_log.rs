//! The crank log (issue 12 item 4): one [`CrankRecord`] per crank that delivered an item,
//! handed to the host's [`CrankLogSink`] once that crank is durable.
//!
//! Invariant: a record is handed over only when the store holds nothing unflushed (the
//! same rule as every other host notice, D22), so a log never shows a crank a crash could
//! still lose; records are handed over in crank order, each once.

use std::fmt;
use std::sync::Arc;

use ocap_types::{CapData, KPromiseId, KRef, RunQueueItem, Syscall, VatId};

/// The head of the crank hash chain (docs/store.md "Crank hash"): BLAKE3 links over each
/// crank's store writes. Shown as 64 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CrankHash(pub [u8; 32]);

impl fmt::Display for CrankHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

/// How a crank's delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrankOutcome {
    /// The delivery's effects stand (a splat is a delivery too: its rejection stands).
    Delivered,
    /// The vat asked to exit: its effects stand, then it was terminated.
    Exited {
        /// The vat.
        vat: VatId,
        /// Its reason.
        reason: CapData<KRef>,
    },
    /// The delivery failed (an illegal syscall, a limit, a vat error): rolled back, and
    /// the vat terminated.
    Failed {
        /// The vat.
        vat: VatId,
        /// The termination's reason.
        reason: CapData<KRef>,
    },
    /// The delivery failed inside the kernel: rolled back, the item consumed and its
    /// result rejected (spec §7.11).
    Discarded {
        /// What failed, in a fixed word (`store`, `promise resolution`, `internal`).
        error: &'static str,
    },
}

impl CrankOutcome {
    /// A fixed name: `delivered`, `exited`, `failed` or `discarded`.
    pub fn name(&self) -> &'static str {
        match self {
            CrankOutcome::Delivered => "delivered",
            CrankOutcome::Exited { .. } => "exited",
            CrankOutcome::Failed { .. } => "failed",
            CrankOutcome::Discarded { .. } => "discarded",
        }
    }
}

/// A host message that entered the kernel (was queued, its result promise allocated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostInput {
    /// The target the host named.
    pub target: KRef,
    /// The method.
    pub method: String,
    /// The result promise the kernel allocated for it.
    pub result: KPromiseId,
}

/// One durable crank, as the crank log shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrankRecord {
    /// The crank's number in this kernel's run: 1 for the first crank that delivered an
    /// item after the kernel opened.
    pub crank: u64,
    /// The run-queue item the crank took.
    pub item: RunQueueItem,
    /// How its delivery ended.
    pub outcome: CrankOutcome,
    /// Each syscall the vat made, in order, as the vat made it (in the vat's refs; empty
    /// when no vat ran). A failed delivery's syscalls are listed although they were rolled
    /// back; a syscall the kernel refused is listed too (it ended the delivery).
    pub syscalls: Vec<Syscall>,
    /// Host messages queued since the crank before this one (in the order queued): the
    /// input that entered between the two. Arguments are not repeated here.
    pub host_inputs: Vec<HostInput>,
    /// The crank hash chain's head once this crank committed.
    pub crank_hash: CrankHash,
}

/// Where crank records go ([`KernelConfig::crank_log`](crate::KernelConfig::crank_log)):
/// called on the kernel thread, in crank order, once each crank is durable. It must not
/// block for long (the kernel waits for it) and must not call the kernel and wait.
pub type CrankLogSink = Arc<dyn Fn(&CrankRecord) + Send + Sync>;

/// The kernel thread's side of the crank log: the record of the crank in progress, and
/// those committed but not yet durable.
#[derive(Default)]
pub(crate) struct CrankLog {
    sink: Option<CrankLogSink>,
    /// The item and outcome of the crank in progress.
    current: Option<(RunQueueItem, CrankOutcome)>,
    /// Host messages queued since the last crank, for the next record.
    inputs: Vec<HostInput>,
    /// Committed, waiting for the commit that makes them durable.
    pending: Vec<CrankRecord>,
}

impl CrankLog {
    pub(crate) fn new(sink: Option<CrankLogSink>) -> Self {
        CrankLog {
            sink,
            current: None,
            inputs: Vec::new(),
            pending: Vec::new(),
        }
    }

    /// Installs `sink`, or with `None` stops recording: what was recorded for the old sink
    /// and is not yet handed over is dropped with it.
    pub(crate) fn set_sink(&mut self, sink: Option<CrankLogSink>) {
        if sink.is_none() {
            self.current = None;
            self.inputs.clear();
            self.pending.clear();
        }
        self.sink = sink;
    }

    /// True if anyone listens: without a sink nothing is recorded at all.
    pub(crate) fn enabled(&self) -> bool {
        self.sink.is_some()
    }

    /// The crank in progress took `item` and ended with `outcome`.
    pub(crate) fn delivered(&mut self, item: &RunQueueItem, outcome: CrankOutcome) {
        if self.enabled() {
            self.current = Some((item.clone(), outcome));
        }
    }

    /// Host messages entered the kernel (their transaction committed).
    pub(crate) fn host_inputs(&mut self, mut inputs: Vec<HostInput>) {
        self.inputs.append(&mut inputs);
    }

    /// The crank in progress committed.
    pub(crate) fn committed(&mut self, crank: u64, syscalls: &[Syscall], hash: CrankHash) {
        if let Some((item, outcome)) = self.current.take() {
            self.pending.push(CrankRecord {
                crank,
                item,
                outcome,
                syscalls: syscalls.to_vec(),
                host_inputs: std::mem::take(&mut self.inputs),
                crank_hash: hash,
            });
        }
    }

    /// Hands every pending record to the sink: the store holds nothing unflushed.
    pub(crate) fn durable(&mut self) {
        if let Some(sink) = &self.sink {
            for record in self.pending.drain(..) {
                sink(&record);
            }
        }
    }
}
