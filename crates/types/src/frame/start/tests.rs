//! Start-stream tests: a vat store of any size crosses as a header and `State` frames each
//! as full as the limit allows, arrives whole, and every inconsistent stream is refused.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::frame::{FrameReader, MAX_FRAME_LEN};

/// The entries of one `State` frame.
type Chunk = Vec<(String, ByteBuf)>;

fn entry(key: &str, len: usize) -> (String, ByteBuf) {
    (key.to_owned(), ByteBuf(vec![b'x'; len]))
}

fn start_of(state: Vec<(String, ByteBuf)>) -> VatStart {
    VatStart {
        name: "v".to_owned(),
        parameters: Value::Null,
        state,
    }
}

/// Writes `start` with limit `max`: the frame bodies' lengths and the bytes.
fn write(start: &VatStart, max: usize) -> Result<(Vec<usize>, Vec<u8>), FrameError> {
    let mut writer = FrameWriter::with_max(Vec::new(), max);
    writer.write_start(start)?;
    let bytes = std::mem::take(writer.get_mut());
    let mut lens = Vec::new();
    let mut rest = bytes.as_slice();
    while !rest.is_empty() {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        lens.push(len);
        rest = &rest[4 + len..];
    }
    Ok((lens, bytes))
}

/// Reads a start back as a worker does: the header, then `State` frames until complete.
/// Returns the start and the entries of each `State` frame.
fn assemble(bytes: &[u8], max: usize) -> (VatStart, Vec<Chunk>) {
    let mut reader = FrameReader::with_max(bytes, max);
    let KernelFrame::Start(header) = reader.read().unwrap() else {
        panic!("the header comes first");
    };
    let mut assembler = StartAssembler::new(header);
    let mut chunks = Vec::new();
    while !assembler.is_complete() {
        let KernelFrame::State(chunk) = reader.read().unwrap() else {
            panic!("State frames follow the header");
        };
        chunks.push(chunk.clone());
        assembler.push(chunk).unwrap();
    }
    assert!(
        matches!(reader.read::<KernelFrame>(), Err(FrameError::Eof)),
        "nothing after the last State frame"
    );
    (assembler.finish().unwrap(), chunks)
}

/// Every `State` frame but the last is full: its next entry would not have fit.
fn assert_full(chunks: &[Chunk], max: usize) {
    for pair in chunks.windows(2) {
        let mut more = pair[0].clone();
        more.push(pair[1][0].clone());
        let len = crate::cbor::to_vec(&KernelFrame::State(more)).len();
        assert!(len > max, "{len} <= {max}: the next entry would have fit");
    }
}

#[test]
fn a_store_larger_than_a_frame_arrives_whole_in_full_frames() {
    // 40 MiB in 1 MiB values (the default value limit), and one small entry last.
    let mut state: Vec<_> = (0..40)
        .map(|i| entry(&format!("big{i:02}"), 1 << 20))
        .collect();
    state.push(entry("count", 1));
    let start = start_of(state);
    let (lens, bytes) = write(&start, MAX_FRAME_LEN).unwrap();
    // The header, then three State frames of 15, 15 and 11 entries.
    assert_eq!(lens.len(), 4, "{lens:?}");
    assert!(lens.iter().all(|len| *len <= MAX_FRAME_LEN), "{lens:?}");
    let (received, chunks) = assemble(&bytes, MAX_FRAME_LEN);
    assert_eq!(received, start);
    assert_eq!(
        chunks.iter().map(Vec::len).collect::<Vec<_>>(),
        [15, 15, 11]
    );
    assert_full(&chunks, MAX_FRAME_LEN);
}

#[test]
fn a_frame_is_filled_to_exactly_the_limit_and_no_further() {
    // `{"State": [["k", h'…']]}`: 8 bytes around the entry, 3 for its array and key, and a
    // 5-byte head for a value this long.
    let fits = MAX_FRAME_LEN - 16;
    let start = start_of(vec![entry("k", fits)]);
    let (lens, bytes) = write(&start, MAX_FRAME_LEN).unwrap();
    assert_eq!(lens[1..], [MAX_FRAME_LEN]);
    assert_eq!(assemble(&bytes, MAX_FRAME_LEN).0, start);
    // One byte more cannot be sent, and nothing is written, not even the header.
    let mut writer = FrameWriter::new(Vec::new());
    let res = writer.write_start(&start_of(vec![entry("a", 1), entry("k", fits + 1)]));
    assert!(
        matches!(res, Err(FrameError::Oversized { len, max: MAX_FRAME_LEN }) if len == MAX_FRAME_LEN as u64 + 1),
        "{res:?}"
    );
    assert!(writer.get_mut().is_empty());
    // Two entries that fill a frame exactly together share it; one byte more splits them.
    let two = |second: usize| start_of(vec![entry("a", 100), entry("b", second)]);
    let together = MAX_FRAME_LEN - 8 - (3 + 2 + 100) - (3 + 5);
    let (lens, _) = write(&two(together), MAX_FRAME_LEN).unwrap();
    assert_eq!(lens[1..], [MAX_FRAME_LEN]);
    let (lens, bytes) = write(&two(together + 1), MAX_FRAME_LEN).unwrap();
    assert_eq!(lens[1..], [8 + (3 + 2 + 100), 8 + (3 + 5) + together + 1]);
    assert_eq!(assemble(&bytes, MAX_FRAME_LEN).0, two(together + 1));
}

#[test]
fn an_empty_store_is_the_header_alone() {
    let start = start_of(Vec::new());
    let (lens, bytes) = write(&start, MAX_FRAME_LEN).unwrap();
    assert_eq!(lens.len(), 1);
    let (received, chunks) = assemble(&bytes, MAX_FRAME_LEN);
    assert_eq!(received, start);
    assert!(chunks.is_empty());
}

/// The documented bytes of a start with one entry (`docs/vat-protocol.md` §8).
#[test]
fn golden_start_and_state_frames() {
    let start = VatStart {
        name: "bob".to_owned(),
        parameters: Value::Null,
        state: vec![("k".to_owned(), ByteBuf(vec![1, 2]))],
    };
    let (_, bytes) = write(&start, MAX_FRAME_LEN).unwrap();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        hex,
        "00000043\
         a1655374617274a56870726f746f636f6c01646e616d6563626f626a706172616d6574657273f6\
         6d73746174655f656e747269657301\
         6b73746174655f627974657303\
         0000000e\
         a16553746174658182616b420102"
    );
}

fn header(entries: u64, bytes: u64) -> StartHeader {
    StartHeader {
        protocol: 1,
        name: "v".to_owned(),
        parameters: Value::Null,
        state_entries: entries,
        state_bytes: bytes,
    }
}

#[test]
fn inconsistent_state_frames_are_refused_and_change_nothing() {
    let cases: Vec<(StartHeader, Vec<Chunk>, StateError)> = vec![
        (header(1, 1), vec![vec![]], StateError::EmptyChunk),
        (
            header(1, 2),
            vec![vec![entry("a", 0), entry("b", 0)]],
            StateError::TooManyEntries { announced: 1 },
        ),
        (
            header(2, 2),
            vec![vec![entry("a", 1)], vec![entry("b", 1), entry("c", 0)]],
            StateError::TooManyEntries { announced: 2 },
        ),
        (
            header(2, 3),
            vec![vec![entry("a", 1)], vec![entry("b", 2)]],
            StateError::TooManyBytes { announced: 3 },
        ),
        (
            header(2, 2),
            vec![vec![entry("b", 0), entry("a", 0)]],
            StateError::Unsorted,
        ),
        (
            header(2, 2),
            vec![vec![entry("a", 0)], vec![entry("a", 0)]],
            StateError::Unsorted,
        ),
        (
            header(3, 3),
            vec![vec![entry("b", 0)], vec![entry("a", 0), entry("c", 0)]],
            StateError::Unsorted,
        ),
    ];
    for (header, chunks, expected) in cases {
        let mut assembler = StartAssembler::new(header.clone());
        let (last, before) = chunks.split_last().unwrap();
        for chunk in before {
            assembler.push(chunk.clone()).unwrap();
        }
        let kept = (assembler.state.len(), assembler.bytes);
        assert_eq!(assembler.push(last.clone()), Err(expected.clone()));
        assert_eq!((assembler.state.len(), assembler.bytes), kept, "{expected}");
    }
}

#[test]
fn a_start_is_taken_only_when_all_it_announced_has_arrived() {
    let mut assembler = StartAssembler::new(header(2, 2));
    assembler.push(vec![entry("a", 1)]).unwrap();
    assert!(!assembler.is_complete());
    let early = StateError::Incomplete {
        entries: 1,
        bytes: 2,
        announced_entries: 2,
        announced_bytes: 2,
    };
    assert_eq!(assembler.finish(), Err(early));
    // All entries, but fewer bytes than announced.
    let mut assembler = StartAssembler::new(header(1, 5));
    assembler.push(vec![entry("a", 1)]).unwrap();
    assert!(assembler.is_complete());
    assert!(matches!(
        assembler.finish(),
        Err(StateError::Incomplete { bytes: 2, .. })
    ));
    // An empty store is complete at once, if it announces no bytes either.
    assert!(StartAssembler::new(header(0, 0)).finish().is_ok());
    assert!(StartAssembler::new(header(0, 1)).finish().is_err());
}

fn state_strategy() -> impl Strategy<Value = BTreeMap<String, Vec<u8>>> {
    proptest::collection::btree_map(
        "[a-z]{0,30}",
        proptest::collection::vec(any::<u8>(), 0..300),
        0..80,
    )
}

proptest! {
    /// With limits small enough to cross every CBOR head size of a key, a value and an
    /// array: frames stay within the limit, are full, and the store arrives whole.
    #[test]
    fn any_store_crosses_in_full_frames_within_any_limit(
        state in state_strategy(),
        max in 350usize..3000,
    ) {
        let start = start_of(state.into_iter().map(|(k, v)| (k, ByteBuf(v))).collect());
        let (lens, bytes) = write(&start, max).unwrap();
        prop_assert!(lens.iter().skip(1).all(|len| *len <= max), "{:?}", lens);
        let (received, chunks) = assemble(&bytes, max);
        prop_assert_eq!(received, start);
        assert_full(&chunks, max);
    }
}
