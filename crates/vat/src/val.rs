//! `Val`: the values vat code passes around — plain data plus references (local objects,
//! presences of remote objects, promises). `Val` never leaves the vat as such: the marshaller
//! turns it into capdata with slots when it crosses the kernel boundary.

use std::collections::BTreeMap;
use std::fmt;

use ocap_types::Value;

use crate::error::Error;
use crate::promise::Promise;
use crate::reference::Ref;

/// A passable value as vat code sees it: plain data, or a reference.
///
/// Records keep their keys sorted, so a value always encodes the same way. Equality on
/// references is identity: two [`Ref`]s are equal when they designate the same object.
///
/// # Examples
/// ```
/// use ocap_vat::Val;
///
/// let v = Val::record([("name", Val::from("bob")), ("age", Val::from(42))]);
/// assert_eq!(v.get("name").and_then(Val::as_str), Some("bob"));
/// assert_eq!(v.to_string(), "{age: 42, name: bob}");
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub enum Val {
    /// The absence of a value (what a method without an answer returns).
    #[default]
    Undefined,
    /// `null`.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A float.
    Float(f64),
    /// An integer that does not fit in `i64`.
    BigInt(i128),
    /// Text.
    Str(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Val>),
    /// A record with text keys, kept sorted.
    Record(BTreeMap<String, Val>),
    /// An error value (what a rejected promise usually carries).
    Error {
        /// The error's kind, usually `"Error"`.
        name: String,
        /// The message.
        message: String,
    },
    /// A value with an application tag.
    Tagged {
        /// The tag.
        tag: String,
        /// The payload.
        payload: Box<Val>,
    },
    /// An object: local to this vat, or a presence of an object elsewhere.
    Ref(Ref),
    /// A promise: local, the result of a send, or imported.
    Promise(Promise),
}

impl Val {
    /// A record from `(key, value)` pairs; a later duplicate key wins.
    pub fn record<K: Into<String>, V: Into<Val>>(fields: impl IntoIterator<Item = (K, V)>) -> Val {
        Val::Record(
            fields
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A list from anything that converts into values.
    pub fn list<V: Into<Val>>(items: impl IntoIterator<Item = V>) -> Val {
        Val::List(items.into_iter().map(Into::into).collect())
    }

    /// An error value named `Error` with `message`.
    pub fn error(message: impl Into<String>) -> Val {
        Val::Error {
            name: "Error".to_owned(),
            message: message.into(),
        }
    }

    /// A number as JavaScript has it: an integral value that fits in `i64` is an `Int`,
    /// anything else a `Float`.
    ///
    /// ```
    /// use ocap_vat::Val;
    ///
    /// assert_eq!(Val::number(212.0), Val::Int(212));
    /// assert_eq!(Val::number(0.5), Val::Float(0.5));
    /// ```
    pub fn number(x: f64) -> Val {
        // 2^63 is exactly representable; every integral float below it in magnitude fits.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if x.fract() == 0.0 && x.abs() < LIMIT {
            return Val::Int(x as i64);
        }
        Val::Float(x)
    }

    /// The value as a float, if this is an `Int` or a `Float`.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Val::Int(n) => Some(*n as f64),
            Val::Float(x) => Some(*x),
            _ => None,
        }
    }

    /// The text, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Val::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The boolean, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Val::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The items, if this is a list.
    pub fn as_list(&self) -> Option<&[Val]> {
        match self {
            Val::List(items) => Some(items),
            _ => None,
        }
    }

    /// The fields, if this is a record.
    pub fn as_record(&self) -> Option<&BTreeMap<String, Val>> {
        match self {
            Val::Record(fields) => Some(fields),
            _ => None,
        }
    }

    /// The object, if this is a reference to one.
    pub fn as_object(&self) -> Option<&Ref> {
        match self {
            Val::Ref(r) => Some(r),
            _ => None,
        }
    }

    /// The promise, if this is one.
    pub fn as_promise(&self) -> Option<&Promise> {
        match self {
            Val::Promise(p) => Some(p),
            _ => None,
        }
    }

    /// True for a promise.
    pub fn is_promise(&self) -> bool {
        matches!(self, Val::Promise(_))
    }

    /// The field `key`, if this is a record that has it.
    pub fn get(&self, key: &str) -> Option<&Val> {
        self.as_record().and_then(|fields| fields.get(key))
    }

    /// A one-word description of the value's kind, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Val::Undefined => "undefined",
            Val::Null => "null",
            Val::Bool(_) => "boolean",
            Val::Int(_) | Val::Float(_) | Val::BigInt(_) => "number",
            Val::Str(_) => "string",
            Val::Bytes(_) => "bytes",
            Val::List(_) => "list",
            Val::Record(_) => "record",
            Val::Error { .. } => "error",
            Val::Tagged { .. } => "tagged",
            Val::Ref(_) => "object",
            Val::Promise(_) => "promise",
        }
    }
}

impl Val {
    /// The kind with its article ("a string", "an object"), for error messages.
    pub(crate) fn a_kind(&self) -> String {
        let kind = self.kind();
        let article = if kind.starts_with(['a', 'e', 'i', 'o', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {kind}")
    }
}

/// Converts plain data; a reference is `on_slot`'s business (the marshaller's).
pub(crate) fn from_value(
    value: Value,
    on_slot: &mut impl FnMut(u32, Option<String>) -> Result<Val, String>,
) -> Result<Val, String> {
    Ok(match value {
        Value::Undefined => Val::Undefined,
        Value::Null => Val::Null,
        Value::Bool(b) => Val::Bool(b),
        Value::Int(n) => Val::Int(n),
        Value::Float(x) => Val::Float(x),
        Value::BigInt(n) => Val::BigInt(n),
        Value::Str(s) => Val::Str(s),
        Value::Bytes(b) => Val::Bytes(b),
        Value::List(items) => Val::List(
            items
                .into_iter()
                .map(|v| from_value(v, on_slot))
                .collect::<Result<_, _>>()?,
        ),
        Value::Record(fields) => Val::Record(
            fields
                .into_iter()
                .map(|(k, v)| Ok((k, from_value(v, on_slot)?)))
                .collect::<Result<_, String>>()?,
        ),
        Value::Slot { index, iface } => on_slot(index, iface)?,
        Value::Error { name, message } => Val::Error { name, message },
        Value::Tagged { tag, payload } => Val::Tagged {
            tag,
            payload: Box::new(from_value(*payload, on_slot)?),
        },
    })
}

/// Plain data only: parameters and other values that cannot carry references.
pub(crate) fn from_plain_value(value: Value) -> Result<Val, String> {
    from_value(value, &mut |_, _| {
        Err("a reference where only plain data is allowed".to_owned())
    })
}

/// Converts to the wire model; each reference becomes the slot `on_ref` assigns.
pub(crate) fn to_value(
    val: &Val,
    on_ref: &mut impl FnMut(&Val) -> Result<Value, Error>,
) -> Result<Value, Error> {
    Ok(match val {
        Val::Undefined => Value::Undefined,
        Val::Null => Value::Null,
        Val::Bool(b) => Value::Bool(*b),
        Val::Int(n) => Value::Int(*n),
        Val::Float(x) => Value::Float(*x),
        Val::BigInt(n) => Value::BigInt(*n),
        Val::Str(s) => Value::Str(s.clone()),
        Val::Bytes(b) => Value::Bytes(b.clone()),
        Val::List(items) => Value::List(
            items
                .iter()
                .map(|v| to_value(v, on_ref))
                .collect::<Result<_, _>>()?,
        ),
        // BTreeMap iterates in key order: the traversal that fixes slot numbering.
        Val::Record(fields) => Value::Record(
            fields
                .iter()
                .map(|(k, v)| Ok((k.clone(), to_value(v, on_ref)?)))
                .collect::<Result<_, Error>>()?,
        ),
        Val::Error { name, message } => Value::Error {
            name: name.clone(),
            message: message.clone(),
        },
        Val::Tagged { tag, payload } => Value::Tagged {
            tag: tag.clone(),
            payload: Box::new(to_value(payload, on_ref)?),
        },
        Val::Ref(_) | Val::Promise(_) => on_ref(val)?,
    })
}

/// A short human rendering, for logs and messages.
impl fmt::Display for Val {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Val::Undefined => f.write_str("undefined"),
            Val::Null => f.write_str("null"),
            Val::Bool(b) => write!(f, "{b}"),
            Val::Int(n) => write!(f, "{n}"),
            Val::Float(x) => write!(f, "{x}"),
            Val::BigInt(n) => write!(f, "{n}n"),
            Val::Str(s) => f.write_str(s),
            Val::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Val::List(items) => {
                f.write_str("[")?;
                for (item_idx, item) in items.iter().enumerate() {
                    if item_idx > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str("]")
            }
            Val::Record(fields) => {
                f.write_str("{")?;
                for (field_idx, (k, v)) in fields.iter().enumerate() {
                    if field_idx > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                f.write_str("}")
            }
            Val::Error { name, message } => write!(f, "{name}: {message}"),
            Val::Tagged { tag, payload } => write!(f, "{tag}({payload})"),
            Val::Ref(r) => write!(f, "{r}"),
            Val::Promise(p) => write!(f, "{p}"),
        }
    }
}

impl From<&str> for Val {
    fn from(s: &str) -> Self {
        Val::Str(s.to_owned())
    }
}

impl From<String> for Val {
    fn from(s: String) -> Self {
        Val::Str(s)
    }
}

impl From<&String> for Val {
    fn from(s: &String) -> Self {
        Val::Str(s.clone())
    }
}

impl From<i64> for Val {
    fn from(n: i64) -> Self {
        Val::Int(n)
    }
}

impl From<i32> for Val {
    fn from(n: i32) -> Self {
        Val::Int(n.into())
    }
}

impl From<u32> for Val {
    fn from(n: u32) -> Self {
        Val::Int(n.into())
    }
}

impl From<f64> for Val {
    fn from(x: f64) -> Self {
        Val::Float(x)
    }
}

impl From<bool> for Val {
    fn from(b: bool) -> Self {
        Val::Bool(b)
    }
}

impl From<()> for Val {
    fn from((): ()) -> Self {
        Val::Undefined
    }
}

impl From<Ref> for Val {
    fn from(r: Ref) -> Self {
        Val::Ref(r)
    }
}

impl From<&Ref> for Val {
    fn from(r: &Ref) -> Self {
        Val::Ref(r.clone())
    }
}

impl From<Promise> for Val {
    fn from(p: Promise) -> Self {
        Val::Promise(p)
    }
}

impl From<&Promise> for Val {
    fn from(p: &Promise) -> Self {
        Val::Promise(p.clone())
    }
}

impl From<&Val> for Val {
    fn from(v: &Val) -> Self {
        v.clone()
    }
}

impl From<Error> for Val {
    fn from(e: Error) -> Self {
        e.into_reason()
    }
}

impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

impl<T: Into<Val>> From<Vec<T>> for Val {
    fn from(items: Vec<T>) -> Self {
        Val::list(items)
    }
}

impl<K: Into<String>, T: Into<Val>> From<BTreeMap<K, T>> for Val {
    fn from(fields: BTreeMap<K, T>) -> Self {
        Val::record(fields)
    }
}
