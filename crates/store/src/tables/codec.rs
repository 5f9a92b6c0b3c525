//! A compact binary encoding for the records read and written on every crank (objects,
//! promises, refcounts). Hand-written because these records are decoded many times per
//! crank and a generic serde decoder dominated the crank profile.
//!
//! Layout: little-endian fixed-width integers; a byte string is a u32 length then the
//! bytes; an owner is a tag byte (0 none, 1 kernel, 2 vat, 3 remote) then a u32 id; a kref
//! is a tag byte (0 object, 1 promise) then a u64 id. Decoding checks every length and
//! rejects trailing bytes, so corrupt bytes give an error, never a panic.

use ocap_types::{CapData, EndpointId, KObjectId, KPromiseId, KRef, RemoteId, VatId};

use super::Owner;

pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn new() -> Self {
        Writer(Vec::with_capacity(32))
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.u32(u32::try_from(v.len()).expect("invariant: records are smaller than 4 GiB"));
        self.0.extend_from_slice(v);
    }

    pub(crate) fn owner(&mut self, owner: Option<Owner>) {
        match owner {
            None => self.u8(0),
            Some(Owner::Kernel) => self.u8(1),
            Some(Owner::Endpoint(EndpointId::Vat(VatId(n)))) => {
                self.u8(2);
                self.u32(n);
            }
            Some(Owner::Endpoint(EndpointId::Remote(RemoteId(n)))) => {
                self.u8(3);
                self.u32(n);
            }
        }
    }

    pub(crate) fn kref(&mut self, kref: KRef) {
        match kref {
            KRef::Object(KObjectId(n)) => {
                self.u8(0);
                self.u64(n);
            }
            KRef::Promise(KPromiseId(n)) => {
                self.u8(1);
                self.u64(n);
            }
        }
    }

    pub(crate) fn capdata(&mut self, data: &CapData<KRef>) {
        self.bytes(&data.body);
        self.u32(u32::try_from(data.slots.len()).expect("invariant: fewer than 2^32 slots"));
        for slot in &data.slots {
            self.kref(*slot);
        }
    }
}

/// Bytes that do not decode; the caller turns it into `StoreError::Corrupt`.
#[derive(Debug)]
pub(crate) struct Malformed(pub(crate) &'static str);

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

pub(crate) struct Reader<'a>(pub(crate) &'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Malformed> {
        if self.0.len() < n {
            return Err(Malformed("record truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, Malformed> {
        Ok(self.take(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, Malformed> {
        let bytes = self.take(4)?;
        Ok(u32::from_le_bytes(
            bytes.try_into().map_err(|_| Malformed("u32"))?,
        ))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, Malformed> {
        let bytes = self.take(8)?;
        Ok(u64::from_le_bytes(
            bytes.try_into().map_err(|_| Malformed("u64"))?,
        ))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], Malformed> {
        let len = self.u32()? as usize;
        self.take(len)
    }

    pub(crate) fn owner(&mut self) -> Result<Option<Owner>, Malformed> {
        Ok(match self.u8()? {
            0 => None,
            1 => Some(Owner::Kernel),
            2 => Some(Owner::Endpoint(EndpointId::Vat(VatId(self.u32()?)))),
            3 => Some(Owner::Endpoint(EndpointId::Remote(RemoteId(self.u32()?)))),
            _ => return Err(Malformed("bad owner tag")),
        })
    }

    pub(crate) fn kref(&mut self) -> Result<KRef, Malformed> {
        Ok(match self.u8()? {
            0 => KRef::Object(KObjectId(self.u64()?)),
            1 => KRef::Promise(KPromiseId(self.u64()?)),
            _ => return Err(Malformed("bad kref tag")),
        })
    }

    pub(crate) fn capdata(&mut self) -> Result<CapData<KRef>, Malformed> {
        let body = self.bytes()?.to_vec();
        let n = self.u32()? as usize;
        if n > self.0.len() {
            return Err(Malformed("slot count beyond record"));
        }
        let slots = (0..n).map(|_| self.kref()).collect::<Result<_, _>>()?;
        Ok(CapData { body, slots })
    }

    pub(crate) fn finish(&self) -> Result<(), Malformed> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Malformed("trailing bytes"))
        }
    }
}
