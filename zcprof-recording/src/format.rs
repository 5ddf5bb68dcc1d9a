//! The `zcprof.recording/v1` document. `schema/recording.v1.json` describes the same shape
//! for other tools; a test checks that every recording zcprof writes validates against it.
//!
//! Figures are grouped by the probe layer that produced them (`layers.syscall` today; the
//! kernel-copy layer adds `layers.kernel` with per-probe entries under `probes`), so a
//! reader always knows which layer a number came from.

use serde::{Deserialize, Serialize};

mod map;
mod stacks;
pub use map::{MapEntry, SortedMap};
pub use stacks::{CallSite, FrameRecord, StackLayer, StackRecord, Stacks, sampling_error};

/// Schema name and version written in every recording.
pub const SCHEMA: &str = "zcprof.recording/v1";
/// The schema family: `SCHEMA` without its version.
pub const SCHEMA_NAME: &str = "zcprof.recording";
/// The newest version this build reads and writes.
pub const VERSION: u32 = 1;

/// One recording: what was profiled, how, and everything that was counted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    pub schema: String,
    pub zcprof_version: String,
    /// `uname -r` of the machine that recorded.
    pub kernel: String,
    /// How the syscall layer saw syscall exits: `raw` or `tracepoint`.
    pub syscall_probe: String,
    pub started_unix: f64,
    pub ended_unix: f64,
    /// Runtime of the workload (command mode) or length of the recording (other modes):
    /// the default normalisation of `zcprof diff`.
    pub duration_s: f64,
    /// Ctrl-C or SIGTERM ended the recording early: the figures are partial.
    pub interrupted: bool,
    /// `exit` (the command or every recorded process ended), `duration`, or `signal`.
    pub ended_by: String,
    pub workload: Workload,
    /// State of each probe layer while recording.
    pub probe_layers: Vec<ProbeLayer>,
    pub lost: Lost,
    pub processes: Vec<ProcessRecord>,
    pub total: Total,
    /// The stacks layer's estimate, when recorded with `--stacks` (absent otherwise, and
    /// in recordings made before zcprof sampled stacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stacks: Option<Stacks>,
}

/// What was profiled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub kind: WorkloadKind,
    /// The command line, for `kind: command`.
    pub command: Option<Vec<String>>,
    /// The processes recording started from (the command's pid, or `--pid` arguments),
    /// each with its command line when it could be read.
    pub targets: Vec<Target>,
    /// The `--comm` substring, for `kind: comm`.
    pub comm: Option<String>,
    /// `--cgroup` paths: only processes in these cgroups (or below) were recorded. Absent
    /// when not given.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cgroups: Vec<String>,
    /// How the command ended (`kind: command`); both `null` when it was still running.
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// `record -- CMD`: the command and all its descendants.
    Command,
    /// `record --pid P`: those processes and their descendants.
    Pids,
    /// `record --comm C`: processes whose name contains C.
    Comm,
    /// `record` alone: every process on the machine.
    Machine,
}

impl WorkloadKind {
    pub fn describe(self) -> &'static str {
        match self {
            WorkloadKind::Command => "a command",
            WorkloadKind::Pids => "chosen pids",
            WorkloadKind::Comm => "processes chosen by name",
            WorkloadKind::Machine => "the whole machine",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub pid: u32,
    /// Empty when `/proc/PID/cmdline` could not be read.
    pub command: Vec<String>,
}

/// One probe layer's state (as in `zcprof.run/v1` and `zcprof.top/v1`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeLayer {
    pub layer: String,
    /// `live`, `partial` or `unavailable`.
    pub state: String,
    pub via: String,
    pub attached: u64,
    pub unavailable: Vec<String>,
}

/// Events the kernel side or the decoder lost (as in `zcprof.run/v1`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lost {
    pub ringbuf_full: u64,
    pub stats_map_full: u64,
    pub mmsg_unreadable: u64,
    pub mmsg_no_enter: u64,
    /// Calls whose arguments a full stash map could not keep from entry to exit (absent
    /// from recordings made before zcprof counted it: 0).
    #[serde(default)]
    pub stash_full: u64,
    /// Children of followed processes that could not be followed because the followed-process
    /// map was full (absent from recordings made before zcprof counted it: 0).
    #[serde(default)]
    pub follow_full: u64,
    /// io_uring completions whose submission the io_uring layer did not see (absent from
    /// recordings made before zcprof counted it: 0).
    #[serde(default)]
    pub io_uring_unmatched: u64,
    pub malformed_records: u64,
    pub total: u64,
}

/// One process instance (a reused pid is a separate entry).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcessRecord {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub comm: String,
    /// `forked` (seen from its start) or `existing` (counted from when probes attached).
    pub origin: String,
    pub exited: bool,
    /// Its cgroup v2 path (`/system.slice/nginx.service`), when known; absent otherwise
    /// (and in recordings made before zcprof recorded it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<String>,
    /// The container or unit that path names (`docker 0123456789ab`, `unit nginx.service`),
    /// when it names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub layers: Layers,
    /// Its threads, with their own syscall-layer figures, when recorded with `--threads`
    /// (absent otherwise, and in recordings made before zcprof recorded them).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub threads: Vec<ThreadRecord>,
}

/// One thread of a recorded process (`--threads`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ThreadRecord {
    /// Its thread id (the process's pid for the main thread).
    pub tid: u32,
    /// Its name (`comm`) at its exit, or when zcprof first saw it; empty when unknown.
    pub name: String,
    pub exited: bool,
    /// The syscall layer's figures for this thread alone (the shape of a process's
    /// `layers.syscall`); a process's threads add up to its syscall layer when they were
    /// counted from its start.
    pub syscall: Layer,
}

/// Sum over the recorded processes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Total {
    pub layers: Layers,
}

/// Figures keyed by the probe layer that produced them: `syscall`, later `kernel`.
pub type Layers = SortedMap<Layer>;

/// One layer's figures for one process (or a total).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Layer {
    /// Copy totals of the kernel layer come from the probes of one role (the copy primitives,
    /// else `__check_object_size`), never from overlapping ones.
    pub totals: LayerTotals,
    /// Kernel layer only: that role (`primitive`, `cross_check`), or `null` when no copy
    /// probe attached, so that its copy totals of 0 are not read as "no copies". Absent from
    /// other layers (and from recordings made before it existed).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "present_or_null"
    )]
    pub copy_source: Option<Option<String>>,
    /// Per syscall (syscall layer): only syscalls that were called.
    #[serde(default)]
    pub syscalls: SortedMap<Entry>,
    /// Per probe (layers that count at kernel functions rather than syscalls).
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub probes: SortedMap<Entry>,
}

impl Layer {
    /// Every entry, syscalls then probes.
    pub fn entries(&self) -> impl Iterator<Item = (&String, &Entry)> {
        self.syscalls.iter().chain(self.probes.iter())
    }
}

/// A layer's figures summed over its entries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LayerTotals {
    pub copy_k2u_bytes: u64,
    pub copy_u2k_bytes: u64,
    pub zero_copy_bytes: u64,
    pub calls: u64,
    /// Calls that returned an error, [`LayerTotals::would_block`] included.
    pub errors: u64,
    /// Of `errors`, those that returned EAGAIN/EWOULDBLOCK or EINTR ([`WOULD_BLOCK`]):
    /// "would block / interrupted", not failures. Absent (0) in recordings made before
    /// zcprof counted errnos.
    #[serde(default)]
    pub would_block: u64,
    /// `errors` by errno name (the kernel's fixed table, "other" for the rest); only
    /// non-zero ones; empty where the layer knows no errno.
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub errno: SortedMap<u64>,
    /// Zero-copy bytes over all moved bytes; `null` when nothing moved.
    pub zero_copy_ratio: Option<f64>,
    /// Syscall layer: the sends that passed `MSG_ZEROCOPY` and what the kernel's
    /// notifications said of them. Their bytes are already in `copy_u2k_bytes` (the
    /// unconfirmed share, [`MsgZerocopy::unconfirmed_bytes`]) and `zero_copy_bytes` (the
    /// rest). Absent when there were none.
    #[serde(default, skip_serializing_if = "MsgZerocopy::is_zero")]
    pub msg_zerocopy: MsgZerocopy,
    /// Flows layer only: the bytes sent out through sockets (copied or not, every socket
    /// kind), what `diff` can compare per when no unit of work was given. Absent elsewhere.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_bytes: Option<u64>,
}

/// `MSG_ZEROCOPY` sends of a process (or group) and what their completion notifications,
/// as the application read them with `recvmsg(MSG_ERRQUEUE)`, said. The kernel may copy a
/// zero-copy send after all (always on loopback and without `SO_ZEROCOPY`), and only a
/// notification tells; an application that never reads them leaves its sends
/// unconfirmed. Notifications count sends, not bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MsgZerocopy {
    /// Bytes of the successful sends that passed `MSG_ZEROCOPY`.
    pub requested_bytes: u64,
    /// Those sends.
    pub requested_sends: u64,
    /// Sends a notification reported completed without a copy.
    pub done_sends: u64,
    /// Sends a notification reported the kernel copied (`SO_EE_CODE_ZEROCOPY_COPIED`).
    pub copied_sends: u64,
}

impl MsgZerocopy {
    pub fn is_zero(&self) -> bool {
        *self == MsgZerocopy::default()
    }

    pub fn add(&mut self, other: &MsgZerocopy) {
        self.requested_bytes = self.requested_bytes.saturating_add(other.requested_bytes);
        self.requested_sends = self.requested_sends.saturating_add(other.requested_sends);
        self.done_sends = self.done_sends.saturating_add(other.done_sends);
        self.copied_sends = self.copied_sends.saturating_add(other.copied_sends);
    }

    /// The requested bytes not shown to have moved without a copy, counted as copied:
    /// all of them unless notifications said "done"; none when every send was; in between,
    /// the done share of the sends (exact only if the sends were of equal size, see
    /// [`MsgZerocopy::exact`]).
    pub fn unconfirmed_bytes(&self) -> u64 {
        if self.requested_sends == 0 {
            return self.requested_bytes;
        }
        let done = self.done_sends.min(self.requested_sends);
        let confirmed =
            u128::from(self.requested_bytes) * u128::from(done) / u128::from(self.requested_sends);
        self.requested_bytes - confirmed as u64
    }

    /// Adds `other` into `self` where figures `u2k` and `zero_copy` already hold both
    /// sides' shares (each side's unconfirmed bytes in `u2k`, the rest in `zero_copy`): the
    /// split of the sum is recomputed from the summed sends, since a group's shares are not
    /// the sum of its members' estimates.
    pub fn add_into(&mut self, other: &MsgZerocopy, u2k: &mut u64, zero_copy: &mut u64) {
        let mut sum = *self;
        sum.add(other);
        let unconfirmed = self.unconfirmed_bytes() + other.unconfirmed_bytes();
        let confirmed = self.requested_bytes + other.requested_bytes - unconfirmed;
        *u2k = (*u2k + sum.unconfirmed_bytes()).saturating_sub(unconfirmed);
        *zero_copy =
            (*zero_copy + sum.requested_bytes - sum.unconfirmed_bytes()).saturating_sub(confirmed);
        *self = sum;
    }

    /// Whether [`MsgZerocopy::unconfirmed_bytes`] is exact: no send, or every one, was
    /// confirmed without a copy.
    pub fn exact(&self) -> bool {
        self.done_sends == 0 || self.done_sends >= self.requested_sends
    }

    /// One line for people: `64.0 KiB in 16 sends with MSG_ZEROCOPY: 16 copied by the
    /// kernel anyway; 64.0 KiB of it counted as copied`, `how` being how the sends asked
    /// (`MSG_ZEROCOPY`, `io_uring SEND_ZC`).
    pub fn summary(&self, how: &str, bytes: impl Fn(u64) -> String) -> String {
        let unconfirmed = self
            .requested_sends
            .saturating_sub(self.done_sends + self.copied_sends);
        let mut parts = Vec::new();
        if self.done_sends > 0 {
            parts.push(format!("{} without a copy", self.done_sends));
        }
        if self.copied_sends > 0 {
            parts.push(format!("{} copied by the kernel anyway", self.copied_sends));
        }
        if unconfirmed > 0 {
            parts.push(format!("{unconfirmed} not confirmed by a notification"));
        }
        let counted = self.unconfirmed_bytes();
        format!(
            "{} in {} sends with {how}: {}; {} of it counted as copied{}",
            bytes(self.requested_bytes),
            self.requested_sends,
            if parts.is_empty() {
                "no notification".to_string()
            } else {
                parts.join(", ")
            },
            bytes(counted),
            if self.exact() {
                ""
            } else {
                " (estimated from the share of sends)"
            },
        )
    }
}

/// The errnos that mean "would block / interrupted" rather than a failure (EWOULDBLOCK is
/// EAGAIN on Linux): never a failure, never a regression.
pub const WOULD_BLOCK: [&str; 2] = ["EAGAIN", "EINTR"];

/// Calls in `errno` that returned one of [`WOULD_BLOCK`].
pub fn would_block(errno: &SortedMap<u64>) -> u64 {
    WOULD_BLOCK
        .iter()
        .filter_map(|name| errno.get(name))
        .fold(0, |sum, n| sum.saturating_add(*n))
}

/// Errors by errno in one line, failures apart from would-block ones, each group largest
/// first: `1 failed (EBADF 1); 8 would block / interrupted (EAGAIN 8)`. `None` when there
/// are none. Every view that shows errors by errno (run, the dashboard, diff) says it so.
pub fn errno_summary(errno: &SortedMap<u64>) -> Option<String> {
    let group = |would: bool| {
        let mut names: Vec<(&String, u64)> = errno
            .iter()
            .filter(|(name, n)| **n > 0 && WOULD_BLOCK.contains(&name.as_str()) == would)
            .map(|(name, n)| (name, *n))
            .collect();
        names.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let total = names
            .iter()
            .fold(0u64, |sum, (_, n)| sum.saturating_add(*n));
        let list: Vec<String> = names
            .iter()
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        (total > 0).then(|| (total, list.join(", ")))
    };
    let mut parts = Vec::new();
    if let Some((n, list)) = group(false) {
        parts.push(format!("{n} failed ({list})"));
    }
    if let Some((n, list)) = group(true) {
        parts.push(format!("{n} would block / interrupted ({list})"));
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Adds `other`'s errno counts into `mine`.
pub fn add_errno(mine: &mut SortedMap<u64>, other: &SortedMap<u64>) {
    for (name, n) in other {
        let slot = mine.entry(name.clone()).or_default();
        *slot = slot.saturating_add(*n);
    }
}

impl LayerTotals {
    pub fn copied_bytes(&self) -> u64 {
        self.copy_k2u_bytes.saturating_add(self.copy_u2k_bytes)
    }

    pub fn add(&mut self, other: &LayerTotals) {
        self.copy_k2u_bytes = self.copy_k2u_bytes.saturating_add(other.copy_k2u_bytes);
        self.copy_u2k_bytes = self.copy_u2k_bytes.saturating_add(other.copy_u2k_bytes);
        self.zero_copy_bytes = self.zero_copy_bytes.saturating_add(other.zero_copy_bytes);
        self.calls = self.calls.saturating_add(other.calls);
        self.errors = self.errors.saturating_add(other.errors);
        self.would_block = self.would_block.saturating_add(other.would_block);
        add_errno(&mut self.errno, &other.errno);
        self.msg_zerocopy.add_into(
            &other.msg_zerocopy,
            &mut self.copy_u2k_bytes,
            &mut self.zero_copy_bytes,
        );
        self.zero_copy_ratio = ratio(self.zero_copy_bytes, self.copied_bytes());
        self.delivered_bytes = match (self.delivered_bytes, other.delivered_bytes) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0).saturating_add(b.unwrap_or(0))),
        };
    }

    /// Errors that are failures: `errors` without the would-block ones.
    pub fn failures(&self) -> u64 {
        self.errors.saturating_sub(self.would_block)
    }
}

/// `zero_copy / (zero_copy + copied)`, `None` when nothing moved.
pub fn ratio(zero_copy: u64, copied: u64) -> Option<f64> {
    let moved = zero_copy as f64 + copied as f64;
    (moved > 0.0).then(|| zero_copy as f64 / moved)
}

/// One syscall's (or probe's) figures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub family: Family,
    pub direction: Direction,
    pub calls: u64,
    pub bytes: u64,
    /// Calls that returned an error (would-block ones included, see [`WOULD_BLOCK`]).
    pub errors: u64,
    /// `errors` by errno name; only non-zero ones; empty where the layer knows no errno.
    #[serde(default, skip_serializing_if = "SortedMap::is_empty")]
    pub errno: SortedMap<u64>,
    /// Non-empty log2 size buckets: `count` calls moved `low..=high` bytes each.
    pub hist: Vec<Bucket>,
}

impl Entry {
    pub fn add(&mut self, other: &Entry) {
        self.calls = self.calls.saturating_add(other.calls);
        self.bytes = self.bytes.saturating_add(other.bytes);
        self.errors = self.errors.saturating_add(other.errors);
        add_errno(&mut self.errno, &other.errno);
        for b in &other.hist {
            match self
                .hist
                .iter_mut()
                .find(|h| h.low == b.low && h.high == b.high)
            {
                Some(h) => h.count = h.count.saturating_add(b.count),
                None => self.hist.push(*b),
            }
        }
        self.hist.sort_by_key(|h| h.low);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// The bytes crossed the user/kernel boundary by a CPU copy.
    Copy,
    /// The bytes moved without passing through user memory.
    ZeroCopy,
    /// Sends that asked for zero-copy (`MSG_ZEROCOPY`): the kernel may still have copied
    /// them, see [`MsgZerocopy`].
    ZeroCopyRequested,
    /// Not calls: sends that zero-copy notifications reported (`calls` = sends).
    Notice,
    /// Calls whose result is not a byte count (io_uring OPENAT, POLL_ADD, …).
    Control,
    /// The mapped layer: file pages mapped into the process through mmap (`calls` =
    /// events, `bytes` = pages × page size). Neither copied nor moved bytes: no total adds
    /// them to those.
    Mapped,
    /// The user layer: copies inside the process's own memory through its copy routines
    /// (`calls` = calls, `bytes` = their size arguments). Neither the syscall layer's
    /// copies nor zero-copy bytes: no total adds them to those.
    UserCopy,
    /// The cpu layer: cpu-clock samples by where they landed (`calls` = samples, `bytes` =
    /// the CPU time they stand for, in ns; the direction means nothing). Neither copied nor
    /// moved bytes: no total adds them to those.
    CpuSamples,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Kernel to user (read family).
    K2u,
    /// User to kernel (write family).
    U2k,
    /// Kernel to kernel (zero-copy family).
    K2k,
    /// User memory to user memory of the same process (the user layer).
    U2u,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::K2u => "k2u",
            Direction::U2k => "u2k",
            Direction::K2k => "k2k",
            Direction::U2u => "u2u",
        }
    }
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Copy => "copy",
            Family::ZeroCopy => "zero_copy",
            Family::ZeroCopyRequested => "zero_copy_requested",
            Family::Notice => "notice",
            Family::Control => "control",
            Family::Mapped => "mapped",
            Family::UserCopy => "user_copy",
            Family::CpuSamples => "cpu_samples",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bucket {
    pub low: u64,
    pub high: u64,
    pub count: u64,
}

impl Recording {
    /// The command line that identifies the workload, for headers: the command, the
    /// targets' command lines, the `--comm` filter, or "the whole machine". Command lines
    /// are shell-quoted ([`command_line`]).
    pub fn workload_label(&self) -> String {
        let w = &self.workload;
        match w.kind {
            WorkloadKind::Command => command_line(w.command.as_deref().unwrap_or_default()),
            WorkloadKind::Pids => w
                .targets
                .iter()
                .map(|t| {
                    if t.command.is_empty() {
                        format!("pid {}", t.pid)
                    } else {
                        format!("pid {} ({})", t.pid, command_line(&t.command))
                    }
                })
                .collect::<Vec<_>>()
                .join(", "),
            WorkloadKind::Comm => format!("processes named *{}*", w.comm.as_deref().unwrap_or("")),
            WorkloadKind::Machine => "the whole machine".into(),
        }
    }

    /// A command that ran to completion: it did its whole job in this recording, so two
    /// such recordings compare by totals. Anything else (`--duration`, Ctrl-C, `--pid`,
    /// `--comm`, the machine) is bounded by time and saw an unknown share of the work.
    pub fn ran_to_completion(&self) -> bool {
        self.workload.kind == WorkloadKind::Command && self.ended_by == "exit" && !self.interrupted
    }

    /// What bounded a recording that did not run to completion (`None` when it did), as
    /// the flag or event a user recognises.
    pub fn time_bound(&self) -> Option<&'static str> {
        if self.ran_to_completion() {
            return None;
        }
        Some(match self.workload.kind {
            WorkloadKind::Pids => "--pid",
            WorkloadKind::Comm => "--comm",
            WorkloadKind::Machine => "the whole machine",
            WorkloadKind::Command if self.interrupted || self.ended_by == "signal" => "interrupted",
            WorkloadKind::Command => "--duration",
        })
    }
}

/// A command line as a shell would read it back: `sh -c 'kill -TERM $$'`, so arguments
/// with spaces or quotes stay visibly apart (a plain join would blur them).
pub fn command_line<S: AsRef<str>>(args: &[S]) -> String {
    shlex::try_join(args.iter().map(AsRef::as_ref)).unwrap_or_else(|_| {
        // Only a NUL byte cannot be quoted, and argv cannot hold one; join plainly anyway.
        args.iter().map(AsRef::as_ref).collect::<Vec<_>>().join(" ")
    })
}

/// `Option<Option<T>>` for a field that is absent (`None`), `null` (`Some(None)`) or a value.
mod present_or_null {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(
        value: &Option<Option<T>>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        // Only called when present (`skip_serializing_if`): the inner option is the value.
        value
            .as_ref()
            .and_then(Option::as_ref)
            .serialize(serializer)
    }

    pub fn deserialize<'de, T: Deserialize<'de>, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_summary_keeps_would_block_apart_from_failures() {
        let errno: SortedMap<u64> = [("EAGAIN", 8), ("EPIPE", 1), ("EINTR", 2), ("EBADF", 3)]
            .map(|(name, n)| (name.to_string(), n))
            .into();
        assert_eq!(
            errno_summary(&errno).as_deref(),
            Some("4 failed (EBADF 3, EPIPE 1); 10 would block / interrupted (EAGAIN 8, EINTR 2)")
        );
        assert_eq!(would_block(&errno), 10);
        assert_eq!(errno_summary(&SortedMap::new()), None);
    }
}
