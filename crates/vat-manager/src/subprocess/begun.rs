//! A worker process started but not yet handed its launcher's listener: the two halves of
//! `SubprocessRuntime::spawn_program`, so that `VatManager::prespawn` starts every process
//! before it waits for the first launcher.

use std::io::BufReader;
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::sync::Arc;

use ocap_types::VatId;

use super::sockets::{Bounded, Output};
use super::supervise::{self, Evidence};
use super::{FrameReader, FrameWriter, SubprocessRuntime, WorkerConfig, kill};
use crate::confine;
use crate::error::VatError;

/// A worker process started by [`SubprocessRuntime::begin_program`], its launcher's
/// listener not yet taken. Dropping it kills the process.
#[derive(Debug)]
pub(crate) struct Begun<'c> {
    pub(super) config: &'c WorkerConfig,
    pub(super) vat: VatId,
    pub(super) code: String,
    pub(super) program: std::path::PathBuf,
    pub(super) args: Vec<String>,
    pub(super) child: Started,
    pub(super) to_worker: UnixStream,
    pub(super) from_worker: UnixStream,
    pub(super) evidence: Arc<Evidence>,
    pub(super) listener: bool,
    pub(super) watched: Option<confine::Watched>,
}

/// The process of a [`Begun`], killed and reaped if dropped before it is taken.
#[derive(Debug)]
pub(super) struct Started(pub(super) Option<Child>);

impl Drop for Started {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            kill(child);
        }
    }
}

impl Begun<'_> {
    /// Takes the listener the launcher hands over (its stderr thread runs already: a
    /// launcher that fails says why there), starts its supervisor, and returns the worker
    /// ready for its start.
    ///
    /// # Errors
    /// As [`SubprocessRuntime::spawn_program`].
    pub(crate) fn finish(mut self) -> Result<SubprocessRuntime, VatError> {
        let vat = self.vat;
        let Some(mut child) = self.child.0.take() else {
            return Err(VatError::Start {
                vat,
                message: "the vat worker is gone".to_owned(),
            });
        };
        let (from_worker, to_worker, evidence) = (self.from_worker, self.to_worker, self.evidence);
        if self.listener {
            let taken = supervise::take_listener(
                vat,
                &mut child,
                &from_worker,
                &to_worker,
                &evidence,
                self.watched,
            );
            match taken {
                Ok(()) => {}
                Err(supervise::Handover::Unusable) => {
                    kill(&mut child);
                    // Started again in the mode that needs no listener (`listener_usable`).
                    let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
                    return SubprocessRuntime::spawn_program(
                        self.config,
                        vat,
                        &self.code,
                        &self.program,
                        &args,
                    );
                }
                Err(supervise::Handover::Failed(message)) => {
                    kill(&mut child);
                    return Err(VatError::Start { vat, message });
                }
            }
        }
        let config = self.config;
        tracing::debug!(%vat, program = %self.program.display(), pid = child.id(), "vat worker started");
        Ok(SubprocessRuntime {
            vat,
            pid: child.id(),
            to_worker: Some(FrameWriter::new(Bounded::new(to_worker))),
            from_worker: FrameReader::new(BufReader::with_capacity(
                16 * 1024,
                Output {
                    socket: Bounded::new(from_worker),
                    child,
                },
            )),
            timeout: config.delivery_timeout,
            failed: None,
            evidence,
            mismatch: None,
        })
    }
}
