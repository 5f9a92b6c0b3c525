//! Opening a store directory: locking it, recognising an ocap store and its schema version
//! before anything is written, migrating an older store (`migrate.rs`), and the one call
//! that maps the LMDB file.
//!
//! Invariant: a directory that is refused is left as it was. The store's lock (`lock.rs`)
//! is taken before anything in the directory is read, so a second opener stops there and
//! never reaches LMDB. Nothing is written to an existing `data.mdb` before it has been
//! recognised as ours, at a version this build has a migration path from, and every
//! migration step has run (read-only); a header LMDB cannot map (an absurd page size or
//! last page) is refused before LMDB sees it, a file too short for the pages its header
//! claims is refused before any page is read (reading past the end of a mapped file is
//! SIGBUS, not an error), and lock files created by a refused open are removed.

mod header;
#[cfg(test)]
pub(super) mod tests;

use std::fs;
use std::io::ErrorKind;
use std::path::Path;

use heed::types::Bytes;
use heed::{Database, Env, MdbError, WithoutTls};

use super::SCHEMA_KEY;
use super::lmdb_env::open_env;
use super::lock::StoreLock;
use super::migrate::{self, Migrated};
use crate::error::OpenError;
use crate::migrations::Schema;

pub(super) const DATA_FILE: &str = "data.mdb";
/// LMDB's own lock file, for its readers and writers; the store's is `lock::LOCK_FILE`.
const LMDB_LOCK_FILE: &str = "lock.mdb";
/// LMDB wants map sizes that are multiples of the OS page size; 64 KiB is a multiple of
/// every common one (4, 16 and 64 KiB).
const MAP_SIZE_GRANULE: usize = 64 << 10;
/// The smallest map we ask for: room for the meta pages and the first commits.
const MIN_MAP_SIZE: usize = 256 << 10;

/// `size` rounded up to a map size LMDB accepts (saturating near `usize::MAX`).
pub(super) fn round_map_size(size: usize) -> usize {
    let size = size.max(MIN_MAP_SIZE);
    match size.checked_next_multiple_of(MAP_SIZE_GRANULE) {
        Some(rounded) => rounded,
        None => usize::MAX - usize::MAX % MAP_SIZE_GRANULE,
    }
}

/// A store directory opened and recognised.
pub(super) struct Opened {
    pub(super) env: Env<WithoutTls>,
    pub(super) db: Database<Bytes, Bytes>,
    /// The directory's lock, to be held as long as `env` is open.
    pub(super) lock: StoreLock,
}

/// Opens (creating if missing) the store in directory `path` and checks it is an ocap store
/// of `schema`'s version, migrating an older one to it, and writing the version key into a
/// new, empty one.
pub(super) fn open_store(
    path: &Path,
    map_size: usize,
    schema: &Schema<'_>,
) -> Result<Opened, OpenError> {
    let map_size = round_map_size(map_size);
    prepare_dir(path)?;
    // Before anything in the directory is read: a second opener stops here.
    let lock = StoreLock::acquire(path)?;
    // On an error the environment is closed by now: `open_locked` owned it.
    locked(lock, open_locked(path, map_size, schema))
}

/// The opened store with its lock recorded as held, or the error with the lock given up.
fn locked(
    lock: StoreLock,
    opened: Result<(Env<WithoutTls>, Database<Bytes, Bytes>), OpenError>,
) -> Result<Opened, OpenError> {
    match opened {
        Ok((env, db)) => {
            lock.record_holder();
            Ok(Opened { env, db, lock })
        }
        Err(err) => {
            lock.abandon();
            Err(err)
        }
    }
}

/// A bad-path error unless directory `path` holds an existing `data.mdb`: readers name a
/// store that exists, and never create one.
fn require_data_file(path: &Path) -> Result<(), OpenError> {
    if data_file(path)? == DataFile::Existing {
        return Ok(());
    }
    Err(bad_path(
        path,
        format!("no store here ({DATA_FILE} is missing or empty)"),
    ))
}

/// Locks the existing store in directory `path` without opening it: the directory must
/// hold a `data.mdb`. Nothing is read but the lock file, so a damaged store cannot crash
/// the caller here.
pub(super) fn lock_existing(path: &Path) -> Result<StoreLock, OpenError> {
    require_data_file(path)?;
    StoreLock::acquire(path)
}

/// Opens the existing store in directory `path`, which `lock` (from [`lock_existing`])
/// holds, for reading only: it must be an ocap store at exactly `schema`'s version (an
/// older one is not migrated: that would write). Nothing in the directory but the lock file
/// is created or written: LMDB opens `data.mdb` read-only and without its own lock file,
/// which is safe because the store's lock keeps every writer away.
pub(super) fn open_store_read_only(
    lock: StoreLock,
    path: &Path,
    map_size: usize,
    schema: &Schema<'_>,
) -> Result<Opened, OpenError> {
    let res = header::check_header(path)
        .and_then(|()| open_env(path, round_map_size(map_size), Access::Inspect))
        .and_then(|env| {
            let (db, contents) = check_contents(&env, path, schema)?;
            match contents {
                Contents::Version(found) if found == schema.version => Ok((env, db)),
                Contents::Version(found) => Err(schema.unsupported(found.to_string())),
                Contents::Empty => Err(OpenError::ForeignFile {
                    path: path.to_path_buf(),
                    reason: "its LMDB environment is empty".to_owned(),
                }),
            }
        });
    locked(lock, res)
}

/// Reads every entry of the store file in directory `path` without taking the store's lock
/// (the caller holds it, in this process or a parent): every branch, leaf and overflow page
/// of the B-tree the newest meta page roots, each value byte by byte. A damaged page that
/// LMDB does not notice can fault the process: run this where a crash is survivable.
pub(super) fn walk_file(path: &Path) -> Result<FileWalk, OpenError> {
    require_data_file(path)?;
    header::check_header(path)?;
    let env = open_env(path, MIN_MAP_SIZE, Access::Inspect)?;
    check_length(&env, path)?;
    let classify = |err| classify(path, err);
    let rtxn = env.read_txn().map_err(classify)?;
    let db: Database<Bytes, Bytes> = env
        .open_database(&rtxn, None)
        .map_err(classify)?
        .ok_or_else(|| OpenError::ForeignFile {
            path: path.to_path_buf(),
            reason: "no main database".to_owned(),
        })?;
    let stat = db.stat(&rtxn).map_err(classify)?;
    let mut walk = FileWalk {
        page_size: stat.page_size,
        pages: (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64,
        ..FileWalk::default()
    };
    let mut digest = 0u64;
    for entry in db.iter(&rtxn).map_err(classify)? {
        let (key, value) = entry.map_err(classify)?;
        walk.entries += 1;
        walk.bytes += (key.len() + value.len()) as u64;
        // Read every byte, so that every overflow page is touched, not only its header.
        digest = value
            .iter()
            .chain(key)
            .fold(digest, |d, b| d.rotate_left(5) ^ u64::from(*b));
    }
    std::hint::black_box(digest);
    if walk.entries != stat.entries as u64 {
        return Err(OpenError::CorruptFile {
            path: path.to_path_buf(),
            reason: format!(
                "its B-tree counts {} entries, but {} were found",
                stat.entries, walk.entries
            ),
        });
    }
    Ok(walk)
}

/// What [`Store::walk_file`](crate::Store::walk_file) read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileWalk {
    /// Entries read, the store's own keys included.
    pub entries: u64,
    /// Their keys' and values' bytes.
    pub bytes: u64,
    /// Branch, leaf and overflow pages of the B-tree.
    pub pages: u64,
    /// The page size.
    pub page_size: u32,
}

/// [`open_store`]'s work once the directory is locked.
fn open_locked(
    path: &Path,
    map_size: usize,
    schema: &Schema<'_>,
) -> Result<(Env<WithoutTls>, Database<Bytes, Bytes>), OpenError> {
    let mut pending: Option<Migrated> = None;
    if data_file(path)? == DataFile::Existing {
        header::check_header(path)?;
        // Judge an existing file through a read-only environment without locking: LMDB then
        // opens data.mdb read-only and never creates or rewrites lock.mdb, so a refusal
        // cannot have changed anything. The migration steps run here too, so a failing one
        // is such a refusal.
        let env = open_env(path, map_size, Access::Inspect)?;
        let (db, contents) = check_contents(&env, path, schema)?;
        if let Contents::Version(found) = contents {
            let steps = schema
                .steps_from(found)
                .ok_or_else(|| schema.unsupported(found.to_string()))?;
            if !steps.is_empty() {
                pending = Some(migrate::run_steps(&env, db, path, found, steps)?);
            }
        }
    }
    let lock_file = path.join(LMDB_LOCK_FILE);
    let lock_existed = fs::symlink_metadata(&lock_file).is_ok();
    // The closure owns the environment: on error it is dropped, and so closed, before the
    // lock file is removed below.
    let res = open_env(path, map_size, Access::ReadWrite).and_then(|env| -> Result<_, OpenError> {
        let (db, contents) = check_contents(&env, path, schema)?;
        match (contents, &pending) {
            (Contents::Empty, None) => {
                let mut wtxn = env.write_txn()?;
                db.put(&mut wtxn, SCHEMA_KEY, schema.version.to_string().as_bytes())?;
                wtxn.commit()?;
            }
            (Contents::Version(found), None) if found == schema.version => {}
            (Contents::Version(found), Some(migrated)) if found == migrated.from => {
                migrate::commit(&env, db, path, migrated)?;
            }
            // We hold the store's lock, so the file is what the inspection saw.
            _ => {
                return Err(OpenError::CorruptFile {
                    path: path.to_path_buf(),
                    reason: "its schema version changed while it was being opened".to_owned(),
                });
            }
        }
        Ok((env, db))
    });
    if res.is_err() && !lock_existed {
        // Best effort: the lock file is ours and unused, and the open's error is the news.
        let _ = fs::remove_file(&lock_file);
    }
    res
}

#[derive(Debug, PartialEq, Eq)]
enum DataFile {
    /// No `data.mdb`, or an empty one: LMDB writes a new header (an empty file is what a
    /// crash between LMDB creating the file and writing its header leaves).
    New,
    /// A `data.mdb` with content, to be judged before anything is written.
    Existing,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Inspect,
    ReadWrite,
}

/// Makes sure `path` is a directory, creating it if missing.
fn prepare_dir(path: &Path) -> Result<(), OpenError> {
    match fs::metadata(path) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(bad_path(path, "not a directory".to_owned())),
        Err(err) if err.kind() == ErrorKind::NotFound => {
            fs::create_dir_all(path).map_err(|err| bad_path(path, err.to_string()))
        }
        Err(err) => Err(bad_path(path, err.to_string())),
    }
}

/// What the directory's `data.mdb` is.
fn data_file(path: &Path) -> Result<DataFile, OpenError> {
    match fs::metadata(path.join(DATA_FILE)) {
        Ok(meta) if !meta.is_file() => {
            Err(bad_path(path, format!("{DATA_FILE} is not a regular file")))
        }
        Ok(meta) if meta.len() == 0 => Ok(DataFile::New),
        Ok(_) => Ok(DataFile::Existing),
        Err(err) if err.kind() == ErrorKind::NotFound => Ok(DataFile::New),
        Err(err) => Err(bad_path(path, format!("{DATA_FILE}: {err}"))),
    }
}

fn bad_path(path: &Path, reason: String) -> OpenError {
    OpenError::BadPath {
        path: path.to_path_buf(),
        reason,
    }
}

/// Turns LMDB's verdicts on a file into the store's typed errors.
pub(super) fn classify(path: &Path, err: heed::Error) -> OpenError {
    let path = path.to_path_buf();
    match err {
        heed::Error::Mdb(MdbError::Invalid) => OpenError::CorruptFile {
            path,
            reason: "not an LMDB file, or its header is damaged".to_owned(),
        },
        heed::Error::Mdb(MdbError::Corrupted | MdbError::PageNotFound) => OpenError::CorruptFile {
            path,
            reason: err.to_string(),
        },
        heed::Error::Mdb(MdbError::VersionMismatch) => OpenError::ForeignFile {
            path,
            reason: "written by another LMDB data format version".to_owned(),
        },
        heed::Error::EnvAlreadyOpened => OpenError::AlreadyOpen { path },
        other => OpenError::from(other),
    }
}

/// Refuses a `data.mdb` shorter than the pages its header says are in use. LMDB itself
/// does not check: it would map the file and fault (SIGBUS) on the first missing page.
/// `header::check_header` refused such a file already; this asks LMDB which header it
/// chose, in case the two readings of the header ever differ.
fn check_length(env: &Env<WithoutTls>, path: &Path) -> Result<(), OpenError> {
    let page_size = u64::from(env.stat().page_size);
    let last_page = u64::try_from(env.info().last_page_number).unwrap_or(u64::MAX);
    let needed = last_page.saturating_add(1).saturating_mul(page_size);
    let actual = fs::metadata(path.join(DATA_FILE))
        .map_err(|err| OpenError::BadPath {
            path: path.to_path_buf(),
            reason: format!("{DATA_FILE}: {err}"),
        })?
        .len();
    if actual < needed {
        return Err(OpenError::CorruptFile {
            path: path.to_path_buf(),
            reason: format!(
                "{DATA_FILE} is {actual} bytes but its header uses pages up to byte {needed}: truncated"
            ),
        });
    }
    Ok(())
}

/// What the schema key of a store recognised as ours says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contents {
    /// Nothing at all: a new store, to be given the current version.
    Empty,
    /// This schema version.
    Version(u32),
}

/// Recognises the store in `env`: an ocap store with a schema version (or an empty one).
fn check_contents(
    env: &Env<WithoutTls>,
    path: &Path,
    schema: &Schema<'_>,
) -> Result<(Database<Bytes, Bytes>, Contents), OpenError> {
    check_length(env, path)?;
    let classify = |err| classify(path, err);
    let rtxn = env.read_txn().map_err(classify)?;
    let db: Database<Bytes, Bytes> = env
        .open_database(&rtxn, None)
        .map_err(classify)?
        .ok_or_else(|| OpenError::ForeignFile {
            path: path.to_path_buf(),
            reason: "no main database".to_owned(),
        })?;
    let found = db
        .get(&rtxn, SCHEMA_KEY)
        .map_err(classify)?
        .map(<[u8]>::to_vec);
    let has_entries = db.first(&rtxn).map_err(classify)?.is_some();
    drop(rtxn);
    match found {
        Some(found) => match parse_version(&found) {
            Some(version) => Ok((db, Contents::Version(version))),
            None => Err(schema.unsupported(String::from_utf8_lossy(&found))),
        },
        None if has_entries => Err(OpenError::ForeignFile {
            path: path.to_path_buf(),
            reason: "it holds data but no ocap schema version".to_owned(),
        }),
        None => Ok((db, Contents::Empty)),
    }
}

/// A schema version as the store writes it: decimal digits, no sign, no leading zero.
fn parse_version(bytes: &[u8]) -> Option<u32> {
    let version: u32 = std::str::from_utf8(bytes).ok()?.parse().ok()?;
    (version.to_string().as_bytes() == bytes).then_some(version)
}
