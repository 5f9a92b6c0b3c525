//! `ocap check` and `ocap backup`: a store's integrity, verified while holding its lock, and
//! a compacted copy of it.
//!
//! LMDB keeps no checksums, and a damaged page can crash the process that reads it rather
//! than fail. So `check` first reads every page of the store in a child process (`ocap
//! check-pages DIR`, hidden, [`check_pages`]) while this process holds the store's lock, and
//! reports the child's crash, signal or timeout as damage. Only once the child has read the
//! whole file does this process open the store and run the kernel's audit
//! ([`KernelStore::check`](ocap_kernel::inspect::KernelStore::check)) over the same pages.

#[cfg(test)]
mod tests;

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use ocap_kernel::inspect::{CheckReport, FileWalk, OfflineStore, walk_store_file};
use ocap_kernel::{Kernel, KernelError};
use serde_json::{Value as Json, json};

use crate::CliError;
use crate::daemon::Session;

/// The hidden subcommand that walks a store's pages, in a child of `ocap check`.
pub const CHECK_PAGES: &str = "check-pages";

/// How the page walk runs.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The program run as `<program> check-pages <dir>`: `ocap` passes its own executable.
    pub program: PathBuf,
    /// How long the walk may take before it is killed and reported.
    pub timeout: Duration,
}

/// What `ocap check` found in a store whose pages all read.
#[derive(Debug, Clone)]
pub struct CheckOutcome {
    /// What the page walk read.
    pub walk: FileWalk,
    /// The audit's findings; empty when the store is consistent.
    pub report: CheckReport,
}

impl CheckOutcome {
    /// How many violations the audit found.
    pub fn violations(&self) -> usize {
        self.report.mismatches.len()
            + self.report.dangling.len()
            + self.report.inconsistencies.len()
    }

    /// The outcome for people (one violation a line) or as a JSON object.
    pub fn render(&self, json: bool) -> String {
        if json {
            self.to_json().to_string()
        } else {
            render_text(&self.walk, &self.violation_lines())
        }
    }

    /// The outcome as JSON: `ok`, `pages` (`entries`, `bytes`, `pages`, `pageSize`) and
    /// `violations` (one text each): what `ocap check --json` prints, and the daemon's
    /// answer to `check`.
    pub fn to_json(&self) -> Json {
        json!({
            "ok": self.report.is_empty(),
            "pages": {"entries": self.walk.entries, "bytes": self.walk.bytes,
                      "pages": self.walk.pages, "pageSize": self.walk.page_size},
            "violations": self.violation_lines(),
        })
    }

    fn violation_lines(&self) -> Vec<String> {
        if self.report.is_empty() {
            return Vec::new();
        }
        self.report.to_string().lines().map(str::to_owned).collect()
    }
}

/// What `ocap check` prints for people.
fn render_text(walk: &FileWalk, violations: &[String]) -> String {
    let mut out = format!(
        "pages: {} entries, {} bytes in {} pages read\n",
        walk.entries, walk.bytes, walk.pages
    );
    if violations.is_empty() {
        out.push_str("audit: consistent\n");
    } else {
        out.push_str(&format!("audit: {} violation(s)\n", violations.len()));
        for line in violations {
            out.push_str(&format!("  {line}\n"));
        }
    }
    out
}

/// Checks the store at `path`: takes its lock (so no kernel runs it meanwhile), has a child
/// process read every page, then audits the tables.
///
/// # Errors
/// [`CliError::Store`] if the store is in use, missing or unreadable;
/// [`CliError::Damaged`] if the child failed or crashed reading it;
/// [`CliError::WalkTimeout`] if it did not finish in time; [`CliError::Spawn`] if it could
/// not be run. Violations are no error here: they are in the outcome.
pub fn check_store(path: &Path, options: &CheckOptions) -> Result<CheckOutcome, CliError> {
    let lock = OfflineStore::lock(path)?;
    let walk = walk_in_child(path, options)?;
    let store = OfflineStore::open_locked(lock)?;
    let report = store.tables().check()?;
    Ok(CheckOutcome { walk, report })
}

/// `ocap check` of the store a kernel in this process runs (the daemon's `check`): between
/// two cranks, once every ended crank is committed and synced, a child reads every page
/// of the file while the kernel waits (nothing writes it meanwhile), then the audit runs
/// over the same tables. Cranks wait for the whole check.
///
/// # Errors
/// As [`check_store`], and [`CliError::Kernel`] if the kernel stopped or could not commit.
pub(crate) fn check_running(
    kernel: &Kernel,
    store: &Path,
    options: &CheckOptions,
) -> Result<CheckOutcome, CliError> {
    let (path, options) = (store.to_path_buf(), options.clone());
    kernel.inspect_durable(move |tables| {
        let walk = walk_in_child(&path, &options)?;
        let report = tables.check().map_err(KernelError::from)?;
        Ok(CheckOutcome { walk, report })
    })?
}

/// The work of the hidden `ocap check-pages DIR`: reads every page of the store file at
/// `path` without taking its lock (the parent `ocap check` holds it), and renders what it
/// read as the one line [`check_store`] parses.
///
/// # Errors
/// [`CliError::Store`] for damage LMDB notices. Damage it does not notice may crash the
/// process instead: that is why this runs in a child.
pub fn check_pages(path: &Path) -> Result<String, CliError> {
    let walk = walk_store_file(path)?;
    Ok(format!(
        "entries={} bytes={} pages={} pageSize={}",
        walk.entries, walk.bytes, walk.pages, walk.page_size
    ))
}

/// Parses [`check_pages`]' line.
fn parse_walk(line: &str) -> Option<FileWalk> {
    let mut walk = FileWalk::default();
    for field in line.trim().split(' ') {
        let (name, value) = field.split_once('=')?;
        match name {
            "entries" => walk.entries = value.parse().ok()?,
            "bytes" => walk.bytes = value.parse().ok()?,
            "pages" => walk.pages = value.parse().ok()?,
            "pageSize" => walk.page_size = value.parse().ok()?,
            _ => return None,
        }
    }
    Some(walk)
}

/// Runs `<program> check-pages <path>` and judges how it ended.
fn walk_in_child(path: &Path, options: &CheckOptions) -> Result<FileWalk, CliError> {
    let mut child = Command::new(&options.program)
        .arg(CHECK_PAGES)
        .arg(path)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(CliError::Spawn)?;
    // Drained on threads of their own, so that a child that writes much cannot block on a
    // full pipe while this thread waits for it to exit.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_with_timeout(&mut child, options.timeout).map_err(CliError::Spawn)?;
    let Some(status) = status else {
        return Err(CliError::WalkTimeout {
            secs: options.timeout.as_secs(),
        });
    };
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    judge(status, &stdout, &stderr)
}

/// The walk's result from the child's exit status and output.
fn judge(status: ExitStatus, stdout: &str, stderr: &str) -> Result<FileWalk, CliError> {
    if let Some(signal) = status.signal() {
        return Err(CliError::Damaged {
            reason: format!("reading its pages crashed the reader (signal {signal})"),
        });
    }
    if !status.success() {
        // The child's own message, without its `ocap check-pages:` prefix.
        let message = stderr.lines().next().unwrap_or_default();
        let message = message.split_once(": ").map_or(message, |(_, rest)| rest);
        return Err(CliError::Damaged {
            reason: format!("reading its pages failed ({status}): {message}"),
        });
    }
    parse_walk(stdout).ok_or_else(|| CliError::Damaged {
        reason: format!("the page walk reported nothing readable: {stdout:?}"),
    })
}

/// Waits for `child` up to `timeout`; on timeout kills it and returns `None`.
fn wait_with_timeout(child: &mut Child, timeout: Duration) -> std::io::Result<Option<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        if Instant::now() >= deadline {
            // Best effort: it may have exited just now; either way it is reaped below.
            let _ = child.kill();
            child.wait()?;
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut pipe) = pipe {
            // What could be read is what the judgement gets.
            let _ = pipe.read_to_string(&mut text);
        }
        text
    })
}

/// `ocap backup` through the daemon serving the store: it writes the copy between two
/// cranks, after committing every ended one. `dest` must be absolute (the daemon's working
/// directory is its own).
///
/// # Errors
/// [`CliError::Remote`] with the daemon's error (a destination that is not empty is a
/// usage error there too).
pub fn backup_through_daemon(session: &mut Session, dest: &Path) -> Result<(), CliError> {
    session.call("backup", json!({"dest": dest}))?;
    Ok(())
}

/// `ocap check` of a store a daemon serves: the daemon runs `check_running` (the page
/// walk in a child of its own, then the audit), allowed `timeout` for the walk. Returns
/// the text (or JSON) to print and how many violations the audit found.
///
/// # Errors
/// As [`Session::call`]: a damaged store or a walk that timed out comes back as the
/// daemon's error, of the same failure class as offline.
pub fn check_through_daemon(
    session: &mut Session,
    json: bool,
    timeout: Duration,
) -> Result<(String, usize), CliError> {
    let result = session.call("check", json!({"timeoutSecs": timeout.as_secs()}))?;
    let violations: Vec<String> = result["violations"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    if json {
        return Ok((result.to_string(), violations.len()));
    }
    let pages = &result["pages"];
    let field = |name: &str| pages[name].as_u64().unwrap_or_default();
    let walk = FileWalk {
        entries: field("entries"),
        bytes: field("bytes"),
        pages: field("pages"),
        page_size: u32::try_from(field("pageSize")).unwrap_or_default(),
    };
    Ok((render_text(&walk, &violations), violations.len()))
}

/// Writes a consistent, compacted copy of the store at `source` into directory `dest`,
/// which must be missing or empty; `ocap check DEST` then verifies it. Takes the store's
/// lock, so no kernel may run it meanwhile (online backup comes with the daemon).
///
/// # Errors
/// [`CliError::Store`]: the store is in use, missing or damaged, `dest` is not empty, or
/// the copy failed.
pub fn backup_store(source: &Path, dest: &Path) -> Result<(), CliError> {
    OfflineStore::open(source)?.backup_to(dest)?;
    Ok(())
}
