//! Everything that goes through a whole [`Value`] without recursing: the depth check, slot
//! walks, `Clone`, `PartialEq` and [`Value::dispose`]. Each keeps its pending work in a
//! `Vec` on the heap, so the stack stays flat however deep the value is.

use std::collections::{BTreeMap, btree_map};
use std::slice;

use super::{DepthError, MAX_DEPTH, Value};
use crate::cbor::RECURSION_LIMIT;

/// CBOR levels kept free for the wire type around an embedded value: a cluster config's
/// parameters sit four maps deep in a stored subcluster record.
const ENVELOPE: usize = 8;

/// CBOR containers (arrays, maps, tags) a value's encoding opens around its children.
fn containers_around_children(value: &Value) -> usize {
    match value {
        Value::List(_) | Value::Record(_) => 1,
        Value::Tagged { .. } => 2,
        _ => 0,
    }
}

/// CBOR containers a value's encoding opens in all, children aside.
fn containers_of(value: &Value) -> usize {
    match value {
        Value::List(_) | Value::Record(_) | Value::Undefined | Value::BigInt(_) => 1,
        Value::Tagged { .. } | Value::Slot { .. } | Value::Error { .. } => 2,
        _ => 0,
    }
}

/// Checks `value`, found `depth` levels down inside `containers` open CBOR containers, the
/// way the decoders will: `Value::from_cbor` refuses a node deeper than [`MAX_DEPTH`], and
/// ciborium refuses more than [`RECURSION_LIMIT`] nested containers (a tagged value opens
/// two per level).
pub(crate) fn check_depth(
    value: &Value,
    depth: usize,
    containers: usize,
) -> Result<(), DepthError> {
    let mut pending = vec![(value, depth, containers)];
    while let Some((value, depth, above)) = pending.pop() {
        if depth > MAX_DEPTH || above + containers_of(value) + ENVELOPE > RECURSION_LIMIT {
            return Err(DepthError);
        }
        let below = above + containers_around_children(value);
        match value {
            Value::List(items) => pending.extend(items.iter().map(|v| (v, depth + 1, below))),
            Value::Record(fields) => {
                pending.extend(fields.values().map(|v| (v, depth + 1, below)));
            }
            Value::Tagged { payload, .. } => pending.push((payload, depth + 1, below)),
            _ => {}
        }
    }
    Ok(())
}

/// The children of a list, record or tagged value, in encoding order.
fn children(value: &Value) -> Children<'_> {
    match value {
        Value::List(items) => Children::Items(items.iter()),
        Value::Record(fields) => Children::Fields(fields.values()),
        Value::Tagged { payload, .. } => Children::One(Some(payload)),
        _ => Children::One(None),
    }
}

enum Children<'a> {
    Items(slice::Iter<'a, Value>),
    Fields(btree_map::Values<'a, String, Value>),
    One(Option<&'a Value>),
}

impl<'a> Iterator for Children<'a> {
    type Item = &'a Value;

    fn next(&mut self) -> Option<&'a Value> {
        match self {
            Children::Items(items) => items.next(),
            Children::Fields(fields) => fields.next(),
            Children::One(one) => one.take(),
        }
    }
}

pub(super) fn for_each_slot(value: &Value, visit: &mut impl FnMut(u32)) {
    // The root goes in as a one-item list, so that the walk treats it like any child.
    let mut open = vec![Children::One(Some(value))];
    while let Some(top) = open.last_mut() {
        match top.next() {
            Some(Value::Slot { index, .. }) => visit(*index),
            Some(child @ (Value::List(_) | Value::Record(_) | Value::Tagged { .. })) => {
                open.push(children(child));
            }
            Some(_) => {}
            None => {
                open.pop();
            }
        }
    }
}

pub(super) fn dispose(value: Value) {
    let mut pending = vec![value];
    while let Some(mut value) = pending.pop() {
        match &mut value {
            Value::List(items) => pending.append(items),
            Value::Record(fields) => pending.extend(std::mem::take(fields).into_values()),
            Value::Tagged { payload, .. } => pending.push(std::mem::take(&mut **payload)),
            _ => {}
        }
        // `value` has no children left, so dropping it does not recurse.
    }
}

/// A list, record or tagged value whose copy is being built.
enum Copying<'a> {
    List {
        from: slice::Iter<'a, Value>,
        to: Vec<Value>,
    },
    Record {
        from: btree_map::Iter<'a, String, Value>,
        to: BTreeMap<String, Value>,
        key: Option<String>,
    },
    Tagged {
        tag: String,
    },
}

/// Copies a value without children.
fn copy_leaf(value: &Value) -> Value {
    match value {
        Value::Undefined => Value::Undefined,
        Value::Null => Value::Null,
        Value::Bool(b) => Value::Bool(*b),
        Value::Int(n) => Value::Int(*n),
        Value::Float(x) => Value::Float(*x),
        Value::BigInt(n) => Value::BigInt(*n),
        Value::Str(s) => Value::Str(s.clone()),
        Value::Bytes(b) => Value::Bytes(b.clone()),
        Value::Slot { index, iface } => Value::Slot {
            index: *index,
            iface: iface.clone(),
        },
        Value::Error { name, message } => Value::Error {
            name: name.clone(),
            message: message.clone(),
        },
        Value::List(_) | Value::Record(_) | Value::Tagged { .. } => {
            unreachable!("invariant: containers are copied by `clone`")
        }
    }
}

impl Clone for Value {
    fn clone(&self) -> Value {
        let mut open: Vec<Copying<'_>> = Vec::new();
        let mut next = self;
        loop {
            // Go down: copy a leaf, or open a container.
            let mut done = match next {
                Value::List(items) => {
                    open.push(Copying::List {
                        from: items.iter(),
                        to: Vec::with_capacity(items.len()),
                    });
                    None
                }
                Value::Record(fields) => {
                    open.push(Copying::Record {
                        from: fields.iter(),
                        to: BTreeMap::new(),
                        key: None,
                    });
                    None
                }
                Value::Tagged { tag, payload } => {
                    open.push(Copying::Tagged { tag: tag.clone() });
                    next = payload;
                    continue;
                }
                leaf => Some(copy_leaf(leaf)),
            };
            // Go up: hand the finished copy to its parent until one has a child left.
            loop {
                let Some(top) = open.last_mut() else {
                    return done.expect("invariant: the root's copy is finished last");
                };
                let child = match top {
                    Copying::List { from, to } => {
                        to.extend(done.take());
                        from.next()
                    }
                    Copying::Record { from, to, key } => {
                        if let Some(value) = done.take() {
                            let key = key.take().expect("invariant: a field's key is kept");
                            to.insert(key, value);
                        }
                        from.next().map(|(k, v)| {
                            *key = Some(k.clone());
                            v
                        })
                    }
                    Copying::Tagged { .. } => None,
                };
                if let Some(child) = child {
                    next = child;
                    break;
                }
                done = Some(match open.pop().expect("invariant: `top` was open") {
                    Copying::List { to, .. } => Value::List(to),
                    Copying::Record { to, .. } => Value::Record(to),
                    Copying::Tagged { tag } => Value::Tagged {
                        tag,
                        payload: Box::new(done.take().expect("invariant: the payload is copied")),
                    },
                });
            }
        }
    }
}

impl PartialEq for Value {
    fn eq(&self, other: &Value) -> bool {
        let mut pending = vec![(self, other)];
        while let Some(pair) = pending.pop() {
            match pair {
                (Value::List(a), Value::List(b)) => {
                    if a.len() != b.len() {
                        return false;
                    }
                    pending.extend(a.iter().zip(b));
                }
                (Value::Record(a), Value::Record(b)) => {
                    if a.len() != b.len() {
                        return false;
                    }
                    for ((ka, va), (kb, vb)) in a.iter().zip(b) {
                        if ka != kb {
                            return false;
                        }
                        pending.push((va, vb));
                    }
                }
                (
                    Value::Tagged {
                        tag: ta,
                        payload: pa,
                    },
                    Value::Tagged {
                        tag: tb,
                        payload: pb,
                    },
                ) => {
                    if ta != tb {
                        return false;
                    }
                    pending.push((pa, pb));
                }
                (a, b) if !leaves_equal(a, b) => return false,
                _ => {}
            }
        }
        true
    }
}

/// Equality of two values that are not both lists, records or tagged values.
fn leaves_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Undefined, Value::Undefined) | (Value::Null, Value::Null) => true,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Float(a), Value::Float(b)) => a == b,
        (Value::BigInt(a), Value::BigInt(b)) => a == b,
        (Value::Str(a), Value::Str(b)) => a == b,
        (Value::Bytes(a), Value::Bytes(b)) => a == b,
        (
            Value::Slot {
                index: ia,
                iface: fa,
            },
            Value::Slot {
                index: ib,
                iface: fb,
            },
        ) => ia == ib && fa == fb,
        (
            Value::Error {
                name: na,
                message: ma,
            },
            Value::Error {
                name: nb,
                message: mb,
            },
        ) => na == nb && ma == mb,
        _ => false,
    }
}
