//! The deterministic CBOR writer behind [`Value::to_cbor`]. It keeps its own stack of open
//! lists and records instead of recursing, so a value of any depth encodes; the bytes are
//! those ciborium writes for the same value (checked against it in the tests).

use std::collections::btree_map;
use std::slice;

use super::{TAG_BIGINT, TAG_ERROR, TAG_SLOT, TAG_TAGGED, TAG_UNDEFINED, Value};

/// CBOR major types.
const UNSIGNED: u8 = 0;
const NEGATIVE: u8 = 1;
const BYTES: u8 = 2;
const TEXT: u8 = 3;
const ARRAY: u8 = 4;
const MAP: u8 = 5;
const TAG: u8 = 6;

const FALSE: u8 = 0xf4;
const TRUE: u8 = 0xf5;
const NULL: u8 = 0xf6;

/// A list or record whose items are still being written.
enum Open<'a> {
    Items(slice::Iter<'a, Value>),
    Fields(btree_map::Iter<'a, String, Value>),
}

/// Appends the encoding of `value` to `out`.
pub(super) fn write(value: &Value, out: &mut Vec<u8>) {
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut next = Some(value);
    loop {
        if let Some(value) = next.take() {
            next = write_head(value, out, &mut open);
            if next.is_some() {
                continue;
            }
        }
        // The value is written, or opened: find the next one to write.
        let Some(top) = open.last_mut() else {
            return;
        };
        match top {
            Open::Items(items) => match items.next() {
                Some(item) => next = Some(item),
                None => {
                    open.pop();
                }
            },
            Open::Fields(fields) => match fields.next() {
                Some((key, value)) => {
                    text(out, key);
                    next = Some(value);
                }
                None => {
                    open.pop();
                }
            },
        }
    }
}

/// Writes a leaf whole, or the start of a container: a list or record is pushed on `open`,
/// and a tagged value's payload is returned to be written next.
fn write_head<'a>(
    value: &'a Value,
    out: &mut Vec<u8>,
    open: &mut Vec<Open<'a>>,
) -> Option<&'a Value> {
    match value {
        Value::Undefined => {
            head(out, TAG, TAG_UNDEFINED);
            out.push(NULL);
        }
        Value::Null => out.push(NULL),
        Value::Bool(b) => out.push(if *b { TRUE } else { FALSE }),
        Value::Int(n) => int(out, *n),
        Value::Float(x) => ciborium::into_writer(x, &mut *out)
            .expect("invariant: writing CBOR into a Vec cannot fail"),
        Value::BigInt(n) => {
            head(out, TAG, TAG_BIGINT);
            text(out, &n.to_string());
        }
        Value::Str(s) => text(out, s),
        Value::Bytes(b) => {
            head(out, BYTES, len(b.len()));
            out.extend_from_slice(b);
        }
        Value::List(items) => {
            head(out, ARRAY, len(items.len()));
            open.push(Open::Items(items.iter()));
        }
        Value::Record(fields) => {
            head(out, MAP, len(fields.len()));
            open.push(Open::Fields(fields.iter()));
        }
        Value::Slot { index, iface } => {
            head(out, TAG, TAG_SLOT);
            head(out, ARRAY, 2);
            head(out, UNSIGNED, u64::from(*index));
            match iface {
                Some(iface) => text(out, iface),
                None => out.push(NULL),
            }
        }
        Value::Error { name, message } => {
            head(out, TAG, TAG_ERROR);
            head(out, ARRAY, 2);
            text(out, name);
            text(out, message);
        }
        Value::Tagged { tag, payload } => {
            head(out, TAG, TAG_TAGGED);
            head(out, ARRAY, 2);
            text(out, tag);
            return Some(payload);
        }
    }
    None
}

/// A major type with its argument in the shortest form.
pub(crate) fn head(out: &mut Vec<u8>, major: u8, arg: u64) {
    let major = major << 5;
    match arg {
        0..=23 => out.push(major | arg as u8),
        24..=0xff => out.extend_from_slice(&[major | 24, arg as u8]),
        0x100..=0xffff => {
            out.push(major | 25);
            out.extend_from_slice(&(arg as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(major | 26);
            out.extend_from_slice(&(arg as u32).to_be_bytes());
        }
        _ => {
            out.push(major | 27);
            out.extend_from_slice(&arg.to_be_bytes());
        }
    }
}

fn int(out: &mut Vec<u8>, n: i64) {
    match u64::try_from(n) {
        Ok(n) => head(out, UNSIGNED, n),
        // -1 - n, which fits in u64 for every negative i64.
        Err(_) => head(out, NEGATIVE, !(n as u64)),
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, TEXT, len(s.len()));
    out.extend_from_slice(s.as_bytes());
}

fn len(n: usize) -> u64 {
    u64::try_from(n).expect("invariant: lengths fit in u64")
}
