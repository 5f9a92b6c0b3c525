//! Checking what a vat hands over against its [`VatLimits`]: the number of syscalls in one
//! delivery, the size of each value it sends or resolves, its vat-store writes, and how
//! many of its messages wait in the queues.
//!
//! Invariant: going past a limit is the vat's own fault, like an illegal syscall: the
//! delivery is rolled back and the vat terminated with the limit's fixed reason. Nothing a
//! vat hands over reaches the store unchecked, so no vat input can end in a store error.

use ocap_types::{CapData, Checkpoint, VRef, VatLimits};

/// The limit a vat went past; its [`LimitExceeded::reason`] is the termination's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitExceeded {
    /// More syscalls in one delivery than `syscallsPerDelivery`.
    Syscalls,
    /// A message or resolution value larger than `messageBytes`.
    MessageSize,
    /// A vat-store key that is empty or longer than `vatstoreKeyBytes`.
    VatstoreKey,
    /// A vat-store value larger than `vatstoreValueBytes`.
    VatstoreValue,
    /// A vat store that would hold more than `vatstoreTotalBytes`.
    VatstoreTotal,
    /// A send while `queuedMessages` of the vat's messages wait in the queues.
    QueuedMessages,
    /// More vat-store changes in one delivery than `deliveryVatstoreBytes`.
    DeliveryVatstore,
}

impl LimitExceeded {
    /// The fixed reason given when the vat is terminated.
    pub fn reason(self) -> &'static str {
        match self {
            LimitExceeded::Syscalls => "vat exceeded its limit of syscalls per delivery",
            LimitExceeded::MessageSize => "vat sent a value larger than its limit",
            LimitExceeded::VatstoreKey => "vat used a vat-store key that is empty or too long",
            LimitExceeded::VatstoreValue => "vat stored a value larger than its limit",
            LimitExceeded::VatstoreTotal => "vat exceeded its vat-store size limit",
            LimitExceeded::QueuedMessages => "vat exceeded its limit of queued messages",
            LimitExceeded::DeliveryVatstore => {
                "vat changed more of its vat store in one delivery than its limit"
            }
        }
    }
}

/// The bytes a value counts for: its encoded body plus 8 per slot.
pub(crate) fn check_value(data: &CapData<VRef>, limits: &VatLimits) -> Result<(), LimitExceeded> {
    let bytes = data
        .body
        .len()
        .saturating_add(data.slots.len().saturating_mul(8));
    if u64::try_from(bytes).unwrap_or(u64::MAX) > u64::from(limits.message_bytes) {
        return Err(LimitExceeded::MessageSize);
    }
    Ok(())
}

/// Every key and value of a checkpoint within the per-entry limits, and the whole within
/// the per-delivery limit (the store's total is checked by the store, which knows the vat
/// store's size).
pub(crate) fn check_checkpoint(
    checkpoint: &Checkpoint,
    limits: &VatLimits,
) -> Result<(), LimitExceeded> {
    let max_key = usize::try_from(limits.vatstore_key_bytes).unwrap_or(usize::MAX);
    let max_value = usize::try_from(limits.vatstore_value_bytes).unwrap_or(usize::MAX);
    let bad_key = |key: &String| key.is_empty() || key.len() > max_key;
    for (key, value) in &checkpoint.sets {
        if bad_key(key) {
            return Err(LimitExceeded::VatstoreKey);
        }
        if value.0.len() > max_value {
            return Err(LimitExceeded::VatstoreValue);
        }
    }
    if checkpoint.deletes.iter().any(bad_key) {
        return Err(LimitExceeded::VatstoreKey);
    }
    if checkpoint.change_bytes() > u64::from(limits.delivery_vatstore_bytes) {
        return Err(LimitExceeded::DeliveryVatstore);
    }
    Ok(())
}
