//! The key layout of the kernel tables. Everything of one endpoint lives under `<ep>.`, so
//! one prefix scan lists it (c-list `<ep>.c.`, vat store `<ep>.vs.`, counters `<ep>.n.`).
//!
//! Invariant: a vat-store key is always appended after the fixed `<vat>.vs.` prefix, so no
//! key a vat chooses can name another vat's or the kernel's keys.

use ocap_types::{
    EndpointId, ExportId, KObjectId, KPromiseId, KRef, RemoteId, SubclusterId, VRef, VatId,
};

mod buf;

#[cfg(test)]
use buf::INLINE_KEY;
pub(crate) use buf::{Key, KeySink};

pub(crate) fn text(parts: std::fmt::Arguments<'_>) -> Vec<u8> {
    parts.to_string().into_bytes()
}

/// A key of the pieces `parts`, in order.
fn key_of(parts: &[&[u8]]) -> Key {
    let mut key = Key::new();
    for part in parts {
        key.put(part);
    }
    key
}

/// Appends the decimal digits of `n`. The hot keys (objects, promises, c-list entries) are
/// built by hand: going through `fmt` showed in crank profiles.
#[inline]
fn push_u64(buf: &mut impl KeySink, n: u64) {
    buf.put_u64(n);
}

/// A piece of a key with the same text as its `Display`.
pub(crate) trait KeyPart {
    fn push_to(&self, buf: &mut impl KeySink);
}

impl KeyPart for EndpointId {
    // Remotes by hand too: their `to_string` arm made this too big to inline, and every
    // c-list key then called it. Always inlined, with the one-digit ids (vats are numbered
    // from 1, and a kernel runs a few) written without the digit writer: a test for
    // `n < 10` in every `push_u64` measured worse, here it saves that call in each c-list
    // key.
    #[inline(always)]
    fn push_to(&self, buf: &mut impl KeySink) {
        let (tag, n) = match self {
            EndpointId::Vat(VatId(n)) => (b'v', *n),
            EndpointId::Remote(RemoteId(n)) => (b'r', *n),
        };
        if n < 10 {
            buf.put(&[tag, b'0' + n as u8]);
        } else {
            buf.put(&[tag]);
            push_u64(buf, u64::from(n));
        }
    }
}

impl KeyPart for KRef {
    #[inline]
    fn push_to(&self, buf: &mut impl KeySink) {
        let (tag, n) = match self {
            KRef::Object(KObjectId(n)) => (b"ko", *n),
            KRef::Promise(KPromiseId(n)) => (b"kp", *n),
        };
        buf.put(tag);
        push_u64(buf, n);
    }
}

impl KeyPart for VRef {
    // Always inlined, as `clist` is, with the rare arm out of line (`push_text`).
    #[inline(always)]
    fn push_to(&self, buf: &mut impl KeySink) {
        let (tag, n): (&[u8], u64) = match self {
            VRef::ExportObject(ExportId::Ephemeral(n)) => (b"o+", *n),
            VRef::ImportObject(n) => (b"o-", *n),
            VRef::ExportPromise(n) => (b"p+", *n),
            VRef::ImportPromise(n) => (b"p-", *n),
            durable_or_virtual => return push_text(buf, durable_or_virtual),
        };
        buf.put(tag);
        push_u64(buf, n);
    }
}

/// Appends the `Display` text of `r`: for the refs not built by hand (durable and virtual
/// exports). Out of line and cold, so that the hand-built arms around it stay small enough
/// to inline into every c-list key.
#[cold]
#[inline(never)]
fn push_text(buf: &mut impl KeySink, r: impl std::fmt::Display) {
    buf.put(r.to_string().as_bytes());
}

pub(crate) const COUNTER_OBJECT: &str = "n.ko";
pub(crate) const COUNTER_PROMISE: &str = "n.kp";
pub(crate) const COUNTER_VAT: &str = "n.v";
pub(crate) const COUNTER_SUBCLUSTER: &str = "n.s";

#[inline]
pub(crate) fn object(id: KObjectId) -> Key {
    let mut buf = Key::new();
    KRef::Object(id).push_to(&mut buf);
    buf
}

/// A promise's record, its refcount included (schema 8; up to 7 the count was `kpN.rc`).
#[inline]
pub(crate) fn promise(id: KPromiseId) -> Key {
    let mut buf = Key::new();
    KRef::Promise(id).push_to(&mut buf);
    buf
}

/// `<ep>` and then `rest` (which starts with the `.`), in one buffer. Always inlined, so
/// that `rest` is a piece of known length and the key is built where it is used:
/// building on `endpoint_prefix` and `clist_prefix` copied the key out of each.
#[inline(always)]
fn endpoint_key(ep: EndpointId, rest: &[u8]) -> Key {
    let mut buf = Key::new();
    ep.push_to(&mut buf);
    buf.put(rest);
    buf
}

#[inline]
pub(crate) fn endpoint_prefix(ep: EndpointId) -> Key {
    endpoint_key(ep, b".")
}

#[inline]
pub(crate) fn clist_prefix(ep: EndpointId) -> Key {
    endpoint_key(ep, b".c.")
}

/// `<ep>.c.<ref>`: nine of these a ping-pong crank. Built in one buffer, as
/// `endpoint_key` builds its keys, and always inlined, so that the key is built where it
/// is used rather than copied out of a call (building on `endpoint_key` also copied it).
#[inline(always)]
pub(crate) fn clist(ep: EndpointId, r: impl KeyPart) -> Key {
    let mut buf = Key::new();
    ep.push_to(&mut buf);
    buf.put(b".c.");
    r.push_to(&mut buf);
    buf
}

/// The importer index (schema version 5): `imp.<ko>.<ep>` (empty value) for every endpoint
/// whose c-list imports object `<ko>` (`o-N`), so that the importers of an object are one
/// prefix scan away instead of a lookup in every endpoint's c-list.
pub(crate) const IMPORTER_PREFIX: &[u8] = b"imp.";

pub(crate) fn importers_prefix(id: KObjectId) -> Key {
    let mut buf = key_of(&[IMPORTER_PREFIX]);
    KRef::Object(id).push_to(&mut buf);
    buf.put(b".");
    buf
}

pub(crate) fn importer(id: KObjectId, ep: EndpointId) -> Key {
    let mut buf = importers_prefix(id);
    ep.push_to(&mut buf);
    buf
}

pub(crate) fn endpoint_counter(ep: EndpointId, promise: bool) -> Key {
    endpoint_key(ep, if promise { b".n.p" } else { b".n.o" })
}

/// How many messages the endpoint sent that still wait in the run queue or a promise's
/// queue (decimal); absent when none do.
pub(crate) fn queued_count(ep: EndpointId) -> Key {
    endpoint_key(ep, b".qm")
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

pub(crate) fn pin(kref: KRef) -> Key {
    let mut buf = key_of(&[PIN_PREFIX]);
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

pub(crate) fn reap_member(ep: EndpointId) -> Key {
    let mut buf = key_of(&[REAP_MEMBER_PREFIX]);
    ep.push_to(&mut buf);
    buf
}

pub(crate) const TERMINATED: &[u8] = b"terminatedVats";

/// The head of the crank hash chain (32 bytes, docs/store.md "Crank hash"); written in
/// each crank's own transaction, and left out of the digest of the writes it chains.
pub(crate) const CRANK_HASH: &[u8] = b"crankHash";

/// Appends `queue.<name>.`, the start of every key of queue `name`. The queue keys each
/// build on it in one buffer: building on a returned prefix copied the key out of it.
#[inline(always)]
fn push_queue_prefix(buf: &mut Key, name: &str) {
    buf.put(b"queue.");
    buf.put(name.as_bytes());
    buf.put(b".");
}

#[inline]
pub(crate) fn queue_head(name: &str) -> Key {
    let mut buf = Key::new();
    push_queue_prefix(&mut buf, name);
    buf.put(b"head");
    buf
}

#[inline]
pub(crate) fn queue_tail(name: &str) -> Key {
    let mut buf = Key::new();
    push_queue_prefix(&mut buf, name);
    buf.put(b"tail");
    buf
}

#[inline]
pub(crate) fn queue_entry(name: &str, index: u64) -> Key {
    let mut buf = Key::new();
    push_queue_prefix(&mut buf, name);
    push_u64(&mut buf, index);
    buf
}

/// The text of a kref or vref, as c-list values hold them.
pub(crate) fn part(r: impl KeyPart) -> Key {
    let mut buf = Key::new();
    r.push_to(&mut buf);
    buf
}

/// A c-list entry's kref side value: `R <vref>` (reachable) or `_ <vref>`.
pub(crate) fn flagged(reachable: bool, vref: VRef) -> Key {
    let mut buf = Key::new();
    buf.put(if reachable { b"R " } else { b"_ " });
    vref.push_to(&mut buf);
    buf
}

/// The text of a kref or vref as a `String` (its `Display`, without `fmt`).
pub(crate) fn part_text(r: impl KeyPart) -> String {
    String::from_utf8(part(r).to_vec()).expect("invariant: key parts are ASCII")
}

/// The decimal text of `n`, as values of counters and queue bounds are stored.
pub(crate) fn decimal(n: u64) -> Key {
    let mut buf = Key::new();
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
    fn hand_built_keys_are_those_of_their_text_forms() {
        use ocap_types::{EndpointId, KPromiseId, KRef, RemoteId, VatId};
        for ep in [EndpointId::Vat(VatId(7)), EndpointId::Remote(RemoteId(12))] {
            assert_eq!(
                super::queued_count(ep).to_vec(),
                format!("{ep}.qm").into_bytes()
            );
            for (promise, kind) in [(true, 'p'), (false, 'o')] {
                assert_eq!(
                    super::endpoint_counter(ep, promise).to_vec(),
                    format!("{ep}.n.{kind}").into_bytes()
                );
            }
        }
        let kref = KRef::Promise(KPromiseId(1234));
        assert_eq!(super::part_text(kref), kref.to_string());
    }

    #[test]
    fn a_key_longer_than_its_inline_room_moves_to_the_heap_whole() {
        let long_name = "x".repeat(100);
        let mut expected = b"queue.".to_vec();
        expected.extend_from_slice(long_name.as_bytes());
        expected.extend_from_slice(b".head");
        assert_eq!(&*super::queue_head(&long_name), expected.as_slice());
        let exact = "y".repeat(super::INLINE_KEY - b"queue..".len());
        let mut prefix = super::Key::new();
        super::push_queue_prefix(&mut prefix, &exact);
        assert_eq!(prefix.len(), super::INLINE_KEY);
        assert_eq!(
            &*super::queue_entry(&exact, 12),
            format!("queue.{exact}.12").as_bytes()
        );
    }

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

    /// Every power of ten, its neighbours and `u64::MAX`: the digits a [`super::Key`]
    /// writes in place (a window of `MAX_DIGITS` bytes) are those of `Display`, whether
    /// the window fits inline, only the digits do, or the key is already on the heap.
    #[test]
    fn digits_written_in_place_are_those_of_display() {
        use ocap_types::{
            EndpointId, ExportId, KObjectId, KPromiseId, KRef, RemoteId, VRef, VatId,
        };
        let numbers = (0..20)
            .map(|exp| 10u64.pow(exp))
            .flat_map(|p| [p - 1, p, p + 1])
            .chain([u64::MAX - 1, u64::MAX]);
        for n in numbers {
            let low = u32::try_from(n % (1 << 32)).unwrap();
            let (vat, remote) = (
                EndpointId::Vat(VatId(low)),
                EndpointId::Remote(RemoteId(low)),
            );
            let kref = KRef::Promise(KPromiseId(n));
            let object = KRef::Object(KObjectId(n));
            let vref = VRef::ImportObject(n);
            let durable = VRef::ExportObject(ExportId::Durable {
                kind: n,
                instance: n,
                facet: Some(low),
            });
            assert_eq!(
                &*super::promise(KPromiseId(n)),
                format!("{kref}").as_bytes()
            );
            assert_eq!(
                &*super::object(KObjectId(n)),
                format!("{object}").as_bytes()
            );
            assert_eq!(
                &*super::clist(vat, kref),
                format!("{vat}.c.{kref}").as_bytes()
            );
            assert_eq!(
                &*super::clist(vat, vref),
                format!("{vat}.c.{vref}").as_bytes()
            );
            assert_eq!(
                &*super::clist(vat, durable),
                format!("{vat}.c.{durable}").as_bytes()
            );
            assert_eq!(
                &*super::clist(remote, kref),
                format!("{remote}.c.{kref}").as_bytes()
            );
            assert_eq!(&*super::decimal(n), n.to_string().as_bytes());
            // Names (after `queue.` and before `.`) that leave the digits' window less
            // room than it needs, exactly the room of the digits, one byte less, and none
            // (so the key spills before the digits).
            let room = super::INLINE_KEY - b"queue..".len();
            let digits = n.to_string().len();
            for name_len in [room - 19, room - digits, room - digits + 1, room + 1] {
                let name = "q".repeat(name_len);
                assert_eq!(
                    &*super::queue_entry(&name, n),
                    format!("queue.{name}.{n}").as_bytes(),
                    "{name_len} {n}"
                );
            }
        }
    }
}
