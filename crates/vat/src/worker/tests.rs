//! Worker loop tests: frames in, frames out, over in-memory streams.

use std::io;

use ocap_types::{
    CapData, Delivery, DeliveryOutcome, FrameError, FrameReader, FrameWriter, KernelFrame,
    LogLevel, Message, Syscall, VRef, Value, VatHost, VatLog, VatRuntime, VatStart, WorkerFrame,
};

use super::{WorkerError, serve};

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

fn start() -> KernelFrame {
    KernelFrame::Start(VatStart {
        name: "s".to_owned(),
        parameters: Value::Null,
        state: Vec::new(),
    })
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
    let bytes = frames(input);
    let mut output = Vec::new();
    let res = serve(Box::new(Scripted), bytes.as_slice(), &mut output);
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
            "log started s",
            "done ",
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
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[2].starts_with("done vat worker could not send a frame of"),
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
    let done = FrameReader::new(output.as_slice())
        .read::<WorkerFrame>()
        .unwrap();
    assert_eq!(
        done,
        WorkerFrame::Done(DeliveryOutcome::failed(
            "no vat named \"nope\" is registered"
        ))
    );
}
