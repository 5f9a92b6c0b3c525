//! A vat's start on the wire (spec §12.3, D23; `docs/vat-protocol.md` §4.1): a `Start`
//! frame with the vat's name, parameters and the size of its vat store, then the vat store
//! itself in `State` frames, each as full as the frame limit allows. A vat store may be far
//! larger than one frame (its limit is 1 GiB by default, a frame's 16 MiB), but every entry
//! fits one: a worker's values all came through a frame.
//!
//! Invariant: the writer checks every entry against the frame limit before it sends
//! anything, so a start is sent whole or not at all; the reader ([`StartAssembler`]) holds
//! no more than the header announced, refuses an empty, surplus or out-of-order `State`
//! frame with a [`StateError`], and never panics. Both sides take time and memory linear in
//! the store's size: the writer encodes one frame at a time from the borrowed entries.

#[cfg(test)]
mod tests;

use std::io::Write;

use serde::{Deserialize, Serialize};

use super::{FrameError, FrameWriter, KernelFrame};
use crate::value::Value;
use crate::vat::{ByteBuf, VatStart};

/// The `Start` frame: the vat's name and parameters, and the size of the vat store the
/// `State` frames after it carry (none follow when it is empty).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StartHeader {
    /// The protocol version the kernel speaks ([`PROTOCOL_VERSION`](super::PROTOCOL_VERSION)
    /// for this crate). Absent (0) from kernels older than protocol versions. Every version
    /// keeps this key in `Start`, so a worker can always read it and refuse a kernel of
    /// another version.
    #[serde(default)]
    pub protocol: u32,
    /// The vat's name in its subcluster.
    pub name: String,
    /// Configuration parameters (a record, or `Null`).
    pub parameters: Value,
    /// How many vat-store entries the `State` frames carry, all frames together.
    pub state_entries: u64,
    /// How many bytes their keys and values hold, all together.
    pub state_bytes: u64,
}

/// Why the `State` frames of a start do not add up to the vat store their `Start` header
/// announced, or came out of turn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// A `State` frame without entries.
    #[error("a State frame holds no entries")]
    EmptyChunk,
    /// More entries than announced.
    #[error("the State frames hold more than the {announced} entries announced")]
    TooManyEntries {
        /// Entries the header announced.
        announced: u64,
    },
    /// More bytes than announced.
    #[error("the State frames hold more than the {announced} bytes announced")]
    TooManyBytes {
        /// Bytes the header announced.
        announced: u64,
    },
    /// A key not after the one before it (the store is sent sorted, each key once).
    #[error("the vat-store keys are not in strictly ascending order")]
    Unsorted,
    /// The start was taken before everything announced had arrived, or the announced
    /// entries hold fewer bytes than announced.
    #[error(
        "the vat store has {entries} entries of {bytes} bytes, not the {announced_entries} \
         entries of {announced_bytes} bytes announced"
    )]
    Incomplete {
        /// Entries that arrived.
        entries: u64,
        /// Bytes that arrived.
        bytes: u64,
        /// Entries the header announced.
        announced_entries: u64,
        /// Bytes the header announced.
        announced_bytes: u64,
    },
    /// Another frame came while a start's vat store was still arriving.
    #[error("a {frame} frame came before the vat store was complete")]
    Interrupted {
        /// The frame's kind (`Deliver`, `Ping`, `Start`).
        frame: &'static str,
    },
    /// A `State` frame came with no start to belong to.
    #[error("a State frame came outside a start")]
    Stray,
}

/// Collects a vat's start from its [`StartHeader`] and the `State` frames after it,
/// checking each frame as it comes: memory grows with the entries that arrive and never
/// past the bytes the header announced.
///
/// # Examples
/// ```
/// use ocap_types::{ByteBuf, FrameReader, FrameWriter, KernelFrame, StartAssembler, Value,
///     VatStart};
///
/// let start = VatStart {
///     name: "v".into(),
///     parameters: Value::Null,
///     state: vec![("k".into(), ByteBuf(vec![1, 2, 3]))],
/// };
/// let mut wire = FrameWriter::new(Vec::new());
/// wire.write_start(&start)?;
/// let mut frames = FrameReader::new(wire.get_mut().as_slice());
/// let KernelFrame::Start(header) = frames.read()? else { panic!("a header comes first") };
/// let mut assembler = StartAssembler::new(header);
/// while !assembler.is_complete() {
///     let KernelFrame::State(chunk) = frames.read()? else { panic!("then State frames") };
///     assembler.push(chunk)?;
/// }
/// assert_eq!(assembler.finish()?, start);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct StartAssembler {
    name: String,
    parameters: Value,
    announced_entries: u64,
    announced_bytes: u64,
    state: Vec<(String, ByteBuf)>,
    bytes: u64,
}

impl StartAssembler {
    /// An assembler waiting for the vat store `header` announces.
    pub fn new(header: StartHeader) -> Self {
        StartAssembler {
            name: header.name,
            parameters: header.parameters,
            announced_entries: header.state_entries,
            announced_bytes: header.state_bytes,
            state: Vec::new(),
            bytes: 0,
        }
    }

    /// Adds the entries of one `State` frame.
    ///
    /// # Errors
    /// [`StateError::EmptyChunk`], [`StateError::TooManyEntries`],
    /// [`StateError::TooManyBytes`] or [`StateError::Unsorted`]; the entries are then not
    /// added.
    pub fn push(&mut self, chunk: Vec<(String, ByteBuf)>) -> Result<(), StateError> {
        let Some((first, _)) = chunk.first() else {
            return Err(StateError::EmptyChunk);
        };
        let entries = (self.state.len() as u64).saturating_add(chunk.len() as u64);
        if entries > self.announced_entries {
            return Err(StateError::TooManyEntries {
                announced: self.announced_entries,
            });
        }
        let chunk_bytes = chunk.iter().fold(0u64, |sum, (key, value)| {
            sum.saturating_add(entry_bytes(key, &value.0))
        });
        let bytes = self.bytes.saturating_add(chunk_bytes);
        if bytes > self.announced_bytes {
            return Err(StateError::TooManyBytes {
                announced: self.announced_bytes,
            });
        }
        let after_last = self
            .state
            .last()
            .is_none_or(|(last, _)| last.as_str() < first.as_str());
        if !after_last || chunk.windows(2).any(|pair| pair[0].0 >= pair[1].0) {
            return Err(StateError::Unsorted);
        }
        self.state.extend(chunk);
        self.bytes = bytes;
        Ok(())
    }

    /// True once every announced entry has arrived (at once for an empty vat store).
    pub fn is_complete(&self) -> bool {
        self.state.len() as u64 == self.announced_entries
    }

    /// The start, with the whole vat store.
    ///
    /// # Errors
    /// [`StateError::Incomplete`] before every announced entry has arrived, or when they
    /// hold fewer bytes than announced.
    pub fn finish(self) -> Result<VatStart, StateError> {
        if !self.is_complete() || self.bytes != self.announced_bytes {
            return Err(StateError::Incomplete {
                entries: self.state.len() as u64,
                bytes: self.bytes,
                announced_entries: self.announced_entries,
                announced_bytes: self.announced_bytes,
            });
        }
        Ok(VatStart {
            name: self.name,
            parameters: self.parameters,
            state: self.state,
        })
    }
}

impl<W: Write> FrameWriter<W> {
    /// Writes `start` as a `Start` frame and then its vat store in `State` frames, each
    /// holding as many entries as fit this writer's limit. Nothing is written when an entry
    /// is too large for a frame of its own.
    ///
    /// # Errors
    /// [`FrameError::Oversized`] for such an entry (with the size of its frame),
    /// [`FrameError::Io`].
    pub fn write_start(&mut self, start: &VatStart) -> Result<(), FrameError> {
        let mut state_bytes = 0u64;
        for (key, value) in &start.state {
            let len = chunk_len(1, entry_len(key, &value.0));
            if len > self.max {
                return Err(FrameError::Oversized {
                    len: len as u64,
                    max: self.max,
                });
            }
            state_bytes = state_bytes.saturating_add(entry_bytes(key, &value.0));
        }
        let header = KernelFrame::Start(StartHeader {
            protocol: super::PROTOCOL_VERSION,
            name: start.name.clone(),
            parameters: start.parameters.clone(),
            state_entries: start.state.len() as u64,
            state_bytes,
        });
        let res = self.send(&header).and_then(|()| {
            let mut rest = start.state.as_slice();
            while !rest.is_empty() {
                let (chunk, after) = rest.split_at(chunk_entries(rest, self.max));
                self.send(&StateFrame::State(chunk))?;
                rest = after;
            }
            Ok(())
        });
        self.shrink();
        res
    }
}

/// A `State` frame of borrowed entries: encoded exactly as [`KernelFrame::State`], without
/// copying the vat store.
#[derive(Serialize)]
enum StateFrame<'a> {
    State(&'a [(String, ByteBuf)]),
}

/// The bytes an entry counts for in the announced size (and in the vat's store limit).
fn entry_bytes(key: &str, value: &[u8]) -> u64 {
    (key.len() as u64).saturating_add(value.len() as u64)
}

/// How many of the first `entries` fit one `State` frame of at most `max` bytes: as many as
/// fit, but at least one (the caller checked that each fits alone).
fn chunk_entries(entries: &[(String, ByteBuf)], max: usize) -> usize {
    let mut n_entries = 0;
    let mut entries_len = 0usize;
    for (key, value) in entries {
        let next = entries_len.saturating_add(entry_len(key, &value.0));
        if chunk_len(n_entries + 1, next) > max {
            break;
        }
        n_entries += 1;
        entries_len = next;
    }
    n_entries.max(1)
}

/// The body length of a `State` frame of `n_entries` entries whose encodings take
/// `entries_len` bytes: `{"State": [entries]}`, a map of one entry keyed by a 5-letter text.
fn chunk_len(n_entries: usize, entries_len: usize) -> usize {
    (1 + 1 + "State".len() + head_len(n_entries)).saturating_add(entries_len)
}

/// The encoded length of one entry: an array of two, a text key, a byte-string value.
fn entry_len(key: &str, value: &[u8]) -> usize {
    (1 + head_len(key.len()) + head_len(value.len()))
        .saturating_add(key.len())
        .saturating_add(value.len())
}

/// The length of the CBOR head announcing `n` items or bytes (RFC 8949 §3, shortest form,
/// which ciborium always writes).
fn head_len(n: usize) -> usize {
    match n {
        0..=23 => 1,
        24..=0xff => 2,
        0x100..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}
