//! Reference newtypes: kernel refs (`ko1`, `kp1`), vat refs (`o+1`, `p-2`), endpoint,
//! vat and subcluster ids. Their text forms exist only through `Display` and `FromStr`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A reference text that does not match the grammar of the type it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid reference {text:?}: expected {expected}")]
pub struct ParseRefError {
    text: String,
    expected: &'static str,
}

impl ParseRefError {
    fn new(text: &str, expected: &'static str) -> Self {
        // Cap the echoed text: the input may come from a hostile vat.
        let text: String = text.chars().take(64).collect();
        Self { text, expected }
    }

    /// The grammar the text was expected to match.
    pub fn expected(&self) -> &'static str {
        self.expected
    }
}

/// Parses a non-empty run of ASCII digits without sign, rejecting overflow.
fn parse_number<T: TryFrom<u64>>(digits: &str) -> Option<T> {
    ascii_number(digits.as_bytes())
}

/// A non-empty run of ASCII digits as a number, `None` on any other byte or on overflow:
/// the one reading of the numbers in refs and ids, from text and from bytes alike (the
/// `from_ascii` functions read a stored or queued id's bytes without a UTF-8 check).
#[inline]
fn ascii_number<T: TryFrom<u64>>(digits: &[u8]) -> Option<T> {
    if digits.is_empty() {
        return None;
    }
    let n = digits.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() {
            n.checked_mul(10)?.checked_add(u64::from(b - b'0'))
        } else {
            None
        }
    })?;
    T::try_from(n).ok()
}

macro_rules! string_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

macro_rules! numbered_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $int:ty) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub $int);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($prefix, "{}"), self.0)
            }
        }

        impl $name {
            /// The id whose text is `text`, as `FromStr` reads it, from its bytes.
            #[inline]
            pub fn from_ascii(text: &[u8]) -> Option<Self> {
                text.strip_prefix($prefix.as_bytes())
                    .and_then(ascii_number)
                    .map($name)
            }
        }

        impl FromStr for $name {
            type Err = ParseRefError;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::from_ascii(text.as_bytes())
                    .ok_or_else(|| ParseRefError::new(text, concat!($prefix, "<number>")))
            }
        }

        string_serde!($name);
    };
}

numbered_id!(
    /// A kernel object id, `koN`.
    KObjectId, "ko", u64
);
numbered_id!(
    /// A kernel promise id, `kpN`.
    KPromiseId, "kp", u64
);
numbered_id!(
    /// A vat id, `vN`.
    VatId, "v", u32
);
numbered_id!(
    /// A remote id, `rN` (remotes are not implemented yet; the id space is reserved).
    RemoteId, "r", u32
);
numbered_id!(
    /// A subcluster id, `sN`.
    SubclusterId, "s", u32
);

/// A kernel reference: an object or a promise, global to one kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KRef {
    /// `koN`
    Object(KObjectId),
    /// `kpN`
    Promise(KPromiseId),
}

impl KRef {
    /// The object id, if this is an object.
    pub fn as_object(self) -> Option<KObjectId> {
        match self {
            KRef::Object(id) => Some(id),
            KRef::Promise(_) => None,
        }
    }

    /// The promise id, if this is a promise.
    pub fn as_promise(self) -> Option<KPromiseId> {
        match self {
            KRef::Promise(id) => Some(id),
            KRef::Object(_) => None,
        }
    }

    /// True for `kpN`.
    pub fn is_promise(self) -> bool {
        matches!(self, KRef::Promise(_))
    }
}

impl From<KObjectId> for KRef {
    fn from(id: KObjectId) -> Self {
        KRef::Object(id)
    }
}

impl From<KPromiseId> for KRef {
    fn from(id: KPromiseId) -> Self {
        KRef::Promise(id)
    }
}

impl fmt::Display for KRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KRef::Object(id) => id.fmt(f),
            KRef::Promise(id) => id.fmt(f),
        }
    }
}

impl KRef {
    /// The kref whose text is `text`, as `FromStr` reads it, from its bytes (a c-list
    /// value, a run-queue item's target).
    #[inline]
    pub fn from_ascii(text: &[u8]) -> Option<Self> {
        match text {
            [b'k', b'o', ..] => KObjectId::from_ascii(text).map(KRef::Object),
            [b'k', b'p', ..] => KPromiseId::from_ascii(text).map(KRef::Promise),
            _ => None,
        }
    }
}

impl FromStr for KRef {
    type Err = ParseRefError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.starts_with("ko") {
            text.parse().map(KRef::Object)
        } else if text.starts_with("kp") {
            text.parse().map(KRef::Promise)
        } else {
            Err(ParseRefError::new(text, "ko<number> or kp<number>"))
        }
    }
}

string_serde!(KRef);

/// Who the kernel delivers to: a vat, or (later) a remote kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EndpointId {
    /// A local vat.
    Vat(VatId),
    /// A connection to another kernel.
    Remote(RemoteId),
}

impl EndpointId {
    /// The vat id, if this endpoint is a vat.
    pub fn as_vat(self) -> Option<VatId> {
        match self {
            EndpointId::Vat(id) => Some(id),
            EndpointId::Remote(_) => None,
        }
    }
}

impl From<VatId> for EndpointId {
    fn from(id: VatId) -> Self {
        EndpointId::Vat(id)
    }
}

impl fmt::Display for EndpointId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointId::Vat(id) => id.fmt(f),
            EndpointId::Remote(id) => id.fmt(f),
        }
    }
}

impl EndpointId {
    /// The endpoint whose text is `text`, as `FromStr` reads it, from its bytes.
    #[inline]
    pub fn from_ascii(text: &[u8]) -> Option<Self> {
        match text.first() {
            Some(b'v') => VatId::from_ascii(text).map(EndpointId::Vat),
            Some(b'r') => RemoteId::from_ascii(text).map(EndpointId::Remote),
            _ => None,
        }
    }
}

impl FromStr for EndpointId {
    type Err = ParseRefError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.as_bytes().first() {
            Some(b'v') => text.parse().map(EndpointId::Vat),
            Some(b'r') => text.parse().map(EndpointId::Remote),
            _ => Err(ParseRefError::new(text, "v<number> or r<number>")),
        }
    }
}

string_serde!(EndpointId);

/// The vat-side identity of an exported object (`o+…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ExportId {
    /// `o+N`: an ephemeral object, gone when the vat restarts. `o+0` is the root.
    Ephemeral(u64),
    /// `o+dK/I` or `o+dK/I:F`: a durable object that survives a restart.
    Durable {
        /// The kind number.
        kind: u64,
        /// The instance number within the kind.
        instance: u64,
        /// The facet, for multi-facet objects.
        facet: Option<u32>,
    },
    /// `o+vK/I` or `o+vK/I:F`: a virtual (vatstore-backed, non-durable) object.
    Virtual {
        /// The kind number.
        kind: u64,
        /// The instance number within the kind.
        instance: u64,
        /// The facet, for multi-facet objects.
        facet: Option<u32>,
    },
}

/// A reference in a vat's own space. `+` refs are allocated by the vat (exports), `-` refs by
/// the kernel (imports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VRef {
    /// `o+…`: an object the vat exports.
    ExportObject(ExportId),
    /// `o-N`: an object the vat imports.
    ImportObject(u64),
    /// `p+N`: a promise the vat allocated.
    ExportPromise(u64),
    /// `p-N`: a promise the kernel handed to the vat.
    ImportPromise(u64),
}

impl VRef {
    /// The root object of every vat, `o+0`.
    pub const ROOT: VRef = VRef::ExportObject(ExportId::Ephemeral(0));

    /// True for `p+N` and `p-N`.
    pub fn is_promise(self) -> bool {
        matches!(self, VRef::ExportPromise(_) | VRef::ImportPromise(_))
    }

    /// True for refs allocated by the vat (`o+…`, `p+N`).
    pub fn is_export(self) -> bool {
        matches!(self, VRef::ExportObject(_) | VRef::ExportPromise(_))
    }
}

impl fmt::Display for VRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let facet = |f: &mut fmt::Formatter<'_>, facet: &Option<u32>| match facet {
            Some(n) => write!(f, ":{n}"),
            None => Ok(()),
        };
        match self {
            VRef::ExportObject(ExportId::Ephemeral(n)) => write!(f, "o+{n}"),
            VRef::ExportObject(ExportId::Durable {
                kind,
                instance,
                facet: fc,
            }) => {
                write!(f, "o+d{kind}/{instance}")?;
                facet(f, fc)
            }
            VRef::ExportObject(ExportId::Virtual {
                kind,
                instance,
                facet: fc,
            }) => {
                write!(f, "o+v{kind}/{instance}")?;
                facet(f, fc)
            }
            VRef::ImportObject(n) => write!(f, "o-{n}"),
            VRef::ExportPromise(n) => write!(f, "p+{n}"),
            VRef::ImportPromise(n) => write!(f, "p-{n}"),
        }
    }
}

const VREF_GRAMMAR: &str = "o+N, o-N, p+N, p-N, o+dK/I[:F] or o+vK/I[:F]";

fn parse_kind_instance(text: &str) -> Option<(u64, u64, Option<u32>)> {
    let (kind, rest) = text.split_once('/')?;
    let (instance, facet) = match rest.split_once(':') {
        Some((instance, facet)) => (instance, Some(parse_number(facet)?)),
        None => (rest, None),
    };
    Some((parse_number(kind)?, parse_number(instance)?, facet))
}

impl VRef {
    /// The vref whose text is `text`, as `FromStr` reads it, from its bytes: the numbered
    /// forms without a UTF-8 check (c-list values are read several times a crank), durable
    /// and virtual exports through `FromStr`.
    #[inline]
    pub fn from_ascii(text: &[u8]) -> Option<Self> {
        match text {
            [b'o', b'-', digits @ ..] => ascii_number(digits).map(VRef::ImportObject),
            [b'p', b'+', digits @ ..] => ascii_number(digits).map(VRef::ExportPromise),
            [b'p', b'-', digits @ ..] => ascii_number(digits).map(VRef::ImportPromise),
            [b'o', b'+', b'0'..=b'9', ..] => {
                ascii_number(&text[2..]).map(|n| VRef::ExportObject(ExportId::Ephemeral(n)))
            }
            _ => std::str::from_utf8(text).ok()?.parse().ok(),
        }
    }
}

impl FromStr for VRef {
    type Err = ParseRefError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || ParseRefError::new(text, VREF_GRAMMAR);
        let (head, rest) = text.split_at_checked(2).ok_or_else(bad)?;
        let res = match head {
            "o-" => parse_number(rest).map(VRef::ImportObject),
            "p+" => parse_number(rest).map(VRef::ExportPromise),
            "p-" => parse_number(rest).map(VRef::ImportPromise),
            "o+" => match rest.as_bytes().first() {
                Some(b'd') => parse_kind_instance(&rest[1..]).map(|(kind, instance, facet)| {
                    VRef::ExportObject(ExportId::Durable {
                        kind,
                        instance,
                        facet,
                    })
                }),
                Some(b'v') => parse_kind_instance(&rest[1..]).map(|(kind, instance, facet)| {
                    VRef::ExportObject(ExportId::Virtual {
                        kind,
                        instance,
                        facet,
                    })
                }),
                _ => parse_number(rest).map(|n| VRef::ExportObject(ExportId::Ephemeral(n))),
            },
            _ => None,
        };
        res.ok_or_else(bad)
    }
}

string_serde!(VRef);
