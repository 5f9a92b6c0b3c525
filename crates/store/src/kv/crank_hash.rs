//! The digest of one crank's writes, the input of the crank hash chain (issue 12 item 4,
//! docs/store.md "Crank hash").
//!
//! Invariant: the digest covers exactly the writes the open crank keeps (the undo log's
//! keys, which a rollback truncates), each key once, in byte order, with the value the
//! crank leaves it at; it is taken inside the crank, so group commit's coalescing of
//! several cranks' writes to one key never shows in it.

#[cfg(test)]
mod tests;

use super::overlay::sort_by_prefix;
use super::{Store, sort_prefix};
use crate::error::CrankError;

/// A key of the crank's writes as the digest sorts it: its [`sort_prefix`], where it lies
/// in the undo log's key bytes, and its overlay hash.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct DigestKey {
    prefix: u128,
    start: usize,
    end: usize,
    hash: u64,
}

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
        // The keys by their first 16 bytes and where they lie in the undo log: sorting
        // compares the integers, and compares bytes only within a run of keys whose first
        // 16 bytes agree (a key written twice, or long keys), where sorting slices called
        // `memcmp` for every comparison (about 4k instructions a crank, callgrind).
        let mut keys = self.digest_keys.take();
        keys.clear();
        let bytes = self.undo.key_bytes();
        self.undo.for_each_key_range(|start, end, hash| {
            let key = &bytes[start..end];
            if key != skip && !key.starts_with(local) {
                keys.push(DigestKey {
                    prefix: sort_prefix(key),
                    start,
                    end,
                    hash,
                });
            }
        });
        let key_of = |key: &DigestKey| &bytes[key.start..key.end];
        sort_by_prefix(&mut keys, |key| key.prefix, |a, b| key_of(a).cmp(key_of(b)));
        keys.dedup_by(|a, b| a.prefix == b.prefix && key_of(a) == key_of(b));
        if keys.is_empty() {
            self.digest_keys.set(keys);
            return Ok(None);
        }
        // One contiguous buffer and one hash call: BLAKE3's incremental `update` costs more
        // per call than hashing the few hundred bytes a crank writes (callgrind). The
        // buffer is kept for the next crank.
        let mut stream = self.digest_stream.take();
        stream.clear();
        stream.reserve(STREAM_CAPACITY);
        for digest_key in &keys {
            let key = key_of(digest_key);
            let Some(slot) = self.overlay.get(digest_key.hash, key) else {
                // Every key in the undo log has an overlay entry until the crank ends.
                continue;
            };
            stream.extend_from_slice(&u32::try_from(key.len()).unwrap_or(u32::MAX).to_be_bytes());
            stream.extend_from_slice(key);
            match &slot.value {
                Some(value) => {
                    stream.push(TAG_SET);
                    stream.extend_from_slice(&(value.len() as u64).to_be_bytes());
                    stream.extend_from_slice(value);
                }
                None => stream.push(TAG_DELETE),
            }
        }
        let digest = *blake3::hash(&stream).as_bytes();
        self.digest_keys.set(keys);
        self.digest_stream.set(stream);
        Ok(Some(digest))
    }
}

/// The next link of the chain: BLAKE3 of the previous head followed by the crank's
/// writes digest. One `blake3::hash` over the 64 bytes, the same digest as an incremental
/// `Hasher` over the two halves at about half its instructions (callgrind: 0.85k a crank).
pub fn chain_crank_hash(head: &CrankDigest, writes: &CrankDigest) -> CrankDigest {
    let mut input = [0u8; 64];
    input[..32].copy_from_slice(head);
    input[32..].copy_from_slice(writes);
    *blake3::hash(&input).as_bytes()
}
