//! The kernel's state as bounded listings, one per section of `ocap inspect`: vats,
//! subclusters, objects, promises, c-lists, the run queue and vat stores. Each takes the
//! tables (from [`Kernel::inspect`](crate::Kernel::inspect) or an
//! [`OfflineStore`](super::OfflineStore)) and a limit, reads at most that many records in
//! key order (plus one, to tell whether more exist), and returns plain rows.

use ocap_store::{CListEntry, KernelStore, Owner, PromiseState, RefCounts, StoreError};
use ocap_types::{
    EndpointId, KObjectId, KPromiseId, KRef, RunQueueItem, SubclusterId, VRef, VatId, VatLimits,
};

/// The run queue's name (`ocap_queue`'s `RUN_QUEUE`).
const RUN_QUEUE: &str = "run";

/// At most `limit` rows of a section, and whether the store has more.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listing<T> {
    /// The rows, in key order.
    pub rows: Vec<T>,
    /// True if rows past the limit were left out.
    pub more: bool,
}

impl<T> Listing<T> {
    /// The first `limit` of `rows` (read with one extra, which tells whether there are more).
    fn bounded(mut rows: Vec<T>, limit: usize) -> Self {
        let more = rows.len() > limit;
        rows.truncate(limit);
        Listing { rows, more }
    }
}

/// A live vat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatRow {
    /// Its id.
    pub id: VatId,
    /// Its name in its subcluster.
    pub name: String,
    /// The vat code it runs: the bundle name, or the path of a vat executable.
    pub code: Option<String>,
    /// Its subcluster.
    pub subcluster: Option<SubclusterId>,
    /// Bytes its vat store holds (keys and values).
    pub vatstore_bytes: u64,
    /// Messages it sent that still wait in the queues.
    pub queued_messages: u64,
    /// What it may ask of the kernel (from its config).
    pub limits: VatLimits,
}

/// A subcluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubclusterRow {
    /// Its id.
    pub id: SubclusterId,
    /// The name of its bootstrap vat.
    pub bootstrap: String,
    /// Its vats by name, in launch order.
    pub vats: Vec<(String, VatId)>,
}

/// A kernel object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectRow {
    /// Its id.
    pub id: KObjectId,
    /// Who owns it (`None`: orphaned).
    pub owner: Option<Owner>,
    /// Its stored reference counts.
    pub counts: RefCounts,
    /// How many times it is pinned.
    pub pins: u32,
    /// True once revoked.
    pub revoked: bool,
}

/// A kernel promise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromiseRow {
    /// Its id.
    pub id: KPromiseId,
    /// Unresolved (with decider and subscribers) or settled (with its value).
    pub state: PromiseState,
    /// Its stored reference count.
    pub refcount: u32,
    /// Messages waiting in its queue.
    pub queue_length: u64,
    /// How many times it is pinned (a host's result is).
    pub pins: u32,
}

/// One c-list entry of an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CListRow {
    /// The endpoint (a live vat, or a terminated one not yet cleaned up).
    pub endpoint: EndpointId,
    /// The kernel's ref.
    pub kref: KRef,
    /// The endpoint's ref.
    pub vref: VRef,
    /// The entry's reachable flag.
    pub reachable: bool,
}

/// One item of the run queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunQueueRow {
    /// Its index in the queue (the oldest has the lowest).
    pub index: u64,
    /// The item.
    pub item: RunQueueItem,
}

/// One key of a vat's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VatStoreRow {
    /// The vat.
    pub vat: VatId,
    /// The key, as the vat chose it.
    pub key: String,
    /// The value's size in bytes.
    pub bytes: u64,
}

/// The live vats, in id order.
///
/// # Errors
/// [`StoreError::Corrupt`] for a record that does not decode.
pub fn vats(store: &KernelStore, limit: usize) -> Result<Listing<VatRow>, StoreError> {
    let mut rows = Vec::new();
    for id in store.vat_ids()?.into_iter().take(limit.saturating_add(1)) {
        let Some(record) = store.vat(id)? else {
            continue;
        };
        rows.push(VatRow {
            id,
            name: record.name,
            limits: record.config.limits,
            code: record.config.code().map(str::to_owned).or_else(|| {
                let path = record.config.executable()?;
                Some(path.display().to_string())
            }),
            subcluster: record.subcluster,
            vatstore_bytes: store.vatstore_usage(id)?,
            queued_messages: store.queued_by(EndpointId::Vat(id))?,
        });
    }
    Ok(Listing::bounded(rows, limit))
}

/// The subclusters, in id order.
///
/// # Errors
/// [`StoreError::Corrupt`] for a record that does not decode.
pub fn subclusters(
    store: &KernelStore,
    limit: usize,
) -> Result<Listing<SubclusterRow>, StoreError> {
    let rows = store
        .subclusters()?
        .into_iter()
        .take(limit.saturating_add(1))
        .map(|(id, record)| SubclusterRow {
            id,
            bootstrap: record.config.bootstrap,
            vats: record.vats,
        })
        .collect();
    Ok(Listing::bounded(rows, limit))
}

/// The objects, in key order.
///
/// # Errors
/// [`StoreError::Corrupt`] for a record that does not decode.
pub fn objects(store: &KernelStore, limit: usize) -> Result<Listing<ObjectRow>, StoreError> {
    let mut rows = Vec::new();
    for (id, record) in store.objects_after(None, limit.saturating_add(1))? {
        rows.push(ObjectRow {
            id,
            owner: record.owner,
            counts: record.counts,
            pins: store.pins(KRef::Object(id))?,
            revoked: record.revoked,
        });
    }
    Ok(Listing::bounded(rows, limit))
}

/// The promises, in key order.
///
/// # Errors
/// [`StoreError::Corrupt`] for a record or queue bound that does not decode.
pub fn promises(store: &KernelStore, limit: usize) -> Result<Listing<PromiseRow>, StoreError> {
    let mut rows = Vec::new();
    for (id, record) in store.promises_after(None, limit.saturating_add(1))? {
        rows.push(PromiseRow {
            id,
            state: record.state,
            refcount: record.refcount,
            queue_length: store
                .queue_bounds(&id.to_string())?
                .map_or(0, |bounds| bounds.len()),
            pins: store.pins(KRef::Promise(id))?,
        });
    }
    Ok(Listing::bounded(rows, limit))
}

/// The c-lists of the live vats and of the terminated ones not yet cleaned up, endpoint by
/// endpoint, each by kref in key order; `limit` bounds the entries of all of them together.
///
/// # Errors
/// [`StoreError::Corrupt`] for an entry that does not parse.
pub fn clists(store: &KernelStore, limit: usize) -> Result<Listing<CListRow>, StoreError> {
    let mut endpoints: Vec<EndpointId> =
        store.vat_ids()?.into_iter().map(EndpointId::Vat).collect();
    endpoints.extend(store.terminated_vats()?);
    let mut rows = Vec::new();
    for endpoint in endpoints {
        let wanted = limit.saturating_add(1) - rows.len();
        if wanted == 0 {
            break;
        }
        for (kref, CListEntry { vref, reachable }) in store.clist_after(endpoint, None, wanted)? {
            rows.push(CListRow {
                endpoint,
                kref,
                vref,
                reachable,
            });
        }
    }
    Ok(Listing::bounded(rows, limit))
}

/// The run queue, oldest first.
///
/// # Errors
/// [`StoreError::Corrupt`] for bounds or an item that does not decode.
pub fn run_queue(store: &KernelStore, limit: usize) -> Result<Listing<RunQueueRow>, StoreError> {
    let mut rows = Vec::new();
    for (index, bytes) in store.queue_entries(RUN_QUEUE, limit.saturating_add(1))? {
        let item = ocap_types::cbor::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            table: "run queue",
            key: format!("queue.{RUN_QUEUE}.{index}"),
            reason: e.to_string(),
        })?;
        rows.push(RunQueueRow { index, item });
    }
    Ok(Listing::bounded(rows, limit))
}

/// The keys of the live vats' stores with their value sizes, vat by vat, in key order;
/// `limit` bounds the keys of all of them together.
///
/// # Errors
/// [`StoreError::Corrupt`] for a key that is not UTF-8.
pub fn vat_stores(store: &KernelStore, limit: usize) -> Result<Listing<VatStoreRow>, StoreError> {
    let mut rows = Vec::new();
    for vat in store.vat_ids()? {
        let wanted = limit.saturating_add(1) - rows.len();
        if wanted == 0 {
            break;
        }
        for (key, bytes) in store.vatstore_after(vat, None, wanted)? {
            rows.push(VatStoreRow { vat, key, bytes });
        }
    }
    Ok(Listing::bounded(rows, limit))
}
