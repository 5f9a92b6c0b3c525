//! The vat store, served inside the vat (spec §12.3): an in-memory copy seeded from
//! `VatStart.state`, plus the record of keys set and deleted since the last checkpoint.

use std::collections::BTreeMap;

use ocap_types::{ByteBuf, Checkpoint};

pub(crate) struct VatStore {
    data: BTreeMap<String, Vec<u8>>,
    /// Changes since the last checkpoint: `Some` = set (last value wins), `None` = deleted.
    dirty: BTreeMap<String, Option<Vec<u8>>>,
}

impl VatStore {
    pub(crate) fn new(state: Vec<(String, ByteBuf)>) -> Self {
        VatStore {
            data: state.into_iter().map(|(k, v)| (k, v.0)).collect(),
            dirty: BTreeMap::new(),
        }
    }

    pub(crate) fn get(&self, key: &str) -> Option<&[u8]> {
        self.data.get(key).map(Vec::as_slice)
    }

    pub(crate) fn set(&mut self, key: &str, value: Vec<u8>) {
        if self.data.get(key) == Some(&value) {
            return;
        }
        self.data.insert(key.to_owned(), value.clone());
        self.dirty.insert(key.to_owned(), Some(value));
    }

    /// Deletes `key`; true if it was present.
    pub(crate) fn delete(&mut self, key: &str) -> bool {
        let existed = self.data.remove(key).is_some();
        if existed {
            self.dirty.insert(key.to_owned(), None);
        }
        existed
    }

    /// Keys starting with `prefix`, sorted.
    pub(crate) fn keys_with_prefix<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> {
        self.data
            .range::<str, _>((
                std::ops::Bound::Included(prefix),
                std::ops::Bound::Unbounded,
            ))
            .map(|(k, _)| k.as_str())
            .take_while(move |k| k.starts_with(prefix))
    }

    /// The changes since the previous call, sorted by key; resets the record.
    pub(crate) fn take_checkpoint(&mut self) -> Checkpoint {
        let mut checkpoint = Checkpoint::default();
        for (key, change) in std::mem::take(&mut self.dirty) {
            match change {
                Some(value) => checkpoint.sets.push((key, ByteBuf(value))),
                None => checkpoint.deletes.push(key),
            }
        }
        checkpoint
    }
}
