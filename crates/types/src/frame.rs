//! The subprocess vat protocol's framing (spec §12.3, `docs/vat-protocol.md`): each frame is
//! a 4-byte big-endian length followed by exactly that many bytes holding one CBOR item, a
//! [`KernelFrame`] (kernel → worker) or a [`WorkerFrame`] (worker → kernel).
//!
//! A vat's start is a `Start` header followed by its vat store in `State` frames
//! (`start.rs`), so a store of any size reaches a worker although one frame cannot hold it.
//!
//! Invariant: bytes from the other side are untrusted. A length above the limit is refused
//! before anything is allocated for the body, a frame must hold exactly one well-formed item
//! of the expected shape, and every failure is a [`FrameError`], never a panic. The same
//! limit is enforced when writing, so a kernel never sends what a worker must refuse.

mod start;
#[cfg(test)]
mod tests;

pub use start::{StartAssembler, StartHeader, StateError};

use std::io::{self, Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::vat::{ByteBuf, Delivery, DeliveryOutcome, Syscall, VatLog};

/// The largest frame body, in bytes, either side accepts or writes by default (16 MiB).
pub const MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// The version of the worker protocol this crate speaks (`docs/vat-protocol.md` §5). The
/// kernel sends its version in `Start` ([`StartHeader::protocol`]); the worker answers with
/// its own in [`WorkerFrame::Hello`], the first frame of its answer. A kernel and a worker of
/// different versions refuse each other. Version 0 is the protocol before versions (no
/// `protocol` in `Start`, no `Hello`).
pub const PROTOCOL_VERSION: u32 = 1;

/// Bytes in a frame's length prefix.
pub const FRAME_HEADER_LEN: usize = 4;

/// A frame the kernel sends to a vat worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum KernelFrame {
    /// Build the vat (once, first): its name, parameters and vat-store size. The vat store
    /// follows in [`KernelFrame::State`] frames; once it is complete the worker starts the
    /// vat and answers with [`WorkerFrame::Done`]. Written by [`FrameWriter::write_start`],
    /// read with a [`StartAssembler`].
    Start(StartHeader),
    /// The next entries of the vat store a `Start` announced: at least one, keys in
    /// strictly ascending order across all of the start's `State` frames. Not answered.
    State(Vec<(String, ByteBuf)>),
    /// Run one delivery; answered by the delivery's syscalls and logs, then
    /// [`WorkerFrame::Done`].
    Deliver(Delivery),
    /// Liveness check; answered by [`WorkerFrame::Pong`].
    Ping,
    /// Exit cleanly; not answered.
    Shutdown,
}

/// A frame a vat worker sends to the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkerFrame {
    /// The worker's protocol version: the first frame of its answer to `Start`, whatever
    /// version the kernel's `Start` announced (a worker that cannot speak it then exits).
    Hello(Hello),
    /// A syscall of the delivery in progress.
    Syscall(Syscall),
    /// A log line of the delivery in progress.
    Log(VatLog),
    /// The end of the `Start` or `Deliver` in progress.
    Done(DeliveryOutcome),
    /// The answer to [`KernelFrame::Ping`].
    Pong,
}

/// What a worker announces about itself in [`WorkerFrame::Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The protocol version the worker speaks.
    pub protocol: u32,
}

/// Why a frame could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The stream ended cleanly at a frame boundary: the other side closed it.
    #[error("end of stream")]
    Eof,
    /// The stream ended inside a frame.
    #[error("stream ended inside a frame ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes the frame (header or body) needed.
        expected: usize,
        /// Bytes there were.
        got: usize,
    },
    /// A frame's length is above the limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    Oversized {
        /// The length announced (reading) or encoded (writing).
        len: u64,
        /// The limit.
        max: usize,
    },
    /// A frame's body is not one CBOR item of the expected shape.
    #[error("malformed frame: {reason}")]
    Malformed {
        /// What is wrong.
        reason: String,
    },
    /// The stream failed. The I/O error's text is part of this message (it is not repeated
    /// as a `source()`).
    #[error("frame stream failed: {0}")]
    Io(io::Error),
}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> Self {
        FrameError::Io(err)
    }
}

impl FrameError {
    fn malformed(reason: impl Into<String>) -> Self {
        // Cap the text: it may echo bytes from a hostile worker.
        let reason: String = reason.into().chars().take(200).collect();
        FrameError::Malformed { reason }
    }
}

/// Encodes `item` as one complete frame (length prefix included).
///
/// # Errors
/// [`FrameError::Oversized`] when the body exceeds [`MAX_FRAME_LEN`].
pub fn encode_frame<T: Serialize + ?Sized>(item: &T) -> Result<Vec<u8>, FrameError> {
    let mut out = Vec::with_capacity(64);
    encode_into(item, &mut out, MAX_FRAME_LEN)?;
    Ok(out)
}

/// Decodes the body of one frame (without its length prefix): exactly one CBOR item.
///
/// # Errors
/// [`FrameError::Malformed`] when the bytes are not one item of `T`'s shape,
/// [`FrameError::Oversized`] when there are more than [`MAX_FRAME_LEN`] of them.
pub fn decode_frame_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    if body.len() > MAX_FRAME_LEN {
        return Err(FrameError::Oversized {
            len: body.len() as u64,
            max: MAX_FRAME_LEN,
        });
    }
    let mut rest = body;
    // Same small scratch buffer as `cbor::from_slice` (see there for why).
    let mut scratch = [0u8; 128];
    let item = ciborium::de::from_reader_with_buffer(&mut rest, &mut scratch)
        .map_err(|e| FrameError::malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::malformed(format!(
            "{} bytes after the item",
            rest.len()
        )));
    }
    Ok(item)
}

/// The protocol version a `Start` frame's body announces, read from its `protocol` key
/// alone: every version keeps `{"Start": {"protocol": N, ...}}` readable this way, so a
/// worker can name the kernel's version even when the rest of the frame is of a shape it
/// does not know. `None` when the body is not a `Start` map; 0 when it has no `protocol`.
pub fn start_protocol(body: &[u8]) -> Option<u32> {
    #[derive(Deserialize)]
    enum Probe {
        Start(ProbeHeader),
    }
    #[derive(Deserialize)]
    struct ProbeHeader {
        #[serde(default)]
        protocol: u32,
    }
    match decode_frame_body::<Probe>(body) {
        Ok(Probe::Start(header)) => Some(header.protocol),
        Err(_) => None,
    }
}

/// Appends `item` as a frame to `out`, refusing bodies over `max` (and leaving `out` as it
/// was in that case).
fn encode_into<T: Serialize + ?Sized>(
    item: &T,
    out: &mut Vec<u8>,
    max: usize,
) -> Result<(), FrameError> {
    let start = out.len();
    out.extend_from_slice(&[0; FRAME_HEADER_LEN]);
    ciborium::into_writer(item, &mut *out).expect(
        "invariant: wire types serialize into a Vec; the values they hold passed check_depth",
    );
    let len = out.len() - start - FRAME_HEADER_LEN;
    match u32::try_from(len) {
        Ok(len32) if len <= max => {
            out[start..start + FRAME_HEADER_LEN].copy_from_slice(&len32.to_be_bytes());
            Ok(())
        }
        _ => {
            out.truncate(start);
            Err(FrameError::Oversized {
                len: len as u64,
                max,
            })
        }
    }
}

/// Reads frames from a byte stream. Wrap an unbuffered stream (a pipe) in a
/// `std::io::BufReader` first: a frame is read as a header and a body.
#[derive(Debug)]
pub struct FrameReader<R> {
    inner: R,
    body: Vec<u8>,
    max: usize,
}

impl<R: Read> FrameReader<R> {
    /// A reader with the default limit, [`MAX_FRAME_LEN`].
    pub fn new(inner: R) -> Self {
        FrameReader::with_max(inner, MAX_FRAME_LEN)
    }

    /// A reader refusing bodies over `max` bytes.
    pub fn with_max(inner: R, max: usize) -> Self {
        FrameReader {
            inner,
            body: Vec::new(),
            max,
        }
    }

    /// Reads the next frame and decodes it as `T`.
    ///
    /// # Errors
    /// [`FrameError::Eof`] at a clean end of stream, [`FrameError::Truncated`] inside a
    /// frame, [`FrameError::Oversized`] (the body is not read), [`FrameError::Malformed`],
    /// [`FrameError::Io`].
    pub fn read<T: DeserializeOwned>(&mut self) -> Result<T, FrameError> {
        self.read_body()?;
        let item = decode_frame_body(&self.body);
        self.shrink();
        item
    }

    /// Reads the next frame and hands its body to `decode` (which may try more than one
    /// shape, as a worker reading its first frame does).
    ///
    /// # Errors
    /// As [`FrameReader::read`], and what `decode` returns.
    pub fn read_with<T>(
        &mut self,
        decode: impl FnOnce(&[u8]) -> Result<T, FrameError>,
    ) -> Result<T, FrameError> {
        self.read_body()?;
        let item = decode(&self.body);
        self.shrink();
        item
    }

    /// Reads the next frame's body into the reused buffer.
    fn read_body(&mut self) -> Result<(), FrameError> {
        let mut header = [0u8; FRAME_HEADER_LEN];
        let got = read_full(&mut self.inner, &mut header)?;
        if got == 0 {
            return Err(FrameError::Eof);
        }
        if got < FRAME_HEADER_LEN {
            return Err(FrameError::Truncated {
                expected: FRAME_HEADER_LEN,
                got,
            });
        }
        let len = u32::from_be_bytes(header);
        let len_usize = usize::try_from(len).unwrap_or(usize::MAX);
        if len_usize > self.max {
            return Err(FrameError::Oversized {
                len: u64::from(len),
                max: self.max,
            });
        }
        // Grows with the bytes that actually arrive: a lying length costs no memory.
        self.body.clear();
        let got = (&mut self.inner)
            .take(u64::from(len))
            .read_to_end(&mut self.body)?;
        if got < len_usize {
            return Err(FrameError::Truncated {
                expected: len_usize,
                got,
            });
        }
        Ok(())
    }

    /// Does not keep a huge buffer alive because of one large frame.
    fn shrink(&mut self) {
        if self.body.capacity() > 1 << 20 {
            self.body = Vec::new();
        }
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut R {
        &mut self.inner
    }
}

/// Reads until `buf` is full or the stream ends; returns the bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    Ok(filled)
}

/// Writes frames to a byte stream. Frames are encoded into a reused buffer and written with
/// one `write_all` each; nothing is flushed until [`FrameWriter::flush`], so wrap a pipe in
/// a `std::io::BufWriter` and flush once per batch (the end of a delivery).
#[derive(Debug)]
pub struct FrameWriter<W> {
    inner: W,
    buf: Vec<u8>,
    max: usize,
}

impl<W: Write> FrameWriter<W> {
    /// A writer with the default limit, [`MAX_FRAME_LEN`].
    pub fn new(inner: W) -> Self {
        FrameWriter::with_max(inner, MAX_FRAME_LEN)
    }

    /// A writer refusing bodies over `max` bytes.
    pub fn with_max(inner: W, max: usize) -> Self {
        FrameWriter {
            inner,
            buf: Vec::with_capacity(256),
            max,
        }
    }

    /// Encodes `item` and writes it as one frame.
    ///
    /// # Errors
    /// [`FrameError::Oversized`] (nothing is written), [`FrameError::Io`].
    pub fn write<T: Serialize + ?Sized>(&mut self, item: &T) -> Result<(), FrameError> {
        let res = self.send(item);
        self.shrink();
        res
    }

    /// Encodes and writes one frame, keeping the buffer's capacity for the next.
    fn send<T: Serialize + ?Sized>(&mut self, item: &T) -> Result<(), FrameError> {
        self.buf.clear();
        encode_into(item, &mut self.buf, self.max)?;
        self.inner.write_all(&self.buf)?;
        Ok(())
    }

    /// Does not keep a huge buffer alive because of one large frame.
    fn shrink(&mut self) {
        if self.buf.capacity() > 1 << 20 {
            self.buf = Vec::with_capacity(256);
        }
    }

    /// Flushes the underlying stream.
    ///
    /// # Errors
    /// [`FrameError::Io`].
    pub fn flush(&mut self) -> Result<(), FrameError> {
        self.inner.flush().map_err(FrameError::Io)
    }

    /// The underlying stream.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }
}
