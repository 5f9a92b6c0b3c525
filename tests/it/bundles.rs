//! Vats that run an executable of their own (`bundlePath`, issue 11): they need no worker
//! program in the kernel's config, the store records the executable's path and hash so a
//! reopened kernel relaunches them unasked, a missing executable stops only its vat, and a
//! rebuilt one is refused until the vat is upgraded to it.
//!
//! The executable is a copy of `ocap-test-worker`, run as `<path> worker <vat-name>`: a vat
//! named like one of its registered vats (`persistence-counter`) is that vat. Like
//! `workers`, these choose their worker kind themselves (a path vat always runs in a
//! worker process).

use std::path::{Path, PathBuf};

use ocap_kernel::inspect::OfflineStore;
use ocap_kernel::{
    BundleSpec, ClusterConfig, Kernel, KernelConfig, KernelError, Value, VatConfig, VatError,
    VatId, VatRegistry, VatUpgrade,
};
use ocap_tests::call;

/// A kernel on `store` that knows no vat code and no worker program: only the launcher
/// that confines every worker (docs/confinement.md), which any host names.
fn bare_kernel(store: &Path) -> Kernel {
    let mut config = KernelConfig::new(VatRegistry::new());
    config.workers.confinement.launcher = Some(ocap_tests::worker_program());
    Kernel::open(store, config).unwrap()
}

/// A private copy of the test worker program at `dir/name`.
fn vat_executable(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::copy(ocap_tests::worker_program(), &path).unwrap();
    path
}

/// A one-vat cluster: `persistence-counter`, run from `path`.
fn counter_cluster(path: &Path) -> ClusterConfig {
    ClusterConfig::builder("persistence-counter")
        .vat("persistence-counter", VatConfig::at_path(path))
        .build()
        .unwrap()
}

/// The hash the store records for `vat` (the kernel on `store` must be shut down).
fn recorded_hash(store: &Path, vat: VatId) -> Option<String> {
    let offline = OfflineStore::open(store).unwrap();
    offline.tables().vat(vat).unwrap().unwrap().bundle_hash
}

#[test]
fn a_path_vat_runs_without_a_worker_program_and_is_relaunched_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let exe = vat_executable(dir.path(), "counter-vat");
    let kernel = bare_kernel(&store);
    let launched = kernel.launch_subcluster(&counter_cluster(&exe)).unwrap();
    assert_eq!(
        launched.bootstrap_result.decode().unwrap(),
        Value::str("Counter initialized with count: 1")
    );
    assert_eq!(
        call(&kernel, launched.root, "resume", vec![]),
        Ok(Value::str("Counter incremented to: 2"))
    );
    let vat = kernel.vats().unwrap()[0].id;
    kernel.shutdown().unwrap();
    let hash = recorded_hash(&store, vat).unwrap();
    assert!(
        hash.starts_with("blake3:") && hash.len() == 7 + 64,
        "{hash}"
    );

    // Nothing but the store says what to run.
    let kernel = bare_kernel(&store);
    assert_eq!(kernel.stopped_vats().unwrap(), []);
    assert_eq!(
        call(&kernel, launched.root, "resume", vec![]),
        Ok(Value::str("Counter incremented to: 3"))
    );
    kernel.shutdown().unwrap();
}

#[test]
fn a_missing_executable_stops_only_its_vat_and_the_kernel_opens() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let kept = vat_executable(dir.path(), "kept-vat");
    let lost = vat_executable(dir.path(), "lost-vat");
    let kernel = bare_kernel(&store);
    let kept_root = kernel
        .launch_subcluster(&counter_cluster(&kept))
        .unwrap()
        .root;
    kernel.launch_subcluster(&counter_cluster(&lost)).unwrap();
    kernel.shutdown().unwrap();
    std::fs::remove_file(&lost).unwrap();

    let kernel = bare_kernel(&store);
    let stopped = kernel.stopped_vats().unwrap();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    let (vat, reason) = &stopped[0];
    assert_eq!(*vat, VatId(2));
    let expected = format!("cannot read the executable of vat v2, {}:", lost.display());
    assert!(reason.starts_with(&expected), "{reason}");
    assert_eq!(
        call(&kernel, kept_root, "resume", vec![]),
        Ok(Value::str("Counter incremented to: 2")),
        "the other vat runs on"
    );
    // Put back, it restarts.
    std::fs::copy(&kept, &lost).unwrap();
    kernel.restart_vat(VatId(2)).unwrap();
    assert_eq!(kernel.stopped_vats().unwrap(), []);
    kernel.shutdown().unwrap();
}

#[test]
fn a_rebuilt_executable_is_refused_until_the_vat_is_upgraded_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let exe = vat_executable(dir.path(), "counter-vat");
    let kernel = bare_kernel(&store);
    let root = kernel
        .launch_subcluster(&counter_cluster(&exe))
        .unwrap()
        .root;
    kernel.shutdown().unwrap();
    let launched_hash = recorded_hash(&store, VatId(1)).unwrap();

    // A "rebuild": the same program with other bytes (trailing bytes do not change what
    // an ELF executable runs).
    let mut bytes = std::fs::read(&exe).unwrap();
    bytes.extend_from_slice(b"rebuilt");
    std::fs::remove_file(&exe).unwrap();
    std::fs::write(&exe, &bytes).unwrap();
    std::fs::set_permissions(&exe, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();

    let kernel = bare_kernel(&store);
    let stopped = kernel.stopped_vats().unwrap();
    assert_eq!(stopped.len(), 1, "{stopped:?}");
    assert!(
        stopped[0]
            .1
            .contains("changed since the vat was launched or last upgraded")
            && stopped[0].1.contains("ocap upgrade v1"),
        "{}",
        stopped[0].1
    );
    match kernel.restart_vat(VatId(1)) {
        Err(KernelError::Vat(VatError::BundleChanged {
            vat,
            recorded,
            found,
            ..
        })) => {
            assert_eq!(vat, VatId(1));
            assert_eq!(recorded, launched_hash);
            assert_ne!(found, launched_hash);
        }
        other => panic!("{other:?}"),
    }
    // The operator's deliberate step: upgrade to the new build. Its state carries over.
    let upgrade = VatUpgrade::new(BundleSpec::path(&exe));
    kernel.upgrade_vat(VatId(1), upgrade).unwrap();
    assert_eq!(
        call(&kernel, root, "resume", vec![]),
        Ok(Value::str("Counter incremented to: 2"))
    );
    kernel.shutdown().unwrap();
    let upgraded_hash = recorded_hash(&store, VatId(1)).unwrap();
    assert_ne!(upgraded_hash, launched_hash);

    let kernel = bare_kernel(&store);
    assert_eq!(
        kernel.stopped_vats().unwrap(),
        [],
        "the new build is the vat's now"
    );
    kernel.shutdown().unwrap();
}

#[test]
fn a_relative_bundle_path_never_reaches_the_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let kernel = bare_kernel(dir.path());
    let mut relative = counter_cluster(Path::new("/abs"));
    relative.vats.0[0].1.bundle_path = Some(PathBuf::from("./target/release/counter-vat"));
    assert!(matches!(
        kernel.launch_subcluster(&relative),
        Err(KernelError::Config(
            ocap_kernel::ConfigError::BundlePath { .. }
        ))
    ));
    let upgrade = VatUpgrade::new(BundleSpec::path("counter-vat"));
    assert!(kernel.upgrade_vat(VatId(1), upgrade).is_err());
    kernel.shutdown().unwrap();
}
