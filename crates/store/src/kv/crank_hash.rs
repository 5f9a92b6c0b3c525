//! The digest of one crank's writes, the input of the crank hash chain (issue 12 item 4,
//! docs/store.md "Crank hash").
//!
//! Invariant: the digest covers exactly the writes the open crank keeps (the undo log's
//! keys, which a rollback truncates), each key once, in byte order, with the value the
//! crank leaves it at; it is taken inside the crank, so group commit's coalescing of
//! several cranks' writes to one key never shows in it.

#[cfg(test)]
mod tests;

use super::Store;
use crate::error::CrankError;

/// A BLAKE3 digest (32 bytes): a crank's writes, or a link of the chain.
pub type CrankDigest = [u8; 32];

/// Tag before a set key's value in the digested stream.
const TAG_SET: u8 = 1;
/// Tag of a deleted key (no value follows).
const TAG_DELETE: u8 = 0;
/// The digested stream's first allocation: a typical crank's writes fit.
const STREAM_CAPACITY: usize = 2048;

impl Store {
    /// BLAKE3 of the writes the open crank keeps, leaving out `skip` (the chain head's own
    /// key) and every key that starts with `local` (this machine's choices): for each key
    /// written, once and in byte order, `len(key)` as 4 bytes big-endian,
    /// the key, then `0x00` for a deletion or `0x01`, `len(value)` as 8 bytes big-endian
    /// and the value. `None` if the crank keeps no write besides `skip`.
    ///
    /// # Errors
    /// [`CrankError::NotInCrank`] outside a crank.
    pub fn crank_writes_digest(
        &self,
        skip: &[u8],
        local: &[u8],
    ) -> Result<Option<CrankDigest>, CrankError> {
        if !self.in_crank {
            return Err(CrankError::NotInCrank {
                operation: "crankWritesDigest",
            });
        }
        let mut keys: Vec<&[u8]> = self
            .undo
            .keys()
            .filter(|key| *key != skip && !key.starts_with(local))
            .collect();
        if keys.is_empty() {
            return Ok(None);
        }
        keys.sort_unstable();
        keys.dedup();
        // One contiguous buffer and one hash call: BLAKE3's incremental `update` costs more
        // per call than hashing the few hundred bytes a crank writes (callgrind).
        let mut stream = Vec::with_capacity(STREAM_CAPACITY);
        for key in keys {
            let Some(entry) = self.overlay.get(key) else {
                // Every key in the undo log has an overlay entry until the crank ends.
                continue;
            };
            stream.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
            stream.extend_from_slice(key);
            match entry {
                Some(value) => {
                    stream.push(TAG_SET);
                    stream.extend_from_slice(&(value.len() as u64).to_be_bytes());
                    stream.extend_from_slice(value);
                }
                None => stream.push(TAG_DELETE),
            }
        }
        Ok(Some(*blake3::hash(&stream).as_bytes()))
    }
}

/// The next link of the chain: BLAKE3 of the previous head followed by the crank's
/// writes digest.
pub fn chain_crank_hash(head: &CrankDigest, writes: &CrankDigest) -> CrankDigest {
    let mut hasher = blake3::Hasher::new();
    hasher.update(head);
    hasher.update(writes);
    hasher.finalize().into()
}
