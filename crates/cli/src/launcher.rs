//! Which program confines `ocap`'s vat workers.

use std::path::{Path, PathBuf};

/// The file name of the launcher binary installed with `ocap` (`cargo install --path
/// crates/cli` installs both).
pub const LAUNCHER_BINARY: &str = "ocap-launch";

/// The confinement launcher for workers whose program is `program` (`ocap`): the small
/// `ocap-launch` binary when it is installed beside it, else `program` itself, which
/// serves as the launcher too (`ocap confine-launch …`). Both run the same confinement
/// code; `ocap-launch` starts in a fraction of the time (docs/confinement.md, "Measured
/// cost"). Only a file in the program's own directory is used, so the launcher is as
/// trusted as the program.
pub fn launcher_for(program: &Path) -> PathBuf {
    program
        .parent()
        .map(|dir| dir.join(LAUNCHER_BINARY))
        .filter(|launcher| launcher.is_file())
        .unwrap_or_else(|| program.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_beside_the_program_is_preferred() {
        let dir = tempfile::tempdir().unwrap();
        let program = dir.path().join("ocap");
        std::fs::write(&program, b"").unwrap();
        assert_eq!(
            launcher_for(&program),
            program,
            "none installed: the program"
        );
        // A directory of that name is no launcher.
        std::fs::create_dir(dir.path().join(LAUNCHER_BINARY)).unwrap();
        assert_eq!(launcher_for(&program), program);
        std::fs::remove_dir(dir.path().join(LAUNCHER_BINARY)).unwrap();
        std::fs::write(dir.path().join(LAUNCHER_BINARY), b"").unwrap();
        assert_eq!(launcher_for(&program), dir.path().join(LAUNCHER_BINARY));
    }
}
