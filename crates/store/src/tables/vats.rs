//! Vat and subcluster records, vat stores, and the terminated-vat list.

use std::collections::BTreeMap;

use ocap_types::{
    ByteBuf, Checkpoint, ClusterConfig, EndpointId, SubclusterId, VatConfig, VatId, WorkerKind,
};
use serde::{Deserialize, Serialize};

use super::{KernelStore, keys};
use crate::error::StoreError;

/// What the kernel keeps about a live vat: its existence means "start this vat".
///
/// Where the vat runs (`config.worker`) is this machine's choice, not kernel state: the
/// record is stored with `inProcess` and a subprocess vat gets a `local.worker.<vat>` key
/// beside it, which the crank hash leaves out (docs/store.md "Crank hash"). Reading the
/// record puts the kind back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VatRecord {
    /// The vat's name in its subcluster.
    pub name: String,
    /// How to build it.
    pub config: VatConfig,
    /// The subcluster it belongs to.
    pub subcluster: Option<SubclusterId>,
    /// For a vat that runs its own executable (`VatConfig::bundle_path`): the executable's
    /// hash when the vat was launched or last upgraded, `blake3:<64 hex digits>`; the vat
    /// only starts from an executable with this hash. Absent (and not written, so such a
    /// record encodes as it did before the field existed) for registered vat code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_hash: Option<String>,
}

/// A subcluster: its config and its vats by name, in launch order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubclusterRecord {
    /// The config it was launched from.
    pub config: ClusterConfig,
    /// Its vats.
    pub vats: Vec<(String, VatId)>,
}

/// The value of a `local.worker.<vat>` key.
const WORKER_SUBPROCESS: &[u8] = b"subprocess";

impl KernelStore {
    /// Allocates a vat id.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn allocate_vat_id(&mut self) -> Result<VatId, StoreError> {
        let n = self.allocate(keys::COUNTER_VAT.as_bytes())?;
        u32::try_from(n).map(VatId).map_err(|_| {
            StoreError::corrupt(
                "counters",
                keys::COUNTER_VAT.as_bytes(),
                "vat ids exhausted",
            )
        })
    }

    /// Allocates a subcluster id.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn allocate_subcluster_id(&mut self) -> Result<SubclusterId, StoreError> {
        let n = self.allocate(keys::COUNTER_SUBCLUSTER.as_bytes())?;
        u32::try_from(n).map(SubclusterId).map_err(|_| {
            StoreError::corrupt(
                "counters",
                keys::COUNTER_SUBCLUSTER.as_bytes(),
                "ids exhausted",
            )
        })
    }

    /// Writes a vat's record (making it live).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn put_vat(&mut self, vat: VatId, record: &VatRecord) -> Result<(), StoreError> {
        let mut hashed = record.clone();
        hashed.config.worker = WorkerKind::InProcess;
        self.write_cbor(&keys::vat_record(vat), &hashed)?;
        self.put_vat_worker(vat, record.config.worker)?;
        self.kv.set(&keys::vat_index(vat), b"")
    }

    fn put_vat_worker(&mut self, vat: VatId, worker: WorkerKind) -> Result<(), StoreError> {
        match worker {
            WorkerKind::InProcess => self.kv.delete(&keys::vat_worker(vat)),
            WorkerKind::Subprocess => self.kv.set(&keys::vat_worker(vat), WORKER_SUBPROCESS),
        }
    }

    /// Where `vat` runs, from its `local.worker.<vat>` key.
    fn vat_worker(&self, vat: VatId) -> Result<WorkerKind, StoreError> {
        let key = keys::vat_worker(vat);
        match self.kv.get(&key)? {
            None => Ok(WorkerKind::InProcess),
            Some(value) if value == WORKER_SUBPROCESS => Ok(WorkerKind::Subprocess),
            Some(_) => Err(StoreError::corrupt("vats", &key, "unknown worker kind")),
        }
    }

    /// A live vat's record.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn vat(&self, vat: VatId) -> Result<Option<VatRecord>, StoreError> {
        let Some(mut record) = self.read_cbor::<VatRecord>("vats", &keys::vat_record(vat))? else {
            return Ok(None);
        };
        record.config.worker = self.vat_worker(vat)?;
        Ok(Some(record))
    }

    /// Deletes a vat's record and its whole vat store (the vat is no longer live).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_vat(&mut self, vat: VatId) -> Result<(), StoreError> {
        self.kv.delete(&keys::vat_record(vat))?;
        self.kv.delete(&keys::vat_worker(vat))?;
        self.kv.delete(&keys::vat_index(vat))?;
        for (key, _) in self.kv.scan_prefix(&keys::vatstore_prefix(vat))? {
            self.kv.delete(&key)?;
        }
        self.kv.delete(&keys::vatstore_usage(vat))?;
        Ok(())
    }

    /// Ids of every live vat, in id order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an index key that does not parse.
    pub fn vat_ids(&self) -> Result<Vec<VatId>, StoreError> {
        let mut ids = Vec::new();
        for (key, _) in self.kv.scan_prefix(keys::VAT_INDEX_PREFIX)? {
            let id = std::str::from_utf8(&key[keys::VAT_INDEX_PREFIX.len()..])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError::corrupt("vats", &key, "bad vat index key"))?;
            ids.push(id);
        }
        ids.sort();
        Ok(ids)
    }

    /// The vat's whole store, sorted by key.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a key that is not UTF-8.
    pub fn vatstore_entries(&self, vat: VatId) -> Result<Vec<(String, ByteBuf)>, StoreError> {
        let prefix = keys::vatstore_prefix(vat);
        self.kv
            .scan_prefix(&prefix)?
            .into_iter()
            .map(|(key, value)| {
                String::from_utf8(key[prefix.len()..].to_vec())
                    .map(|k| (k, ByteBuf(value)))
                    .map_err(|_| StoreError::corrupt("vatstore", &key, "key is not UTF-8"))
            })
            .collect()
    }

    /// One key of the vat's store.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn vatstore_get(&self, vat: VatId, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        self.kv.get(&keys::vatstore(vat, key))
    }

    /// The bytes (keys plus values) the vat's store holds.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn vatstore_usage(&self, vat: VatId) -> Result<u64, StoreError> {
        if let Some(bytes) = self.kv.get(&keys::vatstore_usage(vat))? {
            let bytes: [u8; 8] = bytes.as_slice().try_into().map_err(|_| {
                StoreError::corrupt("vatstore", &keys::vatstore_usage(vat), "bad usage count")
            })?;
            return Ok(u64::from_le_bytes(bytes));
        }
        let prefix = keys::vatstore_prefix(vat);
        let mut total = 0u64;
        for (key, value) in self.kv.scan_prefix(&prefix)? {
            total += entry_bytes(key.len() - prefix.len(), value.len());
        }
        Ok(total)
    }

    /// Applies a delivery's vat-store changes, unless the vat's store would then hold more
    /// than `max_usage` bytes (keys plus values): then nothing is written and the usage it
    /// would have reached is returned as the error value.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn apply_checkpoint(
        &mut self,
        vat: VatId,
        checkpoint: &Checkpoint,
        max_usage: u64,
    ) -> Result<Result<(), u64>, StoreError> {
        if checkpoint.is_empty() {
            return Ok(Ok(()));
        }
        let before = self.vatstore_usage(vat)?;
        // Later writes of a key replace earlier ones: count each key's last state once.
        let mut last: BTreeMap<&str, Option<usize>> = BTreeMap::new();
        for (key, value) in &checkpoint.sets {
            last.insert(key, Some(value.0.len()));
        }
        for key in &checkpoint.deletes {
            last.insert(key, None);
        }
        let mut usage = before;
        for (key, new_len) in &last {
            if let Some(old) = self.kv.get(&keys::vatstore(vat, key))? {
                usage = usage.saturating_sub(entry_bytes(key.len(), old.len()));
            }
            if let Some(len) = new_len {
                usage = usage.saturating_add(entry_bytes(key.len(), *len));
            }
        }
        if usage > max_usage && usage > before {
            return Ok(Err(usage));
        }
        for (key, value) in &checkpoint.sets {
            self.kv.set(&keys::vatstore(vat, key), &value.0)?;
        }
        for key in &checkpoint.deletes {
            self.kv.delete(&keys::vatstore(vat, key))?;
        }
        self.kv
            .set(&keys::vatstore_usage(vat), &usage.to_le_bytes())?;
        Ok(Ok(()))
    }

    /// Writes a subcluster record. Its vats' worker kinds are not part of it (they are
    /// stored as each vat's, see [`VatRecord`]): it is stored with every vat `inProcess`.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn put_subcluster(
        &mut self,
        id: SubclusterId,
        record: &SubclusterRecord,
    ) -> Result<(), StoreError> {
        let mut hashed = record.clone();
        for (_, vat) in &mut hashed.config.vats.0 {
            vat.worker = WorkerKind::InProcess;
        }
        self.write_cbor(&keys::subcluster(id), &hashed)
    }

    /// A subcluster record, each vat's worker kind read from the vat's own record (a vat
    /// no longer live keeps `inProcess`).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the record does not decode.
    pub fn subcluster(&self, id: SubclusterId) -> Result<Option<SubclusterRecord>, StoreError> {
        let Some(record) = self.read_cbor("subclusters", &keys::subcluster(id))? else {
            return Ok(None);
        };
        self.with_vat_workers(record).map(Some)
    }

    fn with_vat_workers(
        &self,
        mut record: SubclusterRecord,
    ) -> Result<SubclusterRecord, StoreError> {
        for (name, vat) in &record.vats {
            if let Some((_, config)) = record.config.vats.0.iter_mut().find(|(n, _)| n == name) {
                config.worker = self.vat_worker(*vat)?;
            }
        }
        Ok(record)
    }

    /// Deletes a subcluster record.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn delete_subcluster(&mut self, id: SubclusterId) -> Result<(), StoreError> {
        self.kv.delete(&keys::subcluster(id))
    }

    /// Every subcluster, in id order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for a record that does not decode.
    pub fn subclusters(&self) -> Result<Vec<(SubclusterId, SubclusterRecord)>, StoreError> {
        let mut out = Vec::new();
        for (key, value) in self.kv.scan_prefix(keys::SUBCLUSTER_PREFIX)? {
            let id = std::str::from_utf8(&key[keys::SUBCLUSTER_PREFIX.len()..])
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| StoreError::corrupt("subclusters", &key, "bad key"))?;
            let record = ocap_types::cbor::from_slice(&value)
                .map_err(|e| StoreError::corrupt("subclusters", &key, e))?;
            out.push((id, self.with_vat_workers(record)?));
        }
        out.sort_by_key(|(id, _)| *id);
        Ok(out)
    }

    /// Vats terminated but not yet cleaned up, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if the list does not decode.
    pub fn terminated_vats(&self) -> Result<Vec<EndpointId>, StoreError> {
        let generation = self.kv.generation();
        if self.terminated_hint.get() == Some((generation, true)) {
            return Ok(Vec::new());
        }
        let list: Vec<EndpointId> = self
            .read_cbor("terminated", keys::TERMINATED)?
            .unwrap_or_default();
        self.terminated_hint
            .set(Some((generation, list.is_empty())));
        Ok(list)
    }

    /// Appends a vat to the terminated list (if absent).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn mark_terminated(&mut self, ep: EndpointId) -> Result<(), StoreError> {
        let mut list = self.terminated_vats()?;
        if !list.contains(&ep) {
            list.push(ep);
            self.write_cbor(keys::TERMINATED, &list)?;
        }
        self.terminated_hint
            .set(Some((self.kv.generation(), false)));
        Ok(())
    }

    /// Removes a vat from the terminated list.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn unmark_terminated(&mut self, ep: EndpointId) -> Result<(), StoreError> {
        let mut list = self.terminated_vats()?;
        list.retain(|e| *e != ep);
        if list.is_empty() {
            self.kv.delete(keys::TERMINATED)?;
        } else {
            self.write_cbor(keys::TERMINATED, &list)?;
        }
        self.terminated_hint
            .set(Some((self.kv.generation(), list.is_empty())));
        Ok(())
    }
}

/// What one vat-store entry counts towards its vat's usage.
fn entry_bytes(key_len: usize, value_len: usize) -> u64 {
    u64::try_from(key_len.saturating_add(value_len)).unwrap_or(u64::MAX)
}
