//! Facts about the machine zcprof runs on, each read in exactly one place: the kernel
//! release, the host name, the lockdown mode and mounted file systems (here), this process's
//! capabilities ([`privileges`]), and what /proc says about processes ([`procfs`]) and their
//! code mappings ([`maps`]).
//!
//! The readers here never fail: an unreadable fact reads as `unknown`, because these facts
//! label and explain output rather than decide anything. The one that decides whether
//! profiling can start, [`privileges::check`], fails with one sentence.

use std::{fs, path::Path};

pub mod cgroup;
pub mod copy_routines;
pub mod fds;
pub mod kallsyms;
pub mod maps;
pub mod perf;
pub mod privileges;
pub mod procfs;

/// What an unreadable fact reads as, wherever it is printed or recorded.
pub const UNKNOWN: &str = "unknown";

/// `uname -r`.
pub fn kernel_release() -> String {
    read_trimmed("/proc/sys/kernel/osrelease")
}

/// `uname -n`.
pub fn hostname() -> String {
    read_trimmed("/proc/sys/kernel/hostname")
}

/// The active mode of `/sys/kernel/security/lockdown` (`none`, `integrity`,
/// `confidentiality`), or `unknown (why)`.
pub fn lockdown() -> String {
    let path = Path::new("/sys/kernel/security/lockdown");
    match fs::read_to_string(path) {
        Ok(text) => parse_lockdown(&text).unwrap_or_else(|| format!("{UNKNOWN} ({})", text.trim())),
        Err(_) if !mounted("securityfs") => {
            format!("{UNKNOWN} (securityfs is not mounted at /sys/kernel/security)")
        }
        Err(err) => format!("{UNKNOWN} ({}: {err})", path.display()),
    }
}

/// The bracketed word of `none [integrity] confidentiality`.
fn parse_lockdown(text: &str) -> Option<String> {
    let start = text.find('[')?;
    let end = text[start..].find(']')? + start;
    Some(text[start + 1..end].to_string())
}

/// Whether a file system of this type (`bpf`, `securityfs`, …) is mounted anywhere.
pub fn mounted(fstype: &str) -> bool {
    fs::read_to_string("/proc/mounts").is_ok_and(|mounts| {
        mounts
            .lines()
            .any(|l| l.split_whitespace().nth(2) == Some(fstype))
    })
}

/// `kernel.perf_event_paranoid` (who may open perf events: 2 and above, only
/// CAP_PERFMON/root may sample the kernel and other processes), or `unknown`.
pub fn perf_event_paranoid() -> String {
    read_trimmed("/proc/sys/kernel/perf_event_paranoid")
}

/// `kernel.perf_event_max_sample_rate`: the highest sampling frequency the kernel allows.
pub fn perf_event_max_sample_rate() -> Option<u64> {
    read_trimmed("/proc/sys/kernel/perf_event_max_sample_rate")
        .parse()
        .ok()
}

/// Whether the machine has a hardware PMU (a `cpu` event source: cycles, instructions);
/// virtual machines often have only software events.
pub fn has_hardware_pmu() -> bool {
    Path::new("/sys/bus/event_source/devices/cpu").exists()
        || Path::new("/sys/bus/event_source/devices/cpu_core").exists()
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path).map_or_else(|_| UNKNOWN.into(), |s| s.trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lockdown_mode_is_the_bracketed_word() {
        assert_eq!(
            parse_lockdown("none [integrity] confidentiality\n").as_deref(),
            Some("integrity")
        );
        assert_eq!(parse_lockdown("[none] integrity").as_deref(), Some("none"));
        assert_eq!(parse_lockdown("garbage"), None);
    }

    #[test]
    fn reads_this_machine() {
        let release = kernel_release();
        assert_ne!(release, UNKNOWN);
        assert!(!release.contains('\n'));
        // /proc is always mounted where zcprof runs.
        assert!(mounted("proc"));
        assert!(!mounted("no-such-fs"));
    }
}
