//! CBOR encoding of the documented wire and disk types (serde + ciborium), with bounded
//! recursion on decode so that hostile bytes give an error, never a stack overflow.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::value::{DecodeError, MAX_DEPTH};

/// Encodes `item` as CBOR.
pub fn to_vec<T: Serialize + ?Sized>(item: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    ciborium::into_writer(item, &mut out)
        .expect("invariant: documented wire types always serialize into a Vec");
    out
}

/// Decodes CBOR into `T`.
///
/// # Errors
/// [`DecodeError`] when the bytes are malformed, too deep, or of another shape.
pub fn from_slice<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    ciborium::de::from_reader_with_recursion_limit(bytes, MAX_DEPTH * 2 + 8)
        .map_err(|e| DecodeError::new(e.to_string()))
}
