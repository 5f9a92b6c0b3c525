//! Structural rules, checked as tests (STYLE.md §2.2, §2.7): which crate may depend on which,
//! which external crates stay inside their home crate, that hosts and vat authors need
//! one façade crate each, and that every source file says what it is for.

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
    // A host: the kernel façade, the vat SDK (for `ocap worker`) and the compiled-in vats.
    ("cli", CLI_OCAP_DEPENDENCIES),
];

/// The only `ocap-*` crates the CLI names in its normal dependencies.
const CLI_OCAP_DEPENDENCIES: &[&str] = &["ocap-kernel", "ocap-vat", "ocap-example-vats"];

/// What the CLI's tests may depend on besides: the store, to corrupt a store on purpose
/// through its own API for `ocap check` (issue 12); the binary itself never sees it.
const CLI_OCAP_DEV_DEPENDENCIES: &[&str] = &["ocap-store"];

/// The crates below the façades: a host gets what it needs of them from `ocap-kernel`, a vat
/// author from `ocap-vat`.
const BELOW_THE_FACADES: &[&str] = &[
    "ocap_types",
    "ocap_store",
    "ocap_queue",
    "ocap_router",
    "ocap_vat_manager",
];

/// External crate → the crate folders allowed to name it in source.
const HOMES: &[(&str, &[&str])] = &[
    ("heed::", &["store"]),
    ("clap::", &["cli"]),
    // The CLI reads cluster files; `types` converts `Value` to and from JSON for hosts,
    // behind its `json` feature (off for vats and workers), next to the value model it
    // must stay in step with.
    ("serde_json::", &["cli", "types"]),
    // The daemon's control socket (peer credentials, umask) and the default store's
    // per-user directory are the CLI's business: the kernel knows no sockets or homes. The
    // exceptions are the worker launcher's resource limits (`vat-manager/src/confine`) and
    // the SDK worker's non-blocking poll of its input (`vat/src/worker/input.rs`).
    ("rustix::", &["cli", "vat-manager", "vat"]),
    // Confinement of worker processes lives in one module of the vat manager.
    ("landlock::", &["vat-manager"]),
    ("seccompiler::", &["vat-manager"]),
    ("close_fds::", &["vat-manager"]),
    ("libc::", &["vat-manager"]),
    ("directories::", &["cli"]),
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
    ocap_dependencies_in(manifest, |table| table == "[dependencies]")
}

/// The `ocap-*` names in the tables of a manifest that `table` picks.
fn ocap_dependencies_in(manifest: &str, table: impl Fn(&str) -> bool) -> Vec<String> {
    let mut in_deps = false;
    let mut out = Vec::new();
    for line in manifest.lines() {
        let line = line.trim();
        if line.starts_with('[') {
            in_deps = table(line);
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

/// Issue 10: `ocap-kernel` is the host's one dependency; the CLI is a host.
#[test]
fn the_cli_depends_on_no_ocap_crate_but_the_kernel_the_sdk_and_the_example_vats() {
    let manifest = fs::read_to_string(repo_root().join("crates/cli/Cargo.toml")).unwrap();
    let is_dev = |table: &str| table.contains("dev-dependencies");
    let deps = ocap_dependencies_in(&manifest, |table| {
        table.contains("dependencies") && !is_dev(table)
    });
    assert!(deps.iter().any(|dep| dep == "ocap-kernel"), "{deps:?}");
    for dep in deps {
        assert!(
            CLI_OCAP_DEPENDENCIES.contains(&dep.as_str()),
            "crates/cli depends on {dep}: take it from ocap-kernel's re-exports"
        );
    }
    for dep in ocap_dependencies_in(&manifest, is_dev) {
        assert!(
            CLI_OCAP_DEPENDENCIES.contains(&dep.as_str())
                || CLI_OCAP_DEV_DEPENDENCIES.contains(&dep.as_str()),
            "crates/cli's tests depend on {dep}, which the tidy rule does not allow"
        );
    }
}

/// The CLI's own sources (not its tests) name no crate below the façades.
#[test]
fn the_cli_sources_name_only_the_facades() {
    let mut files = Vec::new();
    rust_files(&repo_root().join("crates/cli/src"), &mut files);
    assert!(!files.is_empty());
    for file in files {
        let text = fs::read_to_string(&file).unwrap();
        for name in BELOW_THE_FACADES {
            assert!(
                !text.contains(&format!("{name}::")),
                "{} names {name}; use ocap_kernel's re-exports",
                file.display()
            );
        }
    }
}

/// The visible lines of every code block in the `//!` docs of `text`, as written in a
/// README (lines hidden with `# ` dropped).
fn doc_code_blocks(text: &str) -> Vec<String> {
    let docs = text
        .lines()
        .filter_map(|line| line.strip_prefix("//!"))
        .map(|line| line.strip_prefix(' ').unwrap_or(line));
    code_blocks(docs, "```")
        .into_iter()
        .map(|block| {
            block
                .lines()
                .filter(|line| *line != "#" && !line.starts_with("# "))
                .map(|line| format!("{line}\n"))
                .collect()
        })
        .collect()
}

/// The code blocks between `opening` fences (and a closing "```") in `lines`; blocks
/// opened by any other fence are skipped.
fn code_blocks<'a>(lines: impl Iterator<Item = &'a str>, opening: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    // `Some(Some(block))`: inside a wanted block; `Some(None)`: inside another one.
    let mut open: Option<Option<String>> = None;
    for line in lines {
        let fence = line.trim_end();
        match &mut open {
            Some(block) if fence == "```" => {
                blocks.extend(block.take());
                open = None;
            }
            Some(Some(block)) => {
                block.push_str(line);
                block.push('\n');
            }
            Some(None) => {}
            None if fence == opening => open = Some(Some(String::new())),
            None if fence.starts_with("```") => open = Some(None),
            None => {}
        }
    }
    blocks
}

/// The README's Rust snippets compile with the façades alone: each is a crate-level doctest
/// (in `crates/vat` for the vat, `crates/kernel` for the host), and none names a crate
/// below the façades.
#[test]
fn readme_rust_snippets_are_doctests_that_name_only_the_facades() {
    let readme = fs::read_to_string(repo_root().join("README.md")).unwrap();
    let snippets = code_blocks(readme.lines(), "```rust");
    assert!(!snippets.is_empty());
    let mut doctests = Vec::new();
    for entry in fs::read_dir(repo_root().join("crates")).unwrap().flatten() {
        if let Ok(lib) = fs::read_to_string(entry.path().join("src/lib.rs")) {
            doctests.extend(doc_code_blocks(&lib));
        }
    }
    for snippet in snippets {
        for name in BELOW_THE_FACADES {
            assert!(
                !snippet.contains(name),
                "a README snippet names {name}; use the ocap_kernel or ocap_vat re-export:\n{snippet}"
            );
        }
        assert!(
            doctests.contains(&snippet),
            "this README snippet is no crate-level doctest; copy it into the crate's docs:\n{snippet}"
        );
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
    // The store's LMDB calls (opening and resizing the env, the commit's cursor writes),
    // and installing the seccomp allowlist with a listener
    // (seccompiler cannot pass that flag; docs/confinement.md).
    let allowed = [
        repo_root().join("crates/store/src/kv/lmdb_env.rs"),
        repo_root().join("crates/vat-manager/src/confine/seccomp.rs"),
    ];
    let marker = ["allow(", "unsafe_code)"].concat();
    for file in files {
        // Tests and benches open raw LMDB environments to compare against or to corrupt.
        let is_test = file
            .components()
            .any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches")
            || file.file_name().is_some_and(|n| n == "tests.rs");
        if allowed.contains(&file) || is_test {
            continue;
        }
        let text = fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&marker),
            "{} allows unsafe code; only the two files above may",
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
