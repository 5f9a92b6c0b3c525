//! The store's layout versions and the migrations between them: stores outlive versions.
//!
//! Every change to the layout of the kernel's keys (a record's encoding, a new table, a
//! renamed key) bumps [`SCHEMA_VERSION`] and appends a step to [`MIGRATIONS`] that rewrites
//! a store of the previous version. The one exception is a key derived lazily from others
//! (a vat store's byte count, `<vat>.vsu`): code that finds it absent computes it, so a
//! store without it is still a store of the same version.
//!
//! Invariants: the steps form a chain `from N to N + 1` ending at [`SCHEMA_VERSION`]
//! (`Schema::steps_from` finds no path otherwise, and a unit test checks [`CURRENT`]);
//! every step pending for one open runs in one transaction together with the bump of the
//! schema version, so a store is at its old version with its old contents or at the new
//! one with every step applied; a step that fails leaves the store's files as they were
//! (`kv::migrate` runs the steps against a read-only view first, and writes only once all
//! of them succeeded); a step sees the writes of the steps before it.

#[cfg(test)]
mod tests;
mod v2;
mod v3;
mod v4;
mod v5;
mod v6;
mod v7;
mod v8;

use crate::error::{OpenError, StoreError};
pub(crate) use crate::kv::MigrationTxn;

/// The schema version this build writes, and migrates older stores to. A layout change
/// bumps it and appends the step from the previous version to `MIGRATIONS`.
pub const SCHEMA_VERSION: u32 = 8;

/// What a step does: rewrites the keys of a store of its `from` version, seeing the
/// store's keys (the kernel's keyspace; the store's own reserved keys stay out of reach)
/// through `txn`, which collects its writes. An error abandons the whole open.
pub(crate) type MigrateFn = fn(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError>;

/// One step of the layout: turns a store of version `from` into one of `from + 1`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Migration {
    /// The version this step reads; it writes `from + 1`.
    pub(crate) from: u32,
    /// What changes, in a few words (logged when the step runs).
    pub(crate) what: &'static str,
    /// The rewrite.
    pub(crate) run: MigrateFn,
}

/// A schema version and the steps that lead to it from older versions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Schema<'a> {
    /// The version a store is at once opened, and that a new store is created at.
    pub(crate) version: u32,
    /// The steps, oldest first.
    pub(crate) migrations: &'a [Migration],
}

/// Every layout change since version 1, oldest first. Version 1 is the first layout
/// (the commit 46665b6 and everything before it; `tests/fixtures/store-v1`).
///
/// - 1 → 2 (`v2.rs`): the GC action set, reap queue and pins as keys, not text blobs.
/// - 2 → 3 (`v3.rs`): promise imports counted; settled promises pinned instead of held by
///   their resolution (settled promises are collected).
/// - 3 → 4 (`v4.rs`): object counts recounted: every import and a vat's root export
///   entry hold the object; no owner baseline.
/// - 4 → 5 (`v5.rs`): the importer index, `imp.<ko>.<ep>` for every object import.
/// - 5 → 6 (`v6.rs`): the crank hash chain's head, `crankHash`.
/// - 6 → 7 (`v7.rs`): vats' worker kinds out of the hashed records, into `local.worker.*`.
/// - 7 → 8 (`v8.rs`): a promise's refcount in its record `kpN`; no more `kpN.rc`.
pub(crate) const MIGRATIONS: &[Migration] = &[
    v2::STEP,
    v3::STEP,
    v4::STEP,
    v5::STEP,
    v6::STEP,
    v7::STEP,
    v8::STEP,
];

/// This build's schema: what `Store::open` migrates every store to.
pub(crate) const CURRENT: Schema<'static> = Schema {
    version: SCHEMA_VERSION,
    migrations: MIGRATIONS,
};

impl Schema<'_> {
    /// The steps that take a store of version `found` to [`Schema::version`], in order
    /// (none when it is there already), or `None` if there is no such path: a newer
    /// version, or an older one the table does not start from.
    pub(crate) fn steps_from(&self, found: u32) -> Option<&[Migration]> {
        if found > self.version {
            return None;
        }
        if found == self.version {
            return Some(&[]);
        }
        let start = self.migrations.iter().position(|m| m.from == found)?;
        let steps = &self.migrations[start..];
        let chained = steps
            .iter()
            .zip(found..)
            .all(|(step, expected)| step.from == expected);
        let len = u32::try_from(steps.len()).ok()?;
        (chained && found.checked_add(len) == Some(self.version)).then_some(steps)
    }

    /// The error for a store of version `found` that this schema cannot open.
    pub(crate) fn unsupported(&self, found: impl Into<String>) -> OpenError {
        OpenError::SchemaVersion {
            found: found.into(),
            expected: self.version,
        }
    }
}
