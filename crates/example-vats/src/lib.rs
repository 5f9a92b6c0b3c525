//! Example vats written against the vat SDK (`ocap-vat`), compiled into the `ocap` binary and
//! used by the kernel's tests: `alice` and `bob` (a two-vat greeting), `tester` (a
//! general-purpose vat whose methods exercise the kernel's behaviours), and the vats of the
//! conformance scenarios: `liveslots` (promise semantics), `rejection-bootstrap` and
//! `rejection-rejector` (a failing method), `exporter` and `observer` (syscall validation and
//! revocation), `exo-test` (guards, classes, kits and stores, spec §21.5), `gc-exporter`
//! and `gc-importer` (refcounts and `bringOutYourDead`, spec §21.6), `counter-v1`,
//! `counter-v2` and `counter-v2-broken` (vat upgrade, issue 13).
//!
//! `bench-pingpong` is the vat of `ocap bench`.
//!
//! Invariant: vat code here uses only the SDK; `ocap_types` appears only in the registry's
//! signature, which is what the kernel consumes, and in `bench-pingpong`, which speaks the
//! raw vat protocol so that the benchmark measures the kernel rather than the SDK.
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
mod bench;
mod bob;
mod exo_test;
mod exporter;
mod gc;
mod hoarder;
mod launch_errors;
mod liveslots;
mod orphan;
mod persistence;
mod rejection;
mod service_user;
mod tester;
mod upgrade;

#[cfg(test)]
mod tests;

use ocap_vat::VatRuntime;

/// Constructs a fresh runtime for one incarnation of a vat.
pub type VatConstructor = fn() -> Box<dyn VatRuntime>;

/// Every example vat, by name, sorted.
pub fn registry() -> Vec<(&'static str, VatConstructor)> {
    vec![
        ("alice", alice::runtime as VatConstructor),
        ("bench-pingpong", bench::runtime),
        ("bob", bob::runtime),
        ("counter-v1", upgrade::v1),
        ("counter-v2", upgrade::v2),
        ("counter-v2-broken", upgrade::v2_broken),
        ("exo-test", exo_test::runtime),
        ("exporter", exporter::exporter_runtime),
        ("gc-exporter", gc::exporter_runtime),
        ("gc-importer", gc::importer_runtime),
        ("hoarder", hoarder::runtime),
        ("liveslots", liveslots::runtime),
        ("logger-vat", launch_errors::logger),
        ("observer", exporter::observer_runtime),
        ("orphan-consumer", orphan::consumer),
        ("orphan-provider", orphan::provider),
        ("persistence-announcer", persistence::announcer),
        ("persistence-coordinator", persistence::coordinator),
        ("persistence-counter", persistence::counter),
        ("persistence-worker", persistence::worker),
        ("rejection-bootstrap", rejection::bootstrap_runtime),
        ("rejection-rejector", rejection::rejector_runtime),
        ("service-vat", service_user::runtime),
        ("tester", tester::runtime),
        ("throw-bootstrap", launch_errors::bootstrap),
        ("throw-build", launch_errors::build),
        ("throw-global", launch_errors::global),
        ("throw-restart", launch_errors::restart),
    ]
}
