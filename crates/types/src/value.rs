//! The passable value model and its deterministic CBOR encoding.
//!
//! Plain data maps onto plain CBOR (null, bool, integer, float, text, bytes, array, map with
//! text keys sorted); the kernel's own notions use CBOR tags from a private range so that a
//! worker written in another language can read and write them (see `docs/vat-protocol.md`).
//!
//! Invariant: no input of any depth can overflow the stack. Decoding refuses nesting past
//! [`MAX_DEPTH`]; encoding, cloning, comparing, slot walks, [`Value::to_json_string`] and
//! [`Value::dispose`] use explicit stacks; `Display` and `Debug` elide what lies past
//! [`MAX_DEPTH`]; the `serde_json` conversions refuse it. What is left is
//! Rust's own drop glue, which recurses: a value the kernel is handed from outside is
//! checked with [`Value::check_depth`] before it is used, and a refused one is torn down
//! with [`Value::dispose`].

mod decode;
mod encode;
mod json;
mod show;
mod walk;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use ciborium::Value as Cbor;

pub(crate) use encode::head as cbor_head;

pub use json::JsonError;

/// CBOR tag of a reference to `slots[index]`: `[index, iface | null]`.
pub const TAG_SLOT: u64 = 27_001;
/// CBOR tag of an error value: `[name, message]`.
pub const TAG_ERROR: u64 = 27_002;
/// CBOR tag of a tagged value: `[tag, payload]`.
pub const TAG_TAGGED: u64 = 27_003;
/// CBOR tag of an integer outside `i64`: its decimal text.
pub const TAG_BIGINT: u64 = 27_004;
/// CBOR tag of `undefined`: payload null.
pub const TAG_UNDEFINED: u64 = 27_005;

/// Deepest nesting a decoder accepts; deeper input is refused, never a stack overflow.
pub const MAX_DEPTH: usize = 128;

/// A passable value. References appear as [`Value::Slot`], an index into the slots of the
/// [`crate::CapData`] that carries the value.
///
/// Two renderings: `Display` is the short text of logs, termination reasons and rejection
/// messages (strings bare, references `[object Iface]`, as the reference kernel writes
/// them); [`Value::to_json_string`] is the JSON form hosts print and read back (strings
/// quoted, references `{"@slot": [index, iface]}`).
///
/// `Clone`, `PartialEq`, `Debug` and `Display` work at any depth (see the module docs);
/// dropping does not: tear down a value that may be nested deeper than [`MAX_DEPTH`] with
/// [`Value::dispose`].
#[derive(Default)]
pub enum Value {
    /// The absence of a value.
    Undefined,
    /// `null`.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A float.
    Float(f64),
    /// An integer that does not fit in `i64`.
    BigInt(i128),
    /// A text string.
    Str(String),
    /// A byte string.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A record with text keys, kept sorted.
    Record(BTreeMap<String, Value>),
    /// A reference: the slot it names, and an optional interface name for display.
    Slot {
        /// Index into the capdata's slots.
        index: u32,
        /// Interface name (for display only).
        iface: Option<String>,
    },
    /// An error.
    Error {
        /// The error's kind, `"Error"` for kernel errors.
        name: String,
        /// The message.
        message: String,
    },
    /// A value with an application tag.
    Tagged {
        /// The tag.
        tag: String,
        /// The payload.
        payload: Box<Value>,
    },
}

/// Bytes that are not a valid encoding of a [`Value`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed value encoding: {reason}")]
pub struct DecodeError {
    reason: String,
}

impl DecodeError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

/// A value nested deeper than a receiver can decode (see [`Value::check_depth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("value nested too deeply: a receiver decodes at most {MAX_DEPTH} levels")]
#[non_exhaustive]
pub struct DepthError;

impl Value {
    /// An `Error` value named `Error` with `message`.
    pub fn error(message: impl Into<String>) -> Value {
        Value::Error {
            name: "Error".to_owned(),
            message: message.into(),
        }
    }

    /// A text value.
    pub fn str(text: impl Into<String>) -> Value {
        Value::Str(text.into())
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(items) => Some(items),
            _ => None,
        }
    }

    /// Encodes the value as deterministic CBOR, at any depth (the writer keeps its own
    /// stack). A value deeper than [`MAX_DEPTH`] encodes, but no decoder accepts it.
    pub fn to_cbor(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32);
        encode::write(self, &mut out);
        out
    }

    /// Checks that a receiver can decode the value, alone or inside a wire type: at most
    /// [`MAX_DEPTH`] levels deep, and within the CBOR decoder's own nesting limit. Walks
    /// without recursion and stops at the first level too deep, so it is cheap on any input.
    ///
    /// # Errors
    /// [`DepthError`] when the value is nested too deeply.
    pub fn check_depth(&self) -> Result<(), DepthError> {
        walk::check_depth(self, 0, 0)
    }

    /// As [`Value::check_depth`], for a value found `depth` levels down inside `containers`
    /// open CBOR containers of the same encoding (an argument inside methargs).
    pub(crate) fn check_depth_at(&self, depth: usize, containers: usize) -> Result<(), DepthError> {
        walk::check_depth(self, depth, containers)
    }

    /// Drops the value without recursion, whatever its depth. Rust's drop glue recurses
    /// once per level, so dropping a value nested a hundred thousand levels deep overflows
    /// the stack; this takes the value apart level by level instead.
    pub fn dispose(self) {
        walk::dispose(self);
    }

    /// Decodes a value, refusing malformed, over-deep or non-canonical input with an error.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are not a valid value encoding.
    pub fn from_cbor(bytes: &[u8]) -> Result<Value, DecodeError> {
        match decode::simple(bytes) {
            Some(value) => Ok(value),
            None => Value::from_cbor_general(bytes),
        }
    }

    /// [`Value::from_cbor`] through a ciborium tree: every shape, every error.
    fn from_cbor_general(bytes: &[u8]) -> Result<Value, DecodeError> {
        let cbor: Cbor = crate::cbor::from_slice(bytes)?;
        Value::from_cbor_value(cbor, 0)
    }

    /// The value as a ciborium tree, for serde. Recursive: only for values that passed
    /// [`Value::check_depth`].
    fn to_cbor_value(&self) -> Cbor {
        let tagged = |tag, payload| Cbor::Tag(tag, Box::new(payload));
        match self {
            Value::Undefined => tagged(TAG_UNDEFINED, Cbor::Null),
            Value::Null => Cbor::Null,
            Value::Bool(b) => Cbor::Bool(*b),
            Value::Int(n) => Cbor::Integer((*n).into()),
            Value::Float(x) => Cbor::Float(*x),
            Value::BigInt(n) => tagged(TAG_BIGINT, Cbor::Text(n.to_string())),
            Value::Str(s) => Cbor::Text(s.clone()),
            Value::Bytes(b) => Cbor::Bytes(b.clone()),
            Value::List(items) => Cbor::Array(items.iter().map(Value::to_cbor_value).collect()),
            Value::Record(fields) => Cbor::Map(
                fields
                    .iter()
                    .map(|(k, v)| (Cbor::Text(k.clone()), v.to_cbor_value()))
                    .collect(),
            ),
            Value::Slot { index, iface } => tagged(
                TAG_SLOT,
                Cbor::Array(vec![
                    Cbor::Integer((*index).into()),
                    iface.clone().map_or(Cbor::Null, Cbor::Text),
                ]),
            ),
            Value::Error { name, message } => tagged(
                TAG_ERROR,
                Cbor::Array(vec![Cbor::Text(name.clone()), Cbor::Text(message.clone())]),
            ),
            Value::Tagged { tag, payload } => tagged(
                TAG_TAGGED,
                Cbor::Array(vec![Cbor::Text(tag.clone()), payload.to_cbor_value()]),
            ),
        }
    }

    fn from_cbor_value(cbor: Cbor, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::new("nesting too deep"));
        }
        Ok(match cbor {
            Cbor::Null => Value::Null,
            Cbor::Bool(b) => Value::Bool(b),
            Cbor::Integer(n) => {
                let wide = i128::from(n);
                i64::try_from(wide).map_or(Value::BigInt(wide), Value::Int)
            }
            Cbor::Float(x) => Value::Float(x),
            Cbor::Text(s) => Value::Str(s),
            Cbor::Bytes(b) => Value::Bytes(b),
            Cbor::Array(items) => Value::List(
                items
                    .into_iter()
                    .map(|v| Value::from_cbor_value(v, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Cbor::Map(entries) => {
                let mut fields = BTreeMap::new();
                for (k, v) in entries {
                    let Cbor::Text(key) = k else {
                        return Err(DecodeError::new("record key is not text"));
                    };
                    let value = Value::from_cbor_value(v, depth + 1)?;
                    if fields.insert(key, value).is_some() {
                        return Err(DecodeError::new("duplicate record key"));
                    }
                }
                Value::Record(fields)
            }
            Cbor::Tag(tag, payload) => Value::from_tag(tag, *payload, depth)?,
            _ => return Err(DecodeError::new("unsupported CBOR item")),
        })
    }

    fn from_tag(tag: u64, payload: Cbor, depth: usize) -> Result<Value, DecodeError> {
        let pair = |payload: Cbor| match payload {
            Cbor::Array(mut items) if items.len() == 2 => {
                let second = items.pop().expect("invariant: length checked");
                let first = items.pop().expect("invariant: length checked");
                Ok((first, second))
            }
            _ => Err(DecodeError::new(format!(
                "tag {tag} needs a two-item array"
            ))),
        };
        let text = |v: Cbor, what: &str| match v {
            Cbor::Text(s) => Ok(s),
            _ => Err(DecodeError::new(format!("{what} is not text"))),
        };
        Ok(match tag {
            TAG_UNDEFINED => Value::Undefined,
            TAG_BIGINT => {
                let digits = text(payload, "bigint")?;
                Value::BigInt(
                    digits
                        .parse()
                        .map_err(|_| DecodeError::new("bigint is not a decimal integer"))?,
                )
            }
            TAG_SLOT => {
                let (index, iface) = pair(payload)?;
                let index = match index {
                    Cbor::Integer(n) => {
                        u32::try_from(n).map_err(|_| DecodeError::new("slot index out of range"))?
                    }
                    _ => return Err(DecodeError::new("slot index is not an integer")),
                };
                let iface = match iface {
                    Cbor::Null => None,
                    other => Some(text(other, "slot interface")?),
                };
                Value::Slot { index, iface }
            }
            TAG_ERROR => {
                let (name, message) = pair(payload)?;
                Value::Error {
                    name: text(name, "error name")?,
                    message: text(message, "error message")?,
                }
            }
            TAG_TAGGED => {
                let (tag, inner) = pair(payload)?;
                Value::Tagged {
                    tag: text(tag, "tag name")?,
                    payload: Box::new(Value::from_cbor_value(inner, depth + 1)?),
                }
            }
            other => return Err(DecodeError::new(format!("unknown tag {other}"))),
        })
    }

    /// Calls `visit` for every slot index in the value, in encoding order, at any depth.
    pub fn for_each_slot(&self, visit: &mut impl FnMut(u32)) {
        walk::for_each_slot(self, visit);
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<i64> for Value {
    fn from(n: i64) -> Self {
        Value::Int(n)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Self {
        Value::Bool(b)
    }
}

impl<T: Into<Value>> From<Vec<T>> for Value {
    fn from(items: Vec<T>) -> Self {
        Value::List(items.into_iter().map(Into::into).collect())
    }
}

/// Serializes through the same CBOR data model as [`Value::to_cbor`], so a value embedded in a
/// wire type has the same bytes as a value encoded on its own.
///
/// A value deeper than a receiver decodes is refused with an error (checked before the
/// recursive conversion, which is therefore bounded).
impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.check_depth().map_err(serde::ser::Error::custom)?;
        self.to_cbor_value().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let cbor = Cbor::deserialize(deserializer)?;
        Value::from_cbor_value(cbor, 0).map_err(serde::de::Error::custom)
    }
}
