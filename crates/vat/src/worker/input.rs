//! The kernel's input as a worker reads it: on Linux, when it is a socket (as the kernel
//! makes it), a read that finds nothing waiting polls for up to [`SPIN`] before it sleeps.
//!
//! Why: a worker that sleeps in `read` must be woken for every delivery, and on our 2-core
//! VMs a wake-up costs more than the rest of the round trip; the kernel's thread polls for
//! the worker's answer for the same reason (`ocap_vat_manager::SubprocessRuntime`). In a
//! ping-pong the next delivery for a worker comes one crank of another vat later, well
//! within [`SPIN`]. A poll is one non-blocking `recv` (`MSG_DONTWAIT`, which the worker's
//! seccomp filter allows; nothing switches the socket's mode) and a `sched_yield`, so a
//! worker that waits spends at most [`SPIN`] of CPU after each answer before it sleeps.

use std::fs::File;
use std::io::{self, Read};
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

/// How long a read polls before it sleeps.
#[cfg(target_os = "linux")]
const SPIN: Duration = Duration::from_micros(100);

/// The worker's input: a file (a pipe, a socket) read as it is, or polled first.
#[derive(Debug)]
pub(super) struct Input {
    file: File,
    /// Whether reads poll first (the input is a socket).
    polls: bool,
}

impl Input {
    pub(super) fn new(file: File) -> Self {
        #[cfg(target_os = "linux")]
        let polls = {
            use std::os::unix::fs::FileTypeExt;
            file.metadata()
                .is_ok_and(|meta| meta.file_type().is_socket())
        };
        #[cfg(not(target_os = "linux"))]
        let polls = false;
        Input { file, polls }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if self.polls && !buf.is_empty() {
            use rustix::net::{RecvFlags, recv};
            let until = Instant::now() + SPIN;
            loop {
                match recv(&self.file, &mut *buf, RecvFlags::DONTWAIT) {
                    Ok((n, _)) => return Ok(n),
                    Err(rustix::io::Errno::AGAIN) if Instant::now() < until => {
                        std::thread::yield_now();
                    }
                    Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => break,
                    Err(error) => return Err(error.into()),
                }
            }
        }
        self.file.read(buf)
    }
}
