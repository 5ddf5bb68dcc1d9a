//! Checks, before anything is touched, that this process may load and attach eBPF programs.

use std::fs;

use thiserror::Error;

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, Error)]
pub enum PrivilegeError {
    #[error(
        "zcprof needs root, or the CAP_BPF and CAP_PERFMON capabilities, to load its eBPF probes: run it with sudo"
    )]
    Missing,
    #[error("cannot read this process's capabilities from /proc/self/status: {0}")]
    Unreadable(String),
}

/// Succeeds when the effective capability set allows loading tracing programs.
pub fn check() -> Result<(), PrivilegeError> {
    let status = fs::read_to_string("/proc/self/status")
        .map_err(|err| PrivilegeError::Unreadable(err.to_string()))?;
    let effective = parse_cap_eff(&status)
        .ok_or_else(|| PrivilegeError::Unreadable("no CapEff line".into()))?;
    if allows_bpf(effective) {
        Ok(())
    } else {
        Err(PrivilegeError::Missing)
    }
}

fn parse_cap_eff(status: &str) -> Option<u64> {
    let hex = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

fn allows_bpf(effective: u64) -> bool {
    let has = |cap: u32| effective & (1u64 << cap) != 0;
    has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_effective_set() {
        let status = "Name:\tx\nCapPrm:\t0000000000000000\nCapEff:\t000001fffeffffff\n";
        assert_eq!(parse_cap_eff(status), Some(0x1fffeffffff));
        assert_eq!(parse_cap_eff("Name: x\n"), None);
    }

    #[test]
    fn needs_sys_admin_or_bpf_and_perfmon() {
        assert!(!allows_bpf(0));
        assert!(allows_bpf(1 << CAP_SYS_ADMIN));
        assert!(allows_bpf((1 << CAP_BPF) | (1 << CAP_PERFMON)));
        assert!(!allows_bpf(1 << CAP_BPF));
        assert!(!allows_bpf(1 << CAP_PERFMON));
    }
}
