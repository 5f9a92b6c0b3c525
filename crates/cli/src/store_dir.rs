//! Which store a command works on: `--store DIR`, or the user's default store in the
//! per-user data directory (`$XDG_DATA_HOME/ocap/store`, by default
//! `~/.local/share/ocap/store`), the same for every command.

use std::path::{Component, Path, PathBuf};

use crate::CliError;

/// The user's default store directory.
///
/// # Errors
/// [`CliError::NoDefaultStore`] if the user has no home directory.
pub fn default_store() -> Result<PathBuf, CliError> {
    directories::ProjectDirs::from("", "", "ocap")
        .map(|dirs| dirs.data_dir().join("store"))
        .ok_or(CliError::NoDefaultStore)
}

/// The store a command works on, as an absolute path (the daemon and its clients may run
/// in different directories): `store` if given, else [`default_store`].
///
/// # Errors
/// As [`default_store`]; [`CliError::Args`] if the working directory is unknown.
pub fn resolve_store(store: Option<&Path>) -> Result<PathBuf, CliError> {
    let store = match store {
        Some(store) => store.to_path_buf(),
        None => default_store()?,
    };
    let store = if store.is_absolute() {
        store
    } else {
        let cwd = std::env::current_dir()
            .map_err(|e| CliError::Args(format!("cannot resolve {}: {e}", store.display())))?;
        cwd.join(store)
    };
    // `./state` reads better as `state` in messages; `..` is left to the OS (symlinks).
    Ok(store
        .components()
        .filter(|c| *c != Component::CurDir)
        .collect())
}
