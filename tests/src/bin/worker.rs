//! `ocap-test-worker worker <vat>`: the worker program of subprocess vats in the tests. It
//! serves every vat of `ocap_tests::registry()` (the example vats, `probe` and `driver`)
//! over the frame protocol on stdin/stdout, like `ocap worker`, plus vats that misbehave on
//! their first delivery: `bad-frame` (writes a frame that is not CBOR), `huge-frame`
//! (announces a frame over the size limit), `exit-now` (exits with status 3),
//! `exit-keeping-stdout` (starts a `sleep` that inherits its standard output, then exits
//! with status 4) and `leaky-error` (reports a delivery error whose text is shaped like
//! internal ids and a path). `attack-first` opens a TCP connection in `main`, before it
//! serves anything (confined, that ends it; trusted, it then serves a `probe`). With
//! `confine-launch` first, it is the confinement launcher
//! (`ocap_vat_manager::launch_main`), as `ocap` is.

use std::io::Write;
use std::process::ExitCode;

use ocap_types::{Delivery, DeliveryOutcome, VatHost, VatRuntime, VatStart};

/// How a protocol-breaking vat misbehaves.
#[derive(Debug, Clone, Copy)]
enum Breaker {
    BadFrame,
    HugeFrame,
    ExitNow,
    ExitKeepingStdout,
    LeakyError,
}

/// How long the child of `exit-keeping-stdout` holds the worker's standard output open:
/// longer than the delivery time limit of the test that uses it.
const ORPHAN_SECONDS: &str = "8";

impl VatRuntime for Breaker {
    fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, _: Delivery, _: &mut dyn VatHost) -> DeliveryOutcome {
        // Nothing of this delivery is buffered yet, so these bytes are the next frame the
        // kernel reads.
        let bytes: &[u8] = match self {
            Breaker::BadFrame => &[0, 0, 0, 3, 0xff, 0xff, 0xff],
            Breaker::HugeFrame => &[0x7f, 0xff, 0xff, 0xff],
            Breaker::ExitNow => std::process::exit(3),
            Breaker::ExitKeepingStdout => {
                // The child inherits stdout: the kernel's end of the socket sees no end of
                // stream while it lives, though this process is gone.
                if std::process::Command::new("sleep")
                    .arg(ORPHAN_SECONDS)
                    .spawn()
                    .is_err()
                {
                    return DeliveryOutcome::failed("cannot start sleep");
                }
                std::process::exit(4)
            }
            Breaker::LeakyError => {
                return DeliveryOutcome::failed("worker detail: ko1 o+2 p-3 v4 /etc/passwd");
            }
        };
        let mut out = std::io::stdout().lock();
        if out.write_all(bytes).and_then(|()| out.flush()).is_err() {
            return DeliveryOutcome::failed("cannot write the broken frame");
        }
        DeliveryOutcome::default()
    }
}

fn main() -> ExitCode {
    // This program is also the tests' confinement launcher (`ocap_tests::config`).
    let mut launcher_args = std::env::args_os().skip(1);
    if launcher_args
        .next()
        .is_some_and(|first| first == ocap_vat_manager::LAUNCHER_COMMAND)
    {
        return ocap_vat_manager::launch_main(launcher_args);
    }
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [command, vat] = args.as_slice() else {
        eprintln!("usage: ocap-test-worker worker <vat>");
        return ExitCode::from(2);
    };
    if command != "worker" {
        eprintln!("usage: ocap-test-worker worker <vat>");
        return ExitCode::from(2);
    }
    let runtime: Box<dyn VatRuntime> = match vat.as_str() {
        "bad-frame" => Box::new(Breaker::BadFrame),
        "huge-frame" => Box::new(Breaker::HugeFrame),
        "exit-now" => Box::new(Breaker::ExitNow),
        "exit-keeping-stdout" => Box::new(Breaker::ExitKeepingStdout),
        "leaky-error" => Box::new(Breaker::LeakyError),
        "attack-first" => {
            // Before any protocol: confinement holds from the program's first instruction.
            drop(std::net::TcpStream::connect("127.0.0.1:9"));
            Box::new(ocap_tests::Probe::default())
        }
        name => match ocap_tests::registry().get(name) {
            Some(factory) => factory(),
            None => ocap_vat::worker::unknown_vat(name),
        },
    };
    match ocap_vat::worker::serve_stdio(runtime) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ocap-test-worker: {error}");
            ExitCode::FAILURE
        }
    }
}
