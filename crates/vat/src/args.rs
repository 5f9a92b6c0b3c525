//! `Args`: the arguments of a message, with typed getters whose failures are method errors
//! that name the method and the argument.

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::promise::Promise;
use crate::reference::Ref;
use crate::val::Val;

/// The arguments a method was called with.
///
/// The getters fail with an [`Error`] naming the method and the argument, so `?` turns a bad
/// call into a rejection the caller can read.
///
/// # Examples
/// ```
/// use ocap_vat::{Args, Val};
///
/// let args = Args::new("greet", vec![Val::from("bob"), Val::from(3)]);
/// assert_eq!(args.str(0)?, "bob");
/// assert_eq!(args.int(1)?, 3);
/// assert_eq!(
///     args.str(1).unwrap_err().message(),
///     "greet: argument 1 must be a string, not a number"
/// );
/// # Ok::<(), ocap_vat::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Args {
    method: String,
    items: Vec<Val>,
}

impl Args {
    /// Arguments `items` of a call to `method`.
    pub fn new(method: &str, items: Vec<Val>) -> Self {
        Args {
            method: method.to_owned(),
            items,
        }
    }

    /// The method these arguments were sent to.
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The number of arguments.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when there are no arguments.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// The arguments, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Val> {
        self.items.iter()
    }

    /// The arguments, by value.
    pub fn into_vec(self) -> Vec<Val> {
        self.items
    }

    /// Argument `arg_idx`.
    ///
    /// # Errors
    /// When there is no such argument.
    pub fn val(&self, arg_idx: usize) -> Result<&Val> {
        self.items
            .get(arg_idx)
            .ok_or_else(|| Error::new(format!("{}: missing argument {arg_idx}", self.method)))
    }

    /// Argument `arg_idx`, or `Undefined` when absent (for optional arguments).
    pub fn val_or_undefined(&self, arg_idx: usize) -> Val {
        self.items.get(arg_idx).cloned().unwrap_or_default()
    }

    /// Argument `arg_idx` as text.
    ///
    /// # Errors
    /// When it is missing or not a string.
    pub fn str(&self, arg_idx: usize) -> Result<&str> {
        self.typed(arg_idx, "a string", Val::as_str)
    }

    /// Argument `arg_idx` as an integer.
    ///
    /// # Errors
    /// When it is missing or not an integer.
    pub fn int(&self, arg_idx: usize) -> Result<i64> {
        self.typed(arg_idx, "an integer", Val::as_int)
    }

    /// Argument `arg_idx` as a number (an integer or a float).
    ///
    /// # Errors
    /// When it is missing or not a number.
    pub fn number(&self, arg_idx: usize) -> Result<f64> {
        self.typed(arg_idx, "a number", Val::as_number)
    }

    /// Argument `arg_idx` as a boolean.
    ///
    /// # Errors
    /// When it is missing or not a boolean.
    pub fn bool(&self, arg_idx: usize) -> Result<bool> {
        self.typed(arg_idx, "a boolean", Val::as_bool)
    }

    /// Argument `arg_idx` as a list.
    ///
    /// # Errors
    /// When it is missing or not a list.
    pub fn list(&self, arg_idx: usize) -> Result<&[Val]> {
        self.typed(arg_idx, "a list", Val::as_list)
    }

    /// Argument `arg_idx` as a record.
    ///
    /// # Errors
    /// When it is missing or not a record.
    pub fn record(&self, arg_idx: usize) -> Result<&BTreeMap<String, Val>> {
        self.typed(arg_idx, "a record", Val::as_record)
    }

    /// Argument `arg_idx` as an object reference.
    ///
    /// # Errors
    /// When it is missing or not an object.
    pub fn object(&self, arg_idx: usize) -> Result<Ref> {
        self.typed(arg_idx, "an object", Val::as_object).cloned()
    }

    /// Argument `arg_idx` as a promise.
    ///
    /// # Errors
    /// When it is missing or not a promise.
    pub fn promise(&self, arg_idx: usize) -> Result<Promise> {
        self.typed(arg_idx, "a promise", Val::as_promise).cloned()
    }

    fn typed<'a, T>(
        &'a self,
        arg_idx: usize,
        expected: &str,
        view: impl Fn(&'a Val) -> Option<T>,
    ) -> Result<T> {
        let val = self.val(arg_idx)?;
        view(val).ok_or_else(|| self.mistyped(arg_idx, expected, val))
    }

    fn mistyped(&self, arg_idx: usize, expected: &str, val: &Val) -> Error {
        Error::new(format!(
            "{}: argument {arg_idx} must be {expected}, not {}",
            self.method,
            val.a_kind()
        ))
    }
}

impl<'a> IntoIterator for &'a Args {
    type Item = &'a Val;
    type IntoIter = std::slice::Iter<'a, Val>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.iter()
    }
}
