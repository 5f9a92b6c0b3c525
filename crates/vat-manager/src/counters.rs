//! Per-vat counters of what a vat did since this kernel started: deliveries, syscalls and
//! denials. They live in memory only (no store write per delivery, which would tax the hot
//! path), so they restart at 0 whenever the kernel is opened again.

/// What one vat did since the kernel was opened. A plain report: every value is valid.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VatCounters {
    /// Deliveries handed to the vat (messages, notifies, GC actions, `bringOutYourDead`),
    /// whether or not their crank committed.
    pub deliveries: u64,
    /// Syscalls the kernel took from the vat, carried out or refused. The first refused one
    /// ends the delivery: the kernel ignores the syscalls after it, and does not count them.
    pub syscalls: u64,
    /// Deliveries that ended in a denial: a syscall refused as illegal, or a limit of
    /// [`ocap_types::VatLimits`] exceeded (each terminates the vat).
    pub denials: u64,
}
