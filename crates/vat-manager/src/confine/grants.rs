//! What a confined worker may read and execute: its program, the interpreter chain the OS
//! runs it with (a script's `#!` interpreter, an ELF executable's dynamic loader, found in
//! its `PT_INTERP` header), the system's library directories and the operator's extra read
//! paths. Read by the launcher before it restricts itself, from the files themselves: the
//! vat cannot choose what is granted, only the operator (the program, `--read`) can.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where the dynamic loader finds shared libraries (read only; what exists of them).
const LIBRARY_PATHS: &[&str] = &[
    "/lib",
    "/lib64",
    "/usr/lib",
    "/usr/lib64",
    "/usr/local/lib",
    "/etc/ld.so.cache",
];

/// How many interpreters deep a `#!` chain is followed.
const MAX_INTERPRETERS: usize = 4;

/// The longest `#!` line or `PT_INTERP` path read.
const MAX_INTERPRETER_PATH: u64 = 4096;

/// Paths a confined worker may use.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Grants {
    /// Files it may execute (and read): its program and the interpreters that run it.
    pub(crate) execute: Vec<PathBuf>,
    /// Files and directories it may read.
    pub(crate) read: Vec<PathBuf>,
}

/// The grants of a worker running `program`, with the operator's `extra` read paths.
pub(crate) fn grants(program: &Path, extra: &[PathBuf]) -> Grants {
    let mut execute = vec![program.to_path_buf()];
    let mut next = interpreter(program);
    while let Some(path) = next {
        if execute.len() > MAX_INTERPRETERS || execute.contains(&path) {
            break;
        }
        next = interpreter(&path);
        execute.push(path);
    }
    let read = LIBRARY_PATHS
        .iter()
        .map(PathBuf::from)
        .chain(extra.iter().cloned())
        .filter(|path| path.exists())
        .collect();
    Grants { execute, read }
}

/// The program the OS runs `path` with: a script's `#!` interpreter or an ELF file's
/// loader. `None` for a static executable, or a file that is neither (the exec then fails
/// in the confined worker, never outside it).
fn interpreter(path: &Path) -> Option<PathBuf> {
    let file = File::open(path).ok()?;
    let mut head = [0u8; 64];
    file.read_exact_at(&mut head, 0)
        .or_else(|_| file.read_at(&mut head, 0).map(|_| ()))
        .ok()?;
    if head.starts_with(b"#!") {
        shebang(&file)
    } else if head.starts_with(b"\x7fELF") {
        elf_interpreter(&file, &head)
    } else {
        None
    }
}

/// The first word of the `#!` line.
fn shebang(file: &File) -> Option<PathBuf> {
    let mut line = Vec::new();
    file.take(MAX_INTERPRETER_PATH)
        .read_to_end(&mut line)
        .ok()?;
    let line = line.get(2..)?.split(|&b| b == b'\n').next()?;
    let text = std::str::from_utf8(line).ok()?;
    text.split_whitespace().next().map(PathBuf::from)
}

/// The `PT_INTERP` path of a 64-bit little-endian ELF file (x86_64, aarch64).
fn elf_interpreter(file: &File, head: &[u8; 64]) -> Option<PathBuf> {
    const PT_INTERP: u32 = 3;
    // e_ident: class 2 is 64-bit, data 1 is little-endian.
    if head[4] != 2 || head[5] != 1 {
        return None;
    }
    let phoff = u64::from_le_bytes(head[0x20..0x28].try_into().ok()?);
    let phentsize = u64::from(u16::from_le_bytes(head[0x36..0x38].try_into().ok()?));
    let phnum = u16::from_le_bytes(head[0x38..0x3a].try_into().ok()?);
    if phentsize < 56 {
        return None;
    }
    for idx in 0..u64::from(phnum) {
        let mut header = [0u8; 56];
        file.read_exact_at(&mut header, phoff.checked_add(idx.checked_mul(phentsize)?)?)
            .ok()?;
        if u32::from_le_bytes(header[0..4].try_into().ok()?) != PT_INTERP {
            continue;
        }
        let offset = u64::from_le_bytes(header[8..16].try_into().ok()?);
        let size = u64::from_le_bytes(header[32..40].try_into().ok()?);
        if size > MAX_INTERPRETER_PATH {
            return None;
        }
        let mut path = vec![0u8; usize::try_from(size).ok()?];
        file.read_exact_at(&mut path, offset).ok()?;
        let end = path.iter().position(|&b| b == 0).unwrap_or(path.len());
        let text = std::str::from_utf8(path.get(..end)?).ok()?;
        return Some(PathBuf::from(text));
    }
    None
}
