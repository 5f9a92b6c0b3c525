//! Which confinement facilities the running OS offers, probed once per process.

use std::sync::OnceLock;

/// The OS facilities confinement is built on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facilities {
    /// Landlock file-system rules (Linux 5.13 and later, when enabled).
    pub landlock: bool,
    /// seccomp-bpf filters, on an architecture our allowlist is written for.
    pub seccomp: bool,
}

impl Facilities {
    /// No facility.
    pub const NONE: Facilities = Facilities {
        landlock: false,
        seccomp: false,
    };

    /// Both facilities.
    pub const ALL: Facilities = Facilities {
        landlock: true,
        seccomp: true,
    };

    /// What this system offers, probed on first use: Landlock by creating (and dropping) a
    /// ruleset, seccomp by the kernel's report of it in `/proc/self/status`.
    pub fn probe() -> Facilities {
        static PROBED: OnceLock<Facilities> = OnceLock::new();
        *PROBED.get_or_init(|| Facilities {
            landlock: landlock_available(),
            seccomp: seccomp_available(),
        })
    }

    /// These facilities less those in `withheld`.
    pub fn without(self, withheld: Facilities) -> Facilities {
        Facilities {
            landlock: self.landlock && !withheld.landlock,
            seccomp: self.seccomp && !withheld.seccomp,
        }
    }

    /// What is missing, as the error names it; `None` if nothing is.
    pub(crate) fn missing(self) -> Option<&'static str> {
        match (self.landlock, self.seccomp) {
            (true, true) => None,
            (false, true) => Some("Landlock"),
            (true, false) => Some("seccomp"),
            (false, false) => Some("Landlock and seccomp"),
        }
    }
}

#[cfg(target_os = "linux")]
fn landlock_available() -> bool {
    use landlock::{ABI, Access, AccessFs, CompatLevel, Compatible, Ruleset, RulesetAttr};
    Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(ABI::V1))
        .and_then(Ruleset::create)
        .is_ok()
}

#[cfg(target_os = "linux")]
fn seccomp_available() -> bool {
    super::seccomp::ARCH_SUPPORTED
        && std::fs::read_to_string("/proc/self/status")
            .is_ok_and(|status| status.lines().any(|line| line.starts_with("Seccomp:")))
}

#[cfg(not(target_os = "linux"))]
fn landlock_available() -> bool {
    false
}

#[cfg(not(target_os = "linux"))]
fn seccomp_available() -> bool {
    false
}
