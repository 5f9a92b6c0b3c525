//! Where the control socket lives and who may use it.
//!
//! The socket is `<store>/control/ocap.sock`, in a directory made `0700` under a `077`
//! umask and bound under a `177` umask (so it is `0600` from its first instant: no window
//! between creation and a chmod). A store path too long for `sun_path` gets the socket in a
//! fresh `0700` directory with a random name under `$XDG_RUNTIME_DIR` (or the temporary
//! directory). Either way its path is recorded in `<store>/daemon.json`, which clients
//! read. Both ends check the other's uid (`SO_PEERCRED`): only the daemon's own user may
//! talk to it, and a client talks only to a daemon of its own user.

use std::fs::{self, DirBuilder};
use std::io;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use rustix::fs::Mode;
use serde_json::{Value as Json, json};

/// The directory in the store that holds the socket when its path is short enough.
const CONTROL_DIR: &str = "control";
/// The socket's file name.
const SOCKET_NAME: &str = "ocap.sock";
/// The record of the running daemon, in the store directory.
pub(crate) const RECORD_FILE: &str = "daemon.json";
/// The daemon's log, in the store directory (`ocap daemon start`).
pub(crate) const LOG_FILE: &str = "daemon.log";
/// The longest socket path `sun_path` takes (108 bytes on Linux, one for the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// What `<store>/daemon.json` says about the daemon serving the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DaemonRecord {
    pub(crate) pid: u32,
    pub(crate) socket: PathBuf,
    pub(crate) protocol: u64,
}

impl DaemonRecord {
    /// Reads the record of `store`; `None` if there is none or it is unreadable (a daemon
    /// killed mid-write leaves no record: it is written whole by rename).
    pub(crate) fn read(store: &Path) -> Option<DaemonRecord> {
        let text = fs::read(store.join(RECORD_FILE)).ok()?;
        let json: Json = serde_json::from_slice(&text).ok()?;
        Some(DaemonRecord {
            pid: u32::try_from(json.get("pid")?.as_u64()?).ok()?,
            socket: PathBuf::from(json.get("socket")?.as_str()?),
            protocol: json.get("protocol")?.as_u64()?,
        })
    }

    /// Writes the record into `store` whole: a temporary file renamed into place.
    fn write(&self, store: &Path) -> io::Result<()> {
        let text = json!({
            "pid": self.pid,
            "socket": self.socket.to_string_lossy(),
            "protocol": self.protocol,
        })
        .to_string();
        let temp = store.join(format!("{RECORD_FILE}.tmp"));
        fs::write(&temp, text)?;
        fs::rename(&temp, store.join(RECORD_FILE))
    }
}

/// The daemon's bound socket, and what to remove when it stops.
#[derive(Debug)]
pub(crate) struct ControlSocket {
    pub(crate) listener: UnixListener,
    pub(crate) path: PathBuf,
    store: PathBuf,
    /// The random directory holding the socket, when the store's path was too long.
    outside_dir: Option<PathBuf>,
}

impl ControlSocket {
    /// Binds the control socket of `store` (whose lock the caller holds, so no other daemon
    /// uses it: what an earlier daemon left is removed) and records it for clients.
    pub(crate) fn bind(store: &Path, protocol: u64) -> io::Result<ControlSocket> {
        remove_leftovers(store);
        // Everything the daemon creates is its user's alone; no chmod afterwards.
        rustix::process::umask(Mode::from_raw_mode(0o077));
        let control = store.join(CONTROL_DIR);
        let _ = fs::remove_dir_all(&control);
        let inside = control.join(SOCKET_NAME);
        let (path, outside_dir) = if inside.as_os_str().len() <= MAX_SOCKET_PATH {
            DirBuilder::new().mode(0o700).create(&control)?;
            (inside, None)
        } else {
            let dir = outside_dir()?;
            (dir.join(SOCKET_NAME), Some(dir))
        };
        if path.as_os_str().len() > MAX_SOCKET_PATH {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no socket path short enough: {}", path.display()),
            ));
        }
        // A socket file gets 0777 less the umask: 0600 with this one.
        rustix::process::umask(Mode::from_raw_mode(0o177));
        let listener = UnixListener::bind(&path);
        rustix::process::umask(Mode::from_raw_mode(0o077));
        let listener = listener?;
        DaemonRecord {
            pid: std::process::id(),
            socket: path.clone(),
            protocol,
        }
        .write(store)?;
        Ok(ControlSocket {
            listener,
            path,
            store: store.to_path_buf(),
            outside_dir,
        })
    }

    /// Removes the record, the socket and its directory.
    pub(crate) fn remove(&self) {
        let _ = fs::remove_file(self.store.join(RECORD_FILE));
        let _ = fs::remove_file(&self.path);
        match &self.outside_dir {
            Some(dir) => {
                let _ = fs::remove_dir(dir);
            }
            None => {
                let _ = fs::remove_dir(self.store.join(CONTROL_DIR));
            }
        }
    }
}

/// Removes what a daemon killed before it could clean up left: its record, and its socket
/// with the random directory around it if that was outside the store.
fn remove_leftovers(store: &Path) {
    if let Some(record) = DaemonRecord::read(store) {
        let in_store = record.socket.starts_with(store);
        if !in_store && record.socket.file_name() == Some(SOCKET_NAME.as_ref()) {
            let _ = fs::remove_file(&record.socket);
            if let Some(dir) = record.socket.parent() {
                let _ = fs::remove_dir(dir);
            }
        }
    }
    let _ = fs::remove_file(store.join(RECORD_FILE));
}

/// A fresh `0700` directory with a random name for a socket whose store path is too long.
fn outside_dir() -> io::Result<PathBuf> {
    let base = std::env::var_os("XDG_RUNTIME_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute() && dir.is_dir())
        .unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix("ocap-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .tempdir_in(base)?;
    Ok(dir.keep())
}

/// The uid of the process at the other end of `stream`.
pub(crate) fn peer_uid(stream: &UnixStream) -> io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(stream)?.uid.as_raw())
}

/// This process's uid.
pub(crate) fn own_uid() -> u32 {
    rustix::process::getuid().as_raw()
}
