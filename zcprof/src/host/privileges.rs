//! This process's identity and effective capabilities (from /proc/self/status), and the check,
//! before anything is touched, that they allow loading and attaching eBPF programs.

use std::fs;

use thiserror::Error;

/// The capabilities zcprof asks about, by their numbers in `linux/capability.h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    SysAdmin = 21,
    Perfmon = 38,
    Bpf = 39,
}

#[derive(Debug, Error)]
pub enum PrivilegeError {
    #[error(
        "zcprof needs root, or the CAP_BPF and CAP_PERFMON capabilities, to load its eBPF probes: run it with sudo"
    )]
    Missing,
    #[error("cannot read this process's capabilities from /proc/self/status: {0}")]
    Unreadable(String),
}

/// Who this process is, as far as loading probes goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Credentials {
    /// The effective user id.
    pub uid: u32,
    /// The effective capability set, one bit per capability number.
    effective: u64,
}

impl Credentials {
    /// This process's credentials.
    pub fn of_self() -> Result<Self, PrivilegeError> {
        let status = fs::read_to_string("/proc/self/status")
            .map_err(|err| PrivilegeError::Unreadable(err.to_string()))?;
        Self::parse(&status)
            .ok_or_else(|| PrivilegeError::Unreadable("no Uid or CapEff line".into()))
    }

    /// From the text of a /proc/PID/status file.
    fn parse(status: &str) -> Option<Self> {
        let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name));
        // `Uid:` lists the real, effective, saved and file-system ids.
        let uid = field("Uid:")?.split_whitespace().nth(1)?.parse().ok()?;
        let effective = u64::from_str_radix(field("CapEff:")?.trim(), 16).ok()?;
        Some(Self { uid, effective })
    }

    pub fn has(&self, cap: Capability) -> bool {
        self.effective & (1u64 << cap as u32) != 0
    }

    /// Whether tracing programs may be loaded: CAP_SYS_ADMIN, or CAP_BPF with CAP_PERFMON.
    pub fn may_trace(&self) -> bool {
        self.has(Capability::SysAdmin)
            || (self.has(Capability::Bpf) && self.has(Capability::Perfmon))
    }
}

/// Succeeds when the effective capability set allows loading tracing programs.
pub fn check() -> Result<(), PrivilegeError> {
    if Credentials::of_self()?.may_trace() {
        Ok(())
    } else {
        Err(PrivilegeError::Missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(caps: &[Capability]) -> Credentials {
        Credentials {
            uid: 0,
            effective: caps.iter().fold(0, |set, &c| set | 1u64 << c as u32),
        }
    }

    #[test]
    fn reads_the_effective_uid_and_set() {
        let status =
            "Name:\tx\nUid:\t1000\t0\t0\t0\nCapPrm:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        let creds = Credentials::parse(status).expect("parses");
        assert_eq!(creds.uid, 0);
        assert_eq!(creds.effective, 0x1fffeffffff);
        assert!(creds.has(Capability::Bpf) && creds.has(Capability::SysAdmin));
        assert_eq!(Credentials::parse("Name: x\n"), None);
        assert_eq!(Credentials::parse("Uid:\t0\t0\t0\t0\nCapEff:\tzz\n"), None);
    }

    #[test]
    fn needs_sys_admin_or_bpf_and_perfmon() {
        use Capability::*;
        assert!(!with(&[]).may_trace());
        assert!(with(&[SysAdmin]).may_trace());
        assert!(with(&[Bpf, Perfmon]).may_trace());
        assert!(!with(&[Bpf]).may_trace());
        assert!(!with(&[Perfmon]).may_trace());
    }

    #[test]
    fn this_process_is_readable() {
        let creds = Credentials::of_self().expect("own status");
        // SAFETY: geteuid has no preconditions.
        assert_eq!(creds.uid, unsafe { libc::geteuid() });
    }
}
