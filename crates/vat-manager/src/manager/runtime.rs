//! Which runtime a vat gets: registered code in the kernel's process or in the configured
//! worker program, or a path vat's own executable (checked against its recorded hash,
//! `crate::bundle`).

use std::borrow::Cow;

use ocap_store::VatRecord;
use ocap_types::{VatId, VatRuntime, WorkerKind};

use super::VatManager;
use crate::bundle;
use crate::error::VatError;
use crate::subprocess::SubprocessRuntime;

impl VatManager {
    /// The vat's runtime, not yet started, and for a vat that runs its own executable the
    /// executable's hash (checked against the record's, if it holds one).
    pub(super) fn runtime(
        &self,
        vat: VatId,
        record: &VatRecord,
    ) -> Result<(Box<dyn VatRuntime>, Option<String>), VatError> {
        if let Some(path) = record.config.executable() {
            let hash = bundle::check_executable(vat, path, record.bundle_hash.as_deref())?;
            let args = ["worker", record.name.as_str()];
            let runtime = SubprocessRuntime::spawn_program(&self.workers, vat, path, &args)?;
            return Ok((Box::new(runtime), Some(hash)));
        }
        let code = record.config.code().unwrap_or_default();
        let runtime: Box<dyn VatRuntime> = match record.config.worker {
            WorkerKind::InProcess => {
                let factory = self
                    .registry
                    .get(code)
                    .ok_or_else(|| VatError::UnknownCode(code.to_owned()))?;
                factory()
            }
            WorkerKind::Subprocess => Box::new(SubprocessRuntime::spawn(&self.workers, vat, code)?),
        };
        Ok((runtime, None))
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
