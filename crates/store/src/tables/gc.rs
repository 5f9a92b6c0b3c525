//! The durable GC action set (spec §6.4) and reap queue (spec §6.5).
//!
//! The action set is stored as its sorted text lines (`v1 dropExport ko5`), so it iterates
//! in the spec's order: endpoint id as a string, then kind, then object.

use std::collections::BTreeSet;
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
    /// [`StoreError::Corrupt`] if the set does not parse.
    pub fn gc_actions(&self) -> Result<Vec<GcAction>, StoreError> {
        if self.empty_hints()?.0 {
            return Ok(Vec::new());
        }
        let Some(bytes) = self.kv.get(keys::GC_ACTIONS)? else {
            return Ok(Vec::new());
        };
        let text = std::str::from_utf8(&bytes)
            .map_err(|_| StoreError::corrupt("gcActions", keys::GC_ACTIONS, "not UTF-8"))?;
        text.lines()
            .map(|line| {
                line.parse()
                    .map_err(|()| StoreError::corrupt("gcActions", keys::GC_ACTIONS, line))
            })
            .collect()
    }

    /// Replaces the GC action set.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn set_gc_actions(&mut self, actions: &[GcAction]) -> Result<(), StoreError> {
        let lines: BTreeSet<String> = actions.iter().map(ToString::to_string).collect();
        let empty = lines.is_empty();
        if empty {
            self.kv.delete(keys::GC_ACTIONS)?;
        } else {
            let text = lines.into_iter().collect::<Vec<_>>().join("\n");
            self.kv.set(keys::GC_ACTIONS, text.as_bytes())?;
        }
        self.set_empty_hint(Some(empty), None);
        Ok(())
    }

    /// Adds GC actions (a set union).
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn add_gc_actions(&mut self, new: &[GcAction]) -> Result<(), StoreError> {
        if new.is_empty() {
            return Ok(());
        }
        let mut actions = self.gc_actions()?;
        actions.extend_from_slice(new);
        self.set_gc_actions(&actions)
    }

    /// The reap queue, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] if it does not parse.
    pub fn reap_queue(&self) -> Result<Vec<EndpointId>, StoreError> {
        if self.empty_hints()?.1 {
            return Ok(Vec::new());
        }
        let Some(bytes) = self.kv.get(keys::REAP_QUEUE)? else {
            return Ok(Vec::new());
        };
        std::str::from_utf8(&bytes)
            .ok()
            .and_then(|text| text.split(',').map(|s| s.parse().ok()).collect())
            .ok_or_else(|| StoreError::corrupt("reapQueue", keys::REAP_QUEUE, "bad list"))
    }

    fn set_reap_queue(&mut self, queue: &[EndpointId]) -> Result<(), StoreError> {
        if queue.is_empty() {
            self.kv.delete(keys::REAP_QUEUE)?;
        } else {
            let text = queue
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(",");
            self.kv.set(keys::REAP_QUEUE, text.as_bytes())?;
        }
        self.set_empty_hint(None, Some(queue.is_empty()));
        Ok(())
    }

    /// Appends `ep` to the reap queue unless it is already there.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn schedule_reap(&mut self, ep: EndpointId) -> Result<(), StoreError> {
        let mut queue = self.reap_queue()?;
        if !queue.contains(&ep) {
            queue.push(ep);
            self.set_reap_queue(&queue)?;
        }
        Ok(())
    }

    /// Removes and returns the oldest endpoint of the reap queue.
    ///
    /// # Errors
    /// [`StoreError`] from the byte store.
    pub fn next_reap(&mut self) -> Result<Option<EndpointId>, StoreError> {
        let mut queue = self.reap_queue()?;
        if queue.is_empty() {
            return Ok(None);
        }
        let first = queue.remove(0);
        self.set_reap_queue(&queue)?;
        Ok(Some(first))
    }
}
