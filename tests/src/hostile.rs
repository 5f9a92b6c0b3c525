//! `hostile`: a vat that tries what a confined worker must not do, and answers each attempt
//! with `"ok"` if it worked, `"denied"` if the system refused it (permission denied, not
//! permitted) or `"failed: <kind>"` otherwise. Written against the vat protocol (no SDK).
//! In the kernel's process it is trusted code like any in-process vat: only a worker is
//! confined.
//!
//! - `read(path)` reads the file; `write(path)` creates it;
//! - `connect()` opens a TCP connection to 127.0.0.1 port 9 (a socket at all is the test);
//! - `spawn(program)` runs the program;
//! - `alloc(mib)` reserves that many MiB of memory (`"ok"` or `"refused"`);
//! - `descriptors()` lists the descriptors it has open on anything but what its standard
//!   input, output and error are open on (`"none"`; the worker loop keeps its own copies of
//!   those), read from the links in `/proc/self/fd` (Landlock does not cover reading a
//!   link);
//! - `exec(program)` replaces the worker with the program (`"ok"` is never seen).
//!
//! `attack(what)` first resolves its result to `"resolved before the attack"` and logs
//! (which flushes that resolution to the kernel), then attacks; a confined worker does not
//! survive it, and the resolution must be rolled back with the rest of the delivery:
//! `connect`, `spawn` (`/bin/true`), `read` (`/etc/passwd`), `exec` (`/bin/sh`), `hog`
//! (10 GiB, infallibly: the allocation failure aborts), `spin` (forever), `shout` (writes
//! to stderr forever), `hangup` (writes half a frame, shuts its output down and sleeps).

use std::io::{ErrorKind, Write};
use std::os::fd::AsFd;
use std::os::unix::process::CommandExt;

use ocap_types::{
    CapData, Delivery, DeliveryOutcome, LogLevel, Message, Resolution, Syscall, VRef, Value,
    VatHost, VatLog, VatRuntime, VatStart,
};

/// The hostile vat.
#[derive(Debug, Default)]
pub struct Hostile;

fn verdict(res: std::io::Result<()>) -> String {
    match res {
        Ok(()) => "ok".to_owned(),
        Err(e) if e.kind() == ErrorKind::PermissionDenied => "denied".to_owned(),
        Err(e) => format!("failed: {:?}", e.kind()),
    }
}

fn attempt(method: &str, arg: Option<&Value>) -> String {
    let text = arg.and_then(Value::as_str).unwrap_or_default();
    match method {
        "read" => verdict(std::fs::read(text).map(drop)),
        "write" => verdict(std::fs::write(text, b"escaped")),
        "connect" => verdict(std::net::TcpStream::connect("127.0.0.1:9").map(drop)),
        "spawn" => verdict(std::process::Command::new(text).status().map(drop)),
        "alloc" => {
            let mib = arg.and_then(Value::as_int).unwrap_or(0);
            let bytes = usize::try_from(mib)
                .unwrap_or(usize::MAX)
                .saturating_mul(1 << 20);
            let mut buffer: Vec<u8> = Vec::new();
            match buffer.try_reserve_exact(bytes) {
                Ok(()) => "ok".to_owned(),
                Err(_) => "refused".to_owned(),
            }
        }
        "descriptors" => {
            let link = |fd: i32| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok();
            let standard: Vec<_> = (0..3).filter_map(link).collect();
            let others: Vec<String> = (3..1024)
                .filter(|&fd| link(fd).is_some_and(|target| !standard.contains(&target)))
                .map(|fd| fd.to_string())
                .collect();
            if others.is_empty() {
                "none".to_owned()
            } else {
                others.join(" ")
            }
        }
        "exec" => verdict(Err(std::process::Command::new(text).exec())),
        _ => "no such method".to_owned(),
    }
}

/// An attack a confined worker does not survive (see the module docs); returns only if it
/// did.
fn attack(what: &str) {
    match what {
        "connect" => drop(std::net::TcpStream::connect("127.0.0.1:9")),
        "spawn" => drop(std::process::Command::new("/bin/true").status()),
        "read" => drop(std::fs::read("/etc/passwd")),
        "exec" => drop(std::process::Command::new("/bin/sh").exec()),
        "hog" => {
            let hog = vec![1u8; 10 << 30];
            std::hint::black_box(&hog);
        }
        "spin" => loop {
            std::hint::spin_loop();
        },
        "shout" => {
            let mut stderr = std::io::stderr();
            while stderr
                .write_all(b"hostile: shouting into the operator's log\n")
                .is_ok()
            {}
        }
        "hangup" => {
            // A frame header announcing 100 bytes, 10 of them, and no more output.
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&[0, 0, 0, 100, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
            let _ = out.flush();
            if let Ok(fd) = out.as_fd().try_clone_to_owned() {
                let _ =
                    std::os::unix::net::UnixStream::from(fd).shutdown(std::net::Shutdown::Write);
            }
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
        _ => {}
    }
}

impl Hostile {
    fn message(message: &Message<VRef>, host: &mut dyn VatHost) -> DeliveryOutcome {
        let Ok((method, args)) = message.method_and_args() else {
            return DeliveryOutcome::failed("hostile: malformed methargs");
        };
        let Some(result) = message.result else {
            return DeliveryOutcome::default();
        };
        let answer = if method == "bootstrap" {
            "hostile bootstrapped".to_owned()
        } else if method == "attack" {
            host.syscall(Syscall::Resolve(vec![Resolution {
                promise: result,
                rejected: false,
                data: CapData::data(&Value::str("resolved before the attack")),
            }]));
            host.log(VatLog {
                level: LogLevel::Info,
                tags: Vec::new(),
                message: "attacking".to_owned(),
            });
            attack(args.first().and_then(Value::as_str).unwrap_or_default());
            return DeliveryOutcome::default();
        } else {
            attempt(&method, args.first())
        };
        host.syscall(Syscall::Resolve(vec![Resolution {
            promise: result,
            rejected: false,
            data: CapData::data(&Value::str(&answer)),
        }]));
        DeliveryOutcome::default()
    }
}

impl VatRuntime for Hostile {
    fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        match delivery {
            Delivery::Message { message, .. } => Hostile::message(&message, host),
            _ => DeliveryOutcome::default(),
        }
    }
}
