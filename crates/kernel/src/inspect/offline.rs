//! A store that no kernel runs, opened by a tool: read-only under the store's lock, its file
//! walked page by page, copied into a backup.

use std::path::Path;

use ocap_store::{BackupError, DirLock, FileWalk, KernelStore, OpenError, Store};

/// A store opened read-only while no kernel runs it (`ocap inspect`, `ocap check`, `ocap
/// backup`). Holds the store's lock until dropped, so no kernel opens it meanwhile, and
/// hands out only `&KernelStore`, as [`Kernel::inspect`](crate::Kernel::inspect) does: the
/// listings of this module and the audit work on either.
#[derive(Debug)]
pub struct OfflineStore {
    store: KernelStore,
}

impl OfflineStore {
    /// Opens the store at directory `path` for reading. Writes nothing but the lock file:
    /// an older store is not migrated, a missing one not created.
    ///
    /// # Errors
    /// [`OpenError::InUse`] if a kernel (or another tool) has it open,
    /// [`OpenError::BadPath`] if there is no store at `path`, [`OpenError::SchemaVersion`]
    /// for a store of another version, [`OpenError::CorruptFile`] or
    /// [`OpenError::ForeignFile`] for a file that is not a sound ocap store.
    ///
    /// # Examples
    /// ```
    /// use ocap_kernel::inspect::{self, OfflineStore};
    /// use ocap_kernel::{Kernel, KernelConfig, OpenError, VatRegistry};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let kernel = Kernel::open(dir.path(), KernelConfig::new(VatRegistry::new()))?;
    /// // While a kernel runs the store, tools are refused.
    /// let err = OfflineStore::open(dir.path()).unwrap_err();
    /// assert!(matches!(err, OpenError::InUse { .. }));
    /// kernel.shutdown()?;
    ///
    /// let store = OfflineStore::open(dir.path())?;
    /// assert!(store.tables().check()?.is_empty());
    /// let vats = inspect::vats(store.tables(), 10)?;
    /// assert!(vats.rows.is_empty() && !vats.more);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn open(path: &Path) -> Result<OfflineStore, OpenError> {
        Ok(OfflineStore {
            store: KernelStore::new(Store::open_read_only(path)?),
        })
    }

    /// Takes the lock of the existing store at `path` without opening it (nothing but the
    /// lock file is read), to hold while a child process runs [`walk_store_file`]; then
    /// [`OfflineStore::open_locked`].
    ///
    /// # Errors
    /// [`OpenError::InUse`] if a kernel or another tool has it open,
    /// [`OpenError::BadPath`] if there is no store at `path`.
    pub fn lock(path: &Path) -> Result<DirLock, OpenError> {
        Store::lock_dir(path)
    }

    /// [`OfflineStore::open`] of the store whose lock the caller holds.
    ///
    /// # Errors
    /// As [`OfflineStore::open`], except [`OpenError::InUse`].
    pub fn open_locked(lock: DirLock) -> Result<OfflineStore, OpenError> {
        Ok(OfflineStore {
            store: KernelStore::new(Store::open_read_only_locked(lock)?),
        })
    }

    /// The kernel's tables, for reading.
    pub fn tables(&self) -> &KernelStore {
        &self.store
    }

    /// Writes a consistent, compacted copy of the store into directory `dest`, which must be
    /// missing or empty; the copy is a store that opens like this one.
    ///
    /// # Errors
    /// [`BackupError::Destination`] if `dest` is not empty or cannot be written,
    /// [`BackupError::Store`] if LMDB fails to copy.
    pub fn backup_to(&mut self, dest: &Path) -> Result<(), BackupError> {
        self.store.kv_mut().backup_to(dest)
    }
}

/// Reads every entry of the store file at directory `path`, every byte, without taking the
/// store's lock: the caller holds it (`ocap check` holds it in the parent of the process
/// that runs this). LMDB has no checksums, so a damaged page can crash the process instead
/// of failing: run this in a child process and treat its death as damage.
///
/// # Errors
/// [`OpenError::BadPath`] if there is no store file, [`OpenError::CorruptFile`] for
/// damage LMDB notices, [`OpenError::Backend`] if LMDB fails otherwise.
pub fn walk_store_file(path: &Path) -> Result<FileWalk, OpenError> {
    Store::walk_file(path)
}
