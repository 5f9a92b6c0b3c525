//! The vat lifecycle through the kernel's API (spec §12, §15, §16): launch failures, vat
//! logs, restarts, termination and its cleanup, subclusters, kernel services, and state that
//! survives vat and kernel restarts. Each submodule follows one group of conformance
//! scenarios (§21.2, §21.11, §21.12, §21.13, §21.18, §21.19, §21.22). Every vat runs where
//! `ocap_tests::default_workers` says, also after a kernel restart.

mod launch;
mod persistence;
mod services;
mod subclusters;
mod termination;
mod upgrade;

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver};

use ocap_kernel::{Kernel, KernelConfig};
use ocap_tests::{TestKernel, call, decode, rejection};
use ocap_types::{ClusterConfig, KRef, Value, VatId, VatLog};

/// A string answer, or a panic naming what came instead.
fn call_str(kernel: &Kernel, target: KRef, method: &str) -> String {
    match call(kernel, target, method, vec![]) {
        Ok(Value::Str(text)) => text,
        other => panic!("{method}: expected a string, got {other:?}"),
    }
}

/// A string value, or a panic naming what came instead.
fn decode_text(data: &ocap_types::CapData<KRef>) -> String {
    match decode(data) {
        Value::Str(text) => text,
        other => panic!("expected a string, got {other:?}"),
    }
}

/// Every log line vats emit, with the vat's id.
struct Logs(Receiver<(VatId, VatLog)>);

impl Logs {
    /// The messages logged so far by `vat` whose tags are exactly `tags`.
    fn of(&self, vat: VatId, tags: &[&str]) -> Vec<String> {
        self.0
            .try_iter()
            .filter(|(v, log)| *v == vat && log.tags == tags)
            .map(|(_, log)| log.message)
            .collect()
    }

    /// The messages logged so far by `vat` with the `test` tag.
    fn tests_of(&self, vat: VatId) -> Vec<String> {
        self.0
            .try_iter()
            .filter(|(v, log)| *v == vat && log.tags.first().is_some_and(|t| t == "test"))
            .map(|(_, log)| log.message)
            .collect()
    }
}

/// The test kernel config, with a log sink.
fn config_with_logs() -> (KernelConfig, Logs) {
    let (sender, receiver) = mpsc::channel();
    let mut config = ocap_tests::config();
    config.log_sink = Some(Arc::new(move |vat: VatId, log: &VatLog| {
        let _ = sender.send((vat, log.clone()));
    }));
    (config, Logs(receiver))
}

/// A fresh kernel whose vat logs are collected.
fn kernel_with_logs() -> (TestKernel, Logs) {
    let (config, logs) = config_with_logs();
    (TestKernel::with_config(config), logs)
}

/// Opens a kernel on an existing store directory.
fn reopen(path: &Path) -> Kernel {
    Kernel::open(path, ocap_tests::config()).unwrap()
}

/// A cluster of `(name, code, parameters)`, the first one bootstrapped, given `services`.
fn cluster_with(vats: &[(&str, &str, Value)], services: &[&str]) -> ClusterConfig {
    let mut config = ocap_tests::cluster_with(vats);
    config.services = services.iter().map(|s| (*s).to_owned()).collect();
    config
}

/// A record of `(key, value)` parameters.
fn params(fields: &[(&str, Value)]) -> Value {
    ocap_tests::record(fields)
}

fn vat(id: u32) -> VatId {
    VatId(id)
}
