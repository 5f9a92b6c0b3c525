//! Vats that run an executable of their own (`VatConfig::bundle_path`): which program a
//! worker runs, and the executable's hash.
//!
//! Invariant: a path vat only ever starts from an executable whose BLAKE3 hash is the one
//! its record holds (`VatRecord::bundle_hash`, written at launch and at an upgrade), so a
//! rebuilt or replaced program never runs on a vat's state as if nothing had happened: a
//! restart or a reopened kernel refuses it ([`VatError::BundleChanged`]) until the vat is
//! upgraded to it. The hash is checked just before the program is started; a program
//! swapped in between those two moments is not caught (the store's directory and the
//! program's are the operator's to protect).

use std::fs::File;
use std::path::Path;

use ocap_types::VatId;

use crate::error::VatError;

/// The text form of a hash: the algorithm, a colon, the digest in lowercase hex.
const PREFIX: &str = "blake3:";

/// The hash of the executable at `path`, `blake3:<64 hex digits>`.
///
/// # Errors
/// [`VatError::BundleUnreadable`] when the file cannot be opened or read (it is missing,
/// a directory, or not readable).
pub(crate) fn hash_executable(vat: VatId, path: &Path) -> Result<String, VatError> {
    let unreadable = |error: std::io::Error| VatError::BundleUnreadable {
        vat,
        path: path.to_path_buf(),
        reason: error.to_string(),
    };
    let file = File::open(path).map_err(unreadable)?;
    if file.metadata().map_err(unreadable)?.is_dir() {
        return Err(VatError::BundleUnreadable {
            vat,
            path: path.to_path_buf(),
            reason: "it is a directory".to_owned(),
        });
    }
    let mut hasher = blake3::Hasher::new();
    hasher.update_reader(file).map_err(unreadable)?;
    Ok(format!("{PREFIX}{}", hasher.finalize().to_hex()))
}

/// Checks the executable at `path` against the hash its vat's record holds (`None`: the
/// vat is being launched or upgraded, and any executable is accepted) and returns its
/// hash.
///
/// # Errors
/// [`VatError::BundleUnreadable`]; [`VatError::BundleChanged`] when the hash differs.
pub(crate) fn check_executable(
    vat: VatId,
    path: &Path,
    recorded: Option<&str>,
) -> Result<String, VatError> {
    let found = hash_executable(vat, path)?;
    match recorded {
        Some(recorded) if recorded != found => Err(VatError::BundleChanged {
            vat,
            path: path.to_path_buf(),
            recorded: recorded.to_owned(),
            found,
        }),
        _ => Ok(found),
    }
}
