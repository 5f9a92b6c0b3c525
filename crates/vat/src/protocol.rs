//! The vat protocol as a kernel drives it: what a [`VatRuntime`](crate::VatRuntime) is handed
//! and what it answers. Vat code never needs these; a vat's own tests do, to drive it by
//! hand as the crate example does. Re-exported from `ocap-types` so that vat authors depend
//! on `ocap-vat` alone.

pub use ocap_types::{
    CapData, Checkpoint, Delivery, DeliveryOutcome, LogLevel, Message, Resolution, Syscall, VRef,
    Value, VatHost, VatLog, VatMessage, VatStart,
};
