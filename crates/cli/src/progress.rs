//! The progress display of a long `ocap run`: a spinner on standard error with the kernel's
//! crank count, shown only when standard error is a terminal and `--quiet` is not given,
//! so that pipes, logs and scripts never see it.

use std::io::IsTerminal;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use ocap_kernel::Kernel;

/// How often the spinner asks the kernel for its crank count.
const TICK: Duration = Duration::from_millis(120);

/// Whether a progress display may be shown: standard error is a terminal.
pub(crate) fn stderr_is_terminal() -> bool {
    std::io::stderr().is_terminal()
}

/// Runs `work` on `kernel`; if `show`, with a spinner that shows `what` and the kernel's
/// crank count until `work` returns. The spinner thread only reads the count (a job run
/// between two cranks), so the kernel does the same work either way.
pub(crate) fn with_progress<R>(
    kernel: &Kernel,
    show: bool,
    what: &str,
    work: impl FnOnce(&Kernel) -> R,
) -> R {
    if !show {
        return work(kernel);
    }
    // Prefix and message before the style, so that the first frame drawn has them.
    let spinner = ProgressBar::new_spinner()
        .with_prefix(what.to_owned())
        .with_message("starting");
    if let Ok(style) = ProgressStyle::with_template("{spinner} {prefix}: {msg} ({elapsed})") {
        spinner.set_style(style);
    }
    let (done, ticks) = mpsc::channel::<()>();
    let res = std::thread::scope(|scope| {
        let spinner = &spinner;
        scope.spawn(move || {
            // Until `work` is done (a message) or gone (the sender dropped).
            while let Err(RecvTimeoutError::Timeout) = ticks.recv_timeout(TICK) {
                if let Ok(cranks) = kernel.crank_count() {
                    spinner.set_message(format!("{cranks} cranks"));
                }
                spinner.tick();
            }
        });
        let res = work(kernel);
        let _ = done.send(());
        res
    });
    spinner.finish_and_clear();
    res
}
