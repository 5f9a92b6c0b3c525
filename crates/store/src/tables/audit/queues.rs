//! The audit's queue pass: the holds of the run queue's sends and notifies and of every
//! message waiting in a promise's queue, and queues that are broken or left behind.

use std::collections::{BTreeMap, BTreeSet};

use ocap_types::{EndpointId, KPromiseId, KRef, Message, RunQueueItem};

use super::{Audit, Holder, Inconsistency, MessagePart, QueueProblem, RUN_QUEUE};
use crate::error::StoreError;
use crate::tables::{PromiseRecord, PromiseState, WaitingSend, keys};

impl Audit<'_> {
    /// The run queue's and every promise queue's holds.
    pub(super) fn queues(
        &mut self,
        promises: &BTreeMap<KPromiseId, PromiseRecord>,
    ) -> Result<(), StoreError> {
        let mut entries: BTreeMap<String, BTreeMap<u64, Vec<u8>>> = BTreeMap::new();
        const PREFIX: &[u8] = b"queue.";
        for (key, value) in self.store.kv.scan_prefix(PREFIX)? {
            let rest = std::str::from_utf8(&key[PREFIX.len()..])
                .map_err(|_| StoreError::corrupt("queues", &key, "key is not UTF-8"))?;
            let (name, suffix) = rest
                .rsplit_once('.')
                .ok_or_else(|| StoreError::corrupt("queues", &key, "no queue name"))?;
            let queue = entries.entry(name.to_owned()).or_default();
            if suffix == "head" || suffix == "tail" {
                continue;
            }
            let index = suffix
                .parse()
                .map_err(|_| StoreError::corrupt("queues", &key, "bad entry index"))?;
            queue.insert(index, value);
        }
        for (name, items) in entries {
            let waiting = self.queue_entries(&name, items)?;
            if name == RUN_QUEUE {
                for (index, bytes) in waiting {
                    let item: RunQueueItem = ocap_types::cbor::from_slice(&bytes).map_err(|e| {
                        StoreError::corrupt("run queue", &keys::queue_entry(&name, index), e)
                    })?;
                    self.run_queue_item(index, &item);
                }
                continue;
            }
            let Ok(promise) = name.parse::<KPromiseId>() else {
                self.queue_problem(&name, QueueProblem::Unknown);
                continue;
            };
            if let Some(PromiseRecord {
                state: PromiseState::Fulfilled(_) | PromiseState::Rejected(_),
                ..
            }) = promises.get(&promise)
            {
                self.queue_problem(&name, QueueProblem::SettledPromise);
            } else if self.store.promise_facts(promise)?.queueless() {
                self.queue_problem(&name, QueueProblem::QueuelessPromise);
            }
            for (index, bytes) in waiting {
                let WaitingSend { message, sender } = WaitingSend::decode(&bytes).map_err(|e| {
                    StoreError::corrupt("promise queue", &keys::queue_entry(&name, index), e)
                })?;
                self.sent_by(sender);
                let part = |part| Holder::PromiseQueue {
                    promise,
                    index,
                    part,
                };
                self.hold(KRef::Promise(promise), part(MessagePart::Target));
                self.message(&message, part);
            }
        }
        Ok(())
    }

    /// The entries of queue `name` inside its bounds, in order; what is outside them, or
    /// missing inside them, is reported.
    fn queue_entries(
        &mut self,
        name: &str,
        mut items: BTreeMap<u64, Vec<u8>>,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let Some(bounds) = self.store.queue_bounds(name)? else {
            if !items.is_empty() {
                self.queue_problem(name, QueueProblem::NoBounds);
            }
            return Ok(Vec::new());
        };
        let mut waiting = Vec::new();
        let mut missing = false;
        for index in bounds.tail..bounds.head {
            match items.remove(&index) {
                Some(bytes) => waiting.push((index, bytes)),
                None => missing = true,
            }
        }
        if missing {
            self.queue_problem(name, QueueProblem::MissingEntry);
        }
        if !items.is_empty() {
            self.queue_problem(name, QueueProblem::EntryOutsideBounds);
        }
        Ok(waiting)
    }

    fn queue_problem(&mut self, name: &str, problem: QueueProblem) {
        self.report.inconsistencies.push(Inconsistency::Queue {
            name: name.to_owned(),
            problem,
        });
    }

    fn run_queue_item(&mut self, index: u64, item: &RunQueueItem) {
        match item {
            RunQueueItem::Send {
                target,
                message,
                sender,
            } => {
                self.sent_by(*sender);
                let part = |part| Holder::RunQueue { index, part };
                self.hold(*target, part(MessagePart::Target));
                self.message(message, part);
            }
            RunQueueItem::Notify { endpoint, promise } => {
                let holder = Holder::Notify {
                    index,
                    endpoint: *endpoint,
                };
                self.hold(KRef::Promise(*promise), holder);
            }
            // GC items and reaps name objects and endpoints without holding them.
            _ => {}
        }
    }

    /// One queued message more for `sender`'s count.
    fn sent_by(&mut self, sender: Option<EndpointId>) {
        if let Some(sender) = sender {
            *self.queued.entry(sender).or_default() += 1;
        }
    }

    /// Every endpoint's queued-message count against the messages recounted for it. A
    /// count that is stored must match; a live vat without one must have none queued. An
    /// endpoint cleaned up after termination has no count left, while messages it sent may
    /// still wait: nothing counts them any more.
    pub(super) fn queued_counts(&mut self) -> Result<(), StoreError> {
        let endpoints: BTreeSet<EndpointId> = self
            .live_vats
            .iter()
            .map(|vat| EndpointId::Vat(*vat))
            .chain(self.queued.keys().copied())
            .collect();
        for endpoint in endpoints {
            let stored = self.store.read_u64(&keys::queued_count(endpoint))?;
            let live = endpoint
                .as_vat()
                .is_some_and(|v| self.live_vats.contains(&v));
            let recounted = self.queued.get(&endpoint).copied().unwrap_or(0);
            let stored = match stored {
                Some(stored) => stored,
                None if live => 0,
                None => continue,
            };
            if stored != recounted {
                self.report
                    .inconsistencies
                    .push(Inconsistency::QueuedCount {
                        endpoint,
                        stored,
                        recounted,
                    });
            }
        }
        Ok(())
    }

    /// The result and slot holds of a queued message.
    fn message(&mut self, message: &Message<KRef>, part: impl Fn(MessagePart) -> Holder) {
        if let Some(result) = message.result {
            self.hold(result, part(MessagePart::Result));
        }
        for slot in &message.methargs.slots {
            self.hold(*slot, part(MessagePart::Slot));
        }
    }
}
