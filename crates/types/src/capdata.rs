//! `CapData`: an encoded value plus the references it carries, and `Message`.

use serde::{Deserialize, Serialize};

use crate::value::{DecodeError, DepthError, Value};

/// An encoded [`Value`] (`body`) with the references its slots name, in kernel space
/// (`CapData<KRef>`) or endpoint space (`CapData<VRef>`). Translation between spaces rewrites
/// only `slots`; the body is copied byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CapData<R> {
    /// The CBOR encoding of a [`Value`].
    #[serde(with = "crate::bytes")]
    pub body: Vec<u8>,
    /// The references named by the body's slots, in slot order.
    pub slots: Vec<R>,
}

impl<R> CapData<R> {
    /// Encodes `value` with `slots`.
    pub fn new(value: &Value, slots: Vec<R>) -> Self {
        CapData {
            body: value.to_cbor(),
            slots,
        }
    }

    /// Plain data, with no references.
    pub fn data(value: &Value) -> Self {
        CapData::new(value, Vec::new())
    }

    /// An `Error` value with `message` and no references.
    pub fn error(message: impl Into<String>) -> Self {
        CapData::data(&Value::error(message))
    }

    /// Decodes the body.
    ///
    /// # Errors
    /// [`DecodeError`] if the body is malformed.
    pub fn decode(&self) -> Result<Value, DecodeError> {
        Value::from_cbor(&self.body)
    }

    /// Decodes the body and checks that every slot it names exists: what the kernel asks of
    /// capdata coming from a vat before passing it to another (spec §11.2).
    ///
    /// # Errors
    /// [`MethargsError::Decode`] for a malformed body, [`MethargsError::Slot`] for a slot
    /// index beyond `slots`.
    pub fn checked_value(&self) -> Result<Value, MethargsError> {
        let value = self.decode()?;
        let mut bad = None;
        value.for_each_slot(&mut |index| {
            if index as usize >= self.slots.len() {
                bad.get_or_insert(index);
            }
        });
        match bad {
            Some(index) => Err(MethargsError::Slot {
                index,
                slots: self.slots.len(),
            }),
            None => Ok(value),
        }
    }

    /// The reference when the whole value is a single slot (spec §3.3), else `None`.
    pub fn single_ref(&self) -> Option<&R> {
        match self.decode() {
            Ok(Value::Slot { index, .. }) => self.slots.get(index as usize),
            _ => None,
        }
    }

    /// Applies `f` to every slot, keeping the body: the translation between ref spaces.
    ///
    /// # Errors
    /// The first error `f` returns.
    pub fn try_map_slots<S, E>(
        &self,
        mut f: impl FnMut(&R) -> Result<S, E>,
    ) -> Result<CapData<S>, E> {
        Ok(CapData {
            body: self.body.clone(),
            slots: self.slots.iter().map(&mut f).collect::<Result<_, _>>()?,
        })
    }
}

/// A message: `methargs` encodes the list `[method, args]`; `result` is the promise that
/// will carry the answer (absent for a one-way send).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Message<R> {
    /// `[method: Str, args: List]`.
    pub methargs: CapData<R>,
    /// The result promise, if any.
    pub result: Option<R>,
}

/// A `methargs` body that is not `[method: string, args: list]`, or arguments that cannot
/// become one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MethargsError {
    /// The body does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// An argument is nested deeper than a receiver decodes.
    #[error(transparent)]
    TooDeep(#[from] DepthError),
    /// The body decodes to something other than `[string, list]`.
    #[error("methargs must be [method, args]")]
    Shape,
    /// The body names a slot that `slots` does not have.
    #[error("slot {index} named but only {slots} slots given")]
    Slot {
        /// The slot index named.
        index: u32,
        /// How many slots there are.
        slots: usize,
    },
}

/// Checks arguments from outside the kernel (a host's) before they become a message: every
/// argument must be one a receiver can decode inside `[method, args]`
/// ([`Value::check_depth`]), and name only slots below `n_slots`. Walks without recursion,
/// so arguments of any depth are refused, never a stack overflow; the caller disposes of
/// refused arguments with [`Value::dispose`].
///
/// # Errors
/// [`MethargsError::TooDeep`], then [`MethargsError::Slot`] for the first slot index at or
/// past `n_slots`.
pub fn check_args(args: &[Value], n_slots: usize) -> Result<(), MethargsError> {
    // Each argument sits two levels down: inside the methargs list and the args list.
    for arg in args {
        arg.check_depth_at(2, 2)?;
    }
    let mut bad = None;
    for arg in args {
        arg.for_each_slot(&mut |index| {
            if index as usize >= n_slots {
                bad.get_or_insert(index);
            }
        });
        if let Some(index) = bad {
            return Err(MethargsError::Slot {
                index,
                slots: n_slots,
            });
        }
    }
    Ok(())
}

impl<R> Message<R> {
    /// Builds a message calling `method` with `args`, whose slots refer to `slots`.
    pub fn new(method: &str, args: Vec<Value>, slots: Vec<R>, result: Option<R>) -> Self {
        let methargs = Value::List(vec![Value::str(method), Value::List(args)]);
        Message {
            methargs: CapData::new(&methargs, slots),
            result,
        }
    }

    /// Decodes the method name and the arguments.
    ///
    /// # Errors
    /// [`MethargsError`] when the body is malformed, names a missing slot, or is not
    /// `[method, args]`.
    pub fn method_and_args(&self) -> Result<(String, Vec<Value>), MethargsError> {
        match self.methargs.checked_value()? {
            Value::List(mut items) if items.len() == 2 => {
                let args = items.pop().expect("invariant: length checked");
                let method = items.pop().expect("invariant: length checked");
                match (method, args) {
                    (Value::Str(method), Value::List(args)) => Ok((method, args)),
                    _ => Err(MethargsError::Shape),
                }
            }
            _ => Err(MethargsError::Shape),
        }
    }
}
