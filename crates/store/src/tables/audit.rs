//! The refcount audit ([`KernelStore::check`]): recounts every object's and promise's
//! references from the tables that hold them and compares the result with the stored
//! counts. Read-only; the library half of `ocap check`.
//!
//! # What is counted (spec §14.2, as this kernel implements it)
//!
//! Every unit below adds one to a promise's count, or one to an object's recognizable
//! count and, unless it says otherwise, one to its reachable count:
//!
//! - **A promise's own hold**: the decider baseline while it is unresolved, released when
//!   it settles. (The reference kernel's never-released resolution hold, `resolve|kpid`, is
//!   gone: settled promises are collected; a host's results are pinned instead.) The
//!   decider baseline of an unresolved promise is released early in one case: the cleanup
//!   of a terminated vat that still decides it (spec §12.5.5), after which that vat has no
//!   c-list entry for it and no vat record.
//! - **Every c-list entry of a promise**, import (`p-N`) or export (`p+N`). A vat's entry
//!   is retired when it resolves the promise or is notified of its settlement.
//! - **Every import of an object** (`o-N`); it counts towards the reachable count only
//!   while flagged reachable (until its vat drops it).
//! - **A vat's root export** (`o+0`): the root stays while its vat does.
//! - **The run queue**: a send's target, result and every slot; a notify's promise.
//! - **A promise's message queue**: each waiting message holds the promise itself (its
//!   target; a message parked through a chain of promises had its target hold moved to
//!   the promise it waits on), its result and every slot.
//! - **A settled promise's value**: every slot.
//! - **Pins**: one unit per occurrence (a kernel service's object is pinned; the name it is
//!   kept under counts nothing).
//!
//! Not counted: an object's other **export entries** (`o+N`): an object its importers,
//! queues, values and pins all let go of is dropped and retired, whatever its owner does
//! with it. Nothing in memory holds a reference between cranks: the crank buffer is empty
//! and the maybe-free set holds no counts; host subscriptions and handles hold nothing
//! either. (The reference kernel counts no imports and gives each object an owner baseline
//! instead, spec §14.7; version 4 of the store's schema left that behind.)
//!
//! # What is reported
//!
//! - **Every count must match its recount exactly.** Below it (a deficit), an object can
//!   be collected, or its owner told to drop it, while a queue, a value or an import still
//!   names it; a promise can be deleted with its queue and value. Above it (a leak), it is
//!   never collected. The kernel takes no hold it does not release (requeued messages keep
//!   their holds instead of taking new ones, spec §8.6; a notify releases its hold on every
//!   path, §9; a delivered send releases its original target, §8.4), and clamping at zero
//!   (spec §4.2) only ever raises a count that had gone below zero.
//! - **Dangling references**: a c-list entry, a queued message, a value, a pin or a kernel
//!   service naming a kref with no record. One kind is accepted: an *import* of a deleted
//!   *object* (`o-N`). An object deleted while still recognizable (its owner retired or
//!   abandoned it, or is gone, and nothing reaches it) has its importers told to retire it
//!   (spec §14.4); until that `retireImports` is delivered, the import names no record.
//!   (A host message to an unknown kref is dangling too, until its crank splats it.)
//! - **Inconsistencies**: the two directions of a c-list disagreeing, an owned object its
//!   owner does not export or an export its endpoint does not own, reachable above
//!   recognizable, broken or leftover queues, an unpinned kernel service, and an
//!   endpoint's queued-message count (`<ep>.qm`, what its `queuedMessages` limit bounds)
//!   that differs from the messages it sent that still wait in the queues; and an unresolved promise whose decider is an
//!   endpoint that is not a live vat (termination rejects every promise a vat decides).
//!
//! Run it between cranks: inside a crank the maybe-free set and the crank buffer hold work
//! the tables do not show yet.

mod queues;
mod report;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

use ocap_types::{EndpointId, KObjectId, KPromiseId, KRef, VRef, VatId};

pub use report::{
    CheckReport, DanglingRef, Holder, Inconsistency, MessagePart, QueueProblem, RefcountMismatch,
    StoredCount,
};

use super::promises::Facts;
use super::{KernelStore, ObjectRecord, Owner, PromiseRecord, PromiseState, RefCounts, keys};
use crate::error::StoreError;

/// The run queue's name; the queue crate owns it (`ocap_queue`'s `RUN_QUEUE`), and a queue
/// of another name is reported as unknown, so a rename cannot go unnoticed.
const RUN_QUEUE: &str = "run";

/// One endpoint's c-list, kref side: kref → (vref, reachable).
type CListByKref = BTreeMap<KRef, (VRef, bool)>;

impl KernelStore {
    /// Recounts every object's and promise's references and compares them with the stored
    /// counts; also reports dangling references and tables that disagree. An empty report
    /// means the store is consistent. Changes nothing. The rules are in the module docs of
    /// `tables/audit.rs`: in short, every count must match its recount exactly.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a record, c-list entry or queue item that does not
    /// decode; [`StoreError::Backend`] if LMDB fails.
    ///
    /// # Examples
    /// ```
    /// use ocap_store::{KernelStore, Owner, Store};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let mut store = KernelStore::new(Store::open(dir.path())?);
    /// store.start_crank()?;
    /// let object = store.create_object(Owner::Kernel)?;
    /// store.pin_object(object)?;
    /// assert!(store.check()?.is_empty());
    /// store.decref(object.into())?;
    /// assert_eq!(
    ///     store.check()?.to_string(),
    ///     "ko1: stored 0,0, recounted 1,1 (too low); held by: pin"
    /// );
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self) -> Result<CheckReport, StoreError> {
        let mut audit = Audit::new(self)?;
        let objects = audit.objects()?;
        let promises = audit.promises()?;
        audit.clists(&objects)?;
        audit.promise_holders(&promises)?;
        audit.importer_index()?;
        audit.owners(&objects);
        audit.promise_holds(&promises);
        audit.queues(&promises)?;
        audit.queued_counts()?;
        audit.pins_and_services()?;
        Ok(audit.compare(&objects, &promises))
    }
}

/// What the store has for a kref.
enum Found {
    /// Its stored counts.
    Counts(StoredCount),
    /// No record: whatever names it is dangling.
    Missing,
}

struct Audit<'s> {
    store: &'s KernelStore,
    holders: BTreeMap<KRef, Vec<Holder>>,
    clists: BTreeMap<EndpointId, CListByKref>,
    live_vats: BTreeSet<VatId>,
    /// Messages waiting in the queues, recounted per sender.
    queued: BTreeMap<EndpointId, u64>,
    report: CheckReport,
}

impl<'s> Audit<'s> {
    fn new(store: &'s KernelStore) -> Result<Self, StoreError> {
        Ok(Audit {
            store,
            holders: BTreeMap::new(),
            clists: BTreeMap::new(),
            live_vats: store.vat_ids()?.into_iter().collect(),
            queued: BTreeMap::new(),
            report: CheckReport::default(),
        })
    }

    fn hold(&mut self, kref: KRef, holder: Holder) {
        self.holders.entry(kref).or_default().push(holder);
    }

    /// Every object record.
    fn objects(&mut self) -> Result<BTreeMap<KObjectId, ObjectRecord>, StoreError> {
        let mut objects = BTreeMap::new();
        for (key, _) in self.store.kv.scan_prefix(b"ko")? {
            let id: KObjectId = parse_key(&key, "objects")?;
            if let Some(record) = self.store.object(id)? {
                objects.insert(id, record);
            }
        }
        Ok(objects)
    }

    /// Every promise record (its refcount is inside it, schema 8).
    fn promises(&mut self) -> Result<BTreeMap<KPromiseId, PromiseRecord>, StoreError> {
        let mut promises = BTreeMap::new();
        for (key, _) in self.store.kv.scan_prefix(b"kp")? {
            let id: KPromiseId = parse_key(&key, "promises")?;
            if let Some(record) = self.store.promise(id)? {
                promises.insert(id, record);
            }
        }
        Ok(promises)
    }

    /// Every endpoint that has keys under `<ep>.`: walks the first segments of the keys
    /// starting with `v` or `r`, skipping over each endpoint's keys (its vat store may be
    /// large) with one seek.
    fn endpoints(&self) -> Result<BTreeSet<EndpointId>, StoreError> {
        let mut endpoints = BTreeSet::new();
        for prefix in [&b"v"[..], b"r"] {
            let mut from = prefix.to_vec();
            let mut inclusive = true;
            while let Some((key, _)) = self.store.kv.next_entry(prefix, &from, inclusive)? {
                let Some(dot) = key.iter().position(|b| *b == b'.') else {
                    from = key;
                    inclusive = false;
                    continue;
                };
                let segment = &key[..dot];
                if let Some(ep) = std::str::from_utf8(segment)
                    .ok()
                    .and_then(|s| s.parse().ok())
                {
                    endpoints.insert(ep);
                }
                // `/` is the byte after `.`: the first key past every `<segment>.` key.
                from = segment.to_vec();
                from.push(b'/');
                inclusive = true;
            }
        }
        Ok(endpoints)
    }

    /// Every promise whose record says which c-lists can hold it (`promises.rs`, module
    /// doc) against the c-lists read by [`Audit::clists`]: importing it skips the c-list
    /// lookup on that word, so a wrong record would give a vat a second entry for it.
    fn promise_holders(
        &mut self,
        promises: &BTreeMap<KPromiseId, PromiseRecord>,
    ) -> Result<(), StoreError> {
        for id in promises.keys() {
            let facts = self.store.promise_facts(*id)?;
            for (ep, by_kref) in &self.clists {
                if by_kref.contains_key(&KRef::Promise(*id)) && !facts.may_be_held_by(*ep) {
                    let recorded = match facts {
                        Facts::HeldBy(holder) => Some(holder),
                        _ => None,
                    };
                    self.report
                        .inconsistencies
                        .push(Inconsistency::PromiseHolder {
                            promise: *id,
                            recorded,
                            holder: *ep,
                        });
                }
            }
        }
        Ok(())
    }

    /// Reads every c-list both ways: its kref side holds (the side that carries the
    /// reachable flag, as the kernel reads it), the two sides must agree, and an object
    /// export must be its endpoint's.
    fn clists(&mut self, objects: &BTreeMap<KObjectId, ObjectRecord>) -> Result<(), StoreError> {
        for ep in self.endpoints()? {
            let prefix = keys::clist_prefix(ep);
            let mut by_vref = BTreeMap::new();
            let mut by_kref = BTreeMap::new();
            for (key, value) in self.store.kv.scan_prefix(&prefix)? {
                let suffix = std::str::from_utf8(&key[prefix.len()..])
                    .map_err(|_| StoreError::corrupt("clist", &key, "key is not UTF-8"))?;
                if suffix.starts_with('k') {
                    let kref: KRef = parse_key(suffix.as_bytes(), "clist")?;
                    let entry = self
                        .store
                        .clist_entry(ep, kref)?
                        .ok_or_else(|| StoreError::corrupt("clist", &key, "entry vanished"))?;
                    by_kref.insert(kref, (entry.vref, entry.reachable));
                } else {
                    let vref: VRef = parse_key(suffix.as_bytes(), "clist")?;
                    let kref: KRef = parse_key(&value, "clist")?;
                    by_vref.insert(vref, kref);
                }
            }
            for (vref, kref) in &by_vref {
                let back = by_kref.get(kref).map(|(v, _)| *v);
                if back != Some(*vref) {
                    self.report
                        .inconsistencies
                        .push(Inconsistency::CListForward {
                            endpoint: ep,
                            vref: *vref,
                            kref: *kref,
                            back,
                        });
                }
            }
            for (kref, (vref, reachable)) in &by_kref {
                let back = by_vref.get(vref).copied();
                if back != Some(*kref) {
                    self.report
                        .inconsistencies
                        .push(Inconsistency::CListBackward {
                            endpoint: ep,
                            kref: *kref,
                            vref: *vref,
                            back,
                        });
                }
                self.hold(
                    *kref,
                    Holder::CList {
                        endpoint: ep,
                        vref: *vref,
                        reachable: *reachable,
                    },
                );
                if let (KRef::Object(object), true) = (kref, vref.is_export())
                    && let Some(record) = objects.get(object)
                    && record.owner != Some(Owner::Endpoint(ep))
                {
                    self.report
                        .inconsistencies
                        .push(Inconsistency::ExportedNotOwned {
                            endpoint: ep,
                            vref: *vref,
                            object: *object,
                            owner: record.owner,
                        });
                }
            }
            self.clists.insert(ep, by_kref);
        }
        Ok(())
    }

    /// The importer index must list exactly the endpoints whose c-lists import each object.
    fn importer_index(&mut self) -> Result<(), StoreError> {
        let mut indexed = BTreeSet::new();
        let prefix = keys::IMPORTER_PREFIX;
        for (key, _) in self.store.kv.scan_prefix(prefix)? {
            let parsed = std::str::from_utf8(&key[prefix.len()..])
                .ok()
                .and_then(|text| text.split_once('.'))
                .and_then(|(object, ep)| Some((object.parse().ok()?, ep.parse().ok()?)));
            let (object, endpoint): (KObjectId, EndpointId) =
                parsed.ok_or_else(|| StoreError::corrupt("importers", &key, "bad key"))?;
            indexed.insert((object, endpoint));
        }
        let mut imported = BTreeSet::new();
        for (endpoint, clist) in &self.clists {
            for (kref, (vref, _)) in clist {
                if let (KRef::Object(object), false) = (kref, vref.is_export()) {
                    imported.insert((*object, *endpoint));
                }
            }
        }
        for (object, endpoint) in indexed.symmetric_difference(&imported) {
            self.report
                .inconsistencies
                .push(Inconsistency::ImporterIndex {
                    object: *object,
                    endpoint: *endpoint,
                    indexed: indexed.contains(&(*object, *endpoint)),
                });
        }
        Ok(())
    }

    /// An object owned by an endpoint must be in that endpoint's c-list as an export.
    fn owners(&mut self, objects: &BTreeMap<KObjectId, ObjectRecord>) {
        for (id, record) in objects {
            let Some(Owner::Endpoint(owner)) = record.owner else {
                continue;
            };
            let exported = self
                .clists
                .get(&owner)
                .and_then(|clist| clist.get(&KRef::Object(*id)))
                .is_some_and(|(vref, _)| vref.is_export());
            if !exported {
                self.report
                    .inconsistencies
                    .push(Inconsistency::OwnedNotExported { object: *id, owner });
            }
        }
    }

    /// A promise's own hold, and the holds of a settled promise's value. An unresolved
    /// promise's decider must be a live vat, the kernel, or nobody: terminating a vat
    /// rejects every promise it decides, in the same crank.
    fn promise_holds(&mut self, promises: &BTreeMap<KPromiseId, PromiseRecord>) {
        for (id, record) in promises {
            let kref = KRef::Promise(*id);
            if let PromiseState::Unresolved {
                decider: Some(Owner::Endpoint(ep)),
                ..
            } = &record.state
                && !self.is_live(*ep)
            {
                self.report
                    .inconsistencies
                    .push(Inconsistency::DeadDecider {
                        promise: *id,
                        decider: *ep,
                    });
            }
            match &record.state {
                PromiseState::Unresolved { decider, .. }
                    if !self.decider_released(*id, *decider) =>
                {
                    self.hold(kref, Holder::Decider);
                }
                PromiseState::Fulfilled(value) | PromiseState::Rejected(value) => {
                    for slot in &value.slots {
                        self.hold(*slot, Holder::Value { promise: *id });
                    }
                }
                // A decider baseline cleanup released.
                PromiseState::Unresolved { .. } => {}
            }
        }
    }

    /// True when the cleanup of a terminated vat released the decider baseline of an
    /// unresolved promise that vat still decided: the vat is gone (no record, not waiting
    /// for cleanup) and its c-list no longer has the promise.
    fn decider_released(&self, id: KPromiseId, decider: Option<Owner>) -> bool {
        let Some(Owner::Endpoint(ep)) = decider else {
            return false;
        };
        let live = self.is_live(ep);
        let listed = self
            .clists
            .get(&ep)
            .is_some_and(|clist| clist.contains_key(&KRef::Promise(id)));
        !live && !listed
    }

    /// True for a vat with a record (remotes do not exist yet).
    fn is_live(&self, ep: EndpointId) -> bool {
        matches!(ep, EndpointId::Vat(vat) if self.live_vats.contains(&vat))
    }

    fn pins_and_services(&mut self) -> Result<(), StoreError> {
        let pinned = self.store.pinned_objects()?;
        for object in &pinned {
            self.hold(KRef::Object(*object), Holder::Pin);
        }
        for promise in self.store.pinned_promises()? {
            self.hold(KRef::Promise(promise), Holder::Pin);
        }
        const PREFIX: &[u8] = b"kernelService.";
        for (key, value) in self.store.kv.scan_prefix(PREFIX)? {
            let name = String::from_utf8_lossy(&key[PREFIX.len()..]).into_owned();
            let object: KObjectId = parse_key(&value, "kernelServices")?;
            if !pinned.contains(&object) {
                self.report
                    .inconsistencies
                    .push(Inconsistency::UnpinnedService {
                        name: name.clone(),
                        object,
                    });
            }
            self.hold(KRef::Object(object), Holder::KernelService { name });
        }
        Ok(())
    }

    /// Compares each record's stored counts with its holders, and reports holders of krefs
    /// without a record.
    fn compare(
        mut self,
        objects: &BTreeMap<KObjectId, ObjectRecord>,
        promises: &BTreeMap<KPromiseId, PromiseRecord>,
    ) -> CheckReport {
        let mut krefs: BTreeSet<KRef> = self.holders.keys().copied().collect();
        krefs.extend(objects.keys().map(|id| KRef::Object(*id)));
        krefs.extend(promises.keys().map(|id| KRef::Promise(*id)));
        for kref in krefs {
            let holders = self.holders.remove(&kref).unwrap_or_default();
            let count = |counts: fn(&Holder, KRef) -> bool| {
                let n = holders.iter().filter(|h| counts(h, kref)).count();
                u32::try_from(n).unwrap_or(u32::MAX)
            };
            let found = match kref {
                KRef::Object(id) => objects
                    .get(&id)
                    .map_or(Found::Missing, |record| self.object_counts(id, record)),
                KRef::Promise(id) => promises.get(&id).map_or(Found::Missing, |record| {
                    Found::Counts(StoredCount::Promise(record.refcount))
                }),
            };
            let stored = match found {
                Found::Counts(stored) => stored,
                Found::Missing => {
                    self.dangling(kref, holders);
                    continue;
                }
            };
            let recounted = match stored {
                StoredCount::Object(_) => StoredCount::Object(RefCounts {
                    reachable: count(Holder::reaches),
                    recognizable: count(Holder::counts_for),
                }),
                StoredCount::Promise(_) => StoredCount::Promise(count(Holder::counts_for)),
            };
            if stored != recounted {
                self.report.mismatches.push(RefcountMismatch {
                    kref,
                    stored,
                    recounted,
                    holders,
                });
            }
        }
        self.report
    }

    /// An object's stored counts.
    fn object_counts(&mut self, id: KObjectId, record: &ObjectRecord) -> Found {
        if record.counts.reachable > record.counts.recognizable {
            self.report
                .inconsistencies
                .push(Inconsistency::ReachableAboveRecognizable {
                    object: id,
                    counts: record.counts,
                });
        }
        Found::Counts(StoredCount::Object(record.counts))
    }

    fn dangling(&mut self, kref: KRef, holders: Vec<Holder>) {
        for holder in holders {
            // An import of a deleted object waits for its `retireImports` (module docs).
            if let (KRef::Object(_), Holder::CList { vref, .. }) = (kref, &holder)
                && !vref.is_export()
            {
                continue;
            }
            self.report.dangling.push(DanglingRef { kref, holder });
        }
    }
}

/// Parses a key (or a value naming a ref) as `T`, or reports it corrupt in `table`.
fn parse_key<T: std::str::FromStr>(bytes: &[u8], table: &'static str) -> Result<T, StoreError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| StoreError::corrupt(table, bytes, "does not parse"))
}
