//! A hand-written CBOR codec for [`RunQueueItem`]: every crank pops one item and most push
//! one, and going through serde and ciborium cost about a sixth of a ping-pong crank
//! (issue 14, docs/performance.md).
//!
//! Invariant: [`encode`] writes exactly the bytes `cbor::to_vec` (serde + ciborium) writes
//! for the same item, so the stored layout (and the crank hash) is unchanged; [`decode`]
//! reads only that canonical form itself and hands anything else to serde, so it accepts
//! exactly what serde accepts and means the same by it.

use crate::capdata::{CapData, Message};
use crate::cbor::{self, Reader};
use crate::item::RunQueueItem;
use crate::refs::{EndpointId, KObjectId, KPromiseId, KRef, RemoteId, VatId};
use crate::value::{DecodeError, cbor_head};

/// CBOR major types.
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
/// CBOR `null`: serde's `None`.
const NULL: u8 = 0xf6;

/// Encodes `item` as serde and ciborium would.
pub(super) fn encode(item: &RunQueueItem) -> Vec<u8> {
    let mut out = Vec::with_capacity(96);
    small_head(&mut out, MAP, 1);
    match item {
        RunQueueItem::Send {
            target,
            message,
            sender,
        } => {
            key(&mut out, "Send");
            small_head(&mut out, MAP, if sender.is_some() { 3 } else { 2 });
            key(&mut out, "target");
            kref(&mut out, *target);
            key(&mut out, "message");
            small_head(&mut out, MAP, 2);
            key(&mut out, "methargs");
            small_head(&mut out, MAP, 2);
            key(&mut out, "body");
            cbor_head(&mut out, BYTES, message.methargs.body.len() as u64);
            out.extend_from_slice(&message.methargs.body);
            key(&mut out, "slots");
            cbor_head(&mut out, ARRAY, message.methargs.slots.len() as u64);
            for slot in &message.methargs.slots {
                kref(&mut out, *slot);
            }
            key(&mut out, "result");
            match message.result {
                Some(result) => kref(&mut out, result),
                None => out.push(NULL),
            }
            if let Some(sender) = sender {
                key(&mut out, "sender");
                endpoint(&mut out, *sender);
            }
        }
        RunQueueItem::Notify {
            endpoint: ep,
            promise,
        } => {
            key(&mut out, "Notify");
            small_head(&mut out, MAP, 2);
            key(&mut out, "endpoint");
            endpoint(&mut out, *ep);
            key(&mut out, "promise");
            numbered(&mut out, b"kp", promise.0);
        }
        RunQueueItem::DropExports {
            endpoint: ep,
            objects,
        } => objects_item(&mut out, "DropExports", *ep, objects),
        RunQueueItem::RetireExports {
            endpoint: ep,
            objects,
        } => objects_item(&mut out, "RetireExports", *ep, objects),
        RunQueueItem::RetireImports {
            endpoint: ep,
            objects,
        } => objects_item(&mut out, "RetireImports", *ep, objects),
        RunQueueItem::BringOutYourDead { endpoint: ep } => {
            key(&mut out, "BringOutYourDead");
            small_head(&mut out, MAP, 1);
            key(&mut out, "endpoint");
            endpoint(&mut out, *ep);
        }
    }
    out
}

fn objects_item(out: &mut Vec<u8>, variant: &str, ep: EndpointId, objects: &[KObjectId]) {
    key(out, variant);
    small_head(out, MAP, 2);
    key(out, "endpoint");
    endpoint(out, ep);
    key(out, "objects");
    cbor_head(out, ARRAY, objects.len() as u64);
    for object in objects {
        numbered(out, b"ko", object.0);
    }
}

/// A map key or variant name. Inlined: every name is a constant shorter than 24 bytes, so
/// its head folds to one constant byte and the copy to a few stores (the out-of-line
/// head and copy were about 45 instructions a name, 6 to 8 names an item).
#[inline]
fn key(out: &mut Vec<u8>, name: &str) {
    small_head(out, TEXT, name.len());
    out.extend_from_slice(name.as_bytes());
}

/// [`cbor_head`] for an argument known at the call site: one byte below 24.
#[inline]
fn small_head(out: &mut Vec<u8>, major: u8, arg: usize) {
    match u8::try_from(arg) {
        Ok(small) if small < 24 => out.push((major << 5) | small),
        _ => cbor_head(out, major, arg as u64),
    }
}

fn kref(out: &mut Vec<u8>, kref: KRef) {
    match kref {
        KRef::Object(KObjectId(n)) => numbered(out, b"ko", n),
        KRef::Promise(KPromiseId(n)) => numbered(out, b"kp", n),
    }
}

fn endpoint(out: &mut Vec<u8>, ep: EndpointId) {
    match ep {
        EndpointId::Vat(VatId(n)) => numbered(out, b"v", u64::from(n)),
        EndpointId::Remote(RemoteId(n)) => numbered(out, b"r", u64::from(n)),
    }
}

/// The text `<prefix><n>` (an id's `Display`), written without `fmt`.
fn numbered(out: &mut Vec<u8>, prefix: &[u8], mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    let digits = &digits[at..];
    small_head(out, TEXT, prefix.len() + digits.len());
    out.extend_from_slice(prefix);
    out.extend_from_slice(digits);
}

/// Decodes an item: the canonical form here, anything else through serde.
///
/// # Errors
/// [`DecodeError`] as `cbor::from_slice` gives it.
pub(super) fn decode(bytes: &[u8]) -> Result<RunQueueItem, DecodeError> {
    let mut reader = Reader::new(bytes);
    match reader.item() {
        Some(item) if reader.at == bytes.len() => Ok(item),
        _ => cbor::from_slice(bytes),
    }
}

/// A cursor over canonical bytes; every method returns `None` at the first byte that is
/// not the canonical form, and the caller then leaves the bytes to serde.
impl<'a> Reader<'a> {
    fn item(&mut self) -> Option<RunQueueItem> {
        self.expect_head(MAP, 1)?;
        match self.text_bytes()? {
            b"Send" => {
                let n_fields = self.head(MAP)?;
                if n_fields != 2 && n_fields != 3 {
                    return None;
                }
                self.key("target")?;
                let target = self.parsed(KRef::from_ascii)?;
                self.key("message")?;
                self.expect_head(MAP, 2)?;
                self.key("methargs")?;
                self.expect_head(MAP, 2)?;
                self.key("body")?;
                let n_body = usize::try_from(self.head(BYTES)?).ok()?;
                let body = self.take(n_body)?.to_vec();
                self.key("slots")?;
                let n_slots = usize::try_from(self.head(ARRAY)?).ok()?;
                // Each slot takes at least one byte: a count past the input is not trusted.
                let mut slots = Vec::with_capacity(n_slots.min(self.bytes.len() - self.at));
                for _ in 0..n_slots {
                    slots.push(self.parsed(KRef::from_ascii)?);
                }
                self.key("result")?;
                let result = if self.bytes.get(self.at) == Some(&NULL) {
                    self.at += 1;
                    None
                } else {
                    Some(self.parsed(KRef::from_ascii)?)
                };
                let sender = if n_fields == 3 {
                    self.key("sender")?;
                    Some(self.parsed(EndpointId::from_ascii)?)
                } else {
                    None
                };
                Some(RunQueueItem::Send {
                    target,
                    message: Message {
                        methargs: CapData { body, slots },
                        result,
                    },
                    sender,
                })
            }
            b"Notify" => {
                self.expect_head(MAP, 2)?;
                self.key("endpoint")?;
                let endpoint = self.parsed(EndpointId::from_ascii)?;
                self.key("promise")?;
                let promise = self.parsed(KPromiseId::from_ascii)?;
                Some(RunQueueItem::Notify { endpoint, promise })
            }
            // The GC items are synthesized, not stored (spec §6.1): serde reads them.
            _ => None,
        }
    }

    fn expect_head(&mut self, major: u8, arg: u64) -> Option<()> {
        (self.head(major)? == arg).then_some(())
    }

    /// A text's bytes, not checked as UTF-8: for comparing with known names, where equal
    /// bytes are valid UTF-8 anyway (the check was about 0.4k instructions a crank).
    fn text_bytes(&mut self) -> Option<&'a [u8]> {
        let len = usize::try_from(self.head(TEXT)?).ok()?;
        self.take(len)
    }

    /// Reads the text `name`. Inlined with a fast path for the canonical form, a one-byte
    /// head (every name is shorter than 24 bytes) followed by the name; anything else takes
    /// the general path from the same place.
    #[inline]
    fn key(&mut self, name: &str) -> Option<()> {
        let end = self.at + 1 + name.len();
        if let (Ok(len @ 0..24), Some(found)) =
            (u8::try_from(name.len()), self.bytes.get(self.at..end))
            && found[0] == (TEXT << 5) | len
            && &found[1..] == name.as_bytes()
        {
            self.at = end;
            return Some(());
        }
        (self.text_bytes()? == name.as_bytes()).then_some(())
    }

    /// A text parsed as serde's `Deserialize` for the id types parses it (`FromStr`), by
    /// `from`, the type's `from_ascii` (the bytes as they are: no UTF-8 check and no `str`
    /// parsing, about 0.2k instructions an id, callgrind); a text that does not parse is
    /// left to serde, for its error.
    fn parsed<T>(&mut self, from: fn(&[u8]) -> Option<T>) -> Option<T> {
        from(self.text_bytes()?)
    }
}
