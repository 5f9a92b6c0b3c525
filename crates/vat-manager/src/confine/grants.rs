//! What a confined worker may read and execute: its program, the interpreter chain the OS
//! runs it with (a script's `#!` interpreter and, for `#!/usr/bin/env name`, the program
//! `env` will find; an ELF executable's dynamic loader, found in its `PT_INTERP` header),
//! the system's library directories and the operator's extra read paths. Read by the launcher before it restricts itself, from the files themselves: the
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

/// How many interpreters deep a `#!` chain is followed (each with its loader).
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
    let mut idx = 0;
    while let Some(path) = execute.get(idx) {
        for next in interpreters(path) {
            if execute.len() <= MAX_INTERPRETERS * 2 && !execute.contains(&next) {
                execute.push(next);
            }
        }
        idx += 1;
    }
    let read = LIBRARY_PATHS
        .iter()
        .map(PathBuf::from)
        .chain(extra.iter().cloned())
        .filter(|path| path.exists())
        .collect();
    Grants { execute, read }
}

/// The programs the OS (or `env`) runs `path` with: a script's `#!` interpreter, and the
/// program an `env` interpreter looks up; an ELF file's loader. None for a static
/// executable, or a file that is neither (the exec then fails in the confined worker, never
/// outside it).
fn interpreters(path: &Path) -> Vec<PathBuf> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let mut head = [0u8; 64];
    let Ok(len) = file.read_at(&mut head, 0) else {
        return Vec::new();
    };
    if head.starts_with(b"#!") {
        shebang(&file)
    } else if len == head.len() && head.starts_with(b"\x7fELF") {
        elf_interpreter(&file, &head).into_iter().collect()
    } else {
        Vec::new()
    }
}

/// The interpreter of the `#!` line and, if that is `env`, the program it names, looked up
/// where `env` looks it up in the worker's environment, which has no `PATH` (`/bin`, then `/usr/bin`, the
/// C library's path when `PATH` is unset).
fn shebang(file: &File) -> Vec<PathBuf> {
    let mut line = Vec::new();
    if file
        .take(MAX_INTERPRETER_PATH)
        .read_to_end(&mut line)
        .is_err()
    {
        return Vec::new();
    }
    let line = line.get(2..).unwrap_or_default();
    let line = line.split(|&b| b == b'\n').next().unwrap_or_default();
    let Ok(text) = std::str::from_utf8(line) else {
        return Vec::new();
    };
    let mut words = text.split_whitespace();
    let Some(interpreter) = words.next().map(PathBuf::from) else {
        return Vec::new();
    };
    let named = if interpreter.file_name().is_some_and(|name| name == "env") {
        // `env [-S] name …`: the first word that is not an option.
        words
            .find(|word| !word.starts_with('-'))
            .and_then(find_program)
    } else {
        None
    };
    std::iter::once(interpreter).chain(named).collect()
}

/// Where `env` finds `name` with no `PATH`.
fn find_program(name: &str) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name));
    }
    ["/bin", "/usr/bin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
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
