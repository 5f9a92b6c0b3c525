//! `ocap check`: a good store passes; a store corrupted on purpose through the store's own
//! API fails with its violations; a store a kernel holds open is reported in use.

use std::path::Path;

use ocap_kernel::{KObjectId, KRef, Kernel, KernelConfig};
use ocap_store::{KernelStore, Store};

use super::{example_store, ocap};

/// Changes the closed store at `path` in one crank, as a buggy kernel could have.
fn corrupt(path: &Path, change: impl FnOnce(&mut KernelStore)) {
    let mut store = KernelStore::new(Store::open(path).unwrap());
    store.start_crank().unwrap();
    change(&mut store);
    store.end_crank().unwrap();
    store.kv_mut().flush().unwrap();
}

#[test]
fn check_of_a_good_store_exits_0() {
    let (_dir, store) = example_store();
    let run = ocap(["check", store.to_str().unwrap()]);
    run.assert_code(0);
    assert!(run.stdout.contains("audit: consistent"), "{}", run.stdout);
    assert!(run.stdout.contains("entries"), "{}", run.stdout);
}

#[test]
fn check_reports_a_bumped_refcount_and_exits_2() {
    let (_dir, store) = example_store();
    corrupt(&store, |s| s.incref(KRef::Object(KObjectId(1))).unwrap());
    let run = ocap(["check", "--store", store.to_str().unwrap()]);
    run.assert_code(2);
    assert!(run.stdout.contains("ko1: stored 2,2"), "{}", run.stdout);
    assert!(run.stdout.contains("too high"), "{}", run.stdout);
    assert!(run.stderr.contains("1 violation"), "{}", run.stderr);
}

#[test]
fn check_reports_half_a_clist_entry_as_json_and_exits_2() {
    let (_dir, store) = example_store();
    // Bob's export of his root loses its vref side; the kref side still names it.
    corrupt(&store, |s| s.kv_mut().delete(b"v2.c.o+0").unwrap());
    let run = ocap(["check", "--json", store.to_str().unwrap()]);
    run.assert_code(2);
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(json["ok"], false);
    let violations: Vec<&str> = json["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        violations.contains(&"v2 c-list: ko2 names o+0, but o+0 names nothing"),
        "{violations:?}"
    );
}

#[test]
fn check_of_a_store_a_kernel_holds_open_reports_in_use_and_exits_4() {
    let (_dir, store) = example_store();
    let kernel = Kernel::open(&store, KernelConfig::new(ocap_cli::registry())).unwrap();
    let run = ocap(["check", store.to_str().unwrap()]);
    run.assert_code(4);
    assert!(run.stderr.contains("in use by process"), "{}", run.stderr);
    // inspect and backup are refused the same way.
    ocap(["inspect", "--store", store.to_str().unwrap()]).assert_code(4);
    kernel.shutdown().unwrap();
    ocap(["check", store.to_str().unwrap()]).assert_code(0);
}

#[test]
fn check_of_a_truncated_store_reports_damage_and_exits_4() {
    let (_dir, store) = example_store();
    let data = store.join("data.mdb");
    let len = std::fs::metadata(&data).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&data)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let run = ocap(["check", store.to_str().unwrap()]);
    run.assert_code(4);
    assert!(run.stderr.contains("store damaged"), "{}", run.stderr);
}
