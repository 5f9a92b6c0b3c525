//! What [`KernelStore::check`](crate::KernelStore::check) reports: refcount mismatches,
//! dangling references and structural inconsistencies, each printable for an operator (krefs,
//! vrefs and endpoint ids included: this is a diagnostic, never a rejection text).

use std::fmt;

use ocap_types::{EndpointId, KObjectId, KPromiseId, KRef, VRef};

use crate::tables::{KernelStore, Owner, RefCounts};

/// Everything [`KernelStore::check`](crate::KernelStore::check) found; empty when the
/// stored counts agree with the references and every reference names a record.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Stored counts outside what the references allow, by kref.
    pub mismatches: Vec<RefcountMismatch>,
    /// References to krefs that have no record, by kref.
    pub dangling: Vec<DanglingRef>,
    /// Tables that disagree with each other, in the order they were found.
    pub inconsistencies: Vec<Inconsistency>,
}

impl CheckReport {
    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.mismatches.is_empty() && self.dangling.is_empty() && self.inconsistencies.is_empty()
    }

    /// The mismatches whose stored count is below the references (a use-after-free in
    /// waiting), as opposed to above them (a leak).
    pub fn deficits(&self) -> impl Iterator<Item = &RefcountMismatch> {
        self.mismatches.iter().filter(|m| m.is_deficit())
    }
}

impl fmt::Display for CheckReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("consistent: every count matches its references");
        }
        let mut lines = Vec::new();
        lines.extend(self.mismatches.iter().map(ToString::to_string));
        lines.extend(self.dangling.iter().map(ToString::to_string));
        lines.extend(self.inconsistencies.iter().map(ToString::to_string));
        f.write_str(&lines.join("\n"))
    }
}

/// A stored count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredCount {
    /// An object's reachable and recognizable counts.
    Object(RefCounts),
    /// A promise's single count.
    Promise(u32),
}

impl fmt::Display for StoredCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoredCount::Object(counts) => {
                write!(f, "{},{}", counts.reachable, counts.recognizable)
            }
            StoredCount::Promise(count) => write!(f, "{count}"),
        }
    }
}

/// A kref whose stored count differs from the units its holders account for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefcountMismatch {
    /// The object or promise.
    pub kref: KRef,
    /// Its counts as stored.
    pub stored: StoredCount,
    /// The counts its holders account for: an object's reachable count gets one per holder
    /// that can reach it, its recognizable count one per holder.
    pub recounted: StoredCount,
    /// Everything that refers to it, counted or not, in the order found.
    pub holders: Vec<Holder>,
}

impl RefcountMismatch {
    /// True when a stored count is below its recount: the kref can be collected, or its
    /// owner told to drop it, while something still names it.
    pub fn is_deficit(&self) -> bool {
        match (self.stored, self.recounted) {
            (StoredCount::Object(stored), StoredCount::Object(recounted)) => {
                stored.reachable < recounted.reachable
                    || stored.recognizable < recounted.recognizable
            }
            (StoredCount::Promise(stored), StoredCount::Promise(recounted)) => stored < recounted,
            _ => false,
        }
    }
}

impl fmt::Display for RefcountMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verdict = if self.is_deficit() {
            "too low"
        } else {
            "too high"
        };
        write!(
            f,
            "{}: stored {}, recounted {} ({verdict}); held by: ",
            self.kref, self.stored, self.recounted
        )?;
        if self.holders.is_empty() {
            return f.write_str("nothing");
        }
        let holders: Vec<String> = self.holders.iter().map(ToString::to_string).collect();
        f.write_str(&holders.join(", "))
    }
}

/// A reference to a kref that has no record (the object or promise was deleted, or never
/// existed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingRef {
    /// The missing object or promise.
    pub kref: KRef,
    /// Where the reference is.
    pub holder: Holder,
}

impl fmt::Display for DanglingRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: no record, but named by {}", self.kref, self.holder)
    }
}

/// Which part of a queued message names a kref.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessagePart {
    /// The send's target (for a promise's queue: the promise itself).
    Target,
    /// The result promise.
    Result,
    /// A slot of the arguments.
    Slot,
}

impl fmt::Display for MessagePart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MessagePart::Target => "target",
            MessagePart::Result => "result",
            MessagePart::Slot => "slot",
        })
    }
}

/// Something in the store that refers to a kref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// An unresolved promise's own hold, released when it settles.
    Decider,
    /// An endpoint's c-list entry. Counted for a promise (import or export), an object's
    /// import, and a vat's root export `o+0`; an object's other exports count nothing.
    CList {
        /// The endpoint.
        endpoint: EndpointId,
        /// Its ref for the kref.
        vref: VRef,
        /// The entry's reachable flag.
        reachable: bool,
    },
    /// Part of a send waiting in the run queue at position `index`.
    RunQueue {
        /// The queue entry's index.
        index: u64,
        /// Which part of the send.
        part: MessagePart,
    },
    /// A notify to `endpoint` waiting in the run queue at position `index`.
    Notify {
        /// The queue entry's index.
        index: u64,
        /// Who will be notified.
        endpoint: EndpointId,
    },
    /// Part of a message waiting in a promise's queue at position `index`.
    PromiseQueue {
        /// The promise whose queue holds the message.
        promise: KPromiseId,
        /// The queue entry's index.
        index: u64,
        /// Which part of the message.
        part: MessagePart,
    },
    /// A slot of a settled promise's value.
    Value {
        /// The settled promise.
        promise: KPromiseId,
    },
    /// One pin.
    Pin,
    /// The kref kept for a kernel service's name (not counted: the service's pin is).
    KernelService {
        /// The service's name.
        name: String,
    },
}

impl Holder {
    /// True if this holder accounts for one unit of `kref`'s count (an object's
    /// recognizable count).
    pub fn counts_for(&self, kref: KRef) -> bool {
        match self {
            Holder::CList { vref, .. } => KernelStore::entry_holds(kref, *vref),
            Holder::KernelService { .. } => false,
            _ => true,
        }
    }

    /// True if this holder accounts for one unit of an object's reachable count: every
    /// counted holder but an import whose vat dropped it.
    pub fn reaches(&self, kref: KRef) -> bool {
        let dropped =
            matches!(self, Holder::CList { vref, reachable: false, .. } if !vref.is_export());
        self.counts_for(kref) && !dropped
    }
}

impl fmt::Display for Holder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Holder::Decider => f.write_str("decider baseline"),
            Holder::CList {
                endpoint,
                vref,
                reachable,
            } => {
                let flag = if *reachable { "" } else { " (unreachable)" };
                write!(f, "{endpoint} c-list {vref}{flag}")
            }
            Holder::RunQueue { index, part } => write!(f, "run queue #{index} send {part}"),
            Holder::Notify { index, endpoint } => {
                write!(f, "run queue #{index} notify to {endpoint}")
            }
            Holder::PromiseQueue {
                promise,
                index,
                part,
            } => write!(f, "{promise} queue #{index} {part}"),
            Holder::Value { promise } => write!(f, "value of {promise}"),
            Holder::Pin => f.write_str("pin"),
            Holder::KernelService { name } => write!(f, "kernel service {name:?}"),
        }
    }
}

/// Tables that disagree with each other.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Inconsistency {
    /// `<ep>.c.<vref>` names `kref`, but `<ep>.c.<kref>` names `back` (`None`: absent).
    CListForward {
        /// The endpoint.
        endpoint: EndpointId,
        /// The vref side's key.
        vref: VRef,
        /// The kref it names.
        kref: KRef,
        /// What the kref side names instead.
        back: Option<VRef>,
    },
    /// `<ep>.c.<kref>` names `vref`, but `<ep>.c.<vref>` names `back` (`None`: absent).
    CListBackward {
        /// The endpoint.
        endpoint: EndpointId,
        /// The kref side's key.
        kref: KRef,
        /// The vref it names.
        vref: VRef,
        /// What the vref side names instead.
        back: Option<KRef>,
    },
    /// An object owned by an endpoint whose c-list does not export it.
    OwnedNotExported {
        /// The object.
        object: KObjectId,
        /// Its owner.
        owner: EndpointId,
    },
    /// An endpoint's c-list exports an object (`o+…`) that it does not own.
    ExportedNotOwned {
        /// The endpoint.
        endpoint: EndpointId,
        /// Its export ref.
        vref: VRef,
        /// The object.
        object: KObjectId,
        /// The object's owner (`None`: orphaned).
        owner: Option<Owner>,
    },
    /// An object stored with more reachable than recognizable holders.
    ReachableAboveRecognizable {
        /// The object.
        object: KObjectId,
        /// Its stored counts.
        counts: RefCounts,
    },
    /// A queue whose bounds or entries are broken, or that should not exist.
    Queue {
        /// The queue's name.
        name: String,
        /// What is wrong with it.
        problem: QueueProblem,
    },
    /// A kernel service's object that is not pinned (registration pins it; only
    /// unregistering, which also forgets the name, unpins it).
    UnpinnedService {
        /// The service's name.
        name: String,
        /// Its object.
        object: KObjectId,
    },
    /// An endpoint's stored queued-message count differs from the messages it sent that
    /// wait in the run queue and the promise queues.
    QueuedCount {
        /// The sender.
        endpoint: EndpointId,
        /// Its stored count.
        stored: u64,
        /// The messages found.
        recounted: u64,
    },
    /// An unresolved promise decided by an endpoint that is not a live vat: nobody can
    /// ever settle it (terminating a vat rejects the promises it decides).
    DeadDecider {
        /// The promise.
        promise: KPromiseId,
        /// Its decider.
        decider: EndpointId,
    },
    /// `holder`'s c-list holds `promise`, whose record says only `recorded`'s does (`None`:
    /// none does).
    PromiseHolder {
        /// The promise.
        promise: KPromiseId,
        /// The only holder its record allows, if any.
        recorded: Option<EndpointId>,
        /// The c-list that holds it anyway.
        holder: EndpointId,
    },
    /// The importer index (`imp.<ko>.<ep>`) disagrees with the c-lists: `endpoint` imports
    /// `object` without an index key (`indexed` false), or has an index key but no import.
    ImporterIndex {
        /// The object.
        object: KObjectId,
        /// The endpoint.
        endpoint: EndpointId,
        /// True for an index key without an import.
        indexed: bool,
    },
}

/// What is wrong with a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueProblem {
    /// Entries without head and tail.
    NoBounds,
    /// An entry outside `tail..head`.
    EntryOutsideBounds,
    /// A missing entry inside `tail..head`.
    MissingEntry,
    /// A settled promise still has a queue (settling drains and deletes it).
    SettledPromise,
    /// The queue of a promise whose record says no message ever waited on it: settling it
    /// would not look for the queue, and its messages would be stranded.
    QueuelessPromise,
    /// Neither the run queue nor a promise's queue.
    Unknown,
}

impl fmt::Display for QueueProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueueProblem::NoBounds => "has entries but no head or tail",
            QueueProblem::EntryOutsideBounds => "has an entry outside its bounds",
            QueueProblem::MissingEntry => "misses an entry inside its bounds",
            QueueProblem::SettledPromise => "belongs to a settled promise",
            QueueProblem::QueuelessPromise => {
                "belongs to a promise whose record says nothing ever waited on it"
            }
            QueueProblem::Unknown => "is neither the run queue nor a promise's queue",
        })
    }
}

impl fmt::Display for Inconsistency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let absent = |back: Option<String>| back.unwrap_or_else(|| "nothing".to_owned());
        match self {
            Inconsistency::CListForward {
                endpoint,
                vref,
                kref,
                back,
            } => write!(
                f,
                "{endpoint} c-list: {vref} names {kref}, but {kref} names {}",
                absent(back.map(|v| v.to_string()))
            ),
            Inconsistency::CListBackward {
                endpoint,
                kref,
                vref,
                back,
            } => write!(
                f,
                "{endpoint} c-list: {kref} names {vref}, but {vref} names {}",
                absent(back.map(|k| k.to_string()))
            ),
            Inconsistency::OwnedNotExported { object, owner } => {
                write!(
                    f,
                    "{object}: owned by {owner}, whose c-list does not export it"
                )
            }
            Inconsistency::ExportedNotOwned {
                endpoint,
                vref,
                object,
                owner,
            } => {
                let owner = owner.map_or_else(|| "nobody".to_owned(), |o| o.to_string());
                write!(
                    f,
                    "{object}: exported by {endpoint} as {vref}, but owned by {owner}"
                )
            }
            Inconsistency::ReachableAboveRecognizable { object, counts } => write!(
                f,
                "{object}: stored {},{}: reachable above recognizable",
                counts.reachable, counts.recognizable
            ),
            Inconsistency::Queue { name, problem } => write!(f, "queue {name:?} {problem}"),
            Inconsistency::UnpinnedService { name, object } => {
                write!(
                    f,
                    "{object}: the object of kernel service {name:?} is not pinned"
                )
            }
            Inconsistency::QueuedCount {
                endpoint,
                stored,
                recounted,
            } => write!(
                f,
                "{endpoint}: {stored} queued messages counted, {recounted} in the queues"
            ),
            Inconsistency::DeadDecider { promise, decider } => write!(
                f,
                "{promise}: unresolved, decided by {decider}, which is not a live vat"
            ),
            Inconsistency::ImporterIndex {
                object,
                endpoint,
                indexed,
            } => importer_index(f, *object, *endpoint, *indexed),
            Inconsistency::PromiseHolder {
                promise,
                recorded,
                holder,
            } => promise_holder(f, *promise, *recorded, *holder),
        }
    }
}

fn promise_holder(
    f: &mut fmt::Formatter<'_>,
    promise: KPromiseId,
    recorded: Option<EndpointId>,
    holder: EndpointId,
) -> fmt::Result {
    write!(
        f,
        "{promise}: held by {holder}'s c-list, but its record says "
    )?;
    match recorded {
        Some(recorded) => write!(f, "only {recorded}'s"),
        None => f.write_str("no c-list's"),
    }
}

fn importer_index(
    f: &mut fmt::Formatter<'_>,
    object: KObjectId,
    endpoint: EndpointId,
    indexed: bool,
) -> fmt::Result {
    if indexed {
        write!(
            f,
            "{object}: the importer index names {endpoint}, whose c-list does not import it"
        )
    } else {
        write!(
            f,
            "{object}: {endpoint} imports it, but the importer index does not say so"
        )
    }
}
