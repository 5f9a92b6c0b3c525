//! Support for the cross-crate tests: a kernel on a temporary store with the example vats,
//! and helpers to build clusters and read results.
#![allow(clippy::unwrap_used)]

mod probe;

pub use probe::Probe;

use std::path::{Path, PathBuf};
use std::time::Duration;

use ocap_kernel::{Kernel, KernelConfig, LaunchResult};
use ocap_types::{CapData, ClusterConfig, KRef, OrderedVats, Value, VatConfig, WorkerKind};
use ocap_vat_manager::VatRegistry;

/// How long any test waits for the kernel before failing instead of hanging.
pub const WAIT: Duration = Duration::from_secs(20);

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
    /// A fresh kernel.
    pub fn new() -> Self {
        TestKernel::open(config(), WorkerKind::InProcess)
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

    /// `config` as this kernel launches it: for subprocess workers, every vat's `worker`
    /// is forced to `subprocess`.
    pub fn prepare(&self, config: &ClusterConfig) -> ClusterConfig {
        let mut config = config.clone();
        if self.workers == WorkerKind::Subprocess {
            for (_, vat) in &mut config.vats.0 {
                vat.worker = WorkerKind::Subprocess;
            }
        }
        config
    }

    /// Launches a cluster (see [`TestKernel::prepare`]) and returns the launch result.
    pub fn launch(&self, config: &ClusterConfig) -> LaunchResult {
        self.kernel
            .launch_subcluster(&self.prepare(config))
            .unwrap()
    }
}

impl Default for TestKernel {
    fn default() -> Self {
        TestKernel::new()
    }
}

/// Every example vat, plus `probe`: what the tests' kernels and `ocap-test-worker` serve.
pub fn registry() -> VatRegistry {
    let mut registry = ocap_cli::registry();
    registry.register("probe", || Box::new(Probe::default()));
    registry
}

/// The kernel config of the tests: [`registry`], in-process workers by default.
pub fn config() -> KernelConfig {
    KernelConfig::new(registry())
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

/// A cluster of `vats` (name, registered code), the first one bootstrapped.
pub fn cluster(vats: &[(&str, &str)]) -> ClusterConfig {
    ClusterConfig {
        bootstrap: vats[0].0.to_owned(),
        vats: OrderedVats(
            vats.iter()
                .map(|(name, code)| ((*name).to_owned(), VatConfig::named(code)))
                .collect(),
        ),
        services: Vec::new(),
        force_reset: None,
    }
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
