//! `ocap-test-kernel <store> [group|hold|acks-every|acks-group <probe>]`: opens the tests'
//! kernel (`ocap_tests::config()`)
//! on an existing store, which relaunches its vats and resumes its queued work, and prints
//! the kernel's crank count on stdout, one line at a time, until the kernel is idle; then it
//! prints `idle` and exits. With `group`, cranks share synced commits (group commit). With
//! `hold`, it keeps the kernel (and so the store) open after `idle` until its stdin closes.
//! The crash test kills it with SIGKILL at chosen crank counts; the trust tests kill a
//! holding one. With `acks-every` or `acks-group` (every-crank or group durability) it
//! sends `count()` to the probe object `<probe>` without end, printing `queued <kp>` when
//! the kernel accepts each message and `count <n>` when its result arrives: the kill sweep
//! checks that whatever it printed survives a SIGKILL.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use ocap_kernel::{Kernel, KernelError};
use ocap_store::Durability;

fn run(path: &str, group: bool, hold: bool) -> Result<(), KernelError> {
    let mut config = ocap_tests::config();
    if group {
        config.durability = Durability::Group {
            max_cranks: 16,
            max_delay: Duration::from_millis(20),
        };
    }
    let kernel = Kernel::open(std::path::Path::new(path), config)?;
    let mut out = std::io::stdout().lock();
    loop {
        let cranks = kernel.crank_count()?;
        // The reader may be gone (it killed us, or gave up): nothing to report to then.
        let _ = writeln!(out, "{cranks}").and_then(|()| out.flush());
        match kernel.run_until_idle(Duration::from_millis(1)) {
            Ok(()) => break,
            Err(KernelError::Timeout) => {}
            Err(error) => return Err(error),
        }
    }
    let _ = writeln!(out, "idle").and_then(|()| out.flush());
    if hold {
        // Blocks until the parent closes our stdin (or kills us); what is read is ignored.
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
    }
    kernel.shutdown()
}

/// Counts on `probe` until killed, reporting each accepted message and each result.
fn acks(path: &str, group: bool, probe: &str) -> Result<(), KernelError> {
    let mut config = ocap_tests::config();
    config.durability = if group {
        Durability::Group {
            max_cranks: 64,
            max_delay: Duration::from_millis(30),
        }
    } else {
        Durability::EveryCrank
    };
    let kernel = Kernel::open(std::path::Path::new(path), config)?;
    let probe: ocap_kernel::KRef = probe.parse().map_err(ocap_kernel::InputError::from)?;
    let mut out = std::io::stdout().lock();
    loop {
        let handle = kernel.queue_message(probe, "count", Vec::new())?;
        let promise = handle.promise()?;
        let _ = writeln!(out, "queued {promise}").and_then(|()| out.flush());
        let value = handle.wait(Duration::from_secs(20))?;
        let n = value.decode().ok().and_then(|v| v.as_int()).unwrap_or(-1);
        let _ = writeln!(out, "count {n}").and_then(|()| out.flush());
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: ocap-test-kernel <store directory> [group|hold]");
        return ExitCode::from(2);
    };
    let mode = args.next();
    let res = match mode.as_deref() {
        Some(acks_mode @ ("acks-every" | "acks-group")) => {
            let probe = args.next().unwrap_or_default();
            acks(&path, acks_mode == "acks-group", &probe)
        }
        _ => run(
            &path,
            mode.as_deref() == Some("group"),
            mode.as_deref() == Some("hold"),
        ),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ocap-test-kernel: {error}");
            ExitCode::FAILURE
        }
    }
}
