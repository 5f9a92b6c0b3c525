//! Crank transactions on the byte store: opening one, typed savepoints inside it, rolling
//! back to one, and aborting the whole crank.
//!
//! Invariant: a savepoint names an undo-log mark of the open crank only; ids are unique in
//! the process, so a stale savepoint (released, rolled back to, of an earlier crank or of
//! another store) is always refused, never taken for a live one.

use super::Store;
use crate::error::CrankError;

/// A savepoint of the open crank: a mark to roll back to. Only [`Store::savepoint`] makes
/// one; it is good until it, or an older savepoint, is rolled back to or released, or the
/// crank ends. Copying it does not copy the savepoint: once one copy is used, the others
/// are stale ([`CrankError::NoSuchSavepoint`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "a savepoint is only useful to roll back to"]
pub struct Savepoint {
    id: u64,
}

/// Savepoint ids are unique in the process, never reused: a stale [`Savepoint`], even one
/// of another store or of an earlier opening of this one, is always recognised.
static NEXT_SAVEPOINT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// An open savepoint: its id and where the undo log stood when it was taken.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenSavepoint {
    pub(super) id: u64,
    pub(super) undo_mark: usize,
}

impl Store {
    /// Opens a crank: a transaction whose writes commit together at [`Store::end_crank`].
    ///
    /// # Errors
    /// [`CrankError::AlreadyInCrank`] inside a crank.
    pub fn start_crank(&mut self) -> Result<(), CrankError> {
        if self.in_crank {
            return Err(CrankError::AlreadyInCrank);
        }
        self.in_crank = true;
        self.next_epoch();
        Ok(())
    }

    /// Takes a savepoint inside the crank: [`Store::rollback_to`] it to undo every write
    /// made after this call. Savepoints nest.
    ///
    /// # Errors
    /// [`CrankError::NotInCrank`] outside a crank.
    pub fn savepoint(&mut self) -> Result<Savepoint, CrankError> {
        if !self.in_crank {
            return Err(CrankError::NotInCrank {
                operation: "createCrankSavepoint",
            });
        }
        let id = NEXT_SAVEPOINT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Writes after this mark must log the values they replace.
        self.next_epoch();
        self.savepoints.push(OpenSavepoint {
            id,
            undo_mark: self.undo.len(),
        });
        Ok(Savepoint { id })
    }

    fn find_savepoint(&self, savepoint: Savepoint) -> Result<usize, CrankError> {
        self.savepoints
            .iter()
            .rposition(|s| s.id == savepoint.id)
            .ok_or(CrankError::NoSuchSavepoint)
    }

    /// Restores every key written since `savepoint` and discards it and the savepoints
    /// taken after it. Bumps [`Store::generation`].
    ///
    /// # Errors
    /// [`CrankError::NotInCrank`], [`CrankError::NoSuchSavepoint`] for a savepoint already
    /// released or rolled back, or of an earlier crank.
    pub fn rollback_to(&mut self, savepoint: Savepoint) -> Result<(), CrankError> {
        if !self.in_crank {
            return Err(CrankError::NotInCrank {
                operation: "rollbackCrank",
            });
        }
        let idx = self.find_savepoint(savepoint)?;
        self.undo
            .undo_to(self.savepoints[idx].undo_mark, &mut self.overlay);
        self.savepoints.truncate(idx);
        // The rollback restored older epochs' slots; none of this epoch may survive it
        // as "logged" (it would skip logging against the savepoint left newest).
        self.next_epoch();
        self.generation += 1;
        Ok(())
    }

    /// Forgets `savepoint` and those taken after it, keeping their writes: they now belong
    /// to the enclosing savepoint, or to the crank.
    ///
    /// # Errors
    /// [`CrankError::NotInCrank`], [`CrankError::NoSuchSavepoint`].
    pub fn release(&mut self, savepoint: Savepoint) -> Result<(), CrankError> {
        if !self.in_crank {
            return Err(CrankError::NotInCrank {
                operation: "releaseSavepoint",
            });
        }
        let idx = self.find_savepoint(savepoint)?;
        self.savepoints.truncate(idx);
        Ok(())
    }

    /// How many savepoints are open.
    pub fn open_savepoints(&self) -> usize {
        self.savepoints.len()
    }

    /// Ends the open crank without keeping any of its writes, as if it had never started
    /// (an aborted transaction). Bumps [`Store::generation`].
    ///
    /// # Errors
    /// [`CrankError::NotInCrank`] outside a crank.
    pub fn abort_crank(&mut self) -> Result<(), CrankError> {
        if !self.in_crank {
            return Err(CrankError::NotInCrank {
                operation: "abortCrank",
            });
        }
        self.undo.undo_to(0, &mut self.overlay);
        self.savepoints.clear();
        self.in_crank = false;
        self.generation += 1;
        Ok(())
    }
}
