//! `VatLimits`: what one vat may ask of the kernel. Everything a vat hands over is checked
//! against these like a syscall: going past a limit is the vat's own illegal act, never
//! the kernel's error, and ends with the vat terminated for a fixed reason.

use serde::{Deserialize, Serialize};

/// The longest vat-store key any vat may use, in bytes. The kernel stores a vat's keys
/// under a prefix of its own, and LMDB keys are at most 511 bytes.
pub const MAX_VATSTORE_KEY_BYTES: usize = 400;

/// The most a vat may change of its vat store in one delivery, in the bytes
/// [`crate::Checkpoint::change_bytes`] counts: below the 16 MiB frame limit with room for
/// the encoding, so that the same limit holds for a vat in the kernel's process and for one
/// in a worker process (whose changes travel in one frame).
pub const MAX_DELIVERY_VATSTORE_BYTES: u32 = 12 << 20;

/// Limits on one vat, set per vat in its config (`"limits": {…}`, camelCase names); each
/// field left out keeps its default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
#[non_exhaustive]
pub struct VatLimits {
    /// Syscalls in one delivery (or start).
    pub syscalls_per_delivery: u32,
    /// Bytes of one message's or resolution's value (its encoded body plus 8 per slot).
    pub message_bytes: u32,
    /// Bytes of one vat-store key (at most [`MAX_VATSTORE_KEY_BYTES`]).
    pub vatstore_key_bytes: u32,
    /// Bytes of one vat-store value.
    pub vatstore_value_bytes: u32,
    /// Bytes of the whole vat store, keys and values.
    pub vatstore_total_bytes: u64,
    /// Messages the vat sent that may wait in the kernel's queues at once (in the run
    /// queue, or in the queue of a promise nobody has settled yet).
    pub queued_messages: u64,
    /// Bytes of vat-store changes in one delivery (or start), as
    /// [`crate::Checkpoint::change_bytes`] counts them (at most
    /// [`MAX_DELIVERY_VATSTORE_BYTES`]).
    pub delivery_vatstore_bytes: u32,
}

impl Default for VatLimits {
    fn default() -> Self {
        VatLimits {
            syscalls_per_delivery: 100_000,
            message_bytes: 1 << 20,
            vatstore_key_bytes: 256,
            vatstore_value_bytes: 1 << 20,
            vatstore_total_bytes: 1 << 30,
            queued_messages: 1_000_000,
            delivery_vatstore_bytes: 8 << 20,
        }
    }
}

impl VatLimits {
    /// True for the defaults (configs leave them out when written).
    pub fn is_default(&self) -> bool {
        *self == VatLimits::default()
    }

    /// The limits with [`VatLimits::vatstore_key_bytes`] replaced.
    #[must_use]
    pub fn with_vatstore_key_bytes(mut self, bytes: u32) -> Self {
        self.vatstore_key_bytes = bytes;
        self
    }

    /// The limits with [`VatLimits::vatstore_value_bytes`] replaced.
    #[must_use]
    pub fn with_vatstore_value_bytes(mut self, bytes: u32) -> Self {
        self.vatstore_value_bytes = bytes;
        self
    }

    /// The limits with [`VatLimits::vatstore_total_bytes`] replaced.
    #[must_use]
    pub fn with_vatstore_total_bytes(mut self, bytes: u64) -> Self {
        self.vatstore_total_bytes = bytes;
        self
    }

    /// The limits with [`VatLimits::syscalls_per_delivery`] replaced.
    #[must_use]
    pub fn with_syscalls_per_delivery(mut self, syscalls: u32) -> Self {
        self.syscalls_per_delivery = syscalls;
        self
    }

    /// The limits with [`VatLimits::queued_messages`] replaced.
    #[must_use]
    pub fn with_queued_messages(mut self, messages: u64) -> Self {
        self.queued_messages = messages;
        self
    }

    /// The limits with [`VatLimits::delivery_vatstore_bytes`] replaced.
    #[must_use]
    pub fn with_delivery_vatstore_bytes(mut self, bytes: u32) -> Self {
        self.delivery_vatstore_bytes = bytes;
        self
    }

    /// The limits with [`VatLimits::message_bytes`] replaced.
    #[must_use]
    pub fn with_message_bytes(mut self, bytes: u32) -> Self {
        self.message_bytes = bytes;
        self
    }

    /// Why these limits cannot be used, if they cannot.
    pub fn problem(&self) -> Option<String> {
        let key = usize::try_from(self.vatstore_key_bytes).unwrap_or(usize::MAX);
        if key == 0 || key > MAX_VATSTORE_KEY_BYTES {
            return Some(format!(
                "vatstoreKeyBytes must be between 1 and {MAX_VATSTORE_KEY_BYTES}"
            ));
        }
        if self.syscalls_per_delivery == 0 || self.message_bytes == 0 {
            return Some("syscallsPerDelivery and messageBytes must be at least 1".to_owned());
        }
        if self.delivery_vatstore_bytes == 0
            || self.delivery_vatstore_bytes > MAX_DELIVERY_VATSTORE_BYTES
        {
            return Some(format!(
                "deliveryVatstoreBytes must be between 1 and {MAX_DELIVERY_VATSTORE_BYTES}"
            ));
        }
        None
    }
}
