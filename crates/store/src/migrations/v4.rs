//! Step 3 → 4 (issue 13): balanced object counts. Version 3 kept the reference kernel's
//! object accounting (spec §14.7): an object started at (1,1), its owner baseline, imports
//! added nothing while drops and retires of imports took away, so an object with two
//! importers could be dropped while one still used it, and an export its owner had been
//! told to retire was never deleted. Version 4 counts every holder exactly: each import
//! entry (`o-N`; reachable while flagged `R`), a vat's root export entry (`o+0`), every
//! queued message that names the object (target and slots, in the run queue and in promise
//! queues), every slot of a settled promise's value, and every pin. Nothing else.
//!
//! | version 3 | version 4 |
//! |---|---|
//! | `koN`'s counts: owner baseline + holders − drops and retires by importers, clamped at 0 | `koN`'s counts recounted from the holders above; the other bytes of the record stay |
//!
//! Because the old counts cannot be corrected by a difference (drops of imports that are
//! gone are not recorded anywhere), the step recounts from the tables. The key texts are
//! written out here rather than taken from `tables::keys`: a step stays what it was when its
//! version was current, whatever later layouts do.

use std::collections::BTreeMap;

use ocap_types::{KRef, Message, RunQueueItem};

use super::{Migration, MigrationTxn};
use crate::error::StoreError;
use crate::tables::{PromiseState, WaitingSend};

/// The step, for [`super::MIGRATIONS`].
pub(super) const STEP: Migration = Migration {
    from: 3,
    what: "object counts recounted: imports and roots counted, no owner baseline",
    run: recount_objects,
};

/// Reachable and recognizable units, by object key (`koN`).
#[derive(Default)]
struct Recount(BTreeMap<String, (u32, u32)>);

impl Recount {
    /// `times` holds on `kref` (counted only for an object), reachable ones or not.
    fn hold_n(&mut self, kref: KRef, reachable: bool, times: u32) {
        if let KRef::Object(_) = kref {
            let units = self.0.entry(kref.to_string()).or_default();
            if reachable {
                units.0 = units.0.saturating_add(times);
            }
            units.1 = units.1.saturating_add(times);
        }
    }

    fn hold(&mut self, kref: KRef, reachable: bool) {
        self.hold_n(kref, reachable, 1);
    }

    fn message(&mut self, message: &Message<KRef>) {
        if let Some(result) = message.result {
            self.hold(result, true);
        }
        for slot in &message.methargs.slots {
            self.hold(*slot, true);
        }
    }
}

fn recount_objects(txn: &mut MigrationTxn<'_>) -> Result<(), StoreError> {
    let mut recount = Recount::default();
    for (key, value) in txn.scan_prefix(b"")? {
        let Ok(text) = std::str::from_utf8(&key) else {
            continue;
        };
        let corrupt = |table, reason: &str| StoreError::corrupt(table, &key, reason);
        if let Some((_, kref)) = text.split_once(".c.") {
            // `<ep>.c.koN` = `R o-3`, `_ o-3` or `R o+0`.
            if !kref.starts_with("ko") {
                continue;
            }
            let kref: KRef = kref.parse().map_err(|_| corrupt("clist", "bad kref"))?;
            match value.as_slice() {
                [flag, b' ', b'o', b'-', ..] => recount.hold(kref, *flag == b'R'),
                b"R o+0" | b"_ o+0" => recount.hold(kref, true),
                _ => {}
            }
        } else if let Some(id) = text.strip_prefix("pin.ko") {
            let pins: u32 = std::str::from_utf8(&value)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(|| corrupt("pins", "bad pin"))?;
            let kref: KRef = format!("ko{id}")
                .parse()
                .map_err(|_| corrupt("pins", "bad kref"))?;
            recount.hold_n(kref, true, pins);
        } else if text.starts_with("kp") && !text.contains('.') {
            let state = PromiseState::decode(&value)
                .map_err(|e| StoreError::corrupt("promises", &key, e))?;
            if let PromiseState::Fulfilled(value) | PromiseState::Rejected(value) = state {
                for slot in value.slots {
                    recount.hold(slot, true);
                }
            }
        } else if let Some(rest) = text.strip_prefix("queue.") {
            let Some((name, index)) = rest.rsplit_once('.') else {
                continue;
            };
            if index == "head" || index == "tail" {
                continue;
            }
            if name == "run" {
                let item: RunQueueItem = ocap_types::cbor::from_slice(&value)
                    .map_err(|e| StoreError::corrupt("run queue", &key, e))?;
                if let RunQueueItem::Send {
                    target, message, ..
                } = item
                {
                    recount.hold(target, true);
                    recount.message(&message);
                }
            } else {
                let waiting = WaitingSend::decode(&value)
                    .map_err(|e| StoreError::corrupt("promise queue", &key, e))?;
                recount.message(&waiting.message);
            }
        }
    }
    for (key, record) in txn.scan_prefix(b"ko")? {
        // The record: owner, then reachable and recognizable as little-endian u32s at a
        // place that depends on the owner's encoding; rewrite it through its decoder.
        let Ok(text) = std::str::from_utf8(&key) else {
            return Err(StoreError::corrupt("objects", &key, "key is not UTF-8"));
        };
        let (reachable, recognizable) = recount.0.get(text).copied().unwrap_or_default();
        let rewritten = crate::tables::recount_object_record(&record, reachable, recognizable)
            .map_err(|e| StoreError::corrupt("objects", &key, e))?;
        txn.set(&key, &rewritten)?;
    }
    Ok(())
}
