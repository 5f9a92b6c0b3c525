//! The durable GC action set (spec §6.4) and reap queue (spec §6.5).
//!
//! Each action is a key of its own, `gcAction.<text>` (`gcAction.v1 dropExport ko5`), and
//! the text sorts in the spec's order (endpoint id as a string, then kind, then object), so a
//! prefix scan lists the set in order. The reap queue is `reapQueue.<seq>` → endpoint keys
//! (FIFO by the zero-padded sequence number) plus a `reapQueued.<ep>` key per queued
//! endpoint, so scheduling one twice is a single lookup. Adding or removing one action or
//! reap touches only its own keys.

use std::fmt;

use ocap_types::{EndpointId, KObjectId};

use super::{KernelStore, keys};
use crate::error::StoreError;

/// What a GC action asks of an endpoint, in priority order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GcKind {
    /// The owner's export is no longer reachable.
    DropExport,
    /// The owner's export is no longer recognizable.
    RetireExport,
    /// The importer's import is gone.
    RetireImport,
}

impl GcKind {
    fn as_str(self) -> &'static str {
        match self {
            GcKind::DropExport => "dropExport",
            GcKind::RetireExport => "retireExport",
            GcKind::RetireImport => "retireImport",
        }
    }
}

/// One pending GC action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GcAction {
    /// Who is told.
    pub endpoint: EndpointId,
    /// What about.
    pub kind: GcKind,
    /// Which object.
    pub object: KObjectId,
}

impl fmt::Display for GcAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}",
            self.endpoint,
            self.kind.as_str(),
            self.object
        )
    }
}

impl std::str::FromStr for GcAction {
    type Err = ();
    fn from_str(text: &str) -> Result<Self, ()> {
        let mut parts = text.split(' ');
        let endpoint = parts.next().ok_or(())?.parse().map_err(|_| ())?;
        let kind = match parts.next().ok_or(())? {
            "dropExport" => GcKind::DropExport,
            "retireExport" => GcKind::RetireExport,
            "retireImport" => GcKind::RetireImport,
            _ => return Err(()),
        };
        let object = parts.next().ok_or(())?.parse().map_err(|_| ())?;
        if parts.next().is_some() {
            return Err(());
        }
        Ok(GcAction {
            endpoint,
            kind,
            object,
        })
    }
}

impl KernelStore {
    /// The pending GC actions, sorted by their text (the spec's processing order).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if an action's key does not parse.
    pub fn gc_actions(&self) -> Result<Vec<GcAction>, StoreError> {
        if self.empty_hints()?.0 {
            return Ok(Vec::new());
        }
        let prefix = keys::GC_ACTION_PREFIX;
        self.kv
            .scan_prefix(prefix)?
            .iter()
            .map(|(key, _)| {
                std::str::from_utf8(&key[prefix.len()..])
                    .ok()
                    .and_then(|text| text.parse().ok())
                    .ok_or_else(|| StoreError::corrupt("gcActions", key, "bad action"))
            })
            .collect()
    }

    /// Adds GC actions (a set union): one key each, the others untouched.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn add_gc_actions(&mut self, new: &[GcAction]) -> Result<(), StoreError> {
        for action in new {
            self.kv.set(&keys::gc_action(action), b"")?;
        }
        if !new.is_empty() {
            self.set_empty_hint(Some(false), None);
        }
        Ok(())
    }

    /// Removes GC actions from the set (those absent are ignored): one key each.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn remove_gc_actions(&mut self, done: &[GcAction]) -> Result<(), StoreError> {
        if done.is_empty() {
            return Ok(());
        }
        for action in done {
            self.kv.delete(&keys::gc_action(action))?;
        }
        let prefix = keys::GC_ACTION_PREFIX;
        let empty = self.kv.next_entry(prefix, prefix, true)?.is_none();
        self.set_empty_hint(Some(empty), None);
        Ok(())
    }

    /// The reap queue, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if an entry does not parse.
    pub fn reap_queue(&self) -> Result<Vec<EndpointId>, StoreError> {
        if self.empty_hints()?.1 {
            return Ok(Vec::new());
        }
        self.kv
            .scan_prefix(keys::REAP_ENTRY_PREFIX)?
            .iter()
            .map(|(key, value)| parse_reap_entry(key, value))
            .collect()
    }

    /// Appends `ep` to the reap queue unless it is already there.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn schedule_reap(&mut self, ep: EndpointId) -> Result<(), StoreError> {
        let member = keys::reap_member(ep);
        if self.kv.contains(&member)? {
            return Ok(());
        }
        let seq = self.read_parsed("reapQueue", keys::REAP_NEXT)?.unwrap_or(1);
        self.kv
            .set(&keys::reap_entry(seq), ep.to_string().as_bytes())?;
        self.kv.set(&member, b"")?;
        self.kv
            .set(keys::REAP_NEXT, (seq + 1).to_string().as_bytes())?;
        self.set_empty_hint(None, Some(false));
        Ok(())
    }

    /// Removes and returns the oldest endpoint of the reap queue.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn next_reap(&mut self) -> Result<Option<EndpointId>, StoreError> {
        if self.empty_hints()?.1 {
            return Ok(None);
        }
        let prefix = keys::REAP_ENTRY_PREFIX;
        let Some((key, value)) = self.kv.next_entry(prefix, prefix, true)? else {
            self.set_empty_hint(None, Some(true));
            return Ok(None);
        };
        let ep = parse_reap_entry(&key, &value)?;
        self.kv.delete(&key)?;
        self.kv.delete(&keys::reap_member(ep))?;
        let empty = self.kv.next_entry(prefix, prefix, true)?.is_none();
        if empty {
            // Numbering starts again once the queue is empty: no key is left behind.
            self.kv.delete(keys::REAP_NEXT)?;
        }
        self.set_empty_hint(None, Some(empty));
        Ok(Some(ep))
    }
}

fn parse_reap_entry(key: &[u8], value: &[u8]) -> Result<EndpointId, StoreError> {
    std::str::from_utf8(value)
        .ok()
        .and_then(|text| text.parse().ok())
        .ok_or_else(|| StoreError::corrupt("reapQueue", key, "bad endpoint"))
}
