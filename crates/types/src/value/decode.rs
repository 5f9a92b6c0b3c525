//! The fast path of [`Value::from_cbor`]: the shapes a message body usually has (lists,
//! strings, integers, byte strings, null, booleans, slots) read straight from the bytes,
//! where the general path builds a ciborium tree first and converts it (about 2.5k
//! instructions of a ping-pong crank, issue 14).
//!
//! Invariant: [`simple`] returns a value only where the general path returns the same
//! value; anything else (maps, floats, other tags, indefinite lengths, a length not in its
//! shortest form, invalid UTF-8, trailing bytes, nesting past [`FAST_DEPTH`]) gives
//! `None`, and the general path decides, errors included. Recursion is bounded by
//! `FAST_DEPTH`.

use super::{TAG_SLOT, Value};
use crate::cbor::Reader;

/// Deeper values take the general path, which walks without recursing.
const FAST_DEPTH: usize = 16;

/// CBOR major types.
const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const TAG: u8 = 6;
const SIMPLE: u8 = 7;

const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;

/// The value `bytes` encode, if they are one of the simple shapes, whole.
pub(super) fn simple(bytes: &[u8]) -> Option<Value> {
    let mut reader = Reader::new(bytes);
    let value = reader.value(0)?;
    (reader.at == bytes.len()).then_some(value)
}

impl Reader<'_> {
    fn value(&mut self, depth: usize) -> Option<Value> {
        if depth > FAST_DEPTH {
            return None;
        }
        let first = *self.bytes.get(self.at)?;
        self.at += 1;
        match first >> 5 {
            UNSIGNED => i64::try_from(self.arg(first)?).ok().map(Value::Int),
            NEGATIVE => {
                let n = i64::try_from(self.arg(first)?).ok()?;
                Some(Value::Int(-1 - n))
            }
            BYTES => {
                let len = usize::try_from(self.arg(first)?).ok()?;
                Some(Value::Bytes(self.take(len)?.to_vec()))
            }
            TEXT => self.owned_text(first).map(Value::Str),
            ARRAY => {
                let len = usize::try_from(self.arg(first)?).ok()?;
                // Each item takes at least one byte: a count past the input is not trusted.
                let mut items = Vec::with_capacity(len.min(self.bytes.len() - self.at));
                for _ in 0..len {
                    items.push(self.value(depth + 1)?);
                }
                Some(Value::List(items))
            }
            TAG if self.arg(first)? == TAG_SLOT => self.slot(),
            SIMPLE => match first {
                FALSE => Some(Value::Bool(false)),
                TRUE => Some(Value::Bool(true)),
                NULL => Some(Value::Null),
                _ => None,
            },
            _ => None,
        }
    }

    /// A slot's payload: `[index, null | text]`.
    fn slot(&mut self) -> Option<Value> {
        let head = *self.bytes.get(self.at)?;
        if head != (ARRAY << 5) | 2 {
            return None;
        }
        self.at += 1;
        let first = *self.bytes.get(self.at)?;
        self.at += 1;
        if first >> 5 != UNSIGNED {
            return None;
        }
        let index = u32::try_from(self.arg(first)?).ok()?;
        let second = *self.bytes.get(self.at)?;
        self.at += 1;
        let iface = match second {
            NULL => None,
            _ if second >> 5 == TEXT => Some(self.owned_text(second)?),
            _ => return None,
        };
        Some(Value::Slot { index, iface })
    }

    fn owned_text(&mut self, first: u8) -> Option<String> {
        let len = usize::try_from(self.arg(first)?).ok()?;
        std::str::from_utf8(self.take(len)?).ok().map(str::to_owned)
    }
}
