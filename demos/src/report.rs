//! The JSON ground truth a run prints on stdout (schema documented in README.md).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::syscalls::{Counter, Family};
use crate::uring::IoUringReport;
use crate::worker::RoleOutcome;
use crate::zerocopy::ZeroCopyReport;

/// Everything one run did, per worker process.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    pub scenario: String,
    pub mode: String,
    /// True for the scenario's copying baseline mode.
    pub baseline: bool,
    /// Useful bytes delivered end to end (or processed, for single-worker jobs).
    pub payload_bytes: u64,
    /// True when the receiving side checked every payload byte (or checksum).
    pub verified: bool,
    pub chunk_bytes: u64,
    pub requested_bytes: Option<u64>,
    pub requested_seconds: Option<f64>,
    /// From the first worker's start to the last worker's end.
    pub wall_seconds: f64,
    pub throughput_bytes_per_sec: f64,
    /// The demo's own (untallied) process: not part of the ground truth.
    pub parent_pid: u32,
    pub roles: Vec<RoleReport>,
}

/// One worker process's exact syscall tally.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RoleReport {
    pub role: String,
    pub pid: i32,
    /// Non-zero counters only, keyed by the name strace prints.
    pub syscalls: BTreeMap<String, Counter>,
    pub copy_family: Counter,
    pub zero_copy_family: Counter,
    pub user_copy_bytes: u64,
    /// Payload bytes this role sent, received, or processed.
    pub payload_bytes: u64,
    /// CPU time of this worker process (getrusage via wait4).
    pub cpu_user_seconds: f64,
    pub cpu_system_seconds: f64,
    /// Page faults of this worker process (getrusage via wait4; every mapping of the
    /// process, not only a mapped input file): minor (served from memory) and major (with
    /// I/O). Absent from older reports, and read as 0.
    #[serde(default)]
    pub minor_faults: u64,
    #[serde(default)]
    pub major_faults: u64,
    /// The worker's perf counters: task-clock (its CPU time at the scheduler's resolution,
    /// where rusage's is a tick), page faults, and cycles/instructions where the machine has
    /// a PMU (this project's VMs have none: absent, not 0). Absent when perf events are not
    /// permitted, and in older reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf: Option<crate::perf::PerfReport>,
    /// The worker's io_uring setup, enters and completions per opcode; only for roles that
    /// set up a ring (absent from older reports, and read as absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub io_uring: Option<IoUringReport>,
    /// The worker's zero-copy sends and what their notifications said; only for roles that
    /// requested any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zerocopy: Option<ZeroCopyReport>,
    /// The file pages the worker mapped in and touched; only for roles that map the input
    /// file (absent from older reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapped: Option<MappedReport>,
}

/// A worker's one mapping of the input file: every page of it touched, so `pages` is
/// `ceil(file size / page size)`, what zcprof's mapped layer must count for that file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MappedReport {
    pub pages: u64,
    /// The file's device, `major:minor`, and inode, as `stat` gives them.
    pub dev: String,
    pub ino: u64,
    /// The kernel read the mapping (write/send from it), not the worker: the mapped layer
    /// may then count fewer pages (`mapping::Reader::Kernel`), so no exact comparison.
    #[serde(default)]
    pub by_kernel: bool,
}

impl RoleReport {
    pub fn from_outcome(o: &RoleOutcome) -> Self {
        RoleReport {
            role: o.role.to_owned(),
            pid: o.pid,
            syscalls: o.tally.to_map(),
            copy_family: o.tally.family_total(Family::Copy),
            zero_copy_family: o.tally.family_total(Family::ZeroCopy),
            user_copy_bytes: o.stats.user_copy_bytes,
            payload_bytes: o.stats.payload_bytes,
            cpu_user_seconds: o.cpu_user_seconds,
            cpu_system_seconds: o.cpu_system_seconds,
            minor_faults: o.minor_faults,
            major_faults: o.major_faults,
            perf: o.perf,
            io_uring: o.tally.uring.report(),
            zerocopy: o.tally.zerocopy.report(),
            mapped: (o.stats.mapped_pages > 0).then(|| MappedReport {
                pages: o.stats.mapped_pages,
                dev: format!(
                    "{}:{}",
                    libc::major(o.stats.mapped_dev),
                    libc::minor(o.stats.mapped_dev)
                ),
                ino: o.stats.mapped_ino,
                by_kernel: o.stats.mapped_by_kernel != 0,
            }),
        }
    }
}

/// Seconds from the earliest worker start to the latest worker end.
pub fn wall_seconds(outcomes: &[RoleOutcome]) -> f64 {
    let start = outcomes.iter().map(|o| o.start_ns).min().unwrap_or(0);
    let end = outcomes.iter().map(|o| o.end_ns).max().unwrap_or(0);
    end.saturating_sub(start) as f64 / 1e9
}
