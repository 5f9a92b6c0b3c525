//! Ending cranks and committing them: when the overlay of ended cranks is written to LMDB
//! (every crank, or grouped), flushing, closing, and growing the map when a commit finds
//! it full.
//!
//! Invariant: a commit writes whole ended cranks only (never part of the open one), and a
//! failed commit leaves the ended cranks pending for the next commit to retry.

use std::time::Instant;

use heed::{Env, WithoutTls};

use super::{
    Durability, GROUP_MAX_BYTES, MAX_GROWTHS_PER_COMMIT, Store, lmdb_env, open,
    overlay::commit_entries,
};
use crate::error::{CrankError, StoreError};

impl Store {
    /// Ends the crank: its writes become part of the committed state, and reach LMDB (and
    /// the disk) now or at the next group commit, as the durability mode says. Open
    /// savepoints are released.
    ///
    /// # Errors
    /// [`CrankError::NotInCrank`] outside a crank; [`StoreError::Backend`] if the commit
    /// fails. The crank has ended either way; after a failed commit its writes stay pending
    /// (readable, in [`Store::has_unflushed`]) and the next commit retries them.
    pub fn end_crank(&mut self) -> Result<(), StoreError> {
        if !self.in_crank {
            return Err(CrankError::NotInCrank {
                operation: "endCrank",
            }
            .into());
        }
        self.in_crank = false;
        self.savepoints.clear();
        // Undo entries left at the end are writes that survived: the crank counts towards
        // a group's bound only if it changed something.
        let wrote = !self.undo.is_empty();
        self.undo.clear();
        if self.overlay.is_empty() {
            return Ok(());
        }
        if wrote {
            self.uncommitted_cranks = self.uncommitted_cranks.saturating_add(1);
            self.oldest_uncommitted.get_or_insert_with(Instant::now);
        }
        if self.commit_due() {
            self.flush()
        } else {
            Ok(())
        }
    }

    pub(super) fn commit_due(&self) -> bool {
        match self.durability {
            Durability::EveryCrank => true,
            Durability::Group {
                max_cranks,
                max_delay,
            } => {
                self.uncommitted_cranks >= max_cranks
                    || self.bytes_since_commit >= GROUP_MAX_BYTES
                    || self
                        .oldest_uncommitted
                        .is_some_and(|oldest| oldest.elapsed() >= max_delay)
            }
        }
    }

    /// True when ended cranks are waiting for a commit (a group commit, or a retry after a
    /// failed one).
    pub fn has_unflushed(&self) -> bool {
        self.uncommitted_cranks > 0
    }

    /// Commits and syncs every ended crank now.
    ///
    /// # Errors
    /// [`CrankError::InCrank`] inside a crank (a commit never holds part of a crank);
    /// [`StoreError::Backend`] if LMDB fails, and the writes then stay pending.
    pub fn flush(&mut self) -> Result<(), StoreError> {
        if self.in_crank {
            return Err(CrankError::InCrank { operation: "flush" }.into());
        }
        if self.overlay.is_empty() {
            return Ok(());
        }
        // The reader pins a snapshot and must not be open while the map is resized; closing
        // it also lets this commit reuse every page the previous one freed.
        self.reader = None;
        // The snapshot the cache describes goes with the reader, whether or not the commit
        // succeeds.
        self.read_cache.get_mut().clear();
        let res = self.commit_overlay();
        match self.env.clone().static_read_txn() {
            Ok(reader) => self.reader = Some(reader),
            Err(err) => tracing::warn!(error = %err, "store read txn not renewed"),
        }
        res?;
        self.overlay.clear();
        self.uncommitted_cranks = 0;
        self.oldest_uncommitted = None;
        self.bytes_since_commit = 0;
        Ok(())
    }

    /// Commits ended cranks and closes the store, reporting what dropping it would only
    /// log, and releases its lock. An open crank is discarded, as a crash would.
    ///
    /// # Errors
    /// As [`Store::flush`]; the store is closed either way.
    pub fn close(mut self) -> Result<(), StoreError> {
        self.discard_and_flush()
    }

    pub(super) fn discard_and_flush(&mut self) -> Result<(), StoreError> {
        if self.in_crank {
            self.abort_crank()?;
        }
        self.flush()
    }

    fn commit_overlay(&mut self) -> Result<(), StoreError> {
        let mut n_growths = 0;
        loop {
            match self.try_commit_overlay() {
                Err(heed::Error::Mdb(heed::MdbError::MapFull))
                    if n_growths < MAX_GROWTHS_PER_COMMIT =>
                {
                    n_growths += 1;
                    self.grow()?;
                }
                other => return other.map_err(StoreError::from),
            }
        }
    }

    fn try_commit_overlay(&mut self) -> Result<(), heed::Error> {
        let entries = commit_entries(&self.overlay);
        let mut wtxn = self.env.write_txn()?;
        // In key order: LMDB inserts sorted keys with far less page work.
        if !lmdb_env::write_sorted(&self.db, &mut wtxn, &entries, true)? {
            tracing::warn!("a key known to be stored was not; committing again without that");
            #[cfg(test)]
            {
                self.commits_rewritten += 1;
            }
            drop(wtxn);
            wtxn = self.env.write_txn()?;
            lmdb_env::write_sorted(&self.db, &mut wtxn, &entries, false)?;
        }
        #[cfg(test)]
        if self.fail_commits > 0 {
            self.fail_commits -= 1;
            return Err(heed::Error::Io(std::io::Error::other(
                "injected commit failure",
            )));
        }
        wtxn.commit()
    }

    fn grow(&mut self) -> Result<(), StoreError> {
        // No transaction of this environment is open: the reader was dropped by `flush` and
        // the failed write transaction was aborted when dropped.
        grow_map(&self.env)
    }
}

/// Doubles the LMDB map of `env`, after a commit found it full. The caller has no
/// transaction of `env` open.
pub(super) fn grow_map(env: &Env<WithoutTls>) -> Result<(), StoreError> {
    let old_size = env.info().map_size;
    let new_size = open::round_map_size(old_size.saturating_mul(2));
    tracing::info!(old_size, new_size, "store map full; growing");
    lmdb_env::resize_env(env, new_size).map_err(StoreError::from)
}
