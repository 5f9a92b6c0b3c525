//! The seccomp-bpf allowlist of a confined worker: what the dynamic loader, the C library,
//! an allocator, a thread or two and the frame protocol need, and nothing that reaches
//! outside the process. Any other system call ends the vat (docs/confinement.md): it is
//! either handed to the kernel's supervisor through a seccomp listener
//! (`SECCOMP_RET_USER_NOTIF`; the supervisor names the call in the log and kills the
//! worker) or, where the kernel cannot take the listener, kills the process at once
//! (`SECCOMP_RET_KILL_PROCESS`, by `SIGSYS`). `clone3` and `openat2` alone fail with
//! `ENOSYS`, so that the C library falls back to `clone` (checked here) and `openat`
//! (limited by Landlock and by the flags check below).

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

#[cfg(target_arch = "x86_64")]
const ARCH: Option<TargetArch> = Some(TargetArch::x86_64);
#[cfg(target_arch = "aarch64")]
const ARCH: Option<TargetArch> = Some(TargetArch::aarch64);
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const ARCH: Option<TargetArch> = None;

/// Whether the allowlist is written for this architecture.
pub(crate) const ARCH_SUPPORTED: bool = ARCH.is_some();

/// System calls allowed whatever their arguments.
const ALWAYS: &[libc::c_long] = &[
    // The protocol and files already open.
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_preadv,
    libc::SYS_pwritev,
    libc::SYS_preadv2,
    libc::SYS_pwritev2,
    libc::SYS_lseek,
    libc::SYS_close,
    libc::SYS_close_range,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_fcntl,
    libc::SYS_recvfrom,
    libc::SYS_sendto,
    libc::SYS_recvmsg,
    libc::SYS_sendmsg,
    libc::SYS_shutdown,
    libc::SYS_ppoll,
    libc::SYS_pselect6,
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_eventfd2,
    libc::SYS_pipe2,
    // Memory.
    libc::SYS_mmap,
    libc::SYS_munmap,
    libc::SYS_mprotect,
    libc::SYS_mremap,
    libc::SYS_brk,
    // Threads, time, signals to itself, exit.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_set_tid_address,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_membarrier,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_getppid,
    libc::SYS_getrusage,
    libc::SYS_times,
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_nanosleep,
    libc::SYS_clock_nanosleep,
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_getrandom,
    libc::SYS_sigaltstack,
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_restart_syscall,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // Looking at files: Landlock decides what may be opened, not what may be seen.
    libc::SYS_newfstatat,
    libc::SYS_fstat,
    libc::SYS_statx,
    libc::SYS_readlinkat,
    libc::SYS_faccessat,
    libc::SYS_faccessat2,
    libc::SYS_getdents64,
    libc::SYS_getcwd,
    libc::SYS_fadvise64,
    libc::SYS_uname,
    libc::SYS_sysinfo,
    // Answered by the ENOSYS filter; listed so that this one does not also refuse them.
    libc::SYS_clone3,
    libc::SYS_openat2,
];

/// The x86_64 system calls older C libraries use where aarch64 has only the `*at` forms.
#[cfg(target_arch = "x86_64")]
const ALWAYS_X86_64: &[libc::c_long] = &[
    libc::SYS_dup2,
    libc::SYS_poll,
    libc::SYS_select,
    libc::SYS_epoll_wait,
    libc::SYS_pipe,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_readlink,
    libc::SYS_access,
    libc::SYS_time,
    libc::SYS_arch_prctl,
    libc::SYS_getrlimit,
];
#[cfg(not(target_arch = "x86_64"))]
const ALWAYS_X86_64: &[libc::c_long] = &[];

/// Answered `ENOSYS`, so the C library falls back to an older call this filter checks.
const NOT_IMPLEMENTED: &[libc::c_long] = &[libc::SYS_clone3, libc::SYS_openat2];

/// `socket`'s address family answered `ENOSYS` too, rather than ending the vat: the C
/// library's user lookup (`getpwuid`, which Python's start-up calls with no `HOME` in the
/// environment) first tries the name service cache daemon's Unix socket, and goes on
/// without it. The vat gets no socket: any other family ends it.
const NOT_IMPLEMENTED_SOCKET: u64 = libc::AF_UNIX as u64;

/// `ioctl` requests allowed: terminal queries and close-on-exec / non-blocking flags.
const IOCTLS: &[u64] = &[0x5401, 0x5413, 0x5421, 0x5450, 0x5451];

/// `prctl` options allowed: naming threads and memory areas.
const PRCTLS: &[u64] = &[
    libc::PR_SET_NAME as u64,
    libc::PR_GET_NAME as u64,
    0x5356_4d41, // PR_SET_VMA
];

/// Open flags that would write or create: an open with any of them is refused.
pub(crate) const WRITE_FLAGS: u64 =
    (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u64;

/// What the allowlist does with a call it refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `SECCOMP_RET_USER_NOTIF`: the calling thread waits while the holder of the filter's
    /// listener (the kernel's supervisor) is told; it never returns to the vat's code.
    /// With `files`, every `open`, `openat` and `execve` is handed to the supervisor too,
    /// which lets those inside the Landlock grant through (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`;
    /// Landlock then decides) and ends the vat for the others; set it only where Landlock
    /// enforces the grant, since a let-through call is Landlock's alone to refuse.
    Notify { files: bool },
    /// `SECCOMP_RET_KILL_PROCESS`: the process dies by `SIGSYS` at once.
    Kill,
}

/// The `errno` the allowlist is compiled with for a refusal (seccompiler cannot express
/// the two actions above), replaced in the compiled program by [`Refusal`]'s action. 4095
/// is the largest value the kernel treats as an error, and no answer of ours.
const SENTINEL_ERRNO: u32 = 4095;

/// `BPF_RET | BPF_K`: the instruction that returns a constant action.
const BPF_RET_K: u16 = 0x06;

/// The filters, in the order they are to be installed: the `ENOSYS` one first, since the
/// allowlist refuses the `seccomp` call itself once installed. The allowlist refuses
/// as `refusal` says.
pub(crate) fn filters(refusal: Refusal) -> Result<[BpfProgram; 2], Error> {
    let files = matches!(refusal, Refusal::Notify { files: true });
    let Some(arch) = ARCH else {
        return Err(seccompiler::Error::EmptyFilter.into());
    };
    let mut not_implemented: BTreeMap<i64, Vec<SeccompRule>> =
        NOT_IMPLEMENTED.iter().map(|&nr| (nr, Vec::new())).collect();
    not_implemented.insert(
        libc::SYS_socket,
        vec![rule(0, SeccompCmpOp::Eq, NOT_IMPLEMENTED_SOCKET)?],
    );
    let not_implemented = SeccompFilter::new(
        not_implemented,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    let allowed = SeccompFilter::new(
        allowlist(files)?,
        SeccompAction::Errno(SENTINEL_ERRNO),
        SeccompAction::Allow,
        arch,
    )?;
    let mut allowed: BpfProgram = allowed.try_into()?;
    let action = match refusal {
        Refusal::Notify { .. } => libc::SECCOMP_RET_USER_NOTIF,
        Refusal::Kill => libc::SECCOMP_RET_KILL_PROCESS,
    };
    let sentinel = libc::SECCOMP_RET_ERRNO | SENTINEL_ERRNO;
    let mut patched = 0;
    for instruction in &mut allowed {
        if instruction.code == BPF_RET_K && instruction.k == sentinel {
            instruction.k = action;
            patched += 1;
        }
    }
    if patched == 0 {
        return Err(Error::NoRefusal);
    }
    Ok([not_implemented.try_into()?, allowed])
}

/// Why the filters could not be built or installed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    #[error(transparent)]
    Build(#[from] seccompiler::Error),
    #[error(transparent)]
    Compile(#[from] seccompiler::BackendError),
    #[error("the compiled allowlist has no refusal to patch")]
    NoRefusal,
    #[error("the allowlist is too long for one filter")]
    TooLong,
    #[error("cannot install the allowlist with a listener: {0}")]
    Listener(std::io::Error),
}

/// Installs the filters on the calling thread (with no-new-privileges); it and every
/// program it executes keep them. With [`Refusal::Notify`], returns the listener of the
/// allowlist: whoever holds it is told of every refused call, and must be the kernel, never
/// the vat (a vat holding it could let its own calls through).
pub(crate) fn install(refusal: Refusal) -> Result<Option<OwnedFd>, Error> {
    let [not_implemented, allowed] = filters(refusal)?;
    // Sets no-new-privileges first, which the listener's installation then relies on.
    seccompiler::apply_filter(&not_implemented)?;
    match refusal {
        Refusal::Kill => {
            seccompiler::apply_filter(&allowed)?;
            Ok(None)
        }
        Refusal::Notify { .. } => {
            let program: Vec<libc::sock_filter> = allowed
                .iter()
                .map(|i| libc::sock_filter {
                    code: i.code,
                    jt: i.jt,
                    jf: i.jf,
                    k: i.k,
                })
                .collect();
            install_with_listener(&program).map(Some)
        }
    }
}

/// Installs `program` as a seccomp filter of the calling thread with
/// `SECCOMP_FILTER_FLAG_NEW_LISTENER`, returning the listener. No-new-privileges must be
/// set already (it is: the `ENOSYS` filter set it). One of the `unsafe` calls of
/// confinement, all in this file: seccompiler cannot pass that flag, and neither libc nor
/// rustix offers a safe wrapper.
#[allow(unsafe_code)]
fn install_with_listener(program: &[libc::sock_filter]) -> Result<OwnedFd, Error> {
    let len = u16::try_from(program.len()).map_err(|_| Error::TooLong)?;
    let fprog = libc::sock_fprog {
        len,
        filter: program.as_ptr().cast_mut(),
    };
    // SAFETY: `fprog` points at `len` valid instructions that outlive the call; the kernel
    // copies the program and does not keep the pointer. The call takes no other memory.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &raw const fprog,
        )
    };
    let fd = i32::try_from(fd)
        .ok()
        .filter(|fd| *fd >= 0)
        .ok_or_else(|| Error::Listener(std::io::Error::last_os_error()))?;
    // SAFETY: on success the call returns a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A call the allowlist handed to the supervisor, as the listener reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Notification {
    /// The notification's id, for [`let_through`] and [`still_waiting`].
    pub(crate) id: u64,
    /// The thread that made the call (its id in the kernel's pid namespace).
    pub(crate) tid: u32,
    /// The system call's number.
    pub(crate) nr: libc::c_long,
    /// Its six arguments.
    pub(crate) args: [u64; 6],
}

/// Waits for (or, if the listener is readable, takes) the next call handed to the listener's
/// holder: `SECCOMP_IOCTL_NOTIF_RECV`. Fails with `ENOENT` if the calling thread went away
/// meanwhile (it was killed).
#[allow(unsafe_code)]
pub(crate) fn receive(listener: BorrowedFd<'_>) -> std::io::Result<Notification> {
    // The kernel wants it zeroed.
    let mut notif = libc::seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    // SAFETY: `SECCOMP_IOCTL_NOTIF_RECV` writes one `struct seccomp_notif` (the type of
    // `notif`, the size the request number encodes) through the pointer, which is valid and
    // exclusive for the call; it keeps no pointer after it.
    let done = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV,
            &raw mut notif,
        )
    };
    if done < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Notification {
        id: notif.id,
        tid: notif.pid,
        nr: libc::c_long::from(notif.data.nr),
        args: notif.data.args,
    })
}

/// Lets the call `id` run as if the filter had allowed it
/// (`SECCOMP_IOCTL_NOTIF_SEND` with `SECCOMP_USER_NOTIF_FLAG_CONTINUE`): Landlock and the
/// rest of the kernel's checks still apply. Fails with `ENOENT` if the thread went away.
#[allow(unsafe_code)]
pub(crate) fn let_through(listener: BorrowedFd<'_>, id: u64) -> std::io::Result<()> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error: 0,
        flags: u32::try_from(libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE).unwrap_or(1),
    };
    // SAFETY: `SECCOMP_IOCTL_NOTIF_SEND` reads one `struct seccomp_notif_resp` (the type of
    // `resp`, the size the request number encodes) through the pointer, valid for the call;
    // it keeps no pointer after it.
    let done = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND,
            &raw mut resp,
        )
    };
    if done < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Whether the call `id` still waits for an answer (`SECCOMP_IOCTL_NOTIF_ID_VALID`): what
/// was read of its thread since it was received was read from that thread, not from a
/// process that has since taken its id. `ENOENT` means it does not; any other error (an
/// ioctl number this system does not know) is returned, never taken for an answer.
#[allow(unsafe_code)]
pub(crate) fn still_waiting(listener: BorrowedFd<'_>, id: u64) -> std::io::Result<bool> {
    let mut id = id;
    // SAFETY: `SECCOMP_IOCTL_NOTIF_ID_VALID` reads one `u64` through the pointer, valid for
    // the call; it keeps no pointer after it.
    let done = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
            &raw mut id,
        )
    };
    if done == 0 {
        return Ok(true);
    }
    let error = std::io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::ENOENT) => Ok(false),
        _ => Err(error),
    }
}

/// The names of the refused system calls the operator is likeliest to meet in the log
/// (the number is logged for any other).
pub(crate) fn syscall_name(nr: libc::c_long) -> Option<&'static str> {
    NAMES
        .iter()
        .chain(NAMES_X86_64)
        .find(|(n, _)| *n == nr)
        .map(|(_, name)| *name)
}

const NAMES: &[(libc::c_long, &str)] = &[
    (libc::SYS_socket, "socket"),
    (libc::SYS_socketpair, "socketpair"),
    (libc::SYS_connect, "connect"),
    (libc::SYS_bind, "bind"),
    (libc::SYS_listen, "listen"),
    (libc::SYS_accept4, "accept4"),
    (libc::SYS_clone, "clone"),
    (libc::SYS_clone3, "clone3"),
    (libc::SYS_execveat, "execveat"),
    (libc::SYS_openat, "openat"),
    (libc::SYS_execve, "execve"),
    (libc::SYS_ptrace, "ptrace"),
    (libc::SYS_kill, "kill"),
    (libc::SYS_tgkill, "tgkill"),
    (libc::SYS_prlimit64, "prlimit64"),
    (libc::SYS_ioctl, "ioctl"),
    (libc::SYS_prctl, "prctl"),
    (libc::SYS_madvise, "madvise"),
    (libc::SYS_mount, "mount"),
    (libc::SYS_unshare, "unshare"),
    (libc::SYS_setns, "setns"),
    (libc::SYS_memfd_create, "memfd_create"),
    (libc::SYS_bpf, "bpf"),
    (libc::SYS_seccomp, "seccomp"),
    (libc::SYS_process_vm_readv, "process_vm_readv"),
    (libc::SYS_process_vm_writev, "process_vm_writev"),
    (libc::SYS_io_uring_setup, "io_uring_setup"),
    (libc::SYS_mkdirat, "mkdirat"),
    (libc::SYS_unlinkat, "unlinkat"),
    (libc::SYS_renameat2, "renameat2"),
    (libc::SYS_setuid, "setuid"),
    (libc::SYS_wait4, "wait4"),
];

#[cfg(target_arch = "x86_64")]
const NAMES_X86_64: &[(libc::c_long, &str)] = &[
    (libc::SYS_fork, "fork"),
    (libc::SYS_vfork, "vfork"),
    (libc::SYS_open, "open"),
    (libc::SYS_creat, "creat"),
    (libc::SYS_accept, "accept"),
    (libc::SYS_mkdir, "mkdir"),
    (libc::SYS_unlink, "unlink"),
    (libc::SYS_rename, "rename"),
];
#[cfg(not(target_arch = "x86_64"))]
const NAMES_X86_64: &[(libc::c_long, &str)] = &[];

/// The allowlist's rules; without `files`, with `execve` and the read-only opens among them
/// (Landlock alone limits them), with it, without (the supervisor sees them all).
fn allowlist(files: bool) -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::Error> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = ALWAYS
        .iter()
        .chain(ALWAYS_X86_64)
        .map(|&nr| (nr, Vec::new()))
        .collect();
    let pid = u64::from(std::process::id());
    // A thread, never a process: `CLONE_THREAD` also implies a shared address space.
    let thread = u64::try_from(libc::CLONE_THREAD).unwrap_or(0);
    rules.insert(
        libc::SYS_clone,
        vec![rule(0, SeccompCmpOp::MaskedEq(thread), thread)?],
    );
    // Signals only to itself (the exec keeps the pid).
    rules.insert(libc::SYS_kill, vec![rule(0, SeccompCmpOp::Eq, pid)?]);
    rules.insert(libc::SYS_tgkill, vec![rule(0, SeccompCmpOp::Eq, pid)?]);
    // Reading its own limits only: a worker running as root could raise a hard limit.
    rules.insert(
        libc::SYS_prlimit64,
        vec![SeccompRule::new(vec![
            SeccompCondition::new(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, 0)?,
            SeccompCondition::new(2, SeccompCmpArgLen::Qword, SeccompCmpOp::Eq, 0)?,
        ])?],
    );
    // Memory advice, but not the memory-failure injection a root worker could use on the
    // machine's pages (`MADV_HWPOISON` 100, `MADV_SOFT_OFFLINE` 101).
    rules.insert(
        libc::SYS_madvise,
        vec![
            rule(2, SeccompCmpOp::Lt, 100)?,
            rule(2, SeccompCmpOp::Eq, 102)?, // MADV_GUARD_INSTALL
            rule(2, SeccompCmpOp::Eq, 103)?, // MADV_GUARD_REMOVE
        ],
    );
    // Answered by the `ENOSYS` filter; listed so that this one does not also refuse it.
    rules.insert(
        libc::SYS_socket,
        vec![rule(0, SeccompCmpOp::Eq, NOT_IMPLEMENTED_SOCKET)?],
    );
    rules.insert(libc::SYS_ioctl, any_of(1, IOCTLS)?);
    rules.insert(libc::SYS_prctl, any_of(0, PRCTLS)?);
    if !files {
        rules.insert(libc::SYS_openat, vec![read_only(2)?]);
        #[cfg(target_arch = "x86_64")]
        rules.insert(libc::SYS_open, vec![read_only(1)?]);
        // Running the program: Landlock's execute right limits what.
        rules.insert(libc::SYS_execve, Vec::new());
    }
    Ok(rules)
}

/// Argument `arg` (a 32-bit value) compared with `value`.
fn rule(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompRule, seccompiler::Error> {
    let condition = SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value)?;
    SeccompRule::new(vec![condition]).map_err(Into::into)
}

/// Argument `arg` equal to one of `values`.
fn any_of(arg: u8, values: &[u64]) -> Result<Vec<SeccompRule>, seccompiler::Error> {
    values
        .iter()
        .map(|&value| rule(arg, SeccompCmpOp::Eq, value))
        .collect()
}

/// Open flags at argument `arg` with no writing or creating bit.
fn read_only(arg: u8) -> Result<SeccompRule, seccompiler::Error> {
    rule(arg, SeccompCmpOp::MaskedEq(WRITE_FLAGS), 0)
}
