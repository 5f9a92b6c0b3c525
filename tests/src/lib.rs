//! Support for the cross-crate tests: a kernel on a temporary store with the example vats,
//! and helpers to build clusters and read results.
//!
//! Where the tests' vats run: every cluster built here, every [`TestKernel::new`] and every
//! [`config`] follows [`default_workers`], which the `OCAP_TEST_WORKERS` environment
//! variable chooses (`inProcess`, the default, or `subprocess`). The `it` binary's
//! `modes` test runs the whole binary again the other way, so one `cargo test` runs every
//! scenario with vats in the kernel's process and in worker processes.
#![allow(clippy::unwrap_used)]

pub mod driver;
mod hostile;
mod probe;

pub use hostile::Hostile;
pub use probe::Probe;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocap_kernel::{Kernel, KernelConfig, KernelError, LaunchResult};
use ocap_types::{CapData, ClusterConfig, KRef, Value, VatConfig, VatId, WorkerKind};
use ocap_vat_manager::VatRegistry;

/// How long any test waits for the kernel before failing instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);

/// The environment variable that says where the tests' vats run by default:
/// `inProcess` (also the default when it is unset) or `subprocess`.
pub const WORKERS_VAR: &str = "OCAP_TEST_WORKERS";

/// Where the tests' vats run unless a test says otherwise, from [`WORKERS_VAR`].
///
/// # Panics
/// When the variable holds anything else than the two names (a typo must not quietly run
/// the suite in process).
pub fn default_workers() -> WorkerKind {
    match std::env::var(WORKERS_VAR) {
        Err(std::env::VarError::NotPresent) => WorkerKind::InProcess,
        Ok(value) => parse_workers(&value)
            .unwrap_or_else(|| panic!("{WORKERS_VAR}={value:?}: expected inProcess or subprocess")),
        Err(error) => panic!("{WORKERS_VAR}: {error}"),
    }
}

/// `inProcess` (or `in-process`) and `subprocess`, as in cluster files.
pub fn parse_workers(text: &str) -> Option<WorkerKind> {
    match text {
        "inProcess" | "in-process" => Some(WorkerKind::InProcess),
        "subprocess" => Some(WorkerKind::Subprocess),
        _ => None,
    }
}

/// The name of `workers` that [`default_workers`] reads back.
pub fn workers_name(workers: WorkerKind) -> &'static str {
    match workers {
        WorkerKind::InProcess => "inProcess",
        WorkerKind::Subprocess => "subprocess",
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A kernel on a temporary store, with every example vat registered.
pub struct TestKernel {
    /// The kernel.
    pub kernel: Kernel,
    /// The store directory (removed on drop).
    pub dir: tempfile::TempDir,
    workers: WorkerKind,
}

impl TestKernel {
    /// A fresh kernel whose vats run where [`default_workers`] says.
    pub fn new() -> Self {
        TestKernel::with_config(config())
    }

    /// A fresh kernel from `config` whose vats run where [`default_workers`] says.
    pub fn with_config(config: KernelConfig) -> Self {
        TestKernel::open(config, default_workers())
    }

    /// A fresh kernel whose vats all run as `workers`: with [`WorkerKind::Subprocess`],
    /// every vat [`TestKernel::launch`] starts runs in an `ocap-test-worker` process.
    pub fn with_workers(workers: WorkerKind) -> Self {
        TestKernel::open(config(), workers)
    }

    /// A fresh kernel from `config`; for subprocess workers the worker program is
    /// [`worker_program`] unless `config` names one.
    pub fn open(mut config: KernelConfig, workers: WorkerKind) -> Self {
        if workers == WorkerKind::Subprocess && config.workers.program.is_none() {
            config.workers.program = Some(worker_program());
        }
        if config.workers.confinement.launcher.is_none() {
            config.workers.confinement.launcher = Some(worker_program());
        }
        let dir = tempfile::tempdir().unwrap();
        let kernel = Kernel::open(dir.path(), config).unwrap();
        TestKernel {
            kernel,
            dir,
            workers,
        }
    }

    /// Where this kernel's vats run.
    pub fn workers(&self) -> WorkerKind {
        self.workers
    }

    /// `config` as this kernel launches it: every vat's `worker` is this kernel's kind.
    pub fn prepare(&self, config: &ClusterConfig) -> ClusterConfig {
        with_workers(config, self.workers)
    }

    /// Launches a cluster (see [`TestKernel::prepare`]) and returns the launch result.
    pub fn launch(&self, config: &ClusterConfig) -> LaunchResult {
        self.try_launch(config).unwrap()
    }

    /// Launches a cluster (see [`TestKernel::prepare`]) that may fail to launch.
    ///
    /// # Errors
    /// As [`Kernel::launch_subcluster`].
    pub fn try_launch(&self, config: &ClusterConfig) -> Result<LaunchResult, KernelError> {
        self.kernel.launch_subcluster(&self.prepare(config))
    }

    /// Runs the kernel until idle and fails the test unless the refcount audit finds the
    /// store consistent (see [`assert_refcounts_consistent`]).
    ///
    /// # Panics
    /// With the audit's report, when it found anything.
    #[track_caller]
    pub fn assert_refcounts_consistent(&self) {
        assert_refcounts_consistent(&self.kernel);
    }
}

impl Default for TestKernel {
    fn default() -> Self {
        TestKernel::new()
    }
}

/// `config` with every vat running as `workers`.
pub fn with_workers(config: &ClusterConfig, workers: WorkerKind) -> ClusterConfig {
    let mut config = config.clone();
    for (_, vat) in &mut config.vats.0 {
        vat.worker = workers;
    }
    config
}

/// Every example vat, plus `probe`, `driver` and `hostile` (the protocol-level test vats): what the
/// tests' kernels and `ocap-test-worker` serve.
pub fn registry() -> VatRegistry {
    let mut registry = ocap_cli::registry();
    registry.register("probe", || Box::new(Probe::default()));
    registry.register("driver", || Box::new(driver::Driver::default()));
    registry.register("hostile", || Box::new(Hostile));
    registry
}

/// The kernel config of the tests: [`registry`], the confinement launcher
/// ([`worker_program`]); with [`default_workers`] `subprocess`, also the worker program, so
/// that a kernel reopened on a store relaunches its vats.
pub fn config() -> KernelConfig {
    let mut config = KernelConfig::new(registry());
    if default_workers() == WorkerKind::Subprocess {
        config.workers.program = Some(worker_program());
    }
    // `ocap-test-worker` is also the confinement launcher: workers are confined, as by default.
    config.workers.confinement.launcher = Some(worker_program());
    config
}

/// The `ocap-test-worker` program, built by cargo next to the test binaries (which live in
/// `target/<profile>/deps`).
pub fn worker_program() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let mut dir = exe.parent().unwrap();
    if dir.ends_with("deps") {
        dir = dir.parent().unwrap();
    }
    let program = dir.join(format!("ocap-test-worker{}", std::env::consts::EXE_SUFFIX));
    assert!(
        program.is_file(),
        "{} is missing: build it with `cargo build -p ocap-tests --bins`",
        program.display()
    );
    program
}

/// A cluster of `vats` (name, registered code), the first one bootstrapped, every vat
/// running where [`default_workers`] says.
pub fn cluster(vats: &[(&str, &str)]) -> ClusterConfig {
    let vats: Vec<_> = vats
        .iter()
        .map(|(name, code)| (*name, *code, Value::Null))
        .collect();
    cluster_with(&vats)
}

/// A cluster of `vats` (name, registered code, parameters), the first one bootstrapped,
/// every vat running where [`default_workers`] says.
pub fn cluster_with(vats: &[(&str, &str, Value)]) -> ClusterConfig {
    let workers = default_workers();
    vats.iter()
        .fold(
            ClusterConfig::builder(vats[0].0),
            |cluster, (name, code, parameters)| {
                let vat = VatConfig::named(code)
                    .with_parameters(parameters.clone())
                    .with_worker(workers);
                cluster.vat(*name, vat)
            },
        )
        .build()
        .unwrap()
}

/// A record value of `(key, value)` fields.
pub fn record(fields: &[(&str, Value)]) -> Value {
    Value::Record(
        fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    )
}

/// The rejection of a message whose receiver reported the delivery error `text`: with
/// `workers` in process the vat's own text; from a worker process a fixed sentence (the
/// worker's text is only logged, as it is untrusted).
pub fn delivery_error(workers: WorkerKind, text: &str) -> String {
    let detail = match workers {
        WorkerKind::InProcess => text,
        WorkerKind::Subprocess => "vat worker reported a delivery error",
    };
    format!("[KERNEL:VAT_FATAL:INTERNAL_ERROR] {detail}")
}

/// The message of a rejected result; any other failure fails the test.
pub fn rejection(err: KernelError) -> String {
    match err {
        KernelError::Rejected(rejection) => rejection.message().to_owned(),
        other => panic!("expected a rejection, got {other:?}"),
    }
}

/// An error and its causes, joined with ": ".
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Every running vat with its root object.
pub fn roots(kernel: &Kernel) -> Vec<(VatId, KRef)> {
    kernel
        .vat_ids()
        .unwrap()
        .into_iter()
        .map(|vat| (vat, kernel.vat_root(vat).unwrap().unwrap()))
        .collect()
}

/// Sends `method(args)` from the host and waits at most [`WAIT`]: the decoded result, or
/// the rejection's message.
pub fn call(
    kernel: &Kernel,
    target: KRef,
    method: &str,
    args: Vec<Value>,
) -> Result<Value, String> {
    kernel
        .queue_message(target, method, args)
        .unwrap()
        .wait(WAIT)
        .map(|data| decode(&data))
        .map_err(rejection)
}

/// Runs `kernel` until idle, then audits its store between cranks
/// ([`ocap_store::KernelStore::check`]: every stored count against the references that hold
/// it, dangling references, c-lists both ways) and fails the test with the audit's report
/// unless it is empty. Scenarios call it last, so any end state they reach is checked.
///
/// # Panics
/// With the audit's report, when it found anything, or when the kernel fails.
#[track_caller]
pub fn assert_refcounts_consistent(kernel: &Kernel) {
    kernel.run_until_idle(WAIT).unwrap();
    let report = kernel.inspect(|store| store.check()).unwrap().unwrap();
    assert!(report.is_empty(), "refcount audit:\n{report}");
}

/// Decodes a result.
pub fn decode(data: &CapData<KRef>) -> Value {
    data.decode().unwrap()
}

/// True if `text` contains something shaped like an internal id: a kref (`ko1`, `kp2`), a
/// vref (`o+4`, `p-5`), an endpoint or subcluster id (`v3`, `r1`, `s2`).
pub fn has_ref_shaped_text(text: &str) -> bool {
    let bytes = text.as_bytes();
    let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let boundary_before = |i: usize| i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
    (0..bytes.len()).any(|i| {
        if !boundary_before(i) {
            return false;
        }
        match bytes[i] {
            b'k' => matches!(bytes.get(i + 1), Some(b'o' | b'p')) && digit_at(i + 2),
            b'o' | b'p' => matches!(bytes.get(i + 1), Some(b'+' | b'-')) && digit_at(i + 2),
            b'v' | b'r' | b's' => digit_at(i + 1),
            _ => false,
        }
    })
}
