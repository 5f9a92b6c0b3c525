//! Structural rules, checked as tests (STYLE.md §2.2, §2.7): which crate may depend on which,
//! which external crates stay inside their home crate, and that every source file says
//! what it is for.

use std::fs;
use std::path::{Path, PathBuf};

use ocap_tests::repo_root;

/// Crate folder → the `ocap-*` crates it may depend on (normal dependencies).
const ALLOWED: &[(&str, &[&str])] = &[
    ("types", &[]),
    ("vat", &["ocap-types"]),
    ("store", &["ocap-types"]),
    ("queue", &["ocap-types", "ocap-store"]),
    ("router", &["ocap-types", "ocap-store"]),
    (
        "vat-manager",
        &["ocap-types", "ocap-store", "ocap-queue", "ocap-router"],
    ),
    (
        "kernel",
        &[
            "ocap-types",
            "ocap-store",
            "ocap-queue",
            "ocap-router",
            "ocap-vat-manager",
        ],
    ),
    ("example-vats", &["ocap-types", "ocap-vat"]),
    (
        "cli",
        &[
            "ocap-types",
            "ocap-kernel",
            "ocap-store",
            "ocap-vat-manager",
            "ocap-example-vats",
            "ocap-vat",
        ],
    ),
];

/// External crate → the crate folders allowed to name it in source.
const HOMES: &[(&str, &[&str])] = &[
    ("heed::", &["store"]),
    ("clap::", &["cli"]),
    // The CLI reads cluster files; `types` converts `Value` to and from JSON for hosts,
    // behind its `json` feature (off for vats and workers), next to the value model it
    // must stay in step with.
    ("serde_json::", &["cli", "types"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                rust_files(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The `ocap-*` names in the `[dependencies]` table of a manifest.
fn ocap_dependencies(manifest: &str) -> Vec<String> {
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = line == "[dependencies]";
            continue;
        }
        if in_deps && line.starts_with("ocap-") {
            let name = line.split(['=', '.', ' ']).next().unwrap_or_default();
            out.push(name.to_owned());
        }
    }
    out
}

#[test]
fn crates_depend_only_on_allowed_lower_crates() {
    let crates = repo_root().join("crates");
    for entry in fs::read_dir(&crates).unwrap().flatten() {
        let folder = entry.file_name().to_string_lossy().into_owned();
        let manifest = fs::read_to_string(entry.path().join("Cargo.toml")).unwrap();
        let allowed = ALLOWED
            .iter()
            .find(|(f, _)| *f == folder)
            .unwrap_or_else(|| panic!("crate folder {folder} is not in the layering table"))
            .1;
        for dep in ocap_dependencies(&manifest) {
            assert!(
                allowed.contains(&dep.as_str()),
                "crates/{folder} depends on {dep}, which the layering table does not allow"
            );
        }
    }
}

#[test]
fn external_crates_stay_in_their_home_crate() {
    let mut files = Vec::new();
    rust_files(&repo_root().join("crates"), &mut files);
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        let rel = file
            .strip_prefix(repo_root())
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let folder = rel.split('/').nth(1).unwrap_or_default().to_owned();
        for (needle, homes) in HOMES {
            if text.contains(needle) {
                assert!(
                    homes.contains(&folder.as_str()),
                    "{rel} names {needle} outside its home crate"
                );
            }
        }
    }
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let mut files = Vec::new();
    for dir in ["crates", "tests"] {
        rust_files(&repo_root().join(dir), &mut files);
    }
    assert!(!files.is_empty());
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} does not start with a `//!` line saying what it is for",
            file.display()
        );
    }
}

#[test]
fn no_todo_or_dbg_left_in_sources() {
    let mut files = Vec::new();
    for dir in ["crates", "tests/src"] {
        rust_files(&repo_root().join(dir), &mut files);
    }
    let todo = ["todo", "!("].concat();
    let dbg = ["dbg", "!("].concat();
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        assert!(!text.contains(&todo), "{} contains {todo}", file.display());
        assert!(!text.contains(&dbg), "{} contains {dbg}", file.display());
    }
}

#[test]
fn unsafe_code_lives_in_one_module() {
    let mut files = Vec::new();
    rust_files(&repo_root().join("crates"), &mut files);
    let allowed = repo_root().join("crates/store/src/kv/lmdb_env.rs");
    let marker = ["allow(", "unsafe_code)"].concat();
    for file in files {
        // Tests and benches open raw LMDB environments to compare against or to corrupt.
        let is_test = file
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
            || file.file_name().is_some_and(|n| n == "tests.rs");
        if file == allowed || is_test {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&marker),
            "{} allows unsafe code; only crates/store/src/kv/lmdb_env.rs may",
            file.display()
        );
    }
}

/// Every transaction above the store goes through `Crank` (crates/queue/src/state.rs),
/// which aborts on error: nothing else opens, ends or aborts one by hand.
#[test]
fn transactions_are_opened_only_through_the_crank_token() {
    let mut files = Vec::new();
    rust_files(&repo_root().join("crates"), &mut files);
    let home = repo_root().join("crates/queue/src/state.rs");
    let store = repo_root().join("crates/store");
    let calls = [".start_crank(", ".end_crank(", ".abort_crank("];
    for file in files {
        let is_test = file
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
            || file.file_name().is_some_and(|n| n == "tests.rs");
        if file == home || file.starts_with(&store) || is_test {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with("//") {
                continue;
            }
            for call in calls {
                assert!(
                    !line.contains(call),
                    "{}:{}: {call} outside the crank token; use KernelState::transaction or Crank",
                    file.display(),
                    n + 1
                );
            }
        }
    }
}
