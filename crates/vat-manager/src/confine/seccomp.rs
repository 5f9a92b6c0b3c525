//! The seccomp-bpf allowlist of a confined worker: what the dynamic loader, the C library,
//! an allocator, a thread or two and the frame protocol need, and nothing that reaches
//! outside the process. Any other system call fails with `EPERM` (refused, not killed:
//! see docs/confinement.md), except `clone3` and `openat2`, which fail with `ENOSYS` so
//! that the C library falls back to `clone` (checked here) and `openat` (limited by
//! Landlock and by the flags check below).

use std::collections::BTreeMap;

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
    // Running the program: Landlock's execute right limits what.
    libc::SYS_execve,
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

/// `ioctl` requests allowed: terminal queries and close-on-exec / non-blocking flags.
const IOCTLS: &[u64] = &[0x5401, 0x5413, 0x5421, 0x5450, 0x5451];

/// `prctl` options allowed: naming threads and memory areas.
const PRCTLS: &[u64] = &[
    libc::PR_SET_NAME as u64,
    libc::PR_GET_NAME as u64,
    0x5356_4d41, // PR_SET_VMA
];

/// Open flags that would write or create: an open with any of them is refused.
const WRITE_FLAGS: u64 = (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u64;

/// The filters, in the order they are to be installed: the `ENOSYS` one first, since the
/// allowlist refuses the `seccomp` call itself once installed.
pub(crate) fn filters() -> Result<[BpfProgram; 2], seccompiler::Error> {
    let Some(arch) = ARCH else {
        return Err(seccompiler::Error::EmptyFilter);
    };
    let not_implemented: BTreeMap<i64, Vec<SeccompRule>> =
        NOT_IMPLEMENTED.iter().map(|&nr| (nr, Vec::new())).collect();
    let not_implemented = SeccompFilter::new(
        not_implemented,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )?;
    let allowed = SeccompFilter::new(
        allowlist()?,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        arch,
    )?;
    Ok([not_implemented.try_into()?, allowed.try_into()?])
}

/// Installs the filters on the calling thread (with no-new-privileges); it and every
/// program it executes keep them.
pub(crate) fn install() -> Result<(), seccompiler::Error> {
    for filter in filters()? {
        seccompiler::apply_filter(&filter)?;
    }
    Ok(())
}

fn allowlist() -> Result<BTreeMap<i64, Vec<SeccompRule>>, seccompiler::Error> {
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
    rules.insert(libc::SYS_ioctl, any_of(1, IOCTLS)?);
    rules.insert(libc::SYS_prctl, any_of(0, PRCTLS)?);
    rules.insert(libc::SYS_openat, vec![read_only(2)?]);
    #[cfg(target_arch = "x86_64")]
    rules.insert(libc::SYS_open, vec![read_only(1)?]);
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
