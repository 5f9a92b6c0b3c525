//! The store's own lock: one `Store` per directory, across processes and within one.
//! LMDB's `lock.mdb` coordinates LMDB's readers and writers, not kernels: without this, a
//! second kernel would open the store beside the first and run it too.
//!
//! Invariant: the lock is an OS file lock on `ocap.lock` in the store directory, taken
//! before anything else in the directory is read, held for as long as the `Store` lives,
//! and released when the `Store` goes (explicitly: a process another thread forks at that
//! moment shares the locked file until it execs, and closing ours alone would leave the
//! lock to that copy) or by the OS when the process dies, however it dies. A refused opener
//! writes nothing: the holder's pid goes into the file only once its own open has
//! succeeded, and a lock file made by an open that failed is removed again.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

use crate::error::OpenError;

/// The lock file's name in the store directory.
pub(super) const LOCK_FILE: &str = "ocap.lock";
/// Tries at locking the file at the path while failed openers keep removing theirs.
const MAX_ATTEMPTS: u32 = 8;

/// The held lock on a store directory. Dropping it releases it.
#[derive(Debug)]
pub(super) struct StoreLock {
    file: File,
    path: PathBuf,
    /// This opener made the file, so a failed open removes it again.
    created: bool,
}

impl StoreLock {
    /// Locks the store directory `dir`, which exists.
    ///
    /// Errors: [`OpenError::InUse`] if another `Store`, in any process, holds the lock;
    /// [`OpenError::BadPath`] if the lock file cannot be made, opened or locked.
    pub(super) fn acquire(dir: &Path) -> Result<StoreLock, OpenError> {
        let path = dir.join(LOCK_FILE);
        let bad = |err: std::io::Error| OpenError::BadPath {
            path: dir.to_path_buf(),
            reason: format!("{LOCK_FILE}: {err}"),
        };
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        for _ in 0..MAX_ATTEMPTS {
            let (file, created) = match options.clone().create_new(true).open(&path) {
                Ok(file) => (file, true),
                Err(err) if err.kind() == ErrorKind::AlreadyExists => match options.open(&path) {
                    Ok(file) => (file, false),
                    // Removed since by an opener that failed: make it anew.
                    Err(err) if err.kind() == ErrorKind::NotFound => continue,
                    Err(err) => return Err(bad(err)),
                },
                Err(err) => return Err(bad(err)),
            };
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    return Err(OpenError::InUse {
                        path: dir.to_path_buf(),
                        pid: recorded_pid(&file),
                    });
                }
                Err(TryLockError::Error(err)) => return Err(bad(err)),
            }
            // An opener that fails removes the file it made while it still holds the lock.
            // Locking that file after its removal would lock a file no one else can find,
            // so the lock counts only if the file is still the one at the path.
            if is_at(&file, &path) {
                return Ok(StoreLock {
                    file,
                    path,
                    created,
                });
            }
        }
        Err(OpenError::InUse {
            path: dir.to_path_buf(),
            pid: None,
        })
    }

    /// Records this process as the holder, for the error refused openers report. Best
    /// effort: the lock holds without it, and a refused opener then names no pid, or the
    /// previous holder's.
    pub(super) fn record_holder(&self) {
        let text = format!("{}\n", std::process::id());
        // Written over the old pid, then cut to length, so a reader never sees an empty file.
        let res = self
            .file
            .write_all_at(text.as_bytes(), 0)
            .and_then(|()| self.file.set_len(text.len() as u64));
        if let Err(err) = res {
            tracing::warn!(error = %err, path = %self.path.display(), "store lock: pid not recorded");
        }
    }

    /// Gives the lock up after a failed open. A lock file this opener made is removed first,
    /// while the lock is still held, so the refused directory is left as it was.
    pub(super) fn abandon(self) {
        if self.created {
            // Best effort: the failed open's error is the news, and a stray empty lock file
            // harms no later open.
            let _ = fs::remove_file(&self.path);
        }
    }
}

impl Drop for StoreLock {
    fn drop(&mut self) {
        // Unlocking acts on the open file, which a child forked by another thread shares
        // until it execs; merely closing our descriptor would leave the store locked, and a
        // reopen refused, for as long as that child takes. An error is moot: closing the
        // file next releases the lock too.
        let _ = self.file.unlock();
    }
}

#[cfg(test)]
impl StoreLock {
    /// A second descriptor of the locked file, as a forked child holds until it execs.
    pub(super) fn shared_file(&self) -> File {
        self.file
            .try_clone()
            .expect("the test can duplicate a descriptor")
    }
}

/// The pid the holder of `file` recorded, if it has and the file is readable.
fn recorded_pid(mut file: &File) -> Option<u32> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// True if `file` is the file at `path`, not one removed from there.
fn is_at(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(held), Ok(named)) => held.dev() == named.dev() && held.ino() == named.ino(),
        _ => false,
    }
}
