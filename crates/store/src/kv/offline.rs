//! The store as tools see it between kernels (`ocap inspect`, `check`, `backup`): opened
//! read-only under its lock, every page of its file read, and a compacted copy of it.
//!
//! Invariant: none of these writes to the store's directory except its lock file (`ocap.lock`);
//! a backup writes only into a directory that was missing or empty.

#[cfg(test)]
mod tests;

use std::fs::{self, File};
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use heed::CompactionOption;

use super::lock::StoreLock;
use super::open::{self, DATA_FILE, FileWalk};
use super::{INITIAL_MAP_SIZE, Store};
use crate::error::{BackupError, OpenError};
use crate::migrations::CURRENT;

/// The lock of a store directory, held without the store being open (see
/// [`Store::lock_dir`]). Dropping it releases the lock.
#[derive(Debug)]
pub struct DirLock {
    lock: StoreLock,
    path: PathBuf,
}

impl DirLock {
    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Store {
    /// Opens the existing store at directory `path` for reading, holding its lock like
    /// [`Store::open`] does, but writing nothing: the store must already be at this build's
    /// [`SCHEMA_VERSION`](crate::SCHEMA_VERSION) (an older one is not migrated), and a crank's
    /// writes fail when it ends (LMDB refuses the commit). For tools that look at a store
    /// no kernel runs.
    ///
    /// # Errors
    /// [`OpenError::InUse`] if another `Store` has it open; [`OpenError::BadPath`] if
    /// there is no store at `path`; [`OpenError::SchemaVersion`] for any other version;
    /// otherwise as [`Store::open`].
    pub fn open_read_only(path: &Path) -> Result<Store, OpenError> {
        Store::open_read_only_locked(Store::lock_dir(path)?)
    }

    /// Takes the lock of the existing store at directory `path` without opening it, reading
    /// nothing but the lock file: a tool holds it while a child process reads the store's
    /// pages ([`Store::walk_file`]), then opens the store with
    /// [`Store::open_read_only_locked`].
    ///
    /// # Errors
    /// [`OpenError::InUse`] if another `Store` has it open; [`OpenError::BadPath`] if
    /// there is no store at `path` or the lock file cannot be made.
    pub fn lock_dir(path: &Path) -> Result<DirLock, OpenError> {
        Ok(DirLock {
            lock: open::lock_existing(path)?,
            path: path.to_path_buf(),
        })
    }

    /// [`Store::open_read_only`] of the store whose lock the caller holds.
    ///
    /// # Errors
    /// As [`Store::open_read_only`], except [`OpenError::InUse`].
    pub fn open_read_only_locked(lock: DirLock) -> Result<Store, OpenError> {
        let DirLock { lock, path } = lock;
        let opened = open::open_store_read_only(lock, &path, INITIAL_MAP_SIZE, &CURRENT)?;
        Store::from_opened(opened, super::Durability::EveryCrank)
    }

    /// Reads every entry of the store file at directory `path`, every byte of it, without
    /// taking the store's lock: the caller must hold it (in this process or, as `ocap
    /// check` does, in the parent that runs this in a child process). LMDB has no checksums,
    /// so a damaged page can make this fault (SIGSEGV, SIGBUS) instead of failing: run it in
    /// a process whose crash can be reported.
    ///
    /// # Errors
    /// [`OpenError::BadPath`] if there is no store file; [`OpenError::CorruptFile`] for a
    /// damaged header, a truncated file, a page LMDB rejects, or fewer or more entries than
    /// the B-tree counts; [`OpenError::Backend`] if LMDB fails otherwise.
    pub fn walk_file(path: &Path) -> Result<FileWalk, OpenError> {
        open::walk_file(path)
    }

    /// Writes a consistent, compacted copy of the committed store into directory `dest`,
    /// which must be missing or empty, and syncs it: `dest` is then a store that opens like
    /// this one (free pages are left out, so it is at most as large). Ended cranks a group
    /// commit still holds are committed first.
    ///
    /// # Errors
    /// [`BackupError::Store`] inside a crank or if LMDB fails (the partial copy is
    /// removed); [`BackupError::Destination`] if `dest` is not empty, not a directory, or
    /// cannot be written.
    pub fn backup_to(&mut self, dest: &Path) -> Result<(), BackupError> {
        self.flush()?;
        let bad = |reason: String| BackupError::Destination {
            path: dest.to_path_buf(),
            reason,
        };
        match fs::read_dir(dest) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    return Err(bad("not empty: a backup never overwrites".to_owned()));
                }
            }
            Err(err) if err.kind() == ErrorKind::NotFound => {
                fs::create_dir_all(dest).map_err(|err| bad(err.to_string()))?;
            }
            Err(err) => return Err(bad(err.to_string())),
        }
        let target = dest.join(DATA_FILE);
        // `create_new`: a file that appeared meanwhile is never overwritten either.
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&target)
            .map_err(|err| bad(format!("{DATA_FILE}: {err}")))?;
        let res = self
            .env
            .copy_to_file(&mut file, CompactionOption::Enabled)
            .map_err(|err| BackupError::Store(err.into()))
            .and_then(|()| {
                file.sync_all()
                    .map_err(|err| bad(format!("{DATA_FILE}: {err}")))
            })
            .and_then(|()| {
                // The new directory entry must reach the disk too.
                File::open(dest)
                    .and_then(|dir| dir.sync_all())
                    .map_err(|err| bad(err.to_string()))
            });
        if res.is_err() {
            // Best effort: the copy's error is the news.
            let _ = fs::remove_file(&target);
        }
        res
    }
}

/// What a store's committed state takes up ([`Store::usage`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreUsage {
    /// Entries in the kernel's database, the store's own keys included.
    pub entries: u64,
    /// Branch, leaf and overflow pages of its B-tree: the bytes in use are this times
    /// `page_size`.
    pub tree_pages: u64,
    /// Pages of the file up to the highest one ever used (free pages are reused, so this
    /// grows only when the tree outgrows what was freed).
    pub file_pages: u64,
    /// The page size.
    pub page_size: u32,
}

impl Store {
    /// The space the committed state takes (what a group commit has not written yet is
    /// not counted): for growth measurements (`soak` bench) and tools.
    ///
    /// # Errors
    /// [`StoreError::Backend`](crate::StoreError::Backend) if LMDB fails.
    pub fn usage(&self) -> Result<StoreUsage, crate::error::StoreError> {
        let rtxn = self.env.read_txn()?;
        let stat = self.db.stat(&rtxn)?;
        let info = self.env.info();
        Ok(StoreUsage {
            entries: stat.entries as u64,
            tree_pages: (stat.branch_pages + stat.leaf_pages + stat.overflow_pages) as u64,
            file_pages: info.last_page_number as u64 + 1,
            page_size: stat.page_size,
        })
    }
}
