//! `ocap upgrade` relaunches a vat of a store `ocap run` wrote on a new version of its code,
//! or, when the new version fails to start, leaves it as it was.

use std::path::Path;

use serde_json::Value as Json;

use super::ocap;

/// The code the store's vat `v1` runs, as `ocap inspect` shows it.
fn code_of_v1(store: &Path) -> String {
    let run = ocap([
        "inspect",
        "--json",
        "--store",
        store.to_str().unwrap(),
        "vats",
    ]);
    run.assert_code(0);
    let json: Json = serde_json::from_str(&run.stdout).unwrap();
    json["vats"]["rows"][0]["code"].as_str().unwrap().to_owned()
}

#[test]
fn upgrade_relaunches_a_vat_on_its_new_version_or_leaves_it_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let cluster = dir.path().join("counter.json");
    std::fs::write(
        &cluster,
        r#"{"bootstrap": "counter", "vats": {"counter": {"bundleName": "counter-v1"}}}"#,
    )
    .unwrap();
    let store_arg = store.to_str().unwrap();
    let run = ocap(["run", cluster.to_str().unwrap(), "--store", store_arg]);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "counter v1 ready");

    let run = ocap(["upgrade", "v1", "counter-v2-broken", "--store", store_arg]);
    run.assert_code(2);
    assert!(
        run.stderr
            .contains(r#"ocap upgrade: Failed to upgrade vat v1 (counter) to "counter-v2-broken""#),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("counter v2 is broken"),
        "{}",
        run.stderr
    );
    assert_eq!(code_of_v1(&store), "counter-v1");

    let run = ocap(["upgrade", "v1", "counter-v2", "--store", store_arg]);
    run.assert_code(0);
    assert_eq!(run.stdout.trim(), "upgraded v1 to counter-v2");
    assert_eq!(code_of_v1(&store), "counter-v2");
    ocap(["check", store_arg]).assert_code(0);

    // Usage errors: no such vat, a malformed id, no store at the path (none is made).
    let run = ocap(["upgrade", "v9", "counter-v2", "--store", store_arg]);
    run.assert_code(1);
    assert!(run.stderr.contains("Vat does not exist."), "{}", run.stderr);
    ocap(["upgrade", "x1", "counter-v2", "--store", store_arg]).assert_code(1);
    let missing = dir.path().join("missing");
    let missing_arg = missing.to_str().unwrap();
    ocap(["upgrade", "v1", "counter-v2", "--store", missing_arg]).assert_code(1);
    assert!(!missing.exists());
}
