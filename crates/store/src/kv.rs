//! The byte-keyed store: committed state in LMDB, uncommitted state in an in-memory write
//! overlay, crank transactions with typed savepoints.
//!
//! Design (see docs/store.md): every write lands in `overlay` (key → `Some(value)`, or
//! `None` for a deletion) and appends the key's previous overlay entry to an undo log,
//! unless the key was logged already since the newest savepoint (then it is overwritten in
//! place). A savepoint is a mark in the undo log; `rollback_to` replays the log back to
//! the mark.
//! `end_crank` forgets the undo log, and, when the durability mode says so, writes the whole
//! overlay (every crank since the last commit, coalesced per key) into one LMDB write
//! transaction and commits it. Reads look in the overlay, then in a long-lived LMDB read
//! transaction that is renewed after each commit.
//!
//! Invariants: the overlay is never written to LMDB in the middle of a crank, so an LMDB
//! commit holds whole cranks only; the undo log holds every key the open crank wrote with
//! its entry from before the crank and from before each open savepoint, so the crank can
//! always be discarded whole, or back to any savepoint; no read transaction is open while the map is
//! resized; keys starting with byte 0 belong to the store (its schema version) and are
//! neither written, read nor scanned through the public API (nor by a migration,
//! `migrate.rs`).

mod commit;
mod crank;
mod crank_hash;
mod lmdb_env;
mod lock;
mod migrate;
mod offline;
mod open;
mod overlay;
mod read_cache;
#[cfg(test)]
mod tests;
mod undo;

use std::borrow::Cow;
use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, Instant};

use heed::types::Bytes;
use heed::{Database, Env, RoTxn, WithoutTls};

use crate::error::{CrankError, KeyProblem, OpenError, StoreError};
use crate::migrations::{CURRENT, Schema};
use commit::grow_map;
use crank::OpenSavepoint;
pub use crank::Savepoint;
pub use crank_hash::{CrankDigest, chain_crank_hash};
use hashbrown::hash_table::Entry as OverlayEntry;
use lock::StoreLock;
pub(crate) use migrate::MigrationTxn;
#[cfg(test)]
pub(crate) use migrate::fault;
pub use offline::{DirLock, StoreUsage};
pub use open::FileWalk;
#[cfg(test)]
pub(crate) use open::tests::snapshot;
use overlay::{Known, Overlay, Slot, sort_prefix, sorted_range};
use read_cache::ReadCache;
use undo::UndoLog;

/// A key and its value.
type Entry = (Vec<u8>, Vec<u8>);

/// First byte of the store's own keys; the kernel's keyspace is every other key.
const RESERVED_PREFIX: u8 = 0;
/// The smallest key outside the reserved range.
const FIRST_USER_KEY: &[u8] = &[1];
const SCHEMA_KEY: &[u8] = b"\0schemaVersion";
const INITIAL_MAP_SIZE: usize = 64 << 20;
/// A group commit is also due once this many bytes were written since the last commit: it
/// bounds the overlay's memory and keeps a group's LMDB write transaction far below LMDB's
/// limit on dirty pages per transaction.
const GROUP_MAX_BYTES: usize = 32 << 20;
/// LMDB stores values up to 4 GiB.
const MAX_VALUE_LEN: usize = u32::MAX as usize;
/// Map doublings tried for one commit before giving up with LMDB's `MapFull`.
const MAX_GROWTHS_PER_COMMIT: u32 = 32;

/// When committed cranks reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every `end_crank` commits and syncs before it returns.
    EveryCrank,
    /// Several cranks share one synced commit: at most `max_cranks` cranks or `max_delay`
    /// of time (checked when a crank ends; an idle kernel flushes at once). A crash may lose
    /// the last unsynced cranks, never part of one.
    Group {
        /// Commit after this many cranks.
        max_cranks: u32,
        /// Commit when the oldest uncommitted crank is this old.
        max_delay: Duration,
    },
}

impl Durability {
    /// Group commit with the kernel's default bounds (1000 cranks or 50 ms).
    pub const GROUP: Durability = Durability::Group {
        max_cranks: 1000,
        max_delay: Duration::from_millis(50),
    };
}

/// Options for [`Store::open_with`].
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// The durability mode.
    pub durability: Durability,
    /// The LMDB map size to start with (rounded up to a multiple of 64 KiB); it grows by
    /// itself when full.
    pub initial_map_size: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            durability: Durability::EveryCrank,
            initial_map_size: INITIAL_MAP_SIZE,
        }
    }
}

/// The kernel's store. Owned by one thread (the kernel's); `Send`, not `Sync`.
///
/// Dropping the store discards an open crank (as a crash would), commits the ended
/// cranks a group commit still holds, best effort (use [`Store::close`] to see errors),
/// and releases the directory's lock.
pub struct Store {
    env: Env<WithoutTls>,
    db: Database<Bytes, Bytes>,
    /// Absent only while committing, or if renewing it after a commit failed (reads then
    /// use a short read transaction each).
    reader: Option<RoTxn<'static, WithoutTls>>,
    max_key_size: usize,
    overlay: Overlay,
    /// What the read transaction read from LMDB, for keys read again before the next
    /// commit (a cell: reads take `&self`).
    read_cache: std::cell::RefCell<ReadCache>,
    undo: UndoLog,
    /// The undo epoch: changes whenever the undo log's newest savepoint mark may have
    /// moved (a crank starts, a savepoint is taken, a rollback), never repeating.
    epoch: u64,
    /// Buffers of [`Store::crank_writes_digest`], kept from one crank to the next so that
    /// a digest allocates nothing (cells: the digest only reads the store).
    digest_keys: std::cell::Cell<Vec<crank_hash::DigestKey>>,
    digest_stream: std::cell::Cell<Vec<u8>>,
    savepoints: Vec<OpenSavepoint>,
    in_crank: bool,
    durability: Durability,
    uncommitted_cranks: u32,
    oldest_uncommitted: Option<Instant>,
    bytes_since_commit: usize,
    generation: u64,
    /// Test-only fault injection: the next this-many commits fail after their puts.
    #[cfg(test)]
    fail_commits: u32,
    /// Test-only: commits written a second time because a key known to be stored was not.
    #[cfg(test)]
    commits_rewritten: u32,
    /// The directory's lock. The last field, so that it is released only after the
    /// environment above has been closed.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "held, never read: dropping it releases the lock")
    )]
    lock: StoreLock,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.env.path())
            .field("in_crank", &self.in_crank)
            .field("overlay_len", &self.overlay.len())
            .finish_non_exhaustive()
    }
}

/// Refuses a key the kernel's keyspace cannot hold: empty, longer than `max_key_size`
/// (LMDB's limit), or reserved (starting with byte 0).
pub(crate) fn check_key(key: &[u8], max_key_size: usize) -> Result<(), StoreError> {
    let problem = if key.is_empty() {
        KeyProblem::Empty
    } else if key.len() > max_key_size {
        KeyProblem::TooLong
    } else if key[0] == RESERVED_PREFIX {
        KeyProblem::Reserved
    } else {
        return Ok(());
    };
    Err(StoreError::InvalidKey {
        key: key.escape_ascii().to_string(),
        problem,
    })
}

/// The lower bound of a scan of `prefix` that starts at `from`, or `None` if the scan can
/// only meet reserved keys.
fn scan_start<'a>(prefix: &'a [u8], from: &'a [u8], inclusive: bool) -> Option<Bound<&'a [u8]>> {
    if prefix.first() == Some(&RESERVED_PREFIX) {
        return None;
    }
    let (from, inclusive) = if from < prefix {
        (prefix, true)
    } else {
        (from, inclusive)
    };
    // Every key below FIRST_USER_KEY is empty or reserved. This also keeps LMDB from seeing
    // an empty search key, which it rejects.
    Some(if from < FIRST_USER_KEY {
        Bound::Included(FIRST_USER_KEY)
    } else if inclusive {
        Bound::Included(from)
    } else {
        Bound::Excluded(from)
    })
}

impl Store {
    /// Opens (creating if missing) the store at directory `path`, syncing every crank. The
    /// store holds the directory's lock (`ocap.lock`) until it is dropped or closed. A new
    /// store is created at [`SCHEMA_VERSION`](crate::SCHEMA_VERSION); an older store is
    /// migrated to it first, every step in one transaction with the version bump.
    ///
    /// # Errors
    /// [`OpenError::InUse`] if another `Store`, in this process or another, has it open;
    /// [`OpenError::BadPath`] if `path` is not a directory that can hold a store,
    /// [`OpenError::CorruptFile`] for a damaged or truncated `data.mdb`,
    /// [`OpenError::ForeignFile`] for an LMDB environment that is not an ocap store,
    /// [`OpenError::SchemaVersion`] for a store of a newer version (or an older one no
    /// migration starts from), [`OpenError::Migration`] if a migration step or its commit
    /// fails, [`OpenError::Backend`] if LMDB fails otherwise. A refused directory is left
    /// as it was.
    pub fn open(path: &Path) -> Result<Store, OpenError> {
        Store::open_with(path, &StoreConfig::default())
    }

    /// Opens the store with explicit options.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(path: &Path, config: &StoreConfig) -> Result<Store, OpenError> {
        Store::open_schema(path, config, &CURRENT)
    }

    /// [`Store::open_with`] for `schema` in place of this build's: tests pass their own
    /// versions and migrations.
    pub(crate) fn open_schema(
        path: &Path,
        config: &StoreConfig,
        schema: &Schema<'_>,
    ) -> Result<Store, OpenError> {
        let opened = open::open_store(path, config.initial_map_size, schema)?;
        Store::from_opened(opened, config.durability)
    }

    /// The store over an environment [`open`] opened and locked.
    fn from_opened(opened: open::Opened, durability: Durability) -> Result<Store, OpenError> {
        let open::Opened { env, db, lock } = opened;
        let max_key_size = env.max_key_size();
        let reader = Some(env.clone().static_read_txn()?);
        let overlay = Overlay::default();
        Ok(Store {
            env,
            db,
            reader,
            max_key_size,
            read_cache: std::cell::RefCell::new(ReadCache::new(overlay.key_hash().clone())),
            overlay,
            undo: UndoLog::default(),
            epoch: 0,
            digest_keys: std::cell::Cell::default(),
            digest_stream: std::cell::Cell::default(),
            savepoints: Vec::new(),
            in_crank: false,
            durability,
            uncommitted_cranks: 0,
            oldest_uncommitted: None,
            bytes_since_commit: 0,
            generation: 0,
            #[cfg(test)]
            fail_commits: 0,
            #[cfg(test)]
            commits_rewritten: 0,
            lock,
        })
    }

    /// A number that changes whenever a rollback may have changed stored state behind a
    /// cache's back. A cache filled at generation G is stale once this differs from G.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// True between `start_crank` and `end_crank`.
    pub fn in_crank(&self) -> bool {
        self.in_crank
    }

    /// True if `key` could have been written: non-empty, not too long, not reserved.
    fn is_user_key(&self, key: &[u8]) -> bool {
        key.len() <= self.max_key_size && key.first().is_some_and(|b| *b != RESERVED_PREFIX)
    }

    fn with_reader<R>(
        &self,
        read: impl FnOnce(&RoTxn<'_, WithoutTls>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        match &self.reader {
            Some(reader) => read(reader),
            None => read(&self.env.read_txn()?),
        }
    }

    /// Reads a key, seeing this transaction's own writes. A key that cannot be written
    /// (empty, too long, reserved) reads as absent.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.get_ref(key)?.map(Cow::into_owned))
    }

    /// [`Store::get`] without the copy: the value borrowed from the crank's overlay or from
    /// LMDB's map (copied only if no long-lived read transaction is open). Every table
    /// read of a crank goes through here; copying each value showed in crank profiles.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn get_ref(&self, key: &[u8]) -> Result<Option<Cow<'_, [u8]>>, StoreError> {
        let hash = self.overlay.hash(key);
        if let Some(slot) = self.overlay.get(hash, key) {
            return Ok(slot.value.as_deref().map(Cow::Borrowed));
        }
        if !self.is_user_key(key) {
            return Ok(None);
        }
        match &self.reader {
            Some(reader) => {
                if let Some(value) = self.read_cache.borrow().get(hash, key) {
                    return Ok(value.clone().map(Cow::Owned));
                }
                let value = self.db.get(reader, key)?;
                self.read_cache.borrow_mut().insert(hash, key, value);
                Ok(value.map(Cow::Borrowed))
            }
            None => {
                let txn = self.env.read_txn()?;
                let value = self.db.get(&txn, key)?;
                Ok(value.map(|value| Cow::Owned(value.to_vec())))
            }
        }
    }

    /// True if the key has a value.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn contains(&self, key: &[u8]) -> Result<bool, StoreError> {
        if let Some(slot) = self.overlay.get(self.overlay.hash(key), key) {
            return Ok(slot.value.is_some());
        }
        if !self.is_user_key(key) {
            return Ok(false);
        }
        self.with_reader(|txn| Ok(self.db.get(txn, key)?.is_some()))
    }

    /// Writes `value` (`None`: deletes) under `key`, logging what it replaces in the undo
    /// log, unless the key was logged already in this undo epoch: then the log holds its
    /// value from before the newest savepoint, which is all a rollback restores, and the
    /// value is overwritten in place (a crank rewrites the same refcounts and records
    /// several times; logging each write cost an allocation and an undo entry).
    ///
    /// `known`: what the caller knows of the key's value before this write
    /// ([`Store::set_new`]: none; [`Store::delete_present`]: one). For a key the overlay has
    /// no entry for, that is what LMDB holds, which the commit relies on.
    fn write(&mut self, key: &[u8], value: Option<&[u8]>, known: Known) -> Result<(), StoreError> {
        if !self.in_crank {
            return Err(CrankError::WriteOutsideCrank.into());
        }
        check_key(key, self.max_key_size)?;
        let n_bytes = key.len() + value.map_or(0, <[u8]>::len);
        self.bytes_since_commit = self.bytes_since_commit.saturating_add(n_bytes);
        let epoch = self.epoch;
        let hash = self.overlay.hash(key);
        let previous = match self.overlay.entry(hash, key) {
            OverlayEntry::Occupied(mut entry) => {
                let slot = &mut entry.get_mut().1;
                if slot.logged == epoch {
                    match (&mut slot.value, value) {
                        (Some(buf), Some(value)) => {
                            buf.clear();
                            buf.extend_from_slice(value);
                        }
                        (old, value) => *old = value.map(<[u8]>::to_vec),
                    }
                    return Ok(());
                }
                // What LMDB holds stays with the key until the commit: LMDB changes only
                // then.
                let in_lmdb = slot.in_lmdb;
                Some(std::mem::replace(
                    slot,
                    Slot {
                        value: value.map(<[u8]>::to_vec),
                        logged: epoch,
                        in_lmdb,
                    },
                ))
            }
            OverlayEntry::Vacant(vacant) => {
                // A key read from LMDB since the last commit is known to be there until the
                // next one: deleting it can take the commit's cursor path (`write_sorted`).
                let in_lmdb = match known {
                    Known::Nothing
                        if self
                            .read_cache
                            .borrow()
                            .get(hash, key)
                            .is_some_and(Option::is_some) =>
                    {
                        Known::Present
                    }
                    known => known,
                };
                let slot = Slot {
                    value: value.map(<[u8]>::to_vec),
                    logged: epoch,
                    in_lmdb,
                };
                vacant.insert((key.to_vec(), slot));
                None
            }
        };
        self.undo.push(key, hash, previous);
        Ok(())
    }

    /// Starts a new undo epoch: every key is logged again at its next write.
    fn next_epoch(&mut self) {
        self.epoch += 1;
    }

    /// Sets a key. Only inside a crank.
    ///
    /// # Errors
    /// [`CrankError::WriteOutsideCrank`] outside a crank, [`StoreError::InvalidKey`] for an
    /// empty, over-long (LMDB: 511 bytes) or reserved key, [`StoreError::ValueTooLarge`].
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(StoreError::ValueTooLarge {
                key: key.escape_ascii().to_string(),
                len: value.len(),
            });
        }
        self.write(key, Some(value), Known::Nothing)
    }

    /// [`Store::set`] for a key the caller knows has no value now: it names an id just
    /// allocated, or a queue's head index, or was just read as absent. Deleting the key
    /// again before the next commit then costs the commit nothing (debug builds check the
    /// claim; a false one would leave a deleted key in LMDB).
    ///
    /// # Errors
    /// As [`Store::set`].
    pub fn set_new(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        debug_assert!(
            !self.contains(key).unwrap_or(false),
            "set_new on a key that has a value: {}",
            key.escape_ascii()
        );
        if value.len() > MAX_VALUE_LEN {
            return Err(StoreError::ValueTooLarge {
                key: key.escape_ascii().to_string(),
                len: value.len(),
            });
        }
        self.write(key, Some(value), Known::Absent)
    }

    /// Deletes a key (a no-op if absent). Only inside a crank.
    ///
    /// # Errors
    /// [`CrankError::WriteOutsideCrank`] outside a crank, [`StoreError::InvalidKey`].
    pub fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.write(key, None, Known::Nothing)
    }

    /// [`Store::delete`] for a key the caller knows has a value now (one side of a pair
    /// whose other side it just read): the commit can then delete it through its cursor
    /// (`kv/lmdb_env.rs`). A false claim (a damaged pair) is caught by that commit, which
    /// writes again without the claim: it costs time, never a wrong result.
    ///
    /// # Errors
    /// As [`Store::delete`].
    pub fn delete_present(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.write(key, None, Known::Present)
    }

    /// Visits the live entries with keys `>= lower` (by the bound) that start with
    /// `prefix`, in byte order, merging the overlay over LMDB, until `visit` returns false.
    fn walk(
        &self,
        txn: &RoTxn<'_, WithoutTls>,
        prefix: &[u8],
        lower: Bound<&[u8]>,
        mut visit: impl FnMut(&[u8], &[u8]) -> bool,
    ) -> Result<(), StoreError> {
        let mut db_iter = self.db.range(txn, &(lower, Bound::Unbounded))?;
        let mut next_db = move || -> Result<_, StoreError> {
            Ok(db_iter
                .next()
                .transpose()?
                .filter(|(key, _)| key.starts_with(prefix)))
        };
        let mut overlay_iter = sorted_range(&self.overlay, prefix, lower)
            .into_iter()
            .map(|(_, key, value)| (key, value))
            .peekable();
        let mut db_head = next_db()?;
        loop {
            let overlay_first = match (overlay_iter.peek(), db_head) {
                (None, None) => return Ok(()),
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((overlay_key, _)), Some((db_key, _))) => overlay_key.as_slice() <= db_key,
            };
            if overlay_first {
                let Some((key, entry)) = overlay_iter.next() else {
                    return Ok(());
                };
                // The overlay entry shadows LMDB's entry for the same key.
                if db_head.is_some_and(|(db_key, _)| db_key == key.as_slice()) {
                    db_head = next_db()?;
                }
                if let Some(value) = entry
                    && !visit(key, value)
                {
                    return Ok(());
                }
            } else if let Some((key, value)) = db_head {
                if !visit(key, value) {
                    return Ok(());
                }
                db_head = next_db()?;
            }
        }
    }

    /// The first key-value pair whose key is `>= from` (or `> from` if not `inclusive`) and
    /// starts with `prefix`, in byte order. A `from` below `prefix` starts at `prefix`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn next_entry(
        &self,
        prefix: &[u8],
        from: &[u8],
        inclusive: bool,
    ) -> Result<Option<Entry>, StoreError> {
        let Some(lower) = scan_start(prefix, from, inclusive) else {
            return Ok(None);
        };
        let mut found = None;
        self.with_reader(|txn| {
            self.walk(txn, prefix, lower, |key, value| {
                found = Some((key.to_vec(), value.to_vec()));
                false
            })
        })?;
        Ok(found)
    }

    /// At most `limit` key-value pairs whose keys start with `prefix` and are `>= from` (or
    /// `> from` if not `inclusive`), in byte order: one walk, where `limit` calls of
    /// [`Store::next_entry`] would each walk the crank's overlay again.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn scan_from(
        &self,
        prefix: &[u8],
        from: &[u8],
        inclusive: bool,
        limit: usize,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut out = Vec::new();
        let Some(lower) = scan_start(prefix, from, inclusive) else {
            return Ok(out);
        };
        if limit == 0 {
            return Ok(out);
        }
        self.with_reader(|txn| {
            self.walk(txn, prefix, lower, |key, value| {
                out.push((key.to_vec(), value.to_vec()));
                out.len() < limit
            })
        })?;
        Ok(out)
    }

    /// Every key-value pair whose key starts with `prefix`, in byte order.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let Some(lower) = scan_start(prefix, prefix, true) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        self.with_reader(|txn| {
            self.walk(txn, prefix, lower, |key, value| {
                out.push((key.to_vec(), value.to_vec()));
                true
            })
        })?;
        Ok(out)
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Err(err) = self.discard_and_flush() {
            tracing::warn!(error = %err, "store: commit on drop failed; ended cranks lost");
        }
    }
}
