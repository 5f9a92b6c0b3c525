//! `Display` (a short rendering for logs and termination reasons) and `Debug` of [`Value`].
//! Both recurse, so both stop at [`MAX_DEPTH`] and write `…` for what lies deeper: no value
//! a decoder accepts is cut short, and no value of any depth overflows the stack.

use std::fmt;

use super::{MAX_DEPTH, Value};

/// What is written in place of a value nested past [`MAX_DEPTH`].
const ELIDED: &str = "…";

/// A value at `depth` levels down.
struct At<'a> {
    value: &'a Value,
    depth: usize,
}

impl<'a> At<'a> {
    fn child(&self, value: &'a Value) -> At<'a> {
        At {
            value,
            depth: self.depth + 1,
        }
    }
}

/// A short human rendering, used in logs, termination reasons and rejection messages (so
/// changing it changes texts vats and hosts see). Never used for storage; hosts that print
/// a value for users or programs use [`Value::to_json_string`].
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(
            &At {
                value: self,
                depth: 0,
            },
            f,
        )
    }
}

impl fmt::Display for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.depth > MAX_DEPTH {
            return f.write_str(ELIDED);
        }
        match self.value {
            Value::Undefined => f.write_str("undefined"),
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::BigInt(n) => write!(f, "{n}n"),
            Value::Str(s) => f.write_str(s),
            Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{}", self.child(item))?;
                }
                f.write_str("]")
            }
            Value::Record(fields) => {
                f.write_str("{")?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {}", self.child(v))?;
                }
                f.write_str("}")
            }
            Value::Slot { iface, .. } => {
                write!(f, "[object {}]", iface.as_deref().unwrap_or("Remotable"))
            }
            Value::Error { name, message } => write!(f, "{name}: {message}"),
            Value::Tagged { tag, payload } => write!(f, "{tag}({})", self.child(payload)),
        }
    }
}

/// As `#[derive(Debug)]` would write it, down to [`MAX_DEPTH`].
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(
            &At {
                value: self,
                depth: 0,
            },
            f,
        )
    }
}

impl fmt::Debug for At<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.depth > MAX_DEPTH {
            return f.write_str(ELIDED);
        }
        match self.value {
            Value::Undefined => f.write_str("Undefined"),
            Value::Null => f.write_str("Null"),
            Value::Bool(b) => f.debug_tuple("Bool").field(b).finish(),
            Value::Int(n) => f.debug_tuple("Int").field(n).finish(),
            Value::Float(x) => f.debug_tuple("Float").field(x).finish(),
            Value::BigInt(n) => f.debug_tuple("BigInt").field(n).finish(),
            Value::Str(s) => f.debug_tuple("Str").field(s).finish(),
            Value::Bytes(b) => f.debug_tuple("Bytes").field(b).finish(),
            Value::List(items) => {
                let items = Items(items.iter().map(|v| self.child(v)).collect());
                f.debug_tuple("List").field(&items).finish()
            }
            Value::Record(fields) => {
                let fields = Fields(fields.iter().map(|(k, v)| (k, self.child(v))).collect());
                f.debug_tuple("Record").field(&fields).finish()
            }
            Value::Slot { index, iface } => f
                .debug_struct("Slot")
                .field("index", index)
                .field("iface", iface)
                .finish(),
            Value::Error { name, message } => f
                .debug_struct("Error")
                .field("name", name)
                .field("message", message)
                .finish(),
            Value::Tagged { tag, payload } => f
                .debug_struct("Tagged")
                .field("tag", tag)
                .field("payload", &self.child(payload))
                .finish(),
        }
    }
}

struct Items<'a>(Vec<At<'a>>);

impl fmt::Debug for Items<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(&self.0).finish()
    }
}

struct Fields<'a>(Vec<(&'a String, At<'a>)>);

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}
