//! The vocabulary of the ocap kernel: references, passable values, capdata, messages,
//! run-queue items, kernel error codes, and the vat protocol.
//!
//! Every id is a newtype whose text form exists only through `Display` and `FromStr`:
//!
//! ```
//! use ocap_types::{CapData, KRef, VRef, Value};
//!
//! let kref: KRef = "ko4".parse()?;
//! assert_eq!(kref.to_string(), "ko4");
//! assert!("k4".parse::<KRef>().is_err());
//! assert!("p+7".parse::<VRef>()?.is_export());
//!
//! let value = Value::List(vec![Value::str("hi"), Value::Slot { index: 0, iface: None }]);
//! let data = CapData::new(&value, vec![kref]);
//! assert_eq!(data.decode()?, value);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod bytes;
mod capdata;
pub mod cbor;
mod config;
mod error_code;
mod frame;
mod item;
mod limits;
mod refs;
mod value;
mod vat;

#[cfg(test)]
mod tests;

pub use capdata::{CapData, Message, MethargsError, check_args};
pub use config::{
    ClusterConfig, ClusterConfigBuilder, ConfigError, OrderedVats, VatConfig, WorkerKind,
};
pub use error_code::{ErrorCode, SplatReason};
pub use frame::{
    FRAME_HEADER_LEN, FrameError, FrameReader, FrameWriter, Hello, KernelFrame, MAX_FRAME_LEN,
    PROTOCOL_VERSION, StartAssembler, StartHeader, StateError, WorkerFrame, decode_frame_body,
    encode_frame, start_protocol,
};
pub use item::RunQueueItem;
pub use limits::{MAX_DELIVERY_VATSTORE_BYTES, MAX_VATSTORE_KEY_BYTES, VatLimits};
pub use refs::{
    EndpointId, ExportId, KObjectId, KPromiseId, KRef, ParseRefError, RemoteId, SubclusterId, VRef,
    VatId,
};
pub use value::{
    DecodeError, DepthError, JsonError, MAX_DEPTH, TAG_BIGINT, TAG_ERROR, TAG_SLOT, TAG_TAGGED,
    TAG_UNDEFINED, Value,
};
pub use vat::{
    ByteBuf, Checkpoint, Delivery, DeliveryOutcome, LogLevel, Resolution, Syscall, VatHost, VatLog,
    VatMessage, VatRuntime, VatStart, panic_message, run_guarded,
};
