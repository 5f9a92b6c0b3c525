//! Method guards, after Endo's interface guards (`M.call(M.number()).returns(M.number())`):
//! a [`Guard`] is a pattern one value must match, a [`MethodGuard`] the shape of a method's
//! arguments and answer. The SDK checks them before the method runs, so a method never sees
//! arguments its guard rejects, and the caller gets an error naming the method, the
//! interface, the argument and the offending value:
//! `In "increment" method of (Counter): arg 0: string "foo" - Must be a number`.
//!
//! Invariant: the texts built here are stable (the conformance scenario §21.5.4 asserts one);
//! they render vat-level values only, never a vref.

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::rc::Rc;

use crate::args::Args;
use crate::error::{Error, Result};
use crate::object::Reply;
use crate::val::Val;

/// A pattern a value must match.
///
/// Numbers follow JavaScript: [`Guard::Number`] accepts any integer or float (negative ones
/// too); [`Guard::Int`] an integral one; [`Guard::Nat`] a non-negative integral one.
///
/// # Examples
/// ```
/// use ocap_vat::{Guard, Val};
///
/// assert!(Guard::Number.matches(&Val::from(-3)));
/// assert!(Guard::list_of(Guard::String).matches(&Val::list(["a", "b"])));
/// assert!(Guard::or([Guard::Null, Guard::Int]).matches(&Val::Null));
/// assert_eq!(
///     Guard::Number.check(&Val::from("foo")).unwrap_err().message(),
///     "string \"foo\" - Must be a number"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Guard {
    /// Anything at all.
    Any,
    /// An integer or a float.
    Number,
    /// An integral number.
    Int,
    /// A non-negative integral number.
    Nat,
    /// Text.
    String,
    /// A boolean.
    Bool,
    /// `null`.
    Null,
    /// `undefined` (what an omitted argument would be).
    Undefined,
    /// A reference to an object, local or remote.
    Object,
    /// A promise.
    Promise,
    /// A list of anything.
    List,
    /// A list whose every item matches the guard.
    ListOf(Box<Guard>),
    /// A record of anything.
    Record,
    /// A value equal to this one.
    Eq(Val),
    /// A value matching at least one of the guards.
    Or(Vec<Guard>),
}

impl Guard {
    /// A list whose every item matches `item`.
    pub fn list_of(item: Guard) -> Guard {
        Guard::ListOf(Box::new(item))
    }

    /// A value matching one of `guards`.
    pub fn or(guards: impl IntoIterator<Item = Guard>) -> Guard {
        Guard::Or(guards.into_iter().collect())
    }

    /// `undefined` or a value matching `guard` (an optional field or argument).
    pub fn opt(guard: Guard) -> Guard {
        Guard::Or(vec![Guard::Undefined, guard])
    }

    /// True when `val` matches.
    pub fn matches(&self, val: &Val) -> bool {
        match self {
            Guard::Any => true,
            Guard::Number => matches!(val, Val::Int(_) | Val::Float(_)),
            Guard::Int => integral(val).is_some(),
            Guard::Nat => integral(val).is_some_and(|n| n >= 0.0),
            Guard::String => matches!(val, Val::Str(_)),
            Guard::Bool => matches!(val, Val::Bool(_)),
            Guard::Null => matches!(val, Val::Null),
            Guard::Undefined => matches!(val, Val::Undefined),
            Guard::Object => matches!(val, Val::Ref(_)),
            Guard::Promise => matches!(val, Val::Promise(_)),
            Guard::List => matches!(val, Val::List(_)),
            Guard::ListOf(item) => val
                .as_list()
                .is_some_and(|items| items.iter().all(|v| item.matches(v))),
            Guard::Record => matches!(val, Val::Record(_)),
            Guard::Eq(expected) => val == expected,
            Guard::Or(guards) => guards.iter().any(|g| g.matches(val)),
        }
    }

    /// Checks `val`.
    ///
    /// # Errors
    /// When it does not match: the message renders the value and what it must be, e.g.
    /// `string "foo" - Must be a number`; a list item that does not match is named by its
    /// index (`[1]: …`).
    pub fn check(&self, val: &Val) -> Result<()> {
        self.failure(val)
            .map_or(Ok(()), |text| Err(Error::new(text)))
    }

    fn failure(&self, val: &Val) -> Option<String> {
        if let (Guard::ListOf(item), Some(items)) = (self, val.as_list()) {
            return items
                .iter()
                .enumerate()
                .find_map(|(item_idx, v)| Some(format!("[{item_idx}]: {}", item.failure(v)?)));
        }
        if self.matches(val) {
            return None;
        }
        Some(format!("{} - Must be {}", describe(val), self.expected()))
    }

    /// What a matching value is, after "Must be".
    fn expected(&self) -> String {
        match self {
            Guard::Any => "anything".to_owned(),
            Guard::Number => "a number".to_owned(),
            Guard::Int => "an integer".to_owned(),
            Guard::Nat => "a natural number".to_owned(),
            Guard::String => "a string".to_owned(),
            Guard::Bool => "a boolean".to_owned(),
            Guard::Null => "null".to_owned(),
            Guard::Undefined => "undefined".to_owned(),
            Guard::Object => "an object reference".to_owned(),
            Guard::Promise => "a promise".to_owned(),
            Guard::List => "a list".to_owned(),
            Guard::ListOf(item) => format!("a list of ({})", item.expected()),
            Guard::Record => "a record".to_owned(),
            Guard::Eq(expected) => quote(expected),
            Guard::Or(guards) => {
                let options: Vec<String> = guards.iter().map(Guard::expected).collect();
                format!("one of: {}", options.join(", "))
            }
        }
    }
}

/// The value of an integral number, if `val` is one.
fn integral(val: &Val) -> Option<f64> {
    match val {
        Val::Int(n) => Some(*n as f64),
        Val::Float(x) if x.is_finite() && x.fract() == 0.0 => Some(*x),
        _ => None,
    }
}

/// The shape of one method: its required and optional arguments, any further ones, and
/// its answer. Made with [`MethodGuard::call`], or from an array of argument guards.
///
/// A call with fewer arguments than required, or more than declared (with no
/// [`MethodGuard::rest`] guard), is rejected; so is an answer not matching
/// [`MethodGuard::returns`] (an answer given later is checked when it comes).
///
/// # Examples
/// ```
/// use ocap_vat::{Guard, MethodGuard};
///
/// // `greet(name, times?) -> string`
/// let guard = MethodGuard::call([Guard::String])
///     .optional([Guard::Nat])
///     .returns(Guard::String);
/// # let _ = guard;
/// // The common case: just the required arguments.
/// let increment: MethodGuard = [Guard::Number].into();
/// # let _ = increment;
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct MethodGuard {
    required: Vec<Guard>,
    optional: Vec<Guard>,
    rest: Option<Guard>,
    returns: Guard,
}

impl MethodGuard {
    /// A method taking exactly these arguments and answering anything.
    pub fn call(required: impl IntoIterator<Item = Guard>) -> MethodGuard {
        MethodGuard {
            required: required.into_iter().collect(),
            optional: Vec::new(),
            rest: None,
            returns: Guard::Any,
        }
    }

    /// Adds optional arguments after the required ones; an omitted one is not checked.
    pub fn optional(mut self, optional: impl IntoIterator<Item = Guard>) -> MethodGuard {
        self.optional.extend(optional);
        self
    }

    /// Accepts any number of further arguments, each matching `guard`.
    pub fn rest(mut self, guard: Guard) -> MethodGuard {
        self.rest = Some(guard);
        self
    }

    /// The answer must match `guard`.
    pub fn returns(mut self, guard: Guard) -> MethodGuard {
        self.returns = guard;
        self
    }

    /// Checks the arguments of a call to `method` of the interface `iface`.
    ///
    /// # Errors
    /// When there are too few or too many, or one does not match its guard:
    /// `In "<method>" method of (<iface>): arg <i>: <value> - Must be <what>`.
    pub fn check_args(&self, iface: &str, method: &str, args: &Args) -> Result<()> {
        let n_args = args.len();
        let n_required = self.required.len();
        let n_declared = n_required + self.optional.len();
        if n_args < n_required || (self.rest.is_none() && n_args > n_declared) {
            return Err(in_method(iface, method, &self.arity(n_args)));
        }
        let guards = self
            .required
            .iter()
            .chain(&self.optional)
            .chain(std::iter::repeat_n(self.rest.as_ref(), n_args).flatten());
        for (arg_idx, (guard, arg)) in guards.zip(args).enumerate() {
            if let Some(failure) = guard.failure(arg) {
                return Err(in_method(
                    iface,
                    method,
                    &format!("arg {arg_idx}: {failure}"),
                ));
            }
        }
        Ok(())
    }

    /// Checks the answer of `method` of `iface`.
    ///
    /// # Errors
    /// When it does not match [`MethodGuard::returns`]:
    /// `In "<method>" method of (<iface>): result: <value> - Must be <what>`.
    pub fn check_result(&self, iface: &str, method: &str, answer: &Val) -> Result<()> {
        match self.returns.failure(answer) {
            None => Ok(()),
            Some(failure) => Err(in_method(iface, method, &format!("result: {failure}"))),
        }
    }

    fn arity(&self, n_args: usize) -> String {
        let n_required = self.required.len();
        let n_declared = n_required + self.optional.len();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let expected = if self.rest.is_some() {
            format!("at least {n_required} argument{}", plural(n_required))
        } else if n_declared == n_required {
            format!("{n_required} argument{}", plural(n_required))
        } else {
            format!("{n_required} to {n_declared} arguments")
        };
        format!("expected {expected}, got {n_args}")
    }
}

impl<const N: usize> From<[Guard; N]> for MethodGuard {
    fn from(required: [Guard; N]) -> Self {
        MethodGuard::call(required)
    }
}

impl From<Vec<Guard>> for MethodGuard {
    fn from(required: Vec<Guard>) -> Self {
        MethodGuard::call(required)
    }
}

fn in_method(iface: &str, method: &str, detail: &str) -> Error {
    Error::new(format!("In {method:?} method of ({iface}): {detail}"))
}

/// The guards of one object's (or facet's) methods, by method name.
#[derive(Debug, Clone, Default)]
pub(crate) struct Guards(BTreeMap<String, Rc<MethodGuard>>);

impl Guards {
    pub(crate) fn insert(&mut self, method: &str, guard: MethodGuard) {
        self.0.insert(method.to_owned(), Rc::new(guard));
    }

    /// Calls `method` through its guard, if it has one: arguments the guard rejects reject
    /// the call before `call` runs, and the answer is checked when it comes.
    pub(crate) fn invoke(
        &self,
        iface: &str,
        method: &str,
        args: Args,
        call: impl FnOnce(Args) -> Reply,
    ) -> Reply {
        let Some(guard) = self.0.get(method) else {
            return call(args);
        };
        if let Err(error) = guard.check_args(iface, method, &args) {
            return Reply::err(error);
        }
        let reply = call(args);
        if guard.returns == Guard::Any {
            return reply;
        }
        let (guard, iface, method) = (Rc::clone(guard), iface.to_owned(), method.to_owned());
        reply.map(move |res| {
            let answer = res?;
            guard.check_result(&iface, &method, &answer)?;
            Ok(answer)
        })
    }
}

/// `<kind> <rendering>` of a value, for failure texts: `string "foo"`, `number -3`,
/// `record {a: 1}`; just `undefined` and `null` for those.
pub(crate) fn describe(val: &Val) -> String {
    match val {
        Val::Undefined | Val::Null => val.kind().to_owned(),
        // Not a number to the guards, so not called one here either.
        Val::BigInt(_) => format!("bigint {}", quote(val)),
        _ => format!("{} {}", val.kind(), quote(val)),
    }
}

/// A rendering of a value in which strings are quoted, so `"1"` and `1` differ.
pub(crate) fn quote(val: &Val) -> String {
    let mut out = String::new();
    quote_into(&mut out, val);
    out
}

fn quote_into(out: &mut String, val: &Val) {
    match val {
        Val::Str(s) => {
            let _ = write!(out, "{s:?}");
        }
        Val::List(items) => {
            out.push('[');
            for (item_idx, item) in items.iter().enumerate() {
                if item_idx > 0 {
                    out.push_str(", ");
                }
                quote_into(out, item);
            }
            out.push(']');
        }
        Val::Record(fields) => {
            out.push('{');
            for (field_idx, (key, value)) in fields.iter().enumerate() {
                if field_idx > 0 {
                    out.push_str(", ");
                }
                let _ = write!(out, "{key}: ");
                quote_into(out, value);
            }
            out.push('}');
        }
        Val::Error { name, message } => {
            let _ = write!(out, "{name}({message:?})");
        }
        Val::Tagged { tag, payload } => {
            let _ = write!(out, "{tag}(");
            quote_into(out, payload);
            out.push(')');
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}
