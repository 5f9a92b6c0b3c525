//! Kernel-authored error values (spec §3.4) and the splat causes (spec §8.2).
//!
//! Invariant: no text built here contains a kref, vref, endpoint id or path (the no-leak
//! rule, spec §8.3); every detail is a fixed sentence about the cause.

use std::fmt;

use crate::capdata::CapData;

/// The code in a kernel error's `[KERNEL:<CODE>]` prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// A send to a revoked object.
    ObjectRevoked,
    /// A send to an object with no owner.
    ObjectDeleted,
    /// A send to a promise fulfilled with something that is not a reference.
    BadPromiseResolution,
    /// The owner endpoint no longer exists.
    EndpointUnreachable,
    /// The endpoint refused the delivery.
    DeliveryFailed,
    /// The promise's decider was terminated.
    VatTerminated,
    /// The promise's decider was upgraded to a new version of its code, which knows
    /// nothing of the promises the old version decided.
    VatUpgraded,
    /// A remote gave up.
    ConnectionLost,
    /// A remote lost its state.
    PeerRestarted,
    /// The vat made an illegal syscall (fatal).
    IllegalSyscall,
    /// The vat reported a delivery error (fatal).
    InternalError,
}

impl ErrorCode {
    /// The detail of [`ErrorCode::VatUpgraded`]'s rejections: every promise a vat decided
    /// when it was upgraded is rejected with it (SwingSet's upgrade contract).
    pub const UPGRADED_DETAIL: &'static str = "The vat deciding this promise was upgraded";

    /// The code's text, as in `[KERNEL:OBJECT_REVOKED]`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ObjectRevoked => "OBJECT_REVOKED",
            ErrorCode::ObjectDeleted => "OBJECT_DELETED",
            ErrorCode::BadPromiseResolution => "BAD_PROMISE_RESOLUTION",
            ErrorCode::EndpointUnreachable => "ENDPOINT_UNREACHABLE",
            ErrorCode::DeliveryFailed => "DELIVERY_FAILED",
            ErrorCode::VatTerminated => "VAT_TERMINATED",
            ErrorCode::VatUpgraded => "VAT_UPGRADED",
            ErrorCode::ConnectionLost => "CONNECTION_LOST",
            ErrorCode::PeerRestarted => "PEER_RESTARTED",
            ErrorCode::IllegalSyscall => "ILLEGAL_SYSCALL",
            ErrorCode::InternalError => "INTERNAL_ERROR",
        }
    }

    /// Fatal codes kill the vat; their prefix is `[KERNEL:VAT_FATAL:<CODE>]`.
    pub fn is_fatal(self) -> bool {
        matches!(self, ErrorCode::IllegalSyscall | ErrorCode::InternalError)
    }

    /// The full message: the prefix, a space, and `detail`.
    pub fn message(self, detail: &str) -> String {
        if self.is_fatal() {
            format!("[KERNEL:VAT_FATAL:{}] {detail}", self.as_str())
        } else {
            format!("[KERNEL:{}] {detail}", self.as_str())
        }
    }

    /// The message as an `Error` value with no slots.
    pub fn capdata<R>(self, detail: &str) -> CapData<R> {
        CapData::error(self.message(detail))
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a message went splat (could not be delivered). The rejection of a rejected promise
/// target is passed through unchanged and so is not a variant here.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SplatReason {
    /// The target object was revoked.
    Revoked,
    /// The target object has no owner.
    Deleted,
    /// The target promise was fulfilled with data, not a reference.
    NotAnObject,
    /// The owner endpoint is gone.
    Unreachable,
    /// The endpoint refused the delivery; the detail is the refusal's own message, which
    /// the caller must have checked for the no-leak rule.
    DeliveryFailed(String),
}

impl SplatReason {
    /// The error code of this cause.
    pub fn code(&self) -> ErrorCode {
        match self {
            SplatReason::Revoked => ErrorCode::ObjectRevoked,
            SplatReason::Deleted => ErrorCode::ObjectDeleted,
            SplatReason::NotAnObject => ErrorCode::BadPromiseResolution,
            SplatReason::Unreachable => ErrorCode::EndpointUnreachable,
            SplatReason::DeliveryFailed(_) => ErrorCode::DeliveryFailed,
        }
    }

    /// The fixed sentence describing the cause.
    pub fn detail(&self) -> &str {
        match self {
            SplatReason::Revoked => "Target object has been revoked",
            SplatReason::Deleted => "Target object has no owner; it may have been deleted",
            SplatReason::NotAnObject => "Promise fulfilled but did not contain an object reference",
            SplatReason::Unreachable => {
                "Target endpoint is unreachable (terminated or disconnected)"
            }
            SplatReason::DeliveryFailed(detail) => detail,
        }
    }

    /// The rejection message, `[KERNEL:<CODE>] <detail>`.
    pub fn message(&self) -> String {
        self.code().message(self.detail())
    }

    /// The rejection value.
    pub fn capdata<R>(&self) -> CapData<R> {
        CapData::error(self.message())
    }
}

impl fmt::Display for SplatReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}
