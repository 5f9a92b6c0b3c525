//! `--crank-log FILE`: the kernel's crank records as JSON lines, with a size cap and one
//! rotated file, written by a thread of their own.
//!
//! Invariant: the files never hold more than about twice the cap: once `FILE` would pass
//! `max_bytes`, it becomes `FILE.1` (replacing the older one) and a new `FILE` starts. The
//! kernel hands records over through a bounded channel, so a slow disk slows the kernel
//! down instead of growing memory without bound.

#[cfg(test)]
mod tests;

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

use ocap_kernel::{
    CrankLogSink, CrankOutcome, CrankRecord, Resolution, RunQueueItem, Syscall, VRef,
};
use serde_json::{Value as Json, json};

use crate::CliError;
use crate::inspect::value_json;

/// The default cap of a crank log file (64 MiB) before it is rotated.
pub const DEFAULT_CRANK_LOG_MAX_BYTES: u64 = 64 << 20;

/// Records waiting for the writer thread at most; the kernel waits beyond that.
const CHANNEL_CAPACITY: usize = 4096;

/// Where the crank log goes and how large it may grow.
#[derive(Debug, Clone)]
pub struct CrankLogOptions {
    /// The log file; appended to if it exists.
    pub path: PathBuf,
    /// Rotate once the file would pass this many bytes (`FILE` → `FILE.1`).
    pub max_bytes: u64,
}

/// The writer of a crank log: its thread and the sink to put in
/// [`KernelConfig::crank_log`](ocap_kernel::KernelConfig::crank_log).
#[derive(Debug)]
pub struct CrankLogWriter {
    thread: JoinHandle<io::Result<()>>,
}

/// Opens the log file and starts its writer thread. Returns the sink for the kernel and
/// the writer, to [`CrankLogWriter::finish`] once the kernel has shut down.
///
/// # Errors
/// [`CliError::CrankLog`] if the file cannot be opened, or the thread not started.
pub fn open_crank_log(
    options: &CrankLogOptions,
) -> Result<(CrankLogSink, CrankLogWriter), CliError> {
    let fail = |source| CliError::CrankLog {
        path: options.path.clone(),
        source,
    };
    let file = LogFile::open(options).map_err(fail)?;
    let (sender, receiver) = mpsc::sync_channel::<CrankRecord>(CHANNEL_CAPACITY);
    let thread = std::thread::Builder::new()
        .name("ocap-crank-log".to_owned())
        .spawn(move || write_records(file, &receiver))
        .map_err(fail)?;
    let sender: SyncSender<CrankRecord> = sender;
    let sink: CrankLogSink = Arc::new(move |record: &CrankRecord| {
        // The writer only stops when the file failed; that was reported once there.
        let _ = sender.send(record.clone());
    });
    Ok((sink, CrankLogWriter { thread }))
}

impl CrankLogWriter {
    /// Waits until every record handed over is written and flushed. Call it after the
    /// kernel shut down (the sink it held is gone then; until that, this waits).
    ///
    /// # Errors
    /// [`CliError::CrankLog`] if writing failed.
    pub fn finish(self, path: &Path) -> Result<(), CliError> {
        let fail = |source| CliError::CrankLog {
            path: path.to_path_buf(),
            source,
        };
        match self.thread.join() {
            Ok(res) => res.map_err(fail),
            Err(_) => Err(fail(io::Error::other("the crank log writer panicked"))),
        }
    }
}

/// One crank record as a JSON object (one line of the log).
pub fn record_json(record: &CrankRecord) -> Json {
    let mut line = json!({
        "crank": record.crank,
        "item": item_json(&record.item),
        "outcome": record.outcome.name(),
        "syscalls": record.syscalls.iter().map(syscall_json).collect::<Vec<_>>(),
        "hostInputs": record.host_inputs.iter().map(|input| json!({
            "target": input.target.to_string(),
            "method": input.method,
            "result": input.result.to_string(),
        })).collect::<Vec<_>>(),
        "crankHash": record.crank_hash.to_string(),
    });
    let extra = match &record.outcome {
        CrankOutcome::Exited { vat, reason } | CrankOutcome::Failed { vat, reason } => json!({
            "vat": vat.to_string(),
            "reason": value_json(reason),
        }),
        CrankOutcome::Discarded { error } => json!({ "error": error }),
        _ => json!({}),
    };
    if let (Some(line), Json::Object(extra)) = (line.as_object_mut(), extra) {
        line.extend(extra);
    }
    line
}

/// A run-queue item as JSON: a send with its method and arguments in their JSON form (as
/// `ocap send --json` shows values), the other kinds with their fields; `type` is the
/// item's kind either way.
fn item_json(item: &RunQueueItem) -> Json {
    match item {
        RunQueueItem::Send {
            target,
            message,
            sender,
        } => json!({
            "type": "send",
            "target": target.to_string(),
            "methargs": value_json(&message.methargs),
            "result": message.result.map(|result| result.to_string()),
            "sender": sender.map(|sender| sender.to_string()),
        }),
        // `{"Notify": {fields}}` becomes `{"type": "notify", fields}`.
        other => {
            let mut line = serde_json::Map::new();
            line.insert("type".to_owned(), Json::from(other.kind()));
            if let Ok(Json::Object(outer)) = serde_json::to_value(other) {
                for (_, fields) in outer {
                    if let Json::Object(fields) = fields {
                        line.extend(fields);
                    }
                }
            }
            Json::Object(line)
        }
    }
}

/// A syscall as JSON, in the vat's refs: `type` is its kind, values in their JSON form (as
/// for items).
fn syscall_json(syscall: &Syscall) -> Json {
    let refs = |refs: &[VRef]| refs.iter().map(ToString::to_string).collect::<Vec<_>>();
    let resolutions = |resolutions: &[Resolution<VRef>]| {
        resolutions
            .iter()
            .map(|r| {
                json!({
                    "promise": r.promise.to_string(),
                    "rejected": r.rejected,
                    "data": value_json(&r.data),
                })
            })
            .collect::<Vec<_>>()
    };
    let kind = syscall.kind();
    match syscall {
        Syscall::Send { target, message } => json!({
            "type": kind,
            "target": target.to_string(),
            "methargs": value_json(&message.methargs),
            "result": message.result.as_ref().map(ToString::to_string),
        }),
        Syscall::Subscribe(promise) => json!({"type": kind, "promise": promise.to_string()}),
        Syscall::Resolve(resolved) => json!({"type": kind, "resolutions": resolutions(resolved)}),
        Syscall::Exit { failure, info } => {
            json!({"type": kind, "failure": failure, "info": value_json(info)})
        }
        Syscall::DropImports(vrefs)
        | Syscall::RetireImports(vrefs)
        | Syscall::RetireExports(vrefs)
        | Syscall::AbandonExports(vrefs) => json!({"type": kind, "vrefs": refs(vrefs)}),
    }
}

fn write_records(mut file: LogFile, receiver: &Receiver<CrankRecord>) -> io::Result<()> {
    let res = (|| {
        while let Ok(first) = receiver.recv() {
            file.write_record(&first)?;
            // Everything already queued, then one flush: the file is current whenever the
            // kernel has nothing more for it, without a flush per crank under load.
            while let Ok(next) = receiver.try_recv() {
                file.write_record(&next)?;
            }
            file.out.flush()?;
        }
        file.out.flush()
    })();
    if let Err(error) = &res {
        tracing::error!(%error, path = %file.path.display(), "crank log not written");
        // Keep draining so the kernel never waits on a writer that stopped.
        while receiver.recv().is_ok() {}
    }
    res
}

/// The current log file and how many bytes it holds.
struct LogFile {
    path: PathBuf,
    max_bytes: u64,
    out: BufWriter<File>,
    len: u64,
}

impl LogFile {
    fn open(options: &CrankLogOptions) -> io::Result<LogFile> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&options.path)?;
        let len = file.metadata()?.len();
        Ok(LogFile {
            path: options.path.clone(),
            max_bytes: options.max_bytes,
            out: BufWriter::new(file),
            len,
        })
    }

    fn write_record(&mut self, record: &CrankRecord) -> io::Result<()> {
        let mut line = record_json(record).to_string();
        line.push('\n');
        self.write_line(line.as_bytes())
    }

    fn write_line(&mut self, line: &[u8]) -> io::Result<()> {
        let n_bytes = line.len() as u64;
        if self.len > 0 && self.len.saturating_add(n_bytes) > self.max_bytes {
            self.rotate()?;
        }
        self.out.write_all(line)?;
        self.len = self.len.saturating_add(n_bytes);
        Ok(())
    }

    /// `FILE` → `FILE.1` (replacing the older one), and a new, empty `FILE`.
    fn rotate(&mut self) -> io::Result<()> {
        self.out.flush()?;
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(".1");
        fs::rename(&self.path, &rotated)?;
        let file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&self.path)?;
        self.out = BufWriter::new(file);
        self.len = 0;
        Ok(())
    }
}
