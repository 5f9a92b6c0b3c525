//! The worker's sockets as the kernel thread uses them: every read and write bounded by the
//! request's deadline, and a reader that tells a dead worker from a slow one.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::process::Child;
use std::time::{Duration, Instant};

use super::EXIT_CHECK;

/// A socket whose every blocking read or write ends by `deadline` (with `TimedOut` once it
/// has passed; `None` is no deadline). While `polling`, a read that would block says so
/// (`WouldBlock`). Otherwise it blocks until the deadline; the socket is switched to
/// blocking mode only when a read actually has to wait, so a delivery answered while
/// polling costs no mode switch.
#[derive(Debug)]
pub(super) struct Bounded {
    pub(super) socket: UnixStream,
    pub(super) deadline: Option<Instant>,
    pub(super) polling: bool,
    /// Whether the socket is in non-blocking mode now.
    pub(super) nonblocking: bool,
}

impl Bounded {
    pub(super) fn new(socket: UnixStream) -> Self {
        Bounded {
            socket,
            deadline: Some(Instant::now()),
            polling: false,
            nonblocking: false,
        }
    }

    /// The time left until the deadline, `None` without one.
    pub(super) fn left(&self) -> io::Result<Option<Duration>> {
        let Some(deadline) = self.deadline else {
            return Ok(None);
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ErrorKind::TimedOut.into());
        }
        Ok(Some(left))
    }

    /// Reads, waiting at most `slice` (and never past the deadline).
    pub(super) fn read_for(&mut self, buf: &mut [u8], slice: Duration) -> io::Result<usize> {
        if self.nonblocking {
            match self.socket.read(buf) {
                Err(e) if e.kind() == ErrorKind::WouldBlock && !self.polling => {
                    self.socket.set_nonblocking(false)?;
                    self.nonblocking = false;
                }
                res => return res,
            }
        }
        let wait = self.left()?.map_or(slice, |left| left.min(slice));
        self.socket.set_read_timeout(Some(wait))?;
        self.socket.read(buf)
    }
}

impl Write for Bounded {
    /// Writes without waiting first (one `send`: the socket's buffer almost always has
    /// room for a delivery); only a write that would block switches the socket to blocking
    /// with the time left as its timeout, and the next write switches it back.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.nonblocking {
            self.socket.set_nonblocking(true)?;
            self.nonblocking = true;
        }
        match self.socket.write(buf) {
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let left = self.left()?;
                self.socket.set_nonblocking(false)?;
                self.nonblocking = false;
                self.socket.set_write_timeout(left)?;
                self.socket.write(buf)
            }
            res => res,
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The worker's output socket, with the worker: a read that waits wakes every
/// [`EXIT_CHECK`] to see whether the worker has exited, because a process the worker
/// started may hold the socket open after it, and the read would then wait for the
/// deadline and report the exit as a timeout.
#[derive(Debug)]
pub(super) struct Output {
    pub(super) socket: Bounded,
    pub(super) child: Child,
}

/// The error of a read that found the worker exited.
#[derive(Debug, thiserror::Error)]
#[error("the vat worker exited")]
pub(super) struct WorkerExited;

impl Read for Output {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.socket.read_for(buf, EXIT_CHECK) {
                Err(e) if is_timeout(&e) && !self.socket.polling && self.socket.left().is_ok() => {
                    if matches!(self.child.try_wait(), Ok(Some(_))) {
                        return Err(io::Error::other(WorkerExited));
                    }
                }
                res => return res,
            }
        }
    }
}

pub(super) fn is_timeout(error: &io::Error) -> bool {
    matches!(error.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

pub(super) fn is_exit(error: &io::Error) -> bool {
    error
        .get_ref()
        .is_some_and(|inner| inner.is::<WorkerExited>())
}
