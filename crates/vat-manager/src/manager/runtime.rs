//! Starting a vat: which runtime it gets (registered code in the kernel's process or in the
//! configured worker program, or a path vat's own executable, checked against its recorded
//! hash by `crate::bundle`), and its start from the stored vat store.

use std::borrow::Cow;

use ocap_queue::Crank;
use ocap_store::VatRecord;
use ocap_types::{
    DeliveryOutcome, PROTOCOL_VERSION, VatHost, VatId, VatRuntime, VatStart, WorkerKind,
};

use super::{VatHandle, VatManager, guarded};
use crate::bundle;
use crate::error::VatError;
use crate::limits::{LimitExceeded, check_checkpoint};
use crate::subprocess::{Begun, SubprocessRuntime};
use crate::syscall::SyscallProcessor;

impl VatManager {
    /// [`VatManager::run_vat`], returning the hash of a path vat's executable.
    pub(super) fn start_vat(
        &mut self,
        crank: &mut Crank<'_>,
        vat: VatId,
        record: &VatRecord,
    ) -> Result<Option<String>, VatError> {
        if self.running.contains_key(&vat) {
            return Err(VatError::AlreadyRunning(vat));
        }
        // A worker spawned ahead (`prespawn`) has been starting meanwhile.
        let (mut runtime, bundle_hash) = match self.prespawned.remove(&vat) {
            Some(spawned) => spawned,
            None => self.runtime(vat, record)?,
        };
        let start = VatStart {
            name: record.name.clone(),
            parameters: record.config.parameters.clone(),
            state: crank.store().vatstore_entries(vat)?,
        };
        let limits = record.config.limits;
        let mut host = SyscallProcessor::new(&mut *crank, vat, limits, self.logs.as_ref());
        let outcome = guarded(|| runtime.start(start, &mut host));
        if let Some(fault) = host.fault {
            return Err(fault.into());
        }
        if let Some(worker) = runtime.protocol_mismatch() {
            return Err(VatError::ProtocolVersion {
                vat,
                worker,
                kernel: PROTOCOL_VERSION,
            });
        }
        let exceeded = host
            .exceeded
            .or_else(|| check_checkpoint(&outcome.checkpoint, &limits).err());
        let refused = exceeded.map(|limit| limit.reason().to_owned());
        if let Some(message) = outcome.error.or(host.illegal).or(refused) {
            return Err(VatError::Start { vat, message });
        }
        let applied = crank.store_mut().apply_checkpoint(
            vat,
            &outcome.checkpoint,
            limits.vatstore_total_bytes,
        )?;
        if applied.is_err() {
            return Err(VatError::Start {
                vat,
                message: LimitExceeded::VatstoreTotal.reason().to_owned(),
            });
        }
        self.starts += 1;
        let started = self.starts;
        self.running.insert(
            vat,
            VatHandle {
                runtime: runtime.into_runtime(),
                limits,
                started,
            },
        );
        Ok(bundle_hash)
    }

    /// Spawns the workers of those of `vats` that run in a process of their own, ahead of
    /// their starts, so that the processes start up side by side while the vats are started
    /// one after another ([`VatManager::run_vat`], [`VatManager::launch_vat`] take them).
    /// Nothing else changes: a vat whose worker cannot be spawned here is spawned again by
    /// its start, which then fails as it would have. Call [`VatManager::discard_prespawned`]
    /// once the starts are done.
    pub fn prespawn<'r>(&mut self, vats: impl IntoIterator<Item = (VatId, &'r VatRecord)>) {
        // Every process first, then the handovers: each confined worker's launcher confines
        // itself (about 1.5 ms of CPU) while the kernel waits for the ones before it,
        // rather than one after another.
        let mut begun = Vec::new();
        for (vat, record) in vats {
            let in_process = record.config.executable().is_none()
                && record.config.worker == WorkerKind::InProcess;
            if in_process || self.running.contains_key(&vat) {
                continue;
            }
            if let Ok(started) = self.begin_runtime(vat, record) {
                begun.push((vat, started));
            }
        }
        let spawned: Vec<_> = begun
            .into_iter()
            .filter_map(|(vat, started)| Some((vat, started.finish().ok()?)))
            .collect();
        self.prespawned.extend(spawned);
    }

    /// Kills the workers [`VatManager::prespawn`] spawned that no start took (a launch that
    /// failed part way, a vat without a record).
    pub fn discard_prespawned(&mut self) {
        self.prespawned.clear();
    }

    /// The vat's runtime, not yet started, and for a vat that runs its own executable the
    /// executable's hash (checked against the record's, if it holds one).
    pub(super) fn runtime(&self, vat: VatId, record: &VatRecord) -> Result<Prespawned, VatError> {
        self.begin_runtime(vat, record)?.finish()
    }

    /// [`VatManager::runtime`], a worker's process started but its launcher's listener not
    /// yet taken ([`Begun`]).
    fn begin_runtime(&self, vat: VatId, record: &VatRecord) -> Result<Beginning<'_>, VatError> {
        if let Some(path) = record.config.executable() {
            let hash = bundle::check_executable(vat, path, record.bundle_hash.as_deref())?;
            let args = ["worker", record.name.as_str()];
            let code = path.to_string_lossy();
            let begun = SubprocessRuntime::begin_program(&self.workers, vat, &code, path, &args)?;
            return Ok(Beginning::Worker(Box::new(begun), Some(hash)));
        }
        let code = record.config.code().unwrap_or_default();
        match record.config.worker {
            WorkerKind::InProcess => {
                let factory = self
                    .registry
                    .get(code)
                    .ok_or_else(|| VatError::UnknownCode(code.to_owned()))?;
                Ok(Beginning::Local(factory()))
            }
            WorkerKind::Subprocess => Ok(Beginning::Worker(
                Box::new(SubprocessRuntime::begin(&self.workers, vat, code)?),
                None,
            )),
        }
    }
}

/// A runtime being made: in the kernel's process, or a worker whose process is started.
enum Beginning<'c> {
    Local(Box<dyn VatRuntime>),
    Worker(Box<Begun<'c>>, Option<String>),
}

impl Beginning<'_> {
    fn finish(self) -> Result<Prespawned, VatError> {
        match self {
            Beginning::Local(runtime) => Ok((Spawned::Local(runtime), None)),
            Beginning::Worker(begun, hash) => {
                Ok((Spawned::Worker(Box::new(begun.finish()?)), hash))
            }
        }
    }
}

/// A runtime not yet started, and the hash of a path vat's executable.
pub(super) type Prespawned = (Spawned, Option<String>);

/// A vat's runtime before its start: a worker is kept as what it is until its start has
/// said whether it speaks this kernel's protocol.
pub(super) enum Spawned {
    /// In the kernel's process.
    Local(Box<dyn VatRuntime>),
    /// In a worker process.
    Worker(Box<SubprocessRuntime>),
}

impl Spawned {
    fn start(&mut self, start: VatStart, host: &mut dyn VatHost) -> DeliveryOutcome {
        match self {
            Spawned::Local(runtime) => runtime.start(start, host),
            Spawned::Worker(worker) => worker.start(start, host),
        }
    }

    fn protocol_mismatch(&self) -> Option<u32> {
        match self {
            Spawned::Local(_) => None,
            Spawned::Worker(worker) => worker.protocol_mismatch(),
        }
    }

    fn into_runtime(self) -> Box<dyn VatRuntime> {
        match self {
            Spawned::Local(runtime) => runtime,
            Spawned::Worker(worker) => worker,
        }
    }
}

/// `record` with the hash of the executable its vat was started from, if it runs one (the
/// record is borrowed as it is otherwise).
pub(super) fn with_bundle_hash(record: &VatRecord, hash: Option<String>) -> Cow<'_, VatRecord> {
    match hash {
        Some(hash) if record.bundle_hash.as_ref() != Some(&hash) => {
            let mut record = record.clone();
            record.bundle_hash = Some(hash);
            Cow::Owned(record)
        }
        _ => Cow::Borrowed(record),
    }
}
