//! The JSON form of a [`Value`]: what a host prints and reads. [`Value::to_json_string`]
//! writes it (always available); with the `json` feature, `Value::to_json` and
//! `Value::from_json` convert to and from `serde_json::Value` (the kernel crate, the
//! hosts' façade, turns the feature on).
//!
//! Plain data is plain JSON: `null`, booleans, numbers, strings, lists as arrays, records as
//! objects (keys in order). What JSON has no word for is a one-key object whose key starts
//! with `@`, holding what the CBOR form's tag holds (`docs/vat-protocol.md`):
//!
//! | value | JSON |
//! |---|---|
//! | undefined | `{"@undefined": null}` |
//! | NaN, ±infinity | `{"@float": "NaN"}`, `{"@float": "Infinity"}`, `{"@float": "-Infinity"}` |
//! | an integer outside `i64` | `{"@bigint": "170141183460469231731687303715884105727"}` |
//! | bytes | `{"@bytes": "00ff"}` (lowercase hex) |
//! | a reference | `{"@slot": [0, "Counter"]}` (slot index, interface name or `null`) |
//! | an error | `{"@error": ["TypeError", "not a number"]}` (name, message) |
//! | a tagged value | `{"@tagged": ["copySet", [1, 2]]}` (tag, payload) |
//!
//! A record whose only key is one of those names is written `{"@record": {...}}`, so
//! reading the JSON back gives the same value: the form is lossless. A reference is a slot
//! index because a value alone does not know its slots: the kref is
//! `capdata.slots[index]`. An integer is written without a fraction and a float always with
//! one (`1.0`), so each reads back as what it was.
//!
//! Invariant: [`Value::to_json_string`] keeps its own stack, so a value of any depth is
//! written without overflowing ours; the `serde_json` conversions refuse what a receiver
//! could not decode ([`Value::check_depth`], [`MAX_DEPTH`]) with [`JsonError::TooDeep`].

#[cfg(feature = "json")]
mod convert;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, btree_map};
use std::fmt::Write;
use std::slice;

use super::{MAX_DEPTH, Value};

/// The keys of the one-key objects that stand for values JSON cannot write as they are.
pub(crate) const FORMS: [&str; 8] = [
    "@undefined",
    "@float",
    "@bigint",
    "@bytes",
    "@slot",
    "@error",
    "@tagged",
    "@record",
];

/// A value that has no JSON form, or JSON that is not the form of a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// Nested deeper than a receiver decodes (at most [`MAX_DEPTH`] levels).
    #[error("value nested too deeply: at most {MAX_DEPTH} levels convert to or from JSON")]
    TooDeep,
    /// A one-key object `{"@<form>": ...}` whose content is not what the form holds.
    #[error("malformed JSON value: {form:?} holds {expected}")]
    Form {
        /// The form's key, such as `@slot`.
        form: &'static str,
        /// What it must hold.
        expected: &'static str,
    },
}

impl Value {
    /// The value's JSON form (see the module docs), compact, for host output: strings
    /// quoted, records as objects, lists as arrays, references as `{"@slot": [index,
    /// iface]}`. Works at any depth.
    ///
    /// ```
    /// use std::collections::BTreeMap;
    /// use ocap_types::Value;
    ///
    /// let value = Value::Record(BTreeMap::from([
    ///     ("greeting".to_owned(), Value::str("hi \"you\"")),
    ///     ("counter".to_owned(), Value::Slot { index: 0, iface: Some("Counter".to_owned()) }),
    ///     ("sizes".to_owned(), Value::List(vec![Value::Int(1), Value::Float(2.5)])),
    /// ]));
    /// assert_eq!(
    ///     value.to_json_string(),
    ///     r#"{"counter":{"@slot":[0,"Counter"]},"greeting":"hi \"you\"","sizes":[1,2.5]}"#
    /// );
    /// ```
    pub fn to_json_string(&self) -> String {
        let mut out = String::with_capacity(32);
        write(self, &mut out);
        out
    }
}

/// True if a record must be wrapped in `{"@record": ...}` to be read back as a record.
pub(crate) fn needs_wrapping(fields: &BTreeMap<String, Value>) -> bool {
    fields.len() == 1
        && fields
            .keys()
            .next()
            .is_some_and(|key| FORMS.contains(&key.as_str()))
}

/// The text of a float JSON cannot write as a number.
pub(crate) fn non_finite(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

/// Bytes as lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// A list or record whose items are still being written, or text that closes a form.
enum Open<'a> {
    Items {
        items: slice::Iter<'a, Value>,
        first: bool,
    },
    Fields {
        fields: btree_map::Iter<'a, String, Value>,
        first: bool,
        close: &'static str,
    },
    Close(&'static str),
}

/// Appends the JSON form of `value` to `out`, keeping the open containers on a heap stack.
fn write(value: &Value, out: &mut String) {
    let mut open: Vec<Open<'_>> = Vec::new();
    let mut next = Some(value);
    loop {
        if let Some(value) = next.take() {
            next = write_head(value, out, &mut open);
            continue;
        }
        let Some(top) = open.last_mut() else {
            return;
        };
        match top {
            Open::Items { items, first } => match items.next() {
                Some(item) => {
                    if !std::mem::take(first) {
                        out.push(',');
                    }
                    next = Some(item);
                }
                None => {
                    out.push(']');
                    open.pop();
                }
            },
            Open::Fields {
                fields,
                first,
                close,
            } => match fields.next() {
                Some((key, value)) => {
                    if !std::mem::take(first) {
                        out.push(',');
                    }
                    string(out, key);
                    out.push(':');
                    next = Some(value);
                }
                None => {
                    out.push_str(close);
                    open.pop();
                }
            },
            Open::Close(text) => {
                out.push_str(text);
                open.pop();
            }
        }
    }
}

/// Writes a leaf whole, or the start of a container: a list or record is pushed on `open`,
/// and a tagged value's payload is returned to be written next.
fn write_head<'a>(
    value: &'a Value,
    out: &mut String,
    open: &mut Vec<Open<'a>>,
) -> Option<&'a Value> {
    match value {
        Value::Undefined => out.push_str(r#"{"@undefined":null}"#),
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(n) => {
            let _ = write!(out, "{n}");
        }
        // `{:?}` always writes a fraction or an exponent, so the number reads back as a float.
        Value::Float(x) if x.is_finite() => {
            let _ = write!(out, "{x:?}");
        }
        Value::Float(x) => {
            let _ = write!(out, r#"{{"@float":"{}"}}"#, non_finite(*x));
        }
        Value::BigInt(n) => {
            let _ = write!(out, r#"{{"@bigint":"{n}"}}"#);
        }
        Value::Str(s) => string(out, s),
        Value::Bytes(b) => {
            let _ = write!(out, r#"{{"@bytes":"{}"}}"#, hex(b));
        }
        Value::List(items) => {
            out.push('[');
            open.push(Open::Items {
                items: items.iter(),
                first: true,
            });
        }
        Value::Record(fields) => {
            let close = if needs_wrapping(fields) {
                out.push_str(r#"{"@record":{"#);
                "}}"
            } else {
                out.push('{');
                "}"
            };
            open.push(Open::Fields {
                fields: fields.iter(),
                first: true,
                close,
            });
        }
        Value::Slot { index, iface } => {
            let _ = write!(out, r#"{{"@slot":[{index},"#);
            match iface {
                Some(iface) => string(out, iface),
                None => out.push_str("null"),
            }
            out.push_str("]}");
        }
        Value::Error { name, message } => {
            out.push_str(r#"{"@error":["#);
            string(out, name);
            out.push(',');
            string(out, message);
            out.push_str("]}");
        }
        Value::Tagged { tag, payload } => {
            out.push_str(r#"{"@tagged":["#);
            string(out, tag);
            out.push(',');
            open.push(Open::Close("]}"));
            return Some(payload);
        }
    }
    None
}

/// A JSON string: quotes, backslashes and control characters escaped, the rest as is.
fn string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}
