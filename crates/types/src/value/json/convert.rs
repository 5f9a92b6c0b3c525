//! [`Value`] to and from `serde_json::Value` (the `json` feature), in the form the parent
//! module describes. Both directions recurse, so both refuse a value nested deeper than
//! [`MAX_DEPTH`] before going down: the recursion is bounded.

use std::collections::BTreeMap;

use serde_json::{Map, Number, Value as Json};

use super::{JsonError, hex, needs_wrapping, non_finite};
use crate::value::{MAX_DEPTH, Value};

impl Value {
    /// The value as a `serde_json::Value`, in the JSON form of [`Value::to_json_string`].
    /// Available with the `json` feature.
    ///
    /// # Errors
    /// [`JsonError::TooDeep`] for a value a receiver could not decode
    /// ([`Value::check_depth`]).
    ///
    /// # Examples
    /// ```
    /// use ocap_types::Value;
    /// use serde_json::json;
    ///
    /// let value = Value::List(vec![Value::str("hi"), Value::Int(1), Value::Undefined]);
    /// assert_eq!(value.to_json()?, json!(["hi", 1, {"@undefined": null}]));
    /// assert_eq!(Value::from_json(&value.to_json()?)?, value);
    /// # Ok::<(), ocap_types::JsonError>(())
    /// ```
    pub fn to_json(&self) -> Result<Json, JsonError> {
        self.check_depth().map_err(|_| JsonError::TooDeep)?;
        Ok(to_json(self))
    }

    /// The value whose JSON form `json` is: plain JSON as plain data, the `@` forms of
    /// [`Value::to_json_string`] as what they stand for. Integers that fit in `i64` become
    /// [`Value::Int`], larger ones [`Value::BigInt`], numbers with a fraction or exponent
    /// [`Value::Float`]. Available with the `json` feature.
    ///
    /// # Errors
    /// [`JsonError::Form`] for a malformed `@` form (`{"@slot": "x"}`),
    /// [`JsonError::TooDeep`] past [`MAX_DEPTH`] levels.
    pub fn from_json(json: &Json) -> Result<Value, JsonError> {
        from_json(json, 0)
    }
}

/// As [`Value::to_json`].
impl TryFrom<&Value> for Json {
    type Error = JsonError;

    fn try_from(value: &Value) -> Result<Json, JsonError> {
        value.to_json()
    }
}

/// As [`Value::from_json`].
impl TryFrom<&Json> for Value {
    type Error = JsonError;

    fn try_from(json: &Json) -> Result<Value, JsonError> {
        Value::from_json(json)
    }
}

fn form(key: &str, content: Json) -> Json {
    Json::Object(Map::from_iter([(key.to_owned(), content)]))
}

/// Recursive: only for values that passed [`Value::check_depth`].
fn to_json(value: &Value) -> Json {
    match value {
        Value::Undefined => form("@undefined", Json::Null),
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(n) => Json::from(*n),
        Value::Float(x) => match Number::from_f64(*x) {
            Some(number) => Json::Number(number),
            None => form("@float", Json::from(non_finite(*x))),
        },
        Value::BigInt(n) => form("@bigint", Json::from(n.to_string())),
        Value::Str(s) => Json::from(s.as_str()),
        Value::Bytes(b) => form("@bytes", Json::from(hex(b))),
        Value::List(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Record(fields) => {
            let object = Json::Object(
                fields
                    .iter()
                    .map(|(key, value)| (key.clone(), to_json(value)))
                    .collect(),
            );
            if needs_wrapping(fields) {
                form("@record", object)
            } else {
                object
            }
        }
        Value::Slot { index, iface } => form(
            "@slot",
            Json::Array(vec![
                Json::from(*index),
                iface.as_deref().map_or(Json::Null, Json::from),
            ]),
        ),
        Value::Error { name, message } => form(
            "@error",
            Json::Array(vec![
                Json::from(name.as_str()),
                Json::from(message.as_str()),
            ]),
        ),
        Value::Tagged { tag, payload } => form(
            "@tagged",
            Json::Array(vec![Json::from(tag.as_str()), to_json(payload)]),
        ),
    }
}

fn from_json(json: &Json, depth: usize) -> Result<Value, JsonError> {
    if depth > MAX_DEPTH {
        return Err(JsonError::TooDeep);
    }
    Ok(match json {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(number) => number_value(number),
        Json::String(s) => Value::Str(s.clone()),
        Json::Array(items) => Value::List(
            items
                .iter()
                .map(|item| from_json(item, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        Json::Object(object) => {
            if object.len() == 1
                && let Some((key, content)) = object.iter().next()
                && let Some(value) = from_form(key, content, depth)?
            {
                return Ok(value);
            }
            Value::Record(fields(object, depth)?)
        }
    })
}

fn number_value(number: &Number) -> Value {
    if let Some(n) = number.as_i64() {
        Value::Int(n)
    } else if let Some(n) = number.as_u64() {
        Value::BigInt(i128::from(n))
    } else {
        // Without serde_json's `arbitrary_precision`, every other number is an f64.
        Value::Float(number.as_f64().unwrap_or(f64::NAN))
    }
}

fn fields(object: &Map<String, Json>, depth: usize) -> Result<BTreeMap<String, Value>, JsonError> {
    object
        .iter()
        .map(|(key, value)| Ok((key.clone(), from_json(value, depth + 1)?)))
        .collect()
}

/// The value a one-key object `{key: content}` stands for, `None` if `key` names no form
/// (the object is then a record).
fn from_form(key: &str, content: &Json, depth: usize) -> Result<Option<Value>, JsonError> {
    let malformed = |form, expected| JsonError::Form { form, expected };
    let pair = |form, expected| match content {
        Json::Array(items) if items.len() == 2 => Ok((&items[0], &items[1])),
        _ => Err(malformed(form, expected)),
    };
    let text = |json: &Json, form, expected| {
        json.as_str()
            .map(str::to_owned)
            .ok_or_else(|| malformed(form, expected))
    };
    Ok(Some(match key {
        "@undefined" => match content {
            Json::Null => Value::Undefined,
            _ => return Err(malformed("@undefined", "null")),
        },
        "@float" => match content.as_str() {
            Some("NaN") => Value::Float(f64::NAN),
            Some("Infinity") => Value::Float(f64::INFINITY),
            Some("-Infinity") => Value::Float(f64::NEG_INFINITY),
            _ => return Err(malformed("@float", r#""NaN", "Infinity" or "-Infinity""#)),
        },
        "@bigint" => {
            const EXPECTED: &str = "a decimal integer as a string";
            let digits = text(content, "@bigint", EXPECTED)?;
            Value::BigInt(digits.parse().map_err(|_| malformed("@bigint", EXPECTED))?)
        }
        "@bytes" => {
            const EXPECTED: &str = "lowercase hex as a string";
            let digits = text(content, "@bytes", EXPECTED)?;
            Value::Bytes(unhex(&digits).ok_or_else(|| malformed("@bytes", EXPECTED))?)
        }
        "@slot" => {
            const EXPECTED: &str = "[slot index, interface name or null]";
            let (index, iface) = pair("@slot", EXPECTED)?;
            let index = index
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| malformed("@slot", EXPECTED))?;
            let iface = match iface {
                Json::Null => None,
                other => Some(text(other, "@slot", EXPECTED)?),
            };
            Value::Slot { index, iface }
        }
        "@error" => {
            const EXPECTED: &str = "[name, message] as strings";
            let (name, message) = pair("@error", EXPECTED)?;
            Value::Error {
                name: text(name, "@error", EXPECTED)?,
                message: text(message, "@error", EXPECTED)?,
            }
        }
        "@tagged" => {
            const EXPECTED: &str = "[tag as a string, payload]";
            let (tag, payload) = pair("@tagged", EXPECTED)?;
            Value::Tagged {
                tag: text(tag, "@tagged", EXPECTED)?,
                payload: Box::new(from_json(payload, depth + 1)?),
            }
        }
        "@record" => match content {
            Json::Object(object) => Value::Record(fields(object, depth)?),
            _ => return Err(malformed("@record", "an object")),
        },
        _ => return Ok(None),
    }))
}

fn unhex(digits: &str) -> Option<Vec<u8>> {
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    (0..digits.len())
        .step_by(2)
        .map(|at| {
            let pair = digits.get(at..at + 2)?;
            if !pair.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
                return None;
            }
            u8::from_str_radix(pair, 16).ok()
        })
        .collect()
}
