//! Example vats written against the vat SDK (`ocap-vat`), compiled into the `ocap` binary and
//! used by the kernel's tests: `alice` and `bob` (a two-vat greeting) and `tester` (a
//! general-purpose vat whose methods exercise the kernel's behaviours).
//!
//! Invariant: vat code here uses only the SDK; `ocap_types` appears only in the registry's
//! signature, which is what the kernel consumes.
//!
//! ```
//! use ocap_types::{Value, VatHost, VatLog, Syscall, VatStart};
//!
//! struct NoHost;
//! impl VatHost for NoHost {
//!     fn syscall(&mut self, _syscall: Syscall) {}
//!     fn log(&mut self, _log: VatLog) {}
//! }
//!
//! let registry = ocap_example_vats::registry();
//! let (_, make_bob) = registry.iter().find(|(name, _)| *name == "bob").expect("bob is listed");
//! let mut bob = make_bob();
//! let start = VatStart { name: "bob".into(), parameters: Value::Null, state: Vec::new() };
//! assert_eq!(bob.start(start, &mut NoHost).error, None);
//! ```

mod alice;
mod bob;
mod tester;

#[cfg(test)]
mod tests;

use ocap_types::VatRuntime;

/// Constructs a fresh runtime for one incarnation of a vat.
pub type VatConstructor = fn() -> Box<dyn VatRuntime>;

/// Every example vat, by name, sorted.
pub fn registry() -> Vec<(&'static str, VatConstructor)> {
    vec![
        ("alice", alice::runtime as VatConstructor),
        ("bob", bob::runtime),
        ("tester", tester::runtime),
    ]
}
