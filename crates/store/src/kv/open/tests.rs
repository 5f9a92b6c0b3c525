//! Opening bad input: every refusal is a typed error and leaves the directory as it was.

use std::collections::BTreeMap;
use std::fs;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;

use heed::types::Bytes;
use heed::{Database, EnvOpenOptions};

use super::{DATA_FILE, LMDB_LOCK_FILE, round_map_size};
use crate::error::OpenError;
use crate::kv::lock::LOCK_FILE;
use crate::kv::{SCHEMA_KEY, Store};

/// Every file under `path` (or `path` itself if it is a file) with its length and a hash
/// of its bytes.
pub(crate) fn snapshot(path: &Path) -> BTreeMap<String, (u64, u64)> {
    let digest = |bytes: &[u8]| {
        let mut hasher = DefaultHasher::new();
        bytes.hash(&mut hasher);
        (bytes.len() as u64, hasher.finish())
    };
    let mut out = BTreeMap::new();
    if path.is_file() {
        out.insert(String::new(), digest(&fs::read(path).unwrap()));
        return out;
    }
    for entry in fs::read_dir(path).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().into_owned();
        let bytes = if entry.path().is_file() {
            fs::read(entry.path()).unwrap()
        } else {
            b"<dir>".to_vec()
        };
        out.insert(name, digest(&bytes));
    }
    out
}

/// Opens `path`, expects a refusal, and checks that nothing on disk changed.
#[track_caller]
fn refused(path: &Path) -> OpenError {
    let before = snapshot(path);
    let err = Store::open(path).expect_err("opening bad input must fail");
    assert_eq!(snapshot(path), before, "open changed the files ({err})");
    err
}

/// Deterministic pseudo-random bytes (splitmix64).
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

/// A closed store holding `n_keys` keys, so that its file has many pages.
fn make_store(path: &Path, n_keys: u32) {
    let mut store = Store::open(path).unwrap();
    store.start_crank().unwrap();
    for key_idx in 0..n_keys {
        store
            .set(format!("key{key_idx:06}").as_bytes(), &[7; 64])
            .unwrap();
    }
    store.end_crank().unwrap();
    store.close().unwrap();
}

/// Writes a raw LMDB environment with other content, as some other program would.
fn make_foreign(path: &Path, named_db: Option<&str>) {
    let mut options = EnvOpenOptions::new();
    options.map_size(1 << 20).max_dbs(2);
    // SAFETY: a fresh directory, opened once, by this test only.
    #[allow(unsafe_code)]
    let env = unsafe { options.open(path) }.unwrap();
    let mut wtxn = env.write_txn().unwrap();
    let db: Database<Bytes, Bytes> = env.create_database(&mut wtxn, named_db).unwrap();
    db.put(&mut wtxn, b"theirs", b"data").unwrap();
    wtxn.commit().unwrap();
}

fn overwrite_schema(path: &Path, value: &[u8]) {
    let mut options = EnvOpenOptions::new();
    options.max_dbs(2);
    // SAFETY: the store is closed; this test is its only user.
    #[allow(unsafe_code)]
    let env = unsafe { options.open(path) }.unwrap();
    let mut wtxn = env.write_txn().unwrap();
    let db: Database<Bytes, Bytes> = env.create_database(&mut wtxn, None).unwrap();
    db.put(&mut wtxn, SCHEMA_KEY, value).unwrap();
    wtxn.commit().unwrap();
}

#[test]
fn a_regular_file_is_not_a_store_directory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"not a directory").unwrap();
    let err = refused(&file);
    assert!(matches!(err, OpenError::BadPath { ref reason, .. } if reason == "not a directory"));
    assert!(
        matches!(
            Store::open(&file.join("below")),
            Err(OpenError::BadPath { .. })
        ),
        "a path below a file"
    );
    assert_eq!(fs::read(&file).unwrap(), b"not a directory");
}

#[test]
fn a_data_file_that_is_a_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join(DATA_FILE)).unwrap();
    assert!(matches!(refused(dir.path()), OpenError::BadPath { .. }));
}

#[test]
fn random_bytes_are_a_corrupt_file() {
    for (seed, len) in [(1, 100), (2, 4096), (3, 8192), (4, 65536), (5, 1 << 20)] {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(DATA_FILE), noise(seed, len)).unwrap();
        let err = refused(dir.path());
        assert!(
            matches!(err, OpenError::CorruptFile { .. }),
            "seed {seed}: {err:?}"
        );
        for lock_file in [LMDB_LOCK_FILE, LOCK_FILE] {
            assert!(
                !dir.path().join(lock_file).exists(),
                "{lock_file} left behind"
            );
        }
    }
}

#[test]
fn a_truncated_store_is_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path(), 5000);
    let full = fs::read(dir.path().join(DATA_FILE)).unwrap();
    assert!(full.len() > 100 * 4096, "the store should span many pages");
    let page = 4096;
    for len in [
        1,
        100,
        page,
        page + 100,
        2 * page,
        2 * page + 1,
        full.len() / 2,
        full.len() - page,
        full.len() - 1,
    ] {
        let case = tempfile::tempdir().unwrap();
        fs::write(case.path().join(DATA_FILE), &full[..len]).unwrap();
        let err = refused(case.path());
        assert!(
            matches!(err, OpenError::CorruptFile { .. }),
            "truncated to {len}: {err:?}"
        );
        assert!(!case.path().join(LMDB_LOCK_FILE).exists());
    }
    // The untruncated copy still opens.
    let case = tempfile::tempdir().unwrap();
    fs::write(case.path().join(DATA_FILE), &full).unwrap();
    let store = Store::open(case.path()).unwrap();
    assert_eq!(store.scan_prefix(b"key").unwrap().len(), 5000);
}

#[test]
fn an_empty_data_file_is_a_new_store() {
    // LMDB writes the header right after creating the file; a crash in between leaves an
    // empty file, which must not make the store unopenable.
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join(DATA_FILE), b"").unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.scan_prefix(b"").unwrap(), Vec::new());
}

#[test]
fn a_foreign_lmdb_environment_is_refused() {
    for named_db in [None, Some("other")] {
        let dir = tempfile::tempdir().unwrap();
        make_foreign(dir.path(), named_db);
        let err = refused(dir.path());
        assert!(
            matches!(err, OpenError::ForeignFile { .. }),
            "{named_db:?}: {err:?}"
        );
        assert!(err.to_string().contains("is not an ocap store"), "{err}");
    }
}

#[test]
fn another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path(), 3);
    let newer = (crate::SCHEMA_VERSION + 1).to_string();
    overwrite_schema(dir.path(), newer.as_bytes());
    match refused(dir.path()) {
        OpenError::SchemaVersion { found, expected } => {
            assert_eq!(found, newer);
            assert_eq!(expected, crate::SCHEMA_VERSION);
        }
        other => panic!("expected SchemaVersion, got {other:?}"),
    }
}

#[test]
fn a_version_no_migration_starts_from_or_not_written_by_a_store_is_refused() {
    for found in ["0", "01", "+1", "1 ", "one", ""] {
        let dir = tempfile::tempdir().unwrap();
        make_store(dir.path(), 3);
        overwrite_schema(dir.path(), found.as_bytes());
        match refused(dir.path()) {
            OpenError::SchemaVersion {
                found: reported,
                expected,
            } => assert_eq!(
                (reported.as_str(), expected),
                (found, crate::SCHEMA_VERSION)
            ),
            other => panic!("{found:?}: expected SchemaVersion, got {other:?}"),
        }
    }
}

#[test]
fn a_new_store_records_its_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let mut options = EnvOpenOptions::new();
    options.max_dbs(2);
    // SAFETY: the store is closed; this test is its only user.
    #[allow(unsafe_code)]
    let env = unsafe { options.open(dir.path()) }.unwrap();
    let rtxn = env.read_txn().unwrap();
    let db: Database<Bytes, Bytes> = env.open_database(&rtxn, None).unwrap().unwrap();
    let version = crate::SCHEMA_VERSION.to_string();
    assert_eq!(db.get(&rtxn, SCHEMA_KEY).unwrap(), Some(version.as_bytes()));
    assert_eq!(db.len(&rtxn).unwrap(), 1);
}

#[test]
fn map_sizes_are_rounded_to_what_lmdb_accepts() {
    assert_eq!(round_map_size(0), 256 << 10);
    assert_eq!(round_map_size(1 << 20), 1 << 20);
    assert_eq!(round_map_size((1 << 20) + 1), (1 << 20) + (64 << 10));
    assert_eq!(round_map_size(usize::MAX) % (64 << 10), 0);
}

/// Offsets in an LMDB meta page on a 64-bit target (`MDB_page` header, then `MDB_meta`):
/// the page size (`mm_dbs[0].md_pad`) and the last used page (`mm_last_pg`).
const META_PAGE_SIZE: usize = 16 + 24;
const META_LAST_PAGE: usize = 16 + 120;

const META_TXNID: usize = 16 + 128;

/// Writes `value` at `offset` into both meta pages of the store at `path`, so that the
/// header LMDB picks says it whichever meta is newer.
fn patch_meta(path: &Path, offset: usize, value: &[u8]) {
    let file = path.join(DATA_FILE);
    let mut bytes = fs::read(&file).unwrap();
    let page_size = u32::from_ne_bytes(bytes[META_PAGE_SIZE..][..4].try_into().unwrap());
    for meta_idx in 0..2 {
        let at = meta_idx * page_size as usize + offset;
        bytes[at..at + value.len()].copy_from_slice(value);
    }
    fs::write(&file, bytes).unwrap();
}

#[test]
fn a_header_claiming_pages_beyond_the_file_is_a_corrupt_file() {
    for last_page in [1_000u64, 1 << 40, u64::MAX / 2, u64::MAX] {
        let dir = tempfile::tempdir().unwrap();
        make_store(dir.path(), 3);
        patch_meta(dir.path(), META_LAST_PAGE, &last_page.to_ne_bytes());
        let err = refused(dir.path());
        assert!(
            matches!(err, OpenError::CorruptFile { .. }),
            "last page {last_page}: {err:?}"
        );
    }
}

#[test]
fn only_the_meta_page_lmdb_picks_must_fit_the_file() {
    // LMDB keeps two meta pages and trusts the one with the newer transaction id; the older
    // one is overwritten by the next commit, so its claim does not matter.
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path(), 3);
    let file = dir.path().join(DATA_FILE);
    let mut bytes = fs::read(&file).unwrap();
    let page_size = 4096;
    let txnid = |meta_idx: usize| {
        let at = meta_idx * page_size + META_TXNID;
        u64::from_ne_bytes(bytes[at..at + 8].try_into().unwrap())
    };
    let older = usize::from(txnid(0) > txnid(1));
    let at = older * page_size + META_LAST_PAGE;
    bytes[at..at + 8].copy_from_slice(&(1u64 << 40).to_ne_bytes());
    fs::write(&file, bytes).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.scan_prefix(b"key").unwrap().len(), 3);
}

#[test]
fn a_header_with_an_impossible_page_size_is_a_corrupt_file() {
    for page_size in [0u32, 1, 100, 4095, 1 << 20, u32::MAX] {
        let dir = tempfile::tempdir().unwrap();
        make_store(dir.path(), 3);
        patch_meta(dir.path(), META_PAGE_SIZE, &page_size.to_ne_bytes());
        let err = refused(dir.path());
        assert!(
            matches!(err, OpenError::CorruptFile { .. }),
            "page size {page_size}: {err:?}"
        );
    }
}

#[test]
fn a_store_in_use_is_refused_before_anything_is_read() {
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path(), 3);
    let holder = Store::open(dir.path()).unwrap();
    let err = refused(dir.path());
    assert!(
        matches!(err, OpenError::InUse { pid: Some(pid), .. } if pid == std::process::id()),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "store at {} is in use by process {}",
            dir.path().display(),
            std::process::id()
        )
    );
    // Refused even where the file would be refused as corrupt: the lock comes first.
    let mut damaged = fs::read(dir.path().join(DATA_FILE)).unwrap();
    damaged[..64].copy_from_slice(&noise(9, 64));
    fs::write(dir.path().join(DATA_FILE), damaged).unwrap();
    assert!(matches!(refused(dir.path()), OpenError::InUse { .. }));
    drop(holder);
    assert!(matches!(refused(dir.path()), OpenError::CorruptFile { .. }));
}

#[test]
fn a_lock_held_by_an_opener_without_a_pid_names_none() {
    let dir = tempfile::tempdir().unwrap();
    let lock_file = fs::File::create(dir.path().join(LOCK_FILE)).unwrap();
    lock_file.try_lock().unwrap();
    let err = refused(dir.path());
    assert!(matches!(err, OpenError::InUse { pid: None, .. }), "{err:?}");
    assert!(
        err.to_string().contains("is in use by another opener"),
        "{err}"
    );
    drop(lock_file);
    drop(Store::open(dir.path()).unwrap());
}

#[test]
fn a_stale_lock_file_does_not_stop_an_open() {
    // What a holder killed with SIGKILL leaves: the file, with its pid, but no lock.
    let dir = tempfile::tempdir().unwrap();
    make_store(dir.path(), 3);
    fs::write(dir.path().join(LOCK_FILE), b"4000000000\n").unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.scan_prefix(b"key").unwrap().len(), 3);
    assert_eq!(
        fs::read_to_string(dir.path().join(LOCK_FILE)).unwrap(),
        format!("{}\n", std::process::id())
    );
}

#[test]
fn a_new_store_keeps_its_lock_file_beside_lmdb_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("new");
    Store::open(&path).unwrap().close().unwrap();
    let names: Vec<_> = snapshot(&path).into_keys().collect();
    assert_eq!(names, [DATA_FILE, LMDB_LOCK_FILE, LOCK_FILE]);
    // The lock file is not content: the store opens again as an ocap store.
    drop(Store::open(&path).unwrap());
}

#[test]
fn a_lock_file_that_cannot_be_opened_is_a_bad_path() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join(LOCK_FILE)).unwrap();
    let err = refused(dir.path());
    assert!(
        matches!(err, OpenError::BadPath { ref reason, .. } if reason.starts_with(LOCK_FILE)),
        "{err:?}"
    );
    assert!(!dir.path().join(DATA_FILE).exists(), "LMDB was reached");
}
