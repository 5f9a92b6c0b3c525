//! The byte-keyed store: committed state in LMDB, uncommitted state in an in-memory write
//! overlay, crank transactions with named savepoints.
//!
//! Design (see ARCHITECTURE.md): every write lands in `overlay` (key → `Some(value)` or
//! `None` for a deletion) and appends the key's previous overlay state to an undo log. A
//! savepoint is a mark in the undo log; `rollback_to` replays the log back to the mark.
//! `end_crank` forgets the undo log, and, when the durability mode says so, writes the whole
//! overlay (every crank since the last commit, coalesced per key) into one LMDB write
//! transaction and commits it. A commit therefore only ever contains whole cranks.
//!
//! Invariant: the overlay is never written to LMDB in the middle of a crank.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;
use std::time::{Duration, Instant};

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, RoTxn, WithoutTls};

use crate::error::StoreError;

type Overlay = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// The schema version this build writes and reads.
pub const SCHEMA_VERSION: u32 = 1;
const SCHEMA_KEY: &[u8] = b"schemaVersion";
const INITIAL_MAP_SIZE: usize = 64 << 20;

/// When committed cranks reach the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Every `end_crank` commits and syncs before it returns.
    EveryCrank,
    /// Several cranks share one synced commit: at most `max_cranks` cranks or `max_delay`
    /// of time. A crash may lose the last unsynced cranks, never part of one.
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
    /// The LMDB map size to start with; it grows by itself when full.
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

struct Savepoint {
    name: String,
    undo_mark: usize,
}

/// The kernel's store. Owned by one thread (the kernel's); not `Sync`.
pub struct Store {
    env: Env<WithoutTls>,
    db: Database<Bytes, Bytes>,
    reader: Option<RoTxn<'static, WithoutTls>>,
    overlay: Overlay,
    undo: Vec<(Vec<u8>, Option<Option<Vec<u8>>>)>,
    savepoints: Vec<Savepoint>,
    in_crank: bool,
    durability: Durability,
    uncommitted_cranks: u32,
    oldest_uncommitted: Option<Instant>,
    generation: u64,
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

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl Store {
    /// Opens (creating if missing) the store at directory `path`, syncing every crank.
    ///
    /// # Errors
    /// [`StoreError::BadPath`] if `path` is not a directory that can hold a store,
    /// [`StoreError::SchemaVersion`] for a store of another version, and
    /// [`StoreError::Backend`] when LMDB refuses the file (e.g. a corrupt or foreign file).
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        Store::open_with(path, &StoreConfig::default())
    }

    /// Opens the store with explicit options.
    ///
    /// # Errors
    /// As [`Store::open`].
    pub fn open_with(path: &Path, config: &StoreConfig) -> Result<Store, StoreError> {
        let bad = |reason: &str| StoreError::BadPath {
            path: path.to_path_buf(),
            reason: reason.to_owned(),
        };
        if path.exists() && !path.is_dir() {
            return Err(bad("not a directory"));
        }
        std::fs::create_dir_all(path).map_err(|e| bad(&e.to_string()))?;
        let env = open_env(path, config.initial_map_size)?;
        let mut wtxn = env.write_txn()?;
        let db: Database<Bytes, Bytes> = env.create_database(&mut wtxn, None)?;
        match db.get(&wtxn, SCHEMA_KEY)? {
            None => {
                if db.first(&wtxn)?.is_some() {
                    return Err(bad("database has data but no schema version (foreign file)"));
                }
                db.put(&mut wtxn, SCHEMA_KEY, SCHEMA_VERSION.to_string().as_bytes())?;
                wtxn.commit()?;
            }
            Some(found) if found == SCHEMA_VERSION.to_string().as_bytes() => wtxn.abort(),
            Some(found) => {
                return Err(StoreError::SchemaVersion {
                    found: String::from_utf8_lossy(found).into_owned(),
                    expected: SCHEMA_VERSION,
                });
            }
        }
        let reader = Some(env.clone().static_read_txn()?);
        Ok(Store {
            env,
            db,
            reader,
            overlay: Overlay::new(),
            undo: Vec::new(),
            savepoints: Vec::new(),
            in_crank: false,
            durability: config.durability,
            uncommitted_cranks: 0,
            oldest_uncommitted: None,
            generation: 0,
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

    fn reader(&self) -> &RoTxn<'static, WithoutTls> {
        self.reader
            .as_ref()
            .expect("invariant: the reader is only absent during a commit")
    }

    /// Reads a key, seeing this transaction's own writes.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(entry) = self.overlay.get(key) {
            return Ok(entry.clone());
        }
        Ok(self.db.get(self.reader(), key)?.map(<[u8]>::to_vec))
    }

    /// True if the key has a value.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn contains(&self, key: &[u8]) -> Result<bool, StoreError> {
        if let Some(entry) = self.overlay.get(key) {
            return Ok(entry.is_some());
        }
        Ok(self.db.get(self.reader(), key)?.is_some())
    }

    fn write(&mut self, key: &[u8], value: Option<Vec<u8>>) -> Result<(), StoreError> {
        if !self.in_crank {
            return Err(StoreError::WriteOutsideCrank);
        }
        let previous = self.overlay.insert(key.to_vec(), value);
        self.undo.push((key.to_vec(), previous));
        Ok(())
    }

    /// Sets a key. Only inside a crank.
    ///
    /// # Errors
    /// [`StoreError::WriteOutsideCrank`] outside a crank.
    pub fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.write(key, Some(value.to_vec()))
    }

    /// Deletes a key (a no-op if absent). Only inside a crank.
    ///
    /// # Errors
    /// [`StoreError::WriteOutsideCrank`] outside a crank.
    pub fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        self.write(key, None)
    }

    /// The first key-value pair whose key is `>= from` (or `> from` if not `inclusive`) and
    /// starts with `prefix`, in byte order.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn next_entry(
        &self,
        prefix: &[u8],
        from: &[u8],
        inclusive: bool,
    ) -> Result<Option<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut from = if from < prefix { prefix } else { from }.to_vec();
        let mut inclusive = inclusive || from.as_slice() == prefix;
        loop {
            let lower = if inclusive {
                Bound::Included(from.as_slice())
            } else {
                Bound::Excluded(from.as_slice())
            };
            let from_overlay = self
                .overlay
                .range::<[u8], _>((lower, Bound::Unbounded))
                .next()
                .filter(|(k, _)| k.starts_with(prefix));
            let from_db = self
                .db
                .range(self.reader(), &(lower, Bound::Unbounded))?
                .next()
                .transpose()?
                .filter(|(k, _)| k.starts_with(prefix));
            let (key, value) = match (from_overlay, from_db) {
                (None, None) => return Ok(None),
                (Some((k, v)), None) => (k.clone(), v.clone()),
                (None, Some((k, v))) => (k.to_vec(), Some(v.to_vec())),
                (Some((ok, ov)), Some((dk, dv))) => {
                    if ok.as_slice() <= dk {
                        (ok.clone(), ov.clone())
                    } else {
                        (dk.to_vec(), Some(dv.to_vec()))
                    }
                }
            };
            match value {
                Some(value) => return Ok(Some((key, value))),
                // Deleted in the overlay: skip past it.
                None => {
                    from = key;
                    inclusive = false;
                }
            }
        }
    }

    /// Every key-value pair whose key starts with `prefix`, in byte order.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails.
    pub fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, StoreError> {
        let mut out = Vec::new();
        let mut cursor = prefix.to_vec();
        let mut inclusive = true;
        while let Some((key, value)) = self.next_entry(prefix, &cursor, inclusive)? {
            cursor.clone_from(&key);
            inclusive = false;
            out.push((key, value));
        }
        Ok(out)
    }

    /// Opens a crank: a transaction whose writes commit together at [`Store::end_crank`].
    ///
    /// # Errors
    /// [`StoreError::AlreadyInCrank`] inside a crank.
    pub fn start_crank(&mut self) -> Result<(), StoreError> {
        if self.in_crank {
            return Err(StoreError::AlreadyInCrank);
        }
        self.in_crank = true;
        Ok(())
    }

    /// Takes a named savepoint inside the crank. Names are identifiers; the same name may be
    /// used twice (rollback goes to the first).
    ///
    /// # Errors
    /// [`StoreError::NotInCrank`] outside a crank, [`StoreError::InvalidSavepointName`].
    pub fn savepoint(&mut self, name: &str) -> Result<(), StoreError> {
        if !self.in_crank {
            return Err(StoreError::NotInCrank {
                operation: "createCrankSavepoint",
            });
        }
        if !is_identifier(name) {
            return Err(StoreError::InvalidSavepointName {
                name: name.to_owned(),
            });
        }
        self.savepoints.push(Savepoint {
            name: name.to_owned(),
            undo_mark: self.undo.len(),
        });
        Ok(())
    }

    fn find_savepoint(&self, name: &str) -> Result<usize, StoreError> {
        self.savepoints
            .iter()
            .position(|s| s.name == name)
            .ok_or_else(|| StoreError::NoSuchSavepoint {
                name: name.to_owned(),
            })
    }

    /// Restores every key written since savepoint `name` (the first with that name) and
    /// discards that savepoint and those after it. Bumps [`Store::generation`].
    ///
    /// # Errors
    /// [`StoreError::NotInCrank`], [`StoreError::NoSuchSavepoint`].
    pub fn rollback_to(&mut self, name: &str) -> Result<(), StoreError> {
        if !self.in_crank {
            return Err(StoreError::NotInCrank {
                operation: "rollbackCrank",
            });
        }
        let idx = self.find_savepoint(name)?;
        let mark = self.savepoints[idx].undo_mark;
        while self.undo.len() > mark {
            let (key, previous) = self.undo.pop().expect("invariant: length checked");
            match previous {
                Some(entry) => self.overlay.insert(key, entry),
                None => self.overlay.remove(&key),
            };
        }
        self.savepoints.truncate(idx);
        self.generation += 1;
        Ok(())
    }

    /// Forgets savepoint `name` and those after it, keeping their writes.
    ///
    /// # Errors
    /// [`StoreError::NotInCrank`], [`StoreError::NoSuchSavepoint`].
    pub fn release(&mut self, name: &str) -> Result<(), StoreError> {
        if !self.in_crank {
            return Err(StoreError::NotInCrank {
                operation: "releaseSavepoint",
            });
        }
        let idx = self.find_savepoint(name)?;
        self.savepoints.truncate(idx);
        Ok(())
    }

    /// Names of the open savepoints, oldest first.
    pub fn savepoints(&self) -> impl Iterator<Item = &str> {
        self.savepoints.iter().map(|s| s.name.as_str())
    }

    /// Ends the crank: its writes become part of the committed state, and reach LMDB (and
    /// the disk) now or at the next group commit, as the durability mode says.
    ///
    /// # Errors
    /// [`StoreError::NotInCrank`] outside a crank; [`StoreError::Backend`] if the commit
    /// fails (the crank's writes then stay pending and the next commit retries them).
    pub fn end_crank(&mut self) -> Result<(), StoreError> {
        if !self.in_crank {
            return Err(StoreError::NotInCrank {
                operation: "endCrank",
            });
        }
        self.in_crank = false;
        self.savepoints.clear();
        self.undo.clear();
        if self.overlay.is_empty() {
            return Ok(());
        }
        self.uncommitted_cranks += 1;
        let oldest = *self.oldest_uncommitted.get_or_insert_with(Instant::now);
        let due = match self.durability {
            Durability::EveryCrank => true,
            Durability::Group {
                max_cranks,
                max_delay,
            } => self.uncommitted_cranks >= max_cranks || oldest.elapsed() >= max_delay,
        };
        if due { self.flush() } else { Ok(()) }
    }

    /// True when ended cranks are waiting for a group commit.
    pub fn has_unflushed(&self) -> bool {
        !self.in_crank && !self.overlay.is_empty()
    }

    /// Commits and syncs every ended crank now. Outside a crank only (inside one it is a
    /// no-op that returns `Ok`: a commit never contains part of a crank).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if LMDB fails; the writes stay pending.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.in_crank || self.overlay.is_empty() {
            return Ok(());
        }
        // The reader pins a snapshot and must not be open while the map is resized.
        self.reader = None;
        let res = self.commit_overlay();
        let reader = self.env.clone().static_read_txn();
        self.reader = Some(reader?);
        res?;
        self.overlay.clear();
        self.uncommitted_cranks = 0;
        self.oldest_uncommitted = None;
        Ok(())
    }

    fn commit_overlay(&mut self) -> Result<(), StoreError> {
        loop {
            match self.try_commit_overlay() {
                Err(heed::Error::Mdb(heed::MdbError::MapFull)) => self.grow()?,
                other => return other.map_err(StoreError::from),
            }
        }
    }

    fn try_commit_overlay(&self) -> Result<(), heed::Error> {
        let mut wtxn = self.env.write_txn()?;
        for (key, value) in &self.overlay {
            match value {
                Some(value) => self.db.put(&mut wtxn, key, value)?,
                None => {
                    self.db.delete(&mut wtxn, key)?;
                }
            }
        }
        wtxn.commit()
    }

    fn grow(&mut self) -> Result<(), StoreError> {
        let new_size = self.env.info().map_size.saturating_mul(2);
        tracing::info!(new_size, "store map full; growing");
        // SAFETY: no transaction of this environment is open: the reader was dropped by
        // `flush`, the failed write transaction was aborted, and the store owns the only
        // handle to the environment in this process.
        #[allow(unsafe_code)]
        unsafe {
            self.env.resize(new_size)?;
        }
        Ok(())
    }
}

#[allow(unsafe_code)]
fn open_env(path: &Path, map_size: usize) -> Result<Env<WithoutTls>, StoreError> {
    let mut options = EnvOpenOptions::new().read_txn_without_tls();
    options.map_size(map_size).max_dbs(4);
    // SAFETY: the environment is opened once per process per path (the kernel owns the
    // store), never with WRITE_MAP, and its file is not truncated while open.
    unsafe { options.open(path) }.map_err(StoreError::from)
}
