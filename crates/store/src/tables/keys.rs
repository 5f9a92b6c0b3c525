//! The key layout of the kernel tables. Everything of one endpoint lives under `<ep>.`, so
//! one prefix scan lists it (c-list `<ep>.c.`, vat store `<ep>.vs.`, counters `<ep>.n.`).
//!
//! Invariant: a vat-store key is always appended after the fixed `<vat>.vs.` prefix, so no
//! key a vat chooses can name another vat's or the kernel's keys.

use std::fmt::Display;

use ocap_types::{EndpointId, KObjectId, KPromiseId, SubclusterId, VatId};

pub(crate) fn text(parts: std::fmt::Arguments<'_>) -> Vec<u8> {
    parts.to_string().into_bytes()
}

pub(crate) const COUNTER_OBJECT: &str = "n.ko";
pub(crate) const COUNTER_PROMISE: &str = "n.kp";
pub(crate) const COUNTER_VAT: &str = "n.v";
pub(crate) const COUNTER_SUBCLUSTER: &str = "n.s";

pub(crate) fn object(id: KObjectId) -> Vec<u8> {
    text(format_args!("{id}"))
}

pub(crate) fn promise(id: KPromiseId) -> Vec<u8> {
    text(format_args!("{id}"))
}

pub(crate) fn promise_refcount(id: KPromiseId) -> Vec<u8> {
    text(format_args!("{id}.rc"))
}

pub(crate) fn endpoint_prefix(ep: EndpointId) -> Vec<u8> {
    text(format_args!("{ep}."))
}

pub(crate) fn clist_prefix(ep: EndpointId) -> Vec<u8> {
    text(format_args!("{ep}.c."))
}

pub(crate) fn clist(ep: EndpointId, r: impl Display) -> Vec<u8> {
    text(format_args!("{ep}.c.{r}"))
}

pub(crate) fn endpoint_counter(ep: EndpointId, promise: bool) -> Vec<u8> {
    let kind = if promise { 'p' } else { 'o' };
    text(format_args!("{ep}.n.{kind}"))
}

pub(crate) fn vat_record(vat: VatId) -> Vec<u8> {
    text(format_args!("{vat}.config"))
}

pub(crate) const VAT_INDEX_PREFIX: &[u8] = b"vats.";

pub(crate) fn vat_index(vat: VatId) -> Vec<u8> {
    text(format_args!("vats.{vat}"))
}

pub(crate) fn vatstore_prefix(vat: VatId) -> Vec<u8> {
    text(format_args!("{vat}.vs."))
}

pub(crate) fn vatstore(vat: VatId, key: &str) -> Vec<u8> {
    let mut out = vatstore_prefix(vat);
    out.extend_from_slice(key.as_bytes());
    out
}

pub(crate) const SUBCLUSTER_PREFIX: &[u8] = b"subcluster.";

pub(crate) fn subcluster(id: SubclusterId) -> Vec<u8> {
    text(format_args!("subcluster.{id}"))
}

pub(crate) const PINNED: &[u8] = b"pinnedObjects";
pub(crate) const GC_ACTIONS: &[u8] = b"gcActions";
pub(crate) const REAP_QUEUE: &[u8] = b"reapQueue";

pub(crate) const TERMINATED: &[u8] = b"terminatedVats";

pub(crate) fn queue_head(name: &str) -> Vec<u8> {
    text(format_args!("queue.{name}.head"))
}

pub(crate) fn queue_tail(name: &str) -> Vec<u8> {
    text(format_args!("queue.{name}.tail"))
}

pub(crate) fn queue_entry(name: &str, index: u64) -> Vec<u8> {
    text(format_args!("queue.{name}.{index}"))
}

pub(crate) fn kernel_service(name: &str) -> Vec<u8> {
    text(format_args!("kernelService.{name}"))
}
