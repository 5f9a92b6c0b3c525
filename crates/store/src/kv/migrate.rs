//! Running the migrations a store needs when it is opened (the table is
//! `crate::migrations`): the steps run against a read-only view of the store, their writes
//! collected in memory, and only once every step succeeded are the writes committed, in one
//! LMDB write transaction together with the new schema version.
//!
//! Invariants: a step that fails leaves the store's files as they were: the steps run in
//! the read-only, lock-free environment that `open` judges the store with, before LMDB is
//! opened for writing at all; the version key changes only in the transaction that holds
//! every step's writes, so a store is either wholly at its old version or wholly at the
//! new one; a step cannot read, write or scan the store's reserved keys. The cost: a
//! migration's writes are held in memory until its commit.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::path::Path;

use heed::types::Bytes;
use heed::{Database, Env, RoTxn, WithoutTls};

use super::open::classify;
use super::{
    Entry, MAX_GROWTHS_PER_COMMIT, MAX_VALUE_LEN, RESERVED_PREFIX, SCHEMA_KEY, check_key, grow_map,
    scan_start,
};
use crate::error::{OpenError, StoreError};
use crate::migrations::Migration;

/// The store as one migration step sees it: its committed keys, with the writes of the
/// steps before it and its own on top. Writes are checked like [`super::Store::set`]'s.
pub(crate) struct MigrationTxn<'a> {
    db: Database<Bytes, Bytes>,
    rtxn: &'a RoTxn<'a, WithoutTls>,
    max_key_size: usize,
    /// Every write so far: `Some(value)`, or `None` for a deletion.
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

impl MigrationTxn<'_> {
    /// The value of `key`; a key that cannot be written (empty, too long, reserved) reads
    /// as absent.
    pub(crate) fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(entry) = self.writes.get(key) {
            return Ok(entry.clone());
        }
        if check_key(key, self.max_key_size).is_err() {
            return Ok(None);
        }
        Ok(self.db.get(self.rtxn, key)?.map(<[u8]>::to_vec))
    }

    /// Sets `key`.
    pub(crate) fn set(&mut self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        check_key(key, self.max_key_size)?;
        if value.len() > MAX_VALUE_LEN {
            return Err(StoreError::ValueTooLarge {
                key: key.escape_ascii().to_string(),
                len: value.len(),
            });
        }
        self.writes.insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    /// Deletes `key` (a no-op if absent).
    pub(crate) fn delete(&mut self, key: &[u8]) -> Result<(), StoreError> {
        check_key(key, self.max_key_size)?;
        self.writes.insert(key.to_vec(), None);
        Ok(())
    }

    /// Every key-value pair whose key starts with `prefix`, in byte order.
    pub(crate) fn scan_prefix(&self, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
        let Some(lower) = scan_start(prefix, prefix, true) else {
            return Ok(Vec::new());
        };
        let mut found = BTreeMap::new();
        for entry in self.db.range(self.rtxn, &(lower, Bound::Unbounded))? {
            let (key, value) = entry?;
            if !key.starts_with(prefix) {
                break;
            }
            found.insert(key.to_vec(), value.to_vec());
        }
        for (key, write) in self
            .writes
            .range::<[u8], _>((lower, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
        {
            match write {
                Some(value) => found.insert(key.clone(), value.clone()),
                None => found.remove(key),
            };
        }
        Ok(found.into_iter().collect())
    }
}

/// The outcome of the steps from one version to another: what to write.
#[derive(Debug)]
pub(super) struct Migrated {
    /// The version the store is at.
    pub(super) from: u32,
    /// The version the writes bring it to.
    pub(super) to: u32,
    writes: BTreeMap<Vec<u8>, Option<Vec<u8>>>,
}

/// Runs `steps` (from version `from`, in order) against the store `db` of `env`, writing
/// nothing: the writes are returned, to be committed by [`commit`].
///
/// Errors: [`OpenError::Migration`] naming the step that failed, with its error.
pub(super) fn run_steps(
    env: &Env<WithoutTls>,
    db: Database<Bytes, Bytes>,
    path: &Path,
    from: u32,
    steps: &[Migration],
) -> Result<Migrated, OpenError> {
    let rtxn = env.read_txn().map_err(|err| classify(path, err))?;
    let mut txn = MigrationTxn {
        db,
        rtxn: &rtxn,
        max_key_size: env.max_key_size(),
        writes: BTreeMap::new(),
    };
    let mut version = from;
    for step in steps {
        let next = version.saturating_add(1);
        (step.run)(&mut txn).map_err(|source| failed(path, version, next, source))?;
        tracing::debug!(
            from = version,
            to = next,
            what = step.what,
            n_writes = txn.writes.len(),
            "store migration step ran"
        );
        version = next;
    }
    Ok(Migrated {
        from,
        to: version,
        writes: txn.writes,
    })
}

/// Writes `migrated` and its schema version into the store `db` of `env` (opened for
/// writing, with no transaction open), in one transaction, growing the map if it is full.
///
/// Errors: [`OpenError::Migration`] (from the first to the last version) if the commit
/// fails; nothing is committed then.
pub(super) fn commit(
    env: &Env<WithoutTls>,
    db: Database<Bytes, Bytes>,
    path: &Path,
    migrated: &Migrated,
) -> Result<(), OpenError> {
    let mut n_growths = 0;
    loop {
        match try_commit(env, db, migrated) {
            Err(heed::Error::Mdb(heed::MdbError::MapFull))
                if n_growths < MAX_GROWTHS_PER_COMMIT =>
            {
                n_growths += 1;
                // The failed write transaction was aborted when dropped: none is open.
                grow_map(env).map_err(|err| failed(path, migrated.from, migrated.to, err))?;
            }
            // A verdict on the file (corrupt, foreign) is the news; any other LMDB failure
            // is why this migration's commit failed.
            Err(err) => match classify(path, err) {
                OpenError::Backend(err) => {
                    return Err(failed(path, migrated.from, migrated.to, err.into()));
                }
                verdict => return Err(verdict),
            },
            Ok(()) => {
                tracing::info!(
                    from = migrated.from,
                    to = migrated.to,
                    n_writes = migrated.writes.len(),
                    path = %path.display(),
                    "store migrated"
                );
                return Ok(());
            }
        }
    }
}

fn try_commit(
    env: &Env<WithoutTls>,
    db: Database<Bytes, Bytes>,
    migrated: &Migrated,
) -> Result<(), heed::Error> {
    let mut wtxn = env.write_txn()?;
    for (key, write) in &migrated.writes {
        debug_assert_ne!(key.first(), Some(&RESERVED_PREFIX), "checked when written");
        match write {
            Some(value) => db.put(&mut wtxn, key, value)?,
            None => {
                db.delete(&mut wtxn, key)?;
            }
        }
    }
    db.put(&mut wtxn, SCHEMA_KEY, migrated.to.to_string().as_bytes())?;
    #[cfg(test)]
    if fault::take_commit_failure() {
        return Err(heed::Error::Io(std::io::Error::other(
            "injected migration commit failure",
        )));
    }
    wtxn.commit()
}

fn failed(path: &Path, from: u32, to: u32, source: StoreError) -> OpenError {
    OpenError::Migration {
        path: path.to_path_buf(),
        from,
        to,
        source: Box::new(source),
    }
}

/// Test-only fault injection, per thread (a store is opened on the caller's thread).
#[cfg(test)]
pub(crate) mod fault {
    use std::cell::Cell;

    thread_local! {
        static FAIL_NEXT_COMMIT: Cell<bool> = const { Cell::new(false) };
    }

    /// Makes the next migration commit on this thread fail after its writes.
    pub(crate) fn fail_next_commit() {
        FAIL_NEXT_COMMIT.with(|fail| fail.set(true));
    }

    pub(super) fn take_commit_failure() -> bool {
        FAIL_NEXT_COMMIT.with(Cell::take)
    }
}
