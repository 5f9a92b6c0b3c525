//! LMDB's meta pages, read by us before LMDB maps the file. LMDB sizes its map from the
//! header it picks, trusting it: a header claiming an absurd last page makes LMDB ask for a
//! map larger than memory (`ENOMEM`), and a page size of 0 makes it divide by zero (SIGFPE,
//! killing the process). Neither says what happened: the file is corrupt.
//!
//! Invariant: this check only refuses. A header it cannot read the way LMDB would (too
//! short, no meta page flag, another magic or format version) is left to LMDB, which
//! refuses it as it always did.

use std::fs::File;
use std::io::ErrorKind;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::{DATA_FILE, bad_path};
use crate::error::OpenError;

/// `MDB_MAGIC`: the first field of every LMDB meta.
const MAGIC: u32 = 0xBEEF_C0DE;
/// `MDB_DATA_VERSION` of the LMDB that heed builds.
const DATA_VERSION: u32 = 1;
/// `P_META`, the page flag of the two meta pages.
const P_META: u16 = 0x08;
/// LMDB's page numbers, transaction ids and sizes are machine words.
const WORD: usize = size_of::<usize>();
/// `MDB_page.mp_flags`, after the page number and a `u16`.
const FLAGS_AT: usize = WORD + 2;
/// `MDB_meta` starts after the page header: page number, then four `u16`s.
const META_AT: usize = WORD + 8;
const MAGIC_AT: usize = META_AT;
const VERSION_AT: usize = META_AT + 4;
/// `mm_psize`, alias of `mm_dbs[0].md_pad`: after magic, version, `mm_address` and
/// `mm_mapsize`.
const PAGE_SIZE_AT: usize = META_AT + 8 + 2 * WORD;
/// `mm_last_pg`, after `mm_dbs`: two `MDB_db`s of 8 bytes and five words each.
const LAST_PAGE_AT: usize = PAGE_SIZE_AT + 2 * (8 + 5 * WORD);
const TXNID_AT: usize = LAST_PAGE_AT + WORD;
/// The bytes LMDB reads for each meta page.
const META_LEN: usize = TXNID_AT + WORD;
/// Page sizes LMDB writes: the OS page size, at most 64 KiB. 512 is below every OS's.
const PAGE_SIZES: std::ops::RangeInclusive<u32> = 512..=(64 << 10);

/// What the store needs of one meta page.
#[derive(Debug, Clone, Copy)]
struct Meta {
    page_size: u32,
    last_page: u64,
    txnid: u64,
}

/// Refuses a `data.mdb` whose header (the meta page LMDB would pick: the newer of the two)
/// has a page size LMDB never writes or claims pages beyond the end of the file.
pub(super) fn check_header(path: &Path) -> Result<(), OpenError> {
    let io_error = |err: std::io::Error| bad_path(path, format!("{DATA_FILE}: {err}"));
    let corrupt = |reason: String| OpenError::CorruptFile {
        path: path.to_path_buf(),
        reason,
    };
    let bad_page_size = |page_size: u32| {
        (!page_size.is_power_of_two() || !PAGE_SIZES.contains(&page_size)).then(|| {
            corrupt(format!(
                "{DATA_FILE}'s header gives a page size of {page_size} bytes, which LMDB never writes"
            ))
        })
    };
    let file = File::open(path.join(DATA_FILE)).map_err(io_error)?;
    let file_len = file.metadata().map_err(io_error)?.len();
    let Some(first) = read_meta(&file, 0).map_err(io_error)? else {
        return Ok(());
    };
    // LMDB reads the second meta page one page in, by the first one's page size, which
    // must therefore be sane whichever meta wins.
    if let Some(err) = bad_page_size(first.page_size) {
        return Err(err);
    }
    let Some(second) = read_meta(&file, u64::from(first.page_size)).map_err(io_error)? else {
        return Ok(());
    };
    let meta = if second.txnid > first.txnid {
        second
    } else {
        first
    };
    if let Some(err) = bad_page_size(meta.page_size) {
        return Err(err);
    }
    let claimed = (u128::from(meta.last_page) + 1) * u128::from(meta.page_size);
    if claimed > u128::from(file_len) {
        return Err(corrupt(format!(
            "{DATA_FILE} is {file_len} bytes but its header claims pages up to byte {claimed}"
        )));
    }
    Ok(())
}

/// The meta page at `offset`, or `None` if LMDB would not accept it as one.
fn read_meta(file: &File, offset: u64) -> std::io::Result<Option<Meta>> {
    let mut page = [0; META_LEN];
    match file.read_exact_at(&mut page, offset) {
        Ok(()) => {}
        Err(err) if err.kind() == ErrorKind::UnexpectedEof => return Ok(None),
        Err(err) => return Err(err),
    }
    let u16_at = |at: usize| u16::from_ne_bytes([page[at], page[at + 1]]);
    let u32_at =
        |at: usize| u32::from_ne_bytes([page[at], page[at + 1], page[at + 2], page[at + 3]]);
    let word_at = |at: usize| {
        let mut bytes = [0; WORD];
        bytes.copy_from_slice(&page[at..at + WORD]);
        // A word is at most 64 bits on every target Rust supports.
        u64::try_from(usize::from_ne_bytes(bytes)).unwrap_or(u64::MAX)
    };
    if u16_at(FLAGS_AT) & P_META == 0
        || u32_at(MAGIC_AT) != MAGIC
        || u32_at(VERSION_AT) != DATA_VERSION
    {
        return Ok(None);
    }
    Ok(Some(Meta {
        page_size: u32_at(PAGE_SIZE_AT),
        last_page: word_at(LAST_PAGE_AT),
        txnid: word_at(TXNID_AT),
    }))
}
