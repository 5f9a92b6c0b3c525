//! The trust boundary, in one place: what no vat, host or second process may do to a vat,
//! the store or a promise. Each test is named after what it shows and uses the public API
//! only; like the rest of the suite it runs with vats in process and in worker processes.
//! The tests are grouped by who is kept out of what (one submodule each); `docs/trust.md`
//! lists every rule with its test.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use ocap_cli::CliError;
use ocap_kernel::{InputError, Kernel, KernelError};
use ocap_tests::driver::{resolve, send_r, vat};
use ocap_tests::{TestKernel, WAIT, call, cluster, config, has_ref_shaped_text, record, roots};
use ocap_types::{
    ConfigError, EndpointId, KRef, MAX_DEPTH, MethargsError, Value, VatId, VatLimits, WorkerKind,
};
use ocap_vat_manager::LimitExceeded;

/// A kernel with one probe vat `a`: its id and root.
fn one_probe() -> (TestKernel, ocap_types::VatId, KRef) {
    let test = TestKernel::new();
    test.launch(&cluster(&[("a", "probe")]));
    let (vat, root) = roots(&test.kernel)[0];
    (test, vat, root)
}

/// The probe `vat` is still running and answers.
fn assert_alive(test: &TestKernel, vat: ocap_types::VatId, root: KRef) {
    test.kernel.run_until_idle(WAIT).unwrap();
    assert!(
        test.kernel.vat_ids().unwrap().contains(&vat),
        "the vat lives"
    );
    assert_eq!(
        call(&test.kernel, root, "echo", vec![Value::str("alive")]),
        Ok(Value::str("alive"))
    );
}

mod crashes;
mod deciders;
mod host_input;
mod store_lock;
mod vat_input;
mod workers;
