//! The stored records of durable kinds: `sdk.kind.<name>` (the kind's number, its next
//! instance number, a kit's facet names) and the `sdk.nextKindId` counter, as CBOR values.

use std::collections::BTreeMap;

use ocap_types::Value;

use crate::error::{Error, Result};

use super::NEXT_KIND_KEY;

/// A kind's stored record: its number, its next instance number, and a kit's facet names.
pub(super) struct KindRecord {
    pub(super) id: u64,
    pub(super) next: u64,
    pub(super) facets: Option<Vec<String>>,
}

impl KindRecord {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut fields = BTreeMap::from([
            ("id".to_owned(), Value::Int(to_i64(self.id))),
            ("next".to_owned(), Value::Int(to_i64(self.next))),
        ]);
        if let Some(facets) = &self.facets {
            let names = facets.iter().map(Value::str).collect();
            fields.insert("facets".to_owned(), Value::List(names));
        }
        Value::Record(fields).to_cbor()
    }

    pub(super) fn decode(name: &str, bytes: &[u8]) -> Result<KindRecord> {
        let corrupt = || Error::new(format!("the record of durable kind {name:?} is corrupt"));
        let value = Value::from_cbor(bytes).map_err(|_| corrupt())?;
        let Value::Record(fields) = value else {
            return Err(corrupt());
        };
        let number = |field: &str| {
            fields
                .get(field)
                .and_then(Value::as_int)
                .and_then(|n| u64::try_from(n).ok())
                .ok_or_else(corrupt)
        };
        let facets = match fields.get("facets") {
            None => None,
            Some(Value::List(names)) => Some(
                names
                    .iter()
                    .map(|name| match name {
                        Value::Str(name) => Ok(name.clone()),
                        _ => Err(corrupt()),
                    })
                    .collect::<Result<Vec<_>>>()?,
            ),
            Some(_) => return Err(corrupt()),
        };
        Ok(KindRecord {
            id: number("id")?,
            next: number("next")?,
            facets,
        })
    }
}

pub(super) fn decode_counter(bytes: &[u8]) -> Result<u64> {
    Value::from_cbor(bytes)
        .ok()
        .and_then(|v| v.as_int())
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| Error::new(format!("vat store key {NEXT_KIND_KEY:?} is corrupt")))
}

pub(super) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}
