//! One store, one process: a second opener is refused, and the lock dies with its holder.

use super::*;

/// Opens a kernel on `path`, expecting a refusal; the error's text.
fn refused_open(path: &Path) -> String {
    match Kernel::open(path, config()) {
        Ok(kernel) => {
            kernel.shutdown().unwrap();
            panic!("a second kernel opened a store in use");
        }
        Err(error) => error.to_string(),
    }
}

/// Checks that `text` says the store is in use by process `pid`.
#[track_caller]
fn assert_in_use_by(text: &str, pid: u32) {
    assert!(text.contains("is in use"), "not an in-use error: {text}");
    assert!(
        text.contains(&format!("process {pid}")),
        "the holder's pid {pid} is not named: {text}"
    );
}

/// The persistence counter's answer to `resume`.
fn resume(kernel: &Kernel, counter: KRef) -> Value {
    call(kernel, counter, "resume", vec![]).unwrap()
}

/// `child`'s exit status, waiting at most [`WAIT`]; `None` if it did not exit by then.
fn wait_at_most(mut child: Child) -> Option<ExitStatus> {
    let (status_tx, status) = mpsc::channel();
    std::thread::spawn(move || status_tx.send(child.wait()));
    status.recv_timeout(WAIT).ok()?.ok()
}

/// An `ocap-test-kernel hold` process with the store open. Dropping it kills it (SIGKILL),
/// so a failed assertion never leaves a process holding the directory.
struct Holder {
    child: Option<Child>,
    pid: u32,
}

impl Holder {
    /// Starts the holder on `path` and returns once its kernel is open and idle.
    fn start(path: &Path) -> Holder {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ocap-test-kernel"))
            .arg(path)
            .arg("hold")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let holder = Holder {
            pid: child.id(),
            child: Some(child),
        };
        let (lines_tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if lines_tx.send(line.unwrap_or_default()).is_err() {
                    break;
                }
            }
        });
        // Crank counts, then `idle`. A child that exits closes the channel, and one that
        // hangs runs into the timeout: either fails the test (and `holder` kills it).
        loop {
            match lines.recv_timeout(WAIT) {
                Ok(line) if line == "idle" => return holder,
                Ok(_) => {}
                Err(error) => panic!("ocap-test-kernel did not get the store open: {error}"),
            }
        }
    }

    /// Kills the holder with SIGKILL, as a crash would, and waits until it is gone.
    fn kill(mut self) {
        let mut child = self.child.take().unwrap();
        child.kill().unwrap();
        assert!(
            wait_at_most(child).is_some(),
            "the killed holder did not exit"
        );
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = wait_at_most(child);
        }
    }
}

#[test]
fn a_second_kernel_cannot_open_a_store_in_use() {
    let test = TestKernel::new();
    let counter = test
        .launch(&cluster(&[("counter", "persistence-counter")]))
        .root;
    let text = refused_open(test.dir.path());
    assert_in_use_by(&text, std::process::id());
    // The refused opener disturbed neither the holder nor its store.
    assert_eq!(
        resume(&test.kernel, counter),
        Value::Str("Counter incremented to: 2".to_owned())
    );
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    // Shutting down releases the store: it opens again, with its state.
    let kernel = Kernel::open(dir.path(), config()).unwrap();
    assert_eq!(
        resume(&kernel, counter),
        Value::Str("Counter incremented to: 3".to_owned())
    );
    kernel.shutdown().unwrap();
}

#[test]
fn a_second_process_cannot_open_a_store_in_use() {
    let test = TestKernel::new();
    let counter = test
        .launch(&cluster(&[("counter", "persistence-counter")]))
        .root;
    let TestKernel { kernel, dir, .. } = test;
    kernel.shutdown().unwrap();
    let holder = Holder::start(dir.path());
    let text = refused_open(dir.path());
    assert_in_use_by(&text, holder.pid);
    // A holder killed by SIGKILL gets no chance to clean up; the OS releases its lock.
    holder.kill();
    let kernel = Kernel::open(dir.path(), config()).unwrap();
    assert_eq!(
        resume(&kernel, counter),
        Value::Str("Counter incremented to: 2".to_owned())
    );
    kernel.shutdown().unwrap();
}
