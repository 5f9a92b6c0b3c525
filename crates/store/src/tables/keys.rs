//! The key layout of the kernel tables. Everything of one endpoint lives under `<ep>.`, so
//! one prefix scan lists it (c-list `<ep>.c.`, vat store `<ep>.vs.`, counters `<ep>.n.`).
//!
//! Invariant: a vat-store key is always appended after the fixed `<vat>.vs.` prefix, so no
//! key a vat chooses can name another vat's or the kernel's keys.

use ocap_types::{EndpointId, ExportId, KObjectId, KPromiseId, KRef, SubclusterId, VRef, VatId};

pub(crate) fn text(parts: std::fmt::Arguments<'_>) -> Vec<u8> {
    parts.to_string().into_bytes()
}

/// Appends the decimal digits of `n`. The hot keys (objects, promises, c-list entries) are
/// built by hand: going through `fmt` showed in crank profiles. Two digits at a time, from
/// a table, as `itoa` does: a division per digit showed too.
fn push_u64(buf: &mut Vec<u8>, mut n: u64) {
    const PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
        2021222324252627282930313233343536373839\
        4041424344454647484950515253545556575859\
        6061626364656667686970717273747576777879\
        8081828384858687888990919293949596979899";
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    while n >= 100 {
        let pair = (n % 100) as usize * 2;
        n /= 100;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    }
    if n >= 10 {
        let pair = n as usize * 2;
        at -= 2;
        digits[at..at + 2].copy_from_slice(&PAIRS[pair..pair + 2]);
    } else {
        at -= 1;
        digits[at] = b'0' + n as u8;
    }
    buf.extend_from_slice(&digits[at..]);
}

/// A piece of a key with the same text as its `Display`.
pub(crate) trait KeyPart {
    fn push_to(&self, buf: &mut Vec<u8>);
}

impl KeyPart for EndpointId {
    fn push_to(&self, buf: &mut Vec<u8>) {
        match self {
            EndpointId::Vat(VatId(n)) => {
                buf.push(b'v');
                push_u64(buf, u64::from(*n));
            }
            EndpointId::Remote(r) => buf.extend_from_slice(r.to_string().as_bytes()),
        }
    }
}

impl KeyPart for KRef {
    fn push_to(&self, buf: &mut Vec<u8>) {
        let (tag, n) = match self {
            KRef::Object(KObjectId(n)) => (b"ko", *n),
            KRef::Promise(KPromiseId(n)) => (b"kp", *n),
        };
        buf.extend_from_slice(tag);
        push_u64(buf, n);
    }
}

impl KeyPart for VRef {
    fn push_to(&self, buf: &mut Vec<u8>) {
        let (tag, n): (&[u8], u64) = match self {
            VRef::ExportObject(ExportId::Ephemeral(n)) => (b"o+", *n),
            VRef::ImportObject(n) => (b"o-", *n),
            VRef::ExportPromise(n) => (b"p+", *n),
            VRef::ImportPromise(n) => (b"p-", *n),
            durable_or_virtual => {
                buf.extend_from_slice(durable_or_virtual.to_string().as_bytes());
                return;
            }
        };
        buf.extend_from_slice(tag);
        push_u64(buf, n);
    }
}

pub(crate) const COUNTER_OBJECT: &str = "n.ko";
pub(crate) const COUNTER_PROMISE: &str = "n.kp";
pub(crate) const COUNTER_VAT: &str = "n.v";
pub(crate) const COUNTER_SUBCLUSTER: &str = "n.s";

/// Room for the longest of the hot keys (`v123.c.kp12345678901234567890`, `queue.run.<n>`)
/// without a reallocation.
const KEY_CAPACITY: usize = 48;

pub(crate) fn object(id: KObjectId) -> Vec<u8> {
    let mut buf = Vec::with_capacity(KEY_CAPACITY);
    KRef::Object(id).push_to(&mut buf);
    buf
}

pub(crate) fn promise(id: KPromiseId) -> Vec<u8> {
    let mut buf = Vec::with_capacity(KEY_CAPACITY);
    KRef::Promise(id).push_to(&mut buf);
    buf
}

pub(crate) fn promise_refcount(id: KPromiseId) -> Vec<u8> {
    let mut buf = promise(id);
    buf.extend_from_slice(b".rc");
    buf
}

pub(crate) fn endpoint_prefix(ep: EndpointId) -> Vec<u8> {
    let mut buf = Vec::with_capacity(KEY_CAPACITY);
    ep.push_to(&mut buf);
    buf.push(b'.');
    buf
}

pub(crate) fn clist_prefix(ep: EndpointId) -> Vec<u8> {
    let mut buf = endpoint_prefix(ep);
    buf.extend_from_slice(b"c.");
    buf
}

pub(crate) fn clist(ep: EndpointId, r: impl KeyPart) -> Vec<u8> {
    let mut buf = clist_prefix(ep);
    r.push_to(&mut buf);
    buf
}

/// The importer index (schema version 5): `imp.<ko>.<ep>` (empty value) for every endpoint
/// whose c-list imports object `<ko>` (`o-N`), so that the importers of an object are one
/// prefix scan away instead of a lookup in every endpoint's c-list.
pub(crate) const IMPORTER_PREFIX: &[u8] = b"imp.";

pub(crate) fn importers_prefix(id: KObjectId) -> Vec<u8> {
    let mut buf = IMPORTER_PREFIX.to_vec();
    KRef::Object(id).push_to(&mut buf);
    buf.push(b'.');
    buf
}

pub(crate) fn importer(id: KObjectId, ep: EndpointId) -> Vec<u8> {
    let mut buf = importers_prefix(id);
    ep.push_to(&mut buf);
    buf
}

pub(crate) fn endpoint_counter(ep: EndpointId, promise: bool) -> Vec<u8> {
    let kind = if promise { 'p' } else { 'o' };
    text(format_args!("{ep}.n.{kind}"))
}

/// How many messages the endpoint sent that still wait in the run queue or a promise's
/// queue (decimal); absent when none do.
pub(crate) fn queued_count(ep: EndpointId) -> Vec<u8> {
    text(format_args!("{ep}.qm"))
}

pub(crate) fn vat_record(vat: VatId) -> Vec<u8> {
    text(format_args!("{vat}.config"))
}

/// Keys under `local.` record this machine's choices, not the kernel's state: they are
/// left out of the crank hash (as SwingSet leaves its `local.` keys out of its activity
/// hash), so equal inputs give equal chains wherever the vats run.
pub(crate) const LOCAL_PREFIX: &[u8] = b"local.";

/// Where a vat runs, when that is not in the kernel's process: `local.worker.<vat>` =
/// `subprocess`. The vat's hashed record always says `inProcess`.
pub(crate) fn vat_worker(vat: VatId) -> Vec<u8> {
    text(format_args!("local.worker.{vat}"))
}

pub(crate) const VAT_INDEX_PREFIX: &[u8] = b"vats.";

pub(crate) fn vat_index(vat: VatId) -> Vec<u8> {
    text(format_args!("vats.{vat}"))
}

pub(crate) fn vatstore_prefix(vat: VatId) -> Vec<u8> {
    text(format_args!("{vat}.vs."))
}

/// The bytes (keys plus values) a vat's store holds; absent in stores written before it was
/// kept, and then counted once when first needed.
pub(crate) fn vatstore_usage(vat: VatId) -> Vec<u8> {
    text(format_args!("{vat}.vsu"))
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

/// Pins (spec §4.5): `pin.<kref>` holds how many times the object or promise is pinned
/// (decimal). A host's result promise is pinned, which keeps its value for the host.
pub(crate) const PIN_PREFIX: &[u8] = b"pin.";

pub(crate) fn pin(kref: KRef) -> Vec<u8> {
    let mut buf = PIN_PREFIX.to_vec();
    kref.push_to(&mut buf);
    buf
}

/// The GC action set (spec §6.4): one key `gcAction.<action text>` per action, empty value;
/// the text sorts in the processing order, so a prefix scan lists the set in order.
pub(crate) const GC_ACTION_PREFIX: &[u8] = b"gcAction.";

pub(crate) fn gc_action(action: impl std::fmt::Display) -> Vec<u8> {
    text(format_args!("gcAction.{action}"))
}

/// The reap queue (spec §6.5): `reapQueue.<seq, 20 digits>` → endpoint, oldest first;
/// `reapQueued.<ep>` (empty) marks an endpoint as queued; `reapQueueNext` is the next seq.
pub(crate) const REAP_ENTRY_PREFIX: &[u8] = b"reapQueue.";
pub(crate) const REAP_NEXT: &[u8] = b"reapQueueNext";

pub(crate) const REAP_MEMBER_PREFIX: &[u8] = b"reapQueued.";

pub(crate) fn reap_entry(seq: u64) -> Vec<u8> {
    text(format_args!("reapQueue.{seq:020}"))
}

pub(crate) fn reap_member(ep: EndpointId) -> Vec<u8> {
    let mut buf = REAP_MEMBER_PREFIX.to_vec();
    ep.push_to(&mut buf);
    buf
}

pub(crate) const TERMINATED: &[u8] = b"terminatedVats";

/// The head of the crank hash chain (32 bytes, docs/store.md "Crank hash"); written in
/// each crank's own transaction, and left out of the digest of the writes it chains.
pub(crate) const CRANK_HASH: &[u8] = b"crankHash";

fn queue_key(name: &str) -> Vec<u8> {
    let mut buf = Vec::with_capacity(KEY_CAPACITY);
    buf.extend_from_slice(b"queue.");
    buf.extend_from_slice(name.as_bytes());
    buf.push(b'.');
    buf
}

pub(crate) fn queue_head(name: &str) -> Vec<u8> {
    let mut buf = queue_key(name);
    buf.extend_from_slice(b"head");
    buf
}

pub(crate) fn queue_tail(name: &str) -> Vec<u8> {
    let mut buf = queue_key(name);
    buf.extend_from_slice(b"tail");
    buf
}

pub(crate) fn queue_entry(name: &str, index: u64) -> Vec<u8> {
    let mut buf = queue_key(name);
    push_u64(&mut buf, index);
    buf
}

/// The text of a kref or vref, as c-list values hold them.
pub(crate) fn part(r: impl KeyPart) -> Vec<u8> {
    let mut buf = Vec::with_capacity(KEY_CAPACITY);
    r.push_to(&mut buf);
    buf
}

/// A c-list entry's kref side value: `R <vref>` (reachable) or `_ <vref>`.
pub(crate) fn flagged(reachable: bool, vref: VRef) -> Vec<u8> {
    let mut buf = Vec::with_capacity(KEY_CAPACITY);
    buf.extend_from_slice(if reachable { b"R " } else { b"_ " });
    vref.push_to(&mut buf);
    buf
}

/// The decimal text of `n`, as values of counters and queue bounds are stored.
pub(crate) fn decimal(n: u64) -> Vec<u8> {
    let mut buf = Vec::with_capacity(20);
    push_u64(&mut buf, n);
    buf
}

pub(crate) fn kernel_service(name: &str) -> Vec<u8> {
    text(format_args!("kernelService.{name}"))
}

#[cfg(test)]
mod tests {
    use super::push_u64;

    #[test]
    fn decimal_digits_are_those_of_display() {
        let edges = [
            0,
            1,
            9,
            10,
            11,
            99,
            100,
            101,
            999,
            1000,
            1009,
            65_536,
            u64::MAX,
        ];
        let spread = (0..64)
            .map(|bit| (1u64 << bit) - 1)
            .chain((0..64).map(|bit| 1u64 << bit));
        for n in edges.into_iter().chain(spread).chain(0..1000) {
            let mut buf = Vec::new();
            push_u64(&mut buf, n);
            assert_eq!(buf, n.to_string().into_bytes(), "{n}");
        }
    }
}
