//! The vat protocol: what the kernel hands a vat (deliveries), what a vat asks of the kernel
//! (syscalls), and what a delivery reports back. In-process vats exchange these values through
//! [`VatRuntime`] and [`VatHost`]; subprocess workers exchange the same values as CBOR frames.
//!
//! Invariant: nothing here names a kernel ref; a vat only ever sees [`VRef`]s.

use serde::{Deserialize, Serialize};

use crate::capdata::{CapData, Message};
use crate::refs::VRef;
use crate::value::Value;

/// A message in a vat's own space.
pub type VatMessage = Message<VRef>;

/// One settled promise: `promise` was fulfilled with `data`, or rejected with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution<R> {
    /// The promise.
    pub promise: R,
    /// True if rejected.
    pub rejected: bool,
    /// The value or the rejection reason.
    pub data: CapData<R>,
}

/// What the kernel delivers to a vat in one crank.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Delivery {
    /// Invoke a method on one of the vat's objects; `message.result` is to be resolved with
    /// the answer.
    Message {
        /// One of the vat's exports (`o+…`).
        target: VRef,
        /// The method call.
        message: VatMessage,
    },
    /// Promises the vat subscribed to (or that appear in such resolutions) were settled.
    Notify(Vec<Resolution<VRef>>),
    /// The vat's exports are no longer reachable from other vats.
    DropExports(Vec<VRef>),
    /// The vat's exports are no longer recognizable by other vats.
    RetireExports(Vec<VRef>),
    /// Objects the vat imports are gone.
    RetireImports(Vec<VRef>),
    /// Run garbage collection and report dropped refs through syscalls.
    BringOutYourDead,
}

impl Delivery {
    /// A short name of the delivery's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Delivery::Message { .. } => "message",
            Delivery::Notify(_) => "notify",
            Delivery::DropExports(_) => "dropExports",
            Delivery::RetireExports(_) => "retireExports",
            Delivery::RetireImports(_) => "retireImports",
            Delivery::BringOutYourDead => "bringOutYourDead",
        }
    }
}

/// A request from a vat to the kernel. Syscalls are one-way: the vat assumes success, and the
/// kernel's verdict shows only in the delivery's outcome (an illegal syscall kills the vat).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Syscall {
    /// Send a message to an object or promise.
    Send {
        /// The target.
        target: VRef,
        /// The message; its result, if any, is a fresh `p+N`.
        message: VatMessage,
    },
    /// Ask to be notified when the promise settles.
    Subscribe(VRef),
    /// Settle promises the vat decides.
    Resolve(Vec<Resolution<VRef>>),
    /// Terminate this vat at the end of the delivery.
    Exit {
        /// True for a failure (the delivery's effects are discarded).
        failure: bool,
        /// The reason.
        info: CapData<VRef>,
    },
    /// The vat no longer holds these imports strongly.
    DropImports(Vec<VRef>),
    /// The vat can no longer recognize these imports.
    RetireImports(Vec<VRef>),
    /// The vat retired these exports.
    RetireExports(Vec<VRef>),
    /// The vat gives up these exports, whoever holds them.
    AbandonExports(Vec<VRef>),
}

impl Syscall {
    /// A short name of the syscall's kind, for logs.
    pub fn kind(&self) -> &'static str {
        match self {
            Syscall::Send { .. } => "send",
            Syscall::Subscribe(_) => "subscribe",
            Syscall::Resolve(_) => "resolve",
            Syscall::Exit { .. } => "exit",
            Syscall::DropImports(_) => "dropImports",
            Syscall::RetireImports(_) => "retireImports",
            Syscall::RetireExports(_) => "retireExports",
            Syscall::AbandonExports(_) => "abandonExports",
        }
    }
}

/// The vat-store changes made during one delivery: keys set (last value wins) and deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Keys set, with their new values.
    pub sets: Vec<(String, ByteBuf)>,
    /// Keys deleted.
    pub deletes: Vec<String>,
}

impl Checkpoint {
    /// What one entry costs beyond its key and value: more than its encoding's headers.
    pub const ENTRY_OVERHEAD: u64 = 24;

    /// True when nothing changed.
    pub fn is_empty(&self) -> bool {
        self.sets.is_empty() && self.deletes.is_empty()
    }

    /// The bytes these changes count for against a vat's `deliveryVatstoreBytes`: every
    /// key and value, plus [`Checkpoint::ENTRY_OVERHEAD`] per entry set or deleted (so the
    /// count bounds the encoded size, however small the entries).
    pub fn change_bytes(&self) -> u64 {
        let len = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        let sets = self.sets.iter().map(|(key, value)| {
            len(key.len())
                .saturating_add(len(value.0.len()))
                .saturating_add(Self::ENTRY_OVERHEAD)
        });
        let deletes = self
            .deletes
            .iter()
            .map(|key| len(key.len()).saturating_add(Self::ENTRY_OVERHEAD));
        sets.chain(deletes).fold(0, u64::saturating_add)
    }
}

/// A byte string that serializes as CBOR bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ByteBuf(#[serde(with = "crate::bytes")] pub Vec<u8>);

/// What a vat reports at the end of a delivery (or of `start`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryOutcome {
    /// The vat-store changes to persist if the delivery succeeded.
    pub checkpoint: Checkpoint,
    /// Set when the vat's runtime itself failed (not when a method merely threw): the crank
    /// is rolled back and the vat terminated.
    pub error: Option<String>,
}

impl DeliveryOutcome {
    /// A failed delivery with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        DeliveryOutcome {
            checkpoint: Checkpoint::default(),
            error: Some(message.into()),
        }
    }
}

/// What a vat needs to start: its name in the subcluster, its parameters, and the full
/// contents of its vat store (empty on first launch). Not a wire type: a worker gets it as
/// a `Start` header and `State` frames (`frame::start`, D23), since a vat store can be
/// larger than a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct VatStart {
    /// The vat's name in its subcluster.
    pub name: String,
    /// Configuration parameters (a record, or `Null`).
    pub parameters: Value,
    /// The vat store, sorted by key.
    pub state: Vec<(String, ByteBuf)>,
}

/// How severe a vat log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    /// Debugging detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something odd.
    Warn,
    /// Something failed.
    Error,
}

/// A log line emitted by vat code. The kernel re-emits it tagged with the vat id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VatLog {
    /// Severity.
    pub level: LogLevel,
    /// Tags chosen by the vat (test logs carry `test`).
    pub tags: Vec<String>,
    /// The text.
    pub message: String,
}

/// The kernel side of a running delivery, as a vat runtime sees it.
pub trait VatHost {
    /// Issues a syscall. One-way: the vat carries on as if it succeeded.
    fn syscall(&mut self, syscall: Syscall);
    /// Emits a log line.
    fn log(&mut self, log: VatLog);
}

/// A vat's runtime (the SDK's role): the kernel starts it once per incarnation and then hands
/// it one delivery at a time.
pub trait VatRuntime {
    /// Builds the vat from its parameters and stored state.
    fn start(&mut self, start: VatStart, host: &mut dyn VatHost) -> DeliveryOutcome;
    /// Runs one delivery to completion (until no vat code can make progress).
    fn deliver(&mut self, delivery: Delivery, host: &mut dyn VatHost) -> DeliveryOutcome;
}

/// The text of a panic payload (`panic!` with a literal or a formatted message).
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".to_owned())
}

/// Runs vat code, turning a panic into a failed delivery (`vat panicked: <message>`), the
/// same way in-process and in a worker process.
pub fn run_guarded(f: impl FnOnce() -> DeliveryOutcome) -> DeliveryOutcome {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        DeliveryOutcome::failed(format!("vat panicked: {}", panic_message(&*panic)))
    })
}
