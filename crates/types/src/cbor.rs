//! CBOR encoding of the documented wire and disk types (serde + ciborium), with bounded
//! recursion on decode so that hostile bytes give an error, never a stack overflow.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::value::DecodeError;

/// How many CBOR containers (arrays, maps, tags) may nest in one decoded item: ciborium's
/// limit for [`from_slice`] and for frames. A value is checked against it before it is
/// sent (see `Value::check_depth`).
pub(crate) const RECURSION_LIMIT: usize = 256;

/// Encodes `item` as CBOR.
pub fn to_vec<T: Serialize + ?Sized>(item: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    ciborium::into_writer(item, &mut out).expect(
        "invariant: wire types serialize into a Vec; the values they hold passed check_depth",
    );
    out
}

/// Decodes CBOR into `T`.
///
/// # Errors
/// [`DecodeError`] when the bytes are malformed, too deep, or of another shape.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    // A small scratch buffer: the default 4 KiB one is zeroed on every call, which showed
    // in crank profiles. Longer strings fall back to allocation; nesting is capped at
    // `RECURSION_LIMIT`.
    let mut scratch = [0u8; 128];
    ciborium::de::from_reader_with_buffer(bytes, &mut scratch)
        .map_err(|e| DecodeError::new(e.to_string()))
}

/// A cursor over CBOR bytes for the hand-written fast decoders (run-queue items, simple
/// values): it reads heads only in their shortest form (what ciborium writes), and every
/// read that does not fit gives `None`, leaving the general decoder to decide.
pub(crate) struct Reader<'a> {
    pub(crate) bytes: &'a [u8],
    pub(crate) at: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader { bytes, at: 0 }
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let end = self.at.checked_add(n)?;
        let taken = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(taken)
    }

    /// A head of `major` type in its shortest form; its argument.
    pub(crate) fn head(&mut self, major: u8) -> Option<u64> {
        let first = *self.bytes.get(self.at)?;
        if first >> 5 != major {
            return None;
        }
        self.at += 1;
        self.arg(first)
    }

    /// The argument of the head whose first byte is `first` (already read), in its
    /// shortest form only.
    pub(crate) fn arg(&mut self, first: u8) -> Option<u64> {
        let (arg, shortest_from) = match first & 0x1f {
            small @ 0..=23 => (u64::from(small), 0),
            24 => (u64::from(*self.take(1)?.first()?), 24),
            25 => (
                u64::from(u16::from_be_bytes(self.take(2)?.try_into().ok()?)),
                0x100,
            ),
            26 => (
                u64::from(u32::from_be_bytes(self.take(4)?.try_into().ok()?)),
                0x1_0000,
            ),
            27 => (
                u64::from_be_bytes(self.take(8)?.try_into().ok()?),
                0x1_0000_0000,
            ),
            _ => return None,
        };
        (arg >= shortest_from).then_some(arg)
    }
}
