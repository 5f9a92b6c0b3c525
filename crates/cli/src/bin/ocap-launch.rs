//! `ocap-launch`: the confinement launcher of `ocap`'s vat workers, alone. The kernel runs
//! it as `ocap-launch confine-launch <policy> -- <program> <args>` (the same command line
//! `ocap confine-launch` takes); it confines its own process and `exec`s the worker's
//! program, or exits with `LAUNCH_FAILED` and the program has not run.
//!
//! Why a binary of its own, when `ocap` serves as well: a confined worker's start runs
//! the launcher first, and this one is a few hundred KiB of the confinement code (no
//! allocator of its own, no clap, no kernel), so the dynamic loader and the page faults of
//! its `exec` cost a fraction of those of the 34 MiB `ocap` (docs/confinement.md,
//! "Measured cost"). `ocap` uses it when it is installed beside it (`ocap_cli::launcher_for`).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    if args
        .next()
        .is_some_and(|first| first == ocap_kernel::LAUNCHER_COMMAND)
    {
        return ocap_kernel::launch_main(args);
    }
    eprintln!(
        "ocap-launch: the confinement launcher of ocap's vat workers, run by the kernel as \
         `ocap-launch {} <policy> -- <program> <args>`",
        ocap_kernel::LAUNCHER_COMMAND
    );
    ExitCode::from(ocap_kernel::LAUNCH_FAILED)
}
