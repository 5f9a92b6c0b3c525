//! Step 5 → 6 (issue 12 item 4): the crank hash. Every crank chains the BLAKE3 digest of
//! its writes onto a head kept at `crankHash` (32 bytes), written in the crank's own
//! transaction (docs/store.md "Crank hash"). A store of version 5 has no head; the step
//! writes the chain's start, 32 zero bytes, so the chain of a migrated store starts where a
//! new store's does. The version bump also keeps a version-5 build, which would commit
//! cranks without extending the chain, from opening a store that has one.
//!
//! | version 5 | version 6 |
//! |---|---|
//! | no head | `crankHash` = 32 zero bytes, then each crank's link |
//!
//! The key text is written out here rather than taken from `tables::keys`: a step stays
//! what it was when its version was current, whatever later layouts do.

use super::{Migration, MigrationTxn};
use crate::error::StoreError;

/// The step, for [`super::MIGRATIONS`].
pub(super) const STEP: Migration = Migration {
    from: 5,
    what: "crank hash: crankHash, the chain's head, starts at 32 zero bytes",
    run: start_crank_hash,
};

fn start_crank_hash(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    if txn.get(b"crankHash")?.is_none() {
        txn.set(b"crankHash", &[0; 32])?;
    }
    Ok(())
}
