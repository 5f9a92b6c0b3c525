//! `ocap serve`, `ocap daemon` and the commands that go through its control socket, run as
//! a user would: the binary in a temporary directory, its output and exit code, and the
//! socket spoken to directly where a test needs a misbehaving client. Every daemon a test
//! starts is killed when the test ends, and every wait has a deadline.
#![allow(clippy::unwrap_used)]

mod lifecycle;
mod protocol;
mod security;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

/// The most any one command, or a daemon's start, may take before the test fails.
const DEADLINE: Duration = Duration::from_secs(120);

/// A cluster whose root counts, durably: `resume()` answers `Counter incremented to: N`,
/// `tally()` hands out a durable object whose `add(n)` answers its total.
const COUNTER: &str = r#"{"bootstrap": "counter",
    "vats": {"counter": {"bundleName": "persistence-counter"}}}"#;

/// What a run of `ocap` left.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn assert_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    fn json(&self) -> Json {
        serde_json::from_str(self.stdout.trim()).unwrap()
    }
}

/// A temporary directory holding a store, a cluster file and the default-store home.
struct Place {
    dir: tempfile::TempDir,
    store: PathBuf,
}

impl Place {
    fn new() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("store");
        fs::write(dir.path().join("counter.json"), COUNTER).unwrap();
        Place { dir, store }
    }

    fn cluster(&self) -> PathBuf {
        self.dir.path().join("counter.json")
    }

    /// Runs `ocap args... --store <store>`.
    fn ocap(&self, args: &[&str]) -> Run {
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        all.push("--store".as_ref());
        all.push(self.store.as_os_str());
        ocap_in(self.dir.path(), &all)
    }

    /// `ocap serve` on the store, as a child of this test, ready to answer.
    fn serve(&self) -> Served {
        self.serve_through(Command::new(env!("CARGO_BIN_EXE_ocap")))
    }

    /// [`Place::serve`] with `command` as the `ocap` to run (a wrapper such as `setpriv`,
    /// with `ocap` as its last argument).
    fn serve_through(&self, mut command: Command) -> Served {
        let log = fs::File::create(self.dir.path().join("serve.log")).unwrap();
        let child = command
            .arg("serve")
            .arg("--store")
            .arg(&self.store)
            .env("XDG_DATA_HOME", self.dir.path().join("data"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let served = Served { child };
        let started = Instant::now();
        loop {
            if record(&self.store).is_some_and(|r| r["pid"] == served.child.id())
                && Client::try_connect(&self.store).is_some()
            {
                return served;
            }
            assert!(started.elapsed() < DEADLINE, "ocap serve did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Launches the counter cluster; returns its root.
    fn launch_counter(&self) -> String {
        let run = self.ocap(&["launch", self.cluster().to_str().unwrap(), "--json"]);
        run.assert_code(0);
        let launched = run.json();
        assert_eq!(
            launched["bootstrapResult"]["body"],
            "Counter initialized with count: 1"
        );
        launched["root"].as_str().unwrap().to_owned()
    }
}

/// Runs `ocap args...` in `dir` (its default store there too), killing it (and failing)
/// past [`DEADLINE`].
fn ocap_in(dir: &Path, args: &[&std::ffi::OsStr]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ocap"))
        .args(args)
        .current_dir(dir)
        .env("XDG_DATA_HOME", dir.join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            pipe.read_to_string(&mut text).unwrap();
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > DEADLINE {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("ocap {args:?} did not finish within {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Run {
        code: status.code(),
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// The store's daemon record, if any.
fn record(store: &Path) -> Option<Json> {
    serde_json::from_slice(&fs::read(store.join("daemon.json")).ok()?).ok()
}

/// An `ocap serve` child, SIGKILLed when dropped unless it exited.
struct Served {
    child: Child,
}

impl Served {
    /// Kills it with SIGKILL, as a crash would.
    fn kill(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends it `signal`.
    fn signal(&self, signal: rustix::process::Signal) {
        let pid = rustix::process::Pid::from_child(&self.child);
        rustix::process::kill_process(pid, signal).unwrap();
    }

    /// Waits for it to exit (after `ocap daemon stop`), failing past the deadline.
    fn wait_exit(mut self) -> Option<i32> {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(started.elapsed() < DEADLINE, "ocap serve did not exit");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A daemon started in the background by `ocap daemon start` (not our child): killed by
/// pid when dropped.
struct Background {
    pid: i32,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(pid) = rustix::process::Pid::from_raw(self.pid) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
        }
    }
}

/// A client speaking the control protocol by hand.
struct Client {
    stream: UnixStream,
    reader: BufReader<UnixStream>,
    next_id: u64,
}

impl Client {
    fn try_connect(store: &Path) -> Option<Client> {
        let socket = record(store)?["socket"].as_str()?.to_owned();
        let stream = UnixStream::connect(socket).ok()?;
        stream.set_read_timeout(Some(DEADLINE)).unwrap();
        let reader = BufReader::new(stream.try_clone().unwrap());
        Some(Client {
            stream,
            reader,
            next_id: 1,
        })
    }

    /// Connects and says hello.
    fn connect(store: &Path) -> Client {
        let mut client = Client::try_connect(store).unwrap();
        let hello = client.call("hello", json!({"protocol": 1}));
        assert_eq!(hello["result"]["protocol"], 1, "{hello}");
        client
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next reply line, parsed.
    fn reply(&mut self) -> Json {
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.ends_with('\n'), "no whole reply: {line:?}");
        serde_json::from_str(&line).unwrap()
    }

    /// Sends a request and returns the whole reply (`result` or `error`).
    fn call(&mut self, method: &str, params: Json) -> Json {
        let id = self.next_id;
        self.next_id += 1;
        let request = json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params});
        self.send_raw(format!("{request}\n").as_bytes());
        let reply = self.reply();
        assert_eq!(reply["id"], id, "{reply}");
        reply
    }
}
