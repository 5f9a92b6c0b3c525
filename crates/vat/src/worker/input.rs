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
//!
//! Polling only pays when the next request comes soon; on a machine whose cores are busy it
//! takes CPU the kernel's thread needs. So it adapts: a read that found bytes while polling
//! restores the full window, one that had to sleep shrinks it by an eighth of the full
//! window, so that eight misses in a row close it; with none, every [`PROBE_EVERY`]th read
//! polls again with the full window to see whether it pays again. (Halving it at each miss
//! lost a sixth of the rate when polling paid: single misses are common then.)

use std::fs::File;
use std::io::{self, Read};
#[cfg(target_os = "linux")]
use std::time::{Duration, Instant};

/// The longest a read polls before it sleeps.
#[cfg(target_os = "linux")]
const SPIN: Duration = Duration::from_micros(100);

/// What a read that had to sleep takes off the window.
#[cfg(target_os = "linux")]
const SHRINK: Duration = Duration::from_micros(100 / 8);

/// With no window, every this many reads polls again.
#[cfg(target_os = "linux")]
const PROBE_EVERY: u32 = 64;

/// The worker's input: a file (a pipe, a socket) read as it is, or polled first.
#[derive(Debug)]
pub(super) struct Input {
    file: File,
    /// Whether reads poll first (the input is a socket).
    polls: bool,
    /// How long the next read polls (adapted, see the module docs).
    #[cfg(target_os = "linux")]
    window: Duration,
    /// Reads since the window closed.
    #[cfg(target_os = "linux")]
    idle_reads: u32,
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
        Input {
            file,
            polls,
            #[cfg(target_os = "linux")]
            window: SPIN,
            #[cfg(target_os = "linux")]
            idle_reads: 0,
        }
    }

    /// Polls for up to the window; `None` when nothing came (the caller then sleeps).
    #[cfg(target_os = "linux")]
    fn poll(&mut self, buf: &mut [u8]) -> Option<io::Result<usize>> {
        use rustix::net::{RecvFlags, recv};
        let mut window = self.window;
        if window.is_zero() {
            self.idle_reads += 1;
            if self.idle_reads < PROBE_EVERY {
                return None;
            }
            self.idle_reads = 0;
            window = SPIN;
        }
        let until = Instant::now() + window;
        loop {
            match recv(&self.file, &mut *buf, RecvFlags::DONTWAIT) {
                Ok((n, _)) => {
                    self.window = SPIN;
                    return Some(Ok(n));
                }
                Err(rustix::io::Errno::AGAIN) if Instant::now() < until => {
                    std::thread::yield_now();
                }
                Err(rustix::io::Errno::AGAIN | rustix::io::Errno::INTR) => {
                    // A probe that missed leaves the window closed; a miss in an open
                    // window narrows it.
                    if !self.window.is_zero() {
                        self.window = window.saturating_sub(SHRINK);
                    }
                    return None;
                }
                Err(error) => return Some(Err(error.into())),
            }
        }
    }
}

impl Read for Input {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        #[cfg(target_os = "linux")]
        if self.polls
            && !buf.is_empty()
            && let Some(read) = self.poll(buf)
        {
            return read;
        }
        self.file.read(buf)
    }
}
