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
