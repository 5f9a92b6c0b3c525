//! `ocap run`: launch a cluster file's subcluster, run to idle, report the bootstrap result.

#[cfg(test)]
mod tests;

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ocap_kernel::{
    CapData, ClusterConfig, Confinement, Durability, KRef, Kernel, KernelConfig, Value, VatRegistry,
};

use crate::CliError;
use crate::crank_log::{CrankLogOptions, open_crank_log};
use crate::inspect::value_json;
use crate::progress::{stderr_is_terminal, with_progress};

/// The largest cluster file `ocap run` reads (16 MiB). A cluster config is a few kilobytes;
/// the limit keeps a wrong path (`/dev/urandom`, a disk image) from being read without end.
pub const MAX_CLUSTER_FILE: u64 = 16 * 1024 * 1024;

/// How to run a cluster.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The store directory; `None` for a fresh temporary one.
    pub store: Option<PathBuf>,
    /// Group commits instead of syncing every crank.
    pub group_commit: bool,
    /// How long to wait for bootstrap and for the kernel to go idle.
    pub timeout: Duration,
    /// The program subprocess vats run in (`<program> worker <vat>`); `ocap run` passes its
    /// own executable. `None`: a cluster with a subprocess vat fails to launch.
    pub worker_program: Option<PathBuf>,
    /// Show a spinner with the crank count on standard error while the cluster runs, if
    /// standard error is a terminal (never otherwise).
    pub progress: bool,
    /// Write the crank log here (`--crank-log`).
    pub crank_log: Option<CrankLogOptions>,
    /// How worker processes are confined: always by default, through `launcher` (`ocap
    /// run` passes its own executable and the operator's flags).
    pub confinement: Confinement,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            store: None,
            group_commit: false,
            timeout: Duration::from_secs(60),
            worker_program: None,
            progress: false,
            crank_log: None,
            confinement: Confinement::default(),
        }
    }
}

/// The vats compiled into this binary.
pub fn registry() -> VatRegistry {
    let mut registry = VatRegistry::new();
    for (name, factory) in ocap_example_vats::registry() {
        registry.register(name, factory);
    }
    registry
}

/// Parses a cluster config from JSON text and validates it.
///
/// # Errors
/// [`CliError::Parse`] with what is wrong.
pub fn parse_cluster(text: &str) -> Result<ClusterConfig, CliError> {
    let config: ClusterConfig =
        serde_json::from_str(text).map_err(|e| CliError::Parse(e.to_string()))?;
    config
        .validate()
        .map_err(|e| CliError::Parse(e.to_string()))?;
    Ok(config)
}

/// Parses a cluster config from a JSON value (a `launch` request's) and validates it.
///
/// # Errors
/// [`CliError::Parse`] with what is wrong.
pub fn parse_cluster_json(json: &serde_json::Value) -> Result<ClusterConfig, CliError> {
    let config: ClusterConfig =
        serde_json::from_value(json.clone()).map_err(|e| CliError::Parse(e.to_string()))?;
    config
        .validate()
        .map_err(|e| CliError::Parse(e.to_string()))?;
    Ok(config)
}

/// Runs the cluster in `path` (`-`: standard input) and returns its bootstrap result.
///
/// # Errors
/// [`CliError`] when the file is unreadable, too large or invalid, or the kernel fails
/// (including a failed launch or bootstrap).
pub fn run_cluster(path: &Path, options: &RunOptions) -> Result<CapData<KRef>, CliError> {
    let config = parse_cluster_json(&read_cluster_json(path)?)?;
    let temp;
    let store = match &options.store {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().map_err(CliError::TempDir)?;
            temp.path().to_path_buf()
        }
    };
    let mut kernel_config = KernelConfig::new(registry());
    kernel_config.bootstrap_timeout = options.timeout;
    kernel_config.workers.program = options.worker_program.clone();
    kernel_config.workers.confinement = options.confinement.clone();
    // Unless one is named, the launcher is `ocap-launch` beside the worker program (`ocap`),
    // or the program itself ([`crate::launcher_for`]).
    if kernel_config.workers.confinement.launcher.is_none() {
        kernel_config.workers.confinement.launcher =
            options.worker_program.as_deref().map(crate::launcher_for);
    }
    if options.group_commit {
        kernel_config.durability = Durability::GROUP;
    }
    let show = options.progress && stderr_is_terminal();
    let Some(log) = &options.crank_log else {
        return run_kernel(&store, kernel_config, &config, options.timeout, show);
    };
    let (sink, writer) = open_crank_log(log)?;
    kernel_config.crank_log = Some(sink);
    let res = run_kernel(&store, kernel_config, &config, options.timeout, show);
    // The kernel is gone, with the sink it held: the writer ends once it wrote everything.
    writer.finish(&log.path)?;
    res
}

/// Opens the kernel, launches `config`, runs it until idle (with a spinner if `show`) and
/// shuts the kernel down.
fn run_kernel(
    store: &Path,
    kernel_config: KernelConfig,
    config: &ClusterConfig,
    timeout: Duration,
    show: bool,
) -> Result<CapData<KRef>, CliError> {
    let kernel = Kernel::open(store, kernel_config)?;
    let launched = with_progress(&kernel, show, "running", |kernel| {
        let launched = kernel.launch_subcluster(config)?;
        kernel.run_until_idle(timeout)?;
        Ok::<_, CliError>(launched)
    })?;
    kernel.shutdown()?;
    Ok(launched.bootstrap_result)
}

/// Reads a cluster file ([`read_cluster_file`]) as JSON, with every vat's `bundlePath`
/// made absolute: a relative one is relative to the folder of the cluster file (to the
/// current directory for standard input, `-`), never to the kernel's working directory,
/// which for a daemon is another. The kernel refuses relative paths.
///
/// # Errors
/// As [`read_cluster_file`]; [`CliError::Parse`] when the text is not JSON.
pub(crate) fn read_cluster_json(path: &Path) -> Result<serde_json::Value, CliError> {
    let text = read_cluster_file(path)?;
    let mut json: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CliError::Parse(e.to_string()))?;
    let folder = match path.parent() {
        Some(folder) if path != Path::new(STDIN) && !folder.as_os_str().is_empty() => folder,
        _ => Path::new("."),
    };
    let Some(vats) = json.get_mut("vats").and_then(|vats| vats.as_object_mut()) else {
        return Ok(json);
    };
    for vat in vats.values_mut() {
        let Some(bundle_path) = vat.get_mut("bundlePath") else {
            continue;
        };
        if let Some(relative) = bundle_path.as_str().filter(|p| Path::new(p).is_relative()) {
            let joined = folder.join(relative);
            // The real path when the executable exists; otherwise the kernel reports it
            // missing, by the absolute path the file named.
            let absolute = joined
                .canonicalize()
                .or_else(|_| std::path::absolute(&joined))
                .map_err(|source| CliError::Read {
                    path: joined.clone(),
                    source,
                })?;
            *bundle_path = serde_json::Value::String(absolute.to_string_lossy().into_owned());
        }
    }
    Ok(json)
}

/// Reads a cluster file of at most [`MAX_CLUSTER_FILE`] bytes: a larger regular file is
/// refused before it is read, and any other source (a pipe, a device, standard input for
/// the path `-`) once it has given more than that.
pub(crate) fn read_cluster_file(path: &Path) -> Result<String, CliError> {
    if path == Path::new(STDIN) {
        return read_capped(io::stdin().lock(), Path::new("standard input"));
    }
    let read_error = |source| CliError::Read {
        path: path.to_path_buf(),
        source,
    };
    let file = File::open(path).map_err(read_error)?;
    if file
        .metadata()
        .is_ok_and(|meta| meta.is_file() && meta.len() > MAX_CLUSTER_FILE)
    {
        return Err(CliError::TooLarge {
            path: path.to_path_buf(),
            max: MAX_CLUSTER_FILE,
        });
    }
    read_capped(file, path)
}

/// The cluster-file path that means standard input.
const STDIN: &str = "-";

/// Reads at most [`MAX_CLUSTER_FILE`] bytes of UTF-8 from `source`, named `path` in errors.
fn read_capped(source: impl Read, path: &Path) -> Result<String, CliError> {
    let read_error = |source| CliError::Read {
        path: path.to_path_buf(),
        source,
    };
    let too_large = || CliError::TooLarge {
        path: path.to_path_buf(),
        max: MAX_CLUSTER_FILE,
    };
    let mut bytes = Vec::new();
    source
        .take(MAX_CLUSTER_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_error)?;
    if bytes.len() as u64 > MAX_CLUSTER_FILE {
        return Err(too_large());
    }
    String::from_utf8(bytes).map_err(|e| read_error(io::Error::new(io::ErrorKind::InvalidData, e)))
}

/// Renders a result for the terminal: a string as it is (a bootstrap that reports in words
/// reads as words), any other value as its JSON form ([`Value::to_json_string`]: records
/// as objects, strings inside quoted, a reference as `{"@slot":[index,iface]}` whose kref
/// is `result.slots[index]`), so that scripts can parse it.
pub fn render(result: &CapData<KRef>) -> String {
    match result.decode() {
        Ok(Value::Str(text)) => text,
        Ok(value) => value.to_json_string(),
        Err(e) => format!("<undecodable result: {e}>"),
    }
}

/// Renders a result as JSON for tools: `{"body": value, "slots": [kref...]}`, the form
/// `ocap send --json` and the control protocol use.
pub fn render_json(result: &CapData<KRef>) -> String {
    value_json(result).to_string()
}
