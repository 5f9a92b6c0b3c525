//! Frame codec tests: golden bytes of the documented frames, round trips, and refusal of
//! truncated, oversized and malformed input (never a panic).

use proptest::prelude::*;

use super::*;
use crate::{CapData, Checkpoint, LogLevel, Message, Resolution, VRef, Value};

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    let text: String = text.split_whitespace().collect();
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn read_all<T: DeserializeOwned>(bytes: &[u8]) -> Vec<Result<T, FrameError>> {
    let mut reader = FrameReader::new(bytes);
    let mut out = Vec::new();
    loop {
        match reader.read::<T>() {
            Err(FrameError::Eof) => return out,
            Err(e) => {
                out.push(Err(e));
                return out;
            }
            ok => out.push(ok),
        }
    }
}

/// Golden bytes: these are the examples of `docs/vat-protocol.md`; the format changes only
/// on purpose.
#[test]
fn golden_frames() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (
            encode_frame(&KernelFrame::Ping).unwrap(),
            "00000005 64 50696e67",
        ),
        (
            encode_frame(&WorkerFrame::Pong).unwrap(),
            "00000005 64 506f6e67",
        ),
        (
            encode_frame(&WorkerFrame::Hello(Hello { protocol: 1 })).unwrap(),
            "00000012 a1 65 48656c6c6f a1 68 70726f746f636f6c 01",
        ),
        (
            encode_frame(&KernelFrame::Start(StartHeader {
                protocol: 1,
                name: "bob".to_owned(),
                parameters: Value::Null,
                state_entries: 1,
                state_bytes: 3,
            }))
            .unwrap(),
            "00000043 a1 65 5374617274 a5 68 70726f746f636f6c 01 64 6e616d65 63 626f62 \
             6a 706172616d6574657273 f6 6d 73746174655f656e7472696573 01 \
             6b 73746174655f6279746573 03",
        ),
        (
            encode_frame(&KernelFrame::Shutdown).unwrap(),
            "00000009 68 5368757464 6f776e",
        ),
        (
            encode_frame(&WorkerFrame::Syscall(Syscall::Subscribe(
                "p+1".parse().unwrap(),
            )))
            .unwrap(),
            "00000018 a1 67 53797363616c6c a1 69 537562736372696265 63 702b31",
        ),
        (
            encode_frame(&WorkerFrame::Done(DeliveryOutcome::default())).unwrap(),
            "00000029 a1 64 446f6e65 a2 \
             6a 636865636b706f696e74 a2 64 73657473 80 67 64656c65746573 80 \
             65 6572726f72 f6",
        ),
        (
            encode_frame(&KernelFrame::Deliver(Delivery::Message {
                target: VRef::ROOT,
                message: Message::new("hi", vec![], vec![], Some("p-1".parse().unwrap())),
            }))
            .unwrap(),
            "0000004e a1 67 44656c69766572 a1 67 4d657373616765 a2 \
             66 746172676574 63 6f2b30 \
             67 6d657373616765 a2 \
             68 6d657468617267 73 a2 64 626f6479 45 82 62 6869 80 65 736c6f7473 80 \
             66 726573756c74 63 702d31",
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(hex(&bytes), hex(&unhex(expected)));
    }
}

/// The version check reads `protocol` from a `Start` whatever else it holds, so a worker
/// can name the version of a kernel whose `Start` it cannot otherwise read; a `Start`
/// without it is version 0, the protocol before versions.
#[test]
fn the_protocol_version_of_any_start_can_be_read() {
    let body = |hex_text: &str| unhex(hex_text)[FRAME_HEADER_LEN..].to_vec();
    // {"Start": {"protocol": 2, "future": true}}
    let future = body("0000001a a1 65 5374617274 a2 68 70726f746f636f6c 02 66 667574757265 f5");
    assert!(decode_frame_body::<KernelFrame>(&future).is_err());
    assert_eq!(start_protocol(&future), Some(2));
    // {"Start": {"name": "bob", "parameters": null, "state_entries": 0, "state_bytes": 0}}
    let old = body(
        "00000039 a1 65 5374617274 a4 64 6e616d65 63 626f62 6a 706172616d6574657273 f6 \
         6d 73746174655f656e7472696573 00 6b 73746174655f6279746573 00",
    );
    assert_eq!(start_protocol(&old), Some(0));
    let Ok(KernelFrame::Start(header)) = decode_frame_body::<KernelFrame>(&old) else {
        panic!("a Start of version 0 is still a Start");
    };
    assert_eq!(header.protocol, 0);
    assert_eq!(start_protocol(&body("00000005 64 50696e67")), None);
}

#[test]
fn golden_frames_decode_to_their_values() {
    let ping = unhex("00000005 64 50696e67");
    assert_eq!(
        read_all::<KernelFrame>(&ping)
            .into_iter()
            .map(Result::unwrap)
            .collect::<Vec<_>>(),
        vec![KernelFrame::Ping]
    );
}

#[test]
fn every_frame_round_trips_in_one_stream() {
    let start = StartHeader {
        protocol: 1,
        name: "bob".to_owned(),
        parameters: Value::Record([("n".to_owned(), Value::Int(3))].into()),
        state_entries: 1,
        state_bytes: 3,
    };
    let kernel_frames = vec![
        KernelFrame::Start(start),
        KernelFrame::State(vec![("k".to_owned(), crate::ByteBuf(vec![1, 2]))]),
        KernelFrame::Deliver(Delivery::Notify(vec![Resolution {
            promise: "p-4".parse().unwrap(),
            rejected: true,
            data: CapData::error("no"),
        }])),
        KernelFrame::Deliver(Delivery::BringOutYourDead),
        KernelFrame::Deliver(Delivery::DropExports(vec!["o+3".parse().unwrap()])),
        KernelFrame::Ping,
        KernelFrame::Shutdown,
    ];
    let worker_frames = vec![
        WorkerFrame::Hello(Hello {
            protocol: PROTOCOL_VERSION,
        }),
        WorkerFrame::Syscall(Syscall::Exit {
            failure: false,
            info: CapData::error("bye"),
        }),
        WorkerFrame::Log(VatLog {
            level: LogLevel::Warn,
            tags: vec!["test".to_owned()],
            message: "hello".to_owned(),
        }),
        WorkerFrame::Done(DeliveryOutcome {
            checkpoint: Checkpoint {
                sets: vec![("a".to_owned(), crate::ByteBuf(vec![0; 3]))],
                deletes: vec!["b".to_owned()],
            },
            error: Some("oops".to_owned()),
        }),
        WorkerFrame::Pong,
    ];
    let mut out = FrameWriter::new(Vec::new());
    for frame in &kernel_frames {
        out.write(frame).unwrap();
    }
    out.flush().unwrap();
    let decoded: Vec<KernelFrame> = read_all(out.get_mut())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(decoded, kernel_frames);
    let mut out = FrameWriter::new(Vec::new());
    for frame in &worker_frames {
        out.write(frame).unwrap();
    }
    let decoded: Vec<WorkerFrame> = read_all(out.get_mut())
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(decoded, worker_frames);
}

#[test]
fn empty_stream_is_a_clean_eof() {
    let mut reader = FrameReader::new(&[][..]);
    assert!(matches!(reader.read::<WorkerFrame>(), Err(FrameError::Eof)));
}

#[test]
fn truncated_header_and_body_are_errors() {
    let frame = encode_frame(&WorkerFrame::Pong).unwrap();
    for cut in 1..frame.len() {
        let res = FrameReader::new(&frame[..cut]).read::<WorkerFrame>();
        assert!(
            matches!(res, Err(FrameError::Truncated { .. })),
            "cut at {cut}: {res:?}"
        );
    }
}

#[test]
fn oversized_length_is_refused_before_reading_the_body() {
    // Claims 4 GiB - 1 with no body at all: refused on the header alone.
    let res = FrameReader::new(&[0xff, 0xff, 0xff, 0xff][..]).read::<WorkerFrame>();
    assert!(
        matches!(
            res,
            Err(FrameError::Oversized {
                len: 0xffff_ffff,
                max: MAX_FRAME_LEN
            })
        ),
        "{res:?}"
    );
    let frame = encode_frame(&WorkerFrame::Pong).unwrap();
    let res = FrameReader::with_max(&frame[..], 4).read::<WorkerFrame>();
    assert!(
        matches!(res, Err(FrameError::Oversized { len: 5, max: 4 })),
        "{res:?}"
    );
    // Exactly at the limit is fine.
    let res = FrameReader::with_max(&frame[..], 5).read::<WorkerFrame>();
    assert_eq!(res.unwrap(), WorkerFrame::Pong);
}

#[test]
fn oversized_frames_are_not_written() {
    let log = WorkerFrame::Log(VatLog {
        level: LogLevel::Info,
        tags: Vec::new(),
        message: "x".repeat(100),
    });
    let mut out = FrameWriter::with_max(Vec::new(), 64);
    let res = out.write(&log);
    assert!(
        matches!(res, Err(FrameError::Oversized { max: 64, .. })),
        "{res:?}"
    );
    assert!(out.get_mut().is_empty(), "nothing written");
    out.write(&WorkerFrame::Pong).unwrap();
    assert_eq!(out.get_mut().len(), 9);
    let huge = vec![0u8; MAX_FRAME_LEN + 1];
    let res = encode_frame(&crate::ByteBuf(huge));
    assert!(matches!(res, Err(FrameError::Oversized { .. })), "{res:?}");
}

#[test]
fn malformed_bodies_are_errors() {
    let cases: &[&[u8]] = &[
        // Not CBOR at all.
        &[0, 0, 0, 3, 0xff, 0xff, 0xff],
        // An unknown variant.
        &[0, 0, 0, 5, 0x64, b'P', b'o', b'n', b'k'],
        // Well-formed CBOR of the wrong shape: the integer 1.
        &[0, 0, 0, 1, 0x01],
        // Trailing bytes after the item.
        &[0, 0, 0, 6, 0x64, b'P', b'o', b'n', b'g', 0x00],
        // An empty body.
        &[0, 0, 0, 0],
        // A syscall with a bad vref.
        &[
            0, 0, 0, 22, 0xa1, 0x67, b'S', b'y', b's', b'c', b'a', b'l', b'l', 0xa1, 0x69, b'S',
            b'u', b'b', b's', b'c', b'r', b'i', b'b', b'e', 0x63, b'k', b'o', b'1',
        ],
    ];
    for bytes in cases {
        let res = FrameReader::new(*bytes).read::<WorkerFrame>();
        assert!(
            matches!(res, Err(FrameError::Malformed { .. })),
            "{bytes:?}: {res:?}"
        );
    }
}

#[test]
fn deeply_nested_body_is_an_error_not_a_stack_overflow() {
    let mut body = vec![0x81; 100_000];
    body.push(0x00);
    let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
    frame.extend(body);
    let res = FrameReader::new(&frame[..]).read::<KernelFrame>();
    assert!(matches!(res, Err(FrameError::Malformed { .. })), "{res:?}");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = read_all::<WorkerFrame>(&bytes);
        let _ = read_all::<KernelFrame>(&bytes);
    }

    #[test]
    fn random_bodies_behind_a_valid_header_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let mut frame = u32::try_from(body.len()).unwrap().to_be_bytes().to_vec();
        frame.extend(&body);
        let _ = read_all::<WorkerFrame>(&frame);
        let _ = read_all::<KernelFrame>(&frame);
    }

    #[test]
    fn corrupted_valid_frames_never_panic(idx in 0usize..200, byte in any::<u8>()) {
        let mut frame = encode_frame(&KernelFrame::Deliver(Delivery::Message {
            target: VRef::ROOT,
            message: Message::new("hi", vec![Value::Int(7)], vec![], None),
        }))
        .unwrap();
        let idx = idx % frame.len();
        frame[idx] = byte;
        let _ = read_all::<KernelFrame>(&frame);
    }
}
