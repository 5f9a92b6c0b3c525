//! `ocap backup`: the copy checks clean and shows the same vats; it never overwrites.

use super::{example_store, ocap};

#[test]
fn a_backup_checks_clean_and_inspects_the_same_as_its_source() {
    let (dir, store) = example_store();
    let dest = dir.path().join("backup");
    ocap([
        "backup",
        dest.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ])
    .assert_code(0);
    ocap(["check", dest.to_str().unwrap()]).assert_code(0);
    let vats = |path: &std::path::Path| {
        let run = ocap([
            "inspect",
            "--json",
            "--store",
            path.to_str().unwrap(),
            "vats",
        ]);
        run.assert_code(0);
        serde_json::from_str::<serde_json::Value>(&run.stdout).unwrap()
    };
    let copied = vats(&dest);
    assert_eq!(copied, vats(&store));
    assert_eq!(copied["vats"]["rows"].as_array().unwrap().len(), 2);
}

#[test]
fn a_backup_into_a_non_empty_directory_is_refused() {
    let (dir, store) = example_store();
    let dest = dir.path().join("occupied");
    std::fs::create_dir(&dest).unwrap();
    std::fs::write(dest.join("notes.txt"), "keep me").unwrap();
    let run = ocap([
        "backup",
        dest.to_str().unwrap(),
        "--store",
        store.to_str().unwrap(),
    ]);
    run.assert_code(1);
    assert!(run.stderr.contains("not empty"), "{}", run.stderr);
    assert_eq!(
        std::fs::read_to_string(dest.join("notes.txt")).unwrap(),
        "keep me"
    );
    assert!(!dest.join("data.mdb").exists());
}
