//! Worker loop tests: frames in, frames out, over in-memory streams.

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use ocap_types::{
    ByteBuf, CapData, Delivery, DeliveryOutcome, FrameError, FrameReader, FrameWriter, KernelFrame,
    LogLevel, Message, StartHeader, StateError, Syscall, VRef, Value, VatHost, VatLog, VatRuntime,
    VatStart, WorkerFrame,
};

use super::{WorkerError, check_args, serve};

/// A vat that logs, then subscribes to `p-1`, for every delivery; `boom` panics and
/// `big` logs a line too large for a frame.
struct Scripted;

impl VatRuntime for Scripted {
    fn start(&mut self, start: VatStart, host: &mut dyn VatHost) -> DeliveryOutcome {
        host.log(log(&format!("started {}", start.name)));
        DeliveryOutcome::default()
    }

    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
        if let Delivery::Message { message, .. } = &delivery {
            match message.method_and_args().unwrap().0.as_str() {
                "boom" => panic!("scripted panic"),
                "big" => host.log(log(&"x".repeat(ocap_types::MAX_FRAME_LEN + 1))),
                _ => {}
            }
        }
        host.log(log(delivery.kind()));
        host.syscall(Syscall::Subscribe("p-1".parse().unwrap()));
        DeliveryOutcome::default()
    }
}

fn log(message: &str) -> VatLog {
    VatLog {
        level: LogLevel::Info,
        tags: Vec::new(),
        message: message.to_owned(),
    }
}

/// The start of an empty vat store: the header alone.
fn start() -> KernelFrame {
    header(0, 0)
}

fn header(state_entries: u64, state_bytes: u64) -> KernelFrame {
    KernelFrame::Start(StartHeader {
        protocol: 1,
        name: "s".to_owned(),
        parameters: Value::Null,
        state_entries,
        state_bytes,
    })
}

fn entry(key: &str, len: usize) -> (String, ByteBuf) {
    (key.to_owned(), ByteBuf(vec![b'x'; len]))
}

fn call(method: &str) -> KernelFrame {
    KernelFrame::Deliver(Delivery::Message {
        target: VRef::ROOT,
        message: Message::new(method, vec![], vec![], None),
    })
}

fn frames(input: &[KernelFrame]) -> Vec<u8> {
    let mut writer = FrameWriter::new(Vec::new());
    for frame in input {
        writer.write(frame).unwrap();
    }
    std::mem::take(writer.get_mut())
}

/// Serves `input` and returns the answers as one line each.
fn check(input: &[KernelFrame]) -> (Result<(), WorkerError>, Vec<String>) {
    check_bytes(&frames(input))
}

/// Serves the frames in `bytes` and returns the answers as one line each.
fn check_bytes(bytes: &[u8]) -> (Result<(), WorkerError>, Vec<String>) {
    let mut output = Vec::new();
    let res = serve(Box::new(Scripted), bytes, &mut output);
    let mut reader = FrameReader::new(output.as_slice());
    let mut lines = Vec::new();
    loop {
        match reader.read::<WorkerFrame>() {
            Ok(WorkerFrame::Log(log)) => lines.push(format!("log {}", log.message)),
            Ok(WorkerFrame::Syscall(syscall)) => lines.push(format!("syscall {}", syscall.kind())),
            Ok(WorkerFrame::Done(outcome)) => {
                lines.push(format!("done {}", outcome.error.unwrap_or_default()));
            }
            Ok(WorkerFrame::Pong) => lines.push("pong".to_owned()),
            Ok(WorkerFrame::Hello(hello)) => lines.push(format!("hello {}", hello.protocol)),
            Err(FrameError::Eof) => break,
            Err(e) => panic!("bad output frame: {e}"),
        }
    }
    (res, lines)
}

#[test]
fn syscalls_and_logs_come_in_order_before_done() {
    let (res, lines) = check(&[
        KernelFrame::Ping,
        start(),
        call("hi"),
        KernelFrame::Deliver(Delivery::BringOutYourDead),
    ]);
    res.unwrap();
    assert_eq!(
        lines,
        [
            "pong",
            "hello 1",
            "log started s",
            "done ",
            "log message",
            "syscall subscribe",
            "done ",
            "log bringOutYourDead",
            "syscall subscribe",
            "done ",
        ]
    );
}

#[test]
fn deliver_before_start_and_second_start_fail() {
    let (res, lines) = check(&[call("hi"), start(), start()]);
    res.unwrap();
    assert_eq!(
        lines,
        [
            "done cannot deliver before the vat is started",
            "hello 1",
            "log started s",
            "done ",
            "hello 1",
            "done received Start after the vat was started",
        ]
    );
}

#[test]
fn panic_in_vat_code_is_a_failed_done_and_serving_goes_on() {
    let (res, lines) = check(&[start(), call("boom"), KernelFrame::Ping]);
    res.unwrap();
    assert_eq!(
        lines,
        [
            "hello 1",
            "log started s",
            "done ",
            "done vat panicked: scripted panic",
            "pong"
        ]
    );
}

#[test]
fn a_frame_over_the_limit_fails_the_delivery() {
    let (res, lines) = check(&[start(), call("big")]);
    res.unwrap();
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[3].starts_with("done vat worker could not send a frame of"),
        "{lines:?}"
    );
}

#[test]
fn shutdown_stops_serving() {
    let (res, lines) = check(&[KernelFrame::Shutdown, KernelFrame::Ping]);
    res.unwrap();
    assert!(lines.is_empty(), "{lines:?}");
}

#[test]
fn malformed_input_is_a_read_error() {
    let mut bytes = frames(&[KernelFrame::Ping]);
    bytes.extend([0, 0, 0, 2, 0xff, 0xff]);
    let mut output = Vec::new();
    let res = serve(Box::new(Scripted), bytes.as_slice(), &mut output);
    assert!(
        matches!(res, Err(WorkerError::Read(FrameError::Malformed { .. }))),
        "{res:?}"
    );
    // The ping before it was answered.
    assert_eq!(
        FrameReader::new(output.as_slice())
            .read::<WorkerFrame>()
            .unwrap(),
        WorkerFrame::Pong
    );
}

#[test]
fn truncated_input_is_a_read_error() {
    let bytes = frames(&[KernelFrame::Ping]);
    let res = serve(
        Box::new(Scripted),
        &bytes[..bytes.len() - 1],
        &mut Vec::new(),
    );
    assert!(
        matches!(res, Err(WorkerError::Read(FrameError::Truncated { .. }))),
        "{res:?}"
    );
}

/// An output whose reader has gone away.
struct ClosedPipe;

impl io::Write for ClosedPipe {
    fn write(&mut self, _: &[u8]) -> io::Result<usize> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
    fn flush(&mut self) -> io::Result<()> {
        Err(io::ErrorKind::BrokenPipe.into())
    }
}

#[test]
fn closed_output_is_a_write_error() {
    let bytes = frames(&[start()]);
    let res = serve(Box::new(Scripted), bytes.as_slice(), ClosedPipe);
    assert!(
        matches!(res, Err(WorkerError::Write(FrameError::Io(_)))),
        "{res:?}"
    );
}

#[test]
fn exit_info_survives_the_trip() {
    struct Exiter;
    impl VatRuntime for Exiter {
        fn start(&mut self, _: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
            DeliveryOutcome::default()
        }
        fn deliver(&mut self, _: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome {
            host.syscall(Syscall::Exit {
                failure: true,
                info: CapData::error("bye"),
            });
            DeliveryOutcome::default()
        }
    }
    let bytes = frames(&[start(), call("x")]);
    let mut output = Vec::new();
    serve(Box::new(Exiter), bytes.as_slice(), &mut output).unwrap();
    let mut reader = FrameReader::new(output.as_slice());
    assert!(matches!(
        reader.read::<WorkerFrame>().unwrap(),
        WorkerFrame::Hello(_)
    ));
    assert!(matches!(
        reader.read::<WorkerFrame>().unwrap(),
        WorkerFrame::Done(_)
    ));
    assert_eq!(
        reader.read::<WorkerFrame>().unwrap(),
        WorkerFrame::Syscall(Syscall::Exit {
            failure: true,
            info: CapData::error("bye"),
        })
    );
}

#[test]
fn unknown_vat_fails_its_start_with_the_name() {
    let bytes = frames(&[start()]);
    let mut output = Vec::new();
    serve(super::unknown_vat("nope"), bytes.as_slice(), &mut output).unwrap();
    let mut reader = FrameReader::new(output.as_slice());
    let hello = reader.read::<WorkerFrame>().unwrap();
    assert!(matches!(hello, WorkerFrame::Hello(_)), "{hello:?}");
    assert_eq!(
        reader.read::<WorkerFrame>().unwrap(),
        WorkerFrame::Done(DeliveryOutcome::failed(
            "no vat named \"nope\" is registered"
        ))
    );
}

/// A vat that keeps what its start was given.
struct Keeper(Rc<RefCell<Option<VatStart>>>);

impl VatRuntime for Keeper {
    fn start(&mut self, start: VatStart, _: &mut dyn VatHost) -> DeliveryOutcome {
        *self.0.borrow_mut() = Some(start);
        DeliveryOutcome::default()
    }
    fn deliver(&mut self, _: Delivery, _: &mut dyn VatHost) -> DeliveryOutcome {
        DeliveryOutcome::default()
    }
}

#[test]
fn a_vat_store_larger_than_a_frame_reaches_the_vat_whole() {
    // 40 MiB in 1 MiB values, the default value limit: three State frames after the header.
    let mut state: Vec<_> = (0..40)
        .map(|i| entry(&format!("big{i:02}"), 1 << 20))
        .collect();
    state.push(entry("small", 3));
    let sent = VatStart {
        name: "big".to_owned(),
        parameters: Value::Null,
        state,
    };
    let mut input = FrameWriter::new(Vec::new());
    input.write_start(&sent).unwrap();
    input.write(&KernelFrame::Ping).unwrap();
    let kept = Rc::new(RefCell::new(None));
    let mut output = Vec::new();
    serve(
        Box::new(Keeper(Rc::clone(&kept))),
        input.get_mut().as_slice(),
        &mut output,
    )
    .unwrap();
    assert_eq!(kept.borrow().as_ref(), Some(&sent));
    let mut answers = FrameReader::new(output.as_slice());
    assert!(matches!(
        answers.read::<WorkerFrame>().unwrap(),
        WorkerFrame::Hello(_)
    ));
    assert_eq!(
        answers.read::<WorkerFrame>().unwrap(),
        WorkerFrame::Done(DeliveryOutcome::default())
    );
    assert_eq!(answers.read::<WorkerFrame>().unwrap(), WorkerFrame::Pong);
}

#[test]
fn a_start_is_answered_only_once_its_vat_store_is_complete() {
    let (res, lines) = check(&[
        header(2, 3),
        KernelFrame::State(vec![entry("a", 1)]),
        KernelFrame::State(vec![entry("b", 0)]),
        call("hi"),
    ]);
    res.unwrap();
    assert_eq!(
        lines,
        [
            "hello 1",
            "log started s",
            "done ",
            "log message",
            "syscall subscribe",
            "done "
        ]
    );
    // A second start's store is taken in too before it is refused, so the stream stays in
    // step.
    let (res, lines) = check(&[
        start(),
        header(1, 2),
        KernelFrame::State(vec![entry("a", 1)]),
        KernelFrame::Ping,
    ]);
    res.unwrap();
    assert_eq!(
        lines,
        [
            "hello 1",
            "log started s",
            "done ",
            "hello 1",
            "done received Start after the vat was started",
            "pong"
        ]
    );
}

#[test]
fn state_frames_that_do_not_fit_their_start_end_serving() {
    let cases: Vec<(Vec<KernelFrame>, StateError)> = vec![
        (
            vec![KernelFrame::State(vec![entry("a", 1)])],
            StateError::Stray,
        ),
        (
            vec![
                header(2, 2),
                KernelFrame::State(vec![entry("a", 1)]),
                call("hi"),
            ],
            StateError::Interrupted { frame: "Deliver" },
        ),
        (
            vec![header(1, 1), KernelFrame::Ping],
            StateError::Interrupted { frame: "Ping" },
        ),
        (
            vec![header(1, 1), start()],
            StateError::Interrupted { frame: "Start" },
        ),
        (
            vec![header(1, 1), KernelFrame::State(vec![entry("a", 5)])],
            StateError::TooManyBytes { announced: 1 },
        ),
        (
            vec![header(1, 9), KernelFrame::State(vec![entry("a", 1)])],
            StateError::Incomplete {
                entries: 1,
                bytes: 2,
                announced_entries: 1,
                announced_bytes: 9,
            },
        ),
        (
            vec![header(1, 1), KernelFrame::State(vec![])],
            StateError::EmptyChunk,
        ),
    ];
    for (input, expected) in cases {
        let (res, lines) = check(&input);
        match res {
            Err(WorkerError::Start(error)) => assert_eq!(error, expected),
            other => panic!("{expected}: {other:?}"),
        }
        // Nothing is answered but the worker's version, once a start's header is in.
        assert!(
            lines.iter().all(|line| line == "hello 1"),
            "{expected}: nothing answered: {lines:?}"
        );
    }
    // Shutdown, or the end of the input, while a store arrives ends serving cleanly.
    for input in [
        vec![
            header(2, 2),
            KernelFrame::State(vec![entry("a", 1)]),
            KernelFrame::Shutdown,
        ],
        vec![header(2, 2), KernelFrame::State(vec![entry("a", 1)])],
    ] {
        let (res, lines) = check(&input);
        res.unwrap();
        assert_eq!(lines, ["hello 1"]);
    }
}

#[test]
fn a_vat_executable_takes_worker_and_an_optional_name_and_explains_anything_else() {
    let args = |list: &[&str]| -> Vec<std::ffi::OsString> {
        list.iter().map(std::ffi::OsString::from).collect()
    };
    assert_eq!(check_args("counter-vat", &args(&["worker"])), Ok(()));
    assert_eq!(
        check_args("counter-vat", &args(&["worker", "counter"])),
        Ok(())
    );
    for wrong in [&[][..], &["--help"], &["worker", "a", "b"], &["serve"]] {
        let usage = check_args("counter-vat", &args(wrong)).unwrap_err();
        assert!(usage.starts_with("counter-vat is an ocap vat"), "{usage}");
        assert!(usage.contains("bundlePath"), "{usage}");
    }
}

/// A kernel of another protocol version is refused: the worker still announces its own
/// version (so the kernel can say which versions differ), runs nothing, and stops with
/// [`WorkerError::Version`], whose text names both versions.
#[test]
fn a_start_of_another_protocol_version_is_refused_after_hello() {
    let KernelFrame::Start(mut newer) = start() else {
        unreachable!()
    };
    newer.protocol = ocap_types::PROTOCOL_VERSION + 1;
    let (res, lines) = check(&[KernelFrame::Start(newer), call("hi")]);
    assert_eq!(lines, ["hello 1"]);
    let error = res.unwrap_err();
    assert!(
        matches!(
            error,
            WorkerError::Version {
                kernel: 2,
                worker: 1
            }
        ),
        "{error:?}"
    );
    assert!(
        error
            .to_string()
            .starts_with("the kernel speaks vat protocol version 2, this worker speaks version 1"),
        "{error}"
    );
    // A Start this version cannot read otherwise still names its version:
    // {"Start": {"protocol": 7, "future": true}}.
    let future = b"\x00\x00\x00\x1a\xa1\x65Start\xa2\x68protocol\x07\x66future\xf5";
    let (res, lines) = check_bytes(future);
    assert_eq!(lines, ["hello 1"]);
    assert!(
        matches!(res, Err(WorkerError::Version { kernel: 7, .. })),
        "{res:?}"
    );
    // A kernel from before versions sends a Start without one: version 0.
    // {"Start": {"name": "s", "parameters": null, "state_entries": 0, "state_bytes": 0}}
    let old = [
        &b"\x00\x00\x00\x37\xa1\x65Start\xa4\x64name\x61s\x6aparameters\xf6"[..],
        b"\x6dstate_entries\x00\x6bstate_bytes\x00",
    ]
    .concat();
    let (res, lines) = check_bytes(&old);
    assert_eq!(lines, ["hello 1"]);
    assert!(
        matches!(res, Err(WorkerError::Version { kernel: 0, .. })),
        "{res:?}"
    );
}

/// The worker's input polls a socket before it sleeps: bytes already there, bytes that come
/// after the poll gave up (a blocking read then), and the end of the stream all read as
/// from a plain file; a pipe is read as it is.
#[test]
fn the_input_reads_a_socket_whether_or_not_bytes_are_waiting() {
    use std::io::{Read, Write};
    use std::os::fd::OwnedFd;
    use std::os::unix::net::UnixStream;

    let (mut kernel, worker) = UnixStream::pair().unwrap();
    let mut input = super::input::Input::new(std::fs::File::from(OwnedFd::from(worker)));
    kernel.write_all(b"now").unwrap();
    let mut buf = [0u8; 3];
    input.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"now");
    let writer = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(20));
        kernel.write_all(b"later").unwrap();
    });
    let mut buf = [0u8; 5];
    input.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"later");
    writer.join().unwrap();
    assert_eq!(input.read(&mut buf).unwrap(), 0, "the kernel closed it");

    let (read_end, write_end) = std::io::pipe().unwrap();
    let mut input = super::input::Input::new(std::fs::File::from(OwnedFd::from(read_end)));
    let mut write_end = std::fs::File::from(OwnedFd::from(write_end));
    write_end.write_all(b"pipe").unwrap();
    drop(write_end);
    let mut text = String::new();
    input.read_to_string(&mut text).unwrap();
    assert_eq!(text, "pipe");
}
