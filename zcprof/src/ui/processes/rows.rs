//! One process as the table and the detail view show it ([`ProcRow`], owned, so that
//! drawing needs neither the model nor any I/O), the table's columns and its sort order.

use zcprof_common::{
    kernel::Role,
    syscalls::{self, Family},
};

use crate::{
    model::{Figures, FlowSlots, IoUringOps, KernelProbes, ProcId, Syscalls, Totals},
    report::{
        Rates,
        top::{IoUringRates, KernelRates},
    },
    ui::shared::Shared,
};

/// One process as the table and the detail view show it.
#[derive(Clone, Debug)]
pub struct ProcRow {
    pub id: ProcId,
    pub pid: u32,
    pub ppid: Option<u32>,
    pub comm: String,
    /// Read once per process instance (empty when /proc had nothing, e.g. it exited).
    pub cmdline: String,
    /// Its cgroup v2 path, and the container or unit it names, when known (empty when not).
    pub cgroup: String,
    pub container: String,
    pub exited: bool,
    /// Figures of the last interval, and the same per second.
    pub interval: Figures,
    pub rates: Rates,
    /// Copy-family calls in the last interval.
    pub copy_calls: u64,
    /// Everything counted since the probes attached, per syscall.
    pub totals: Totals<Syscalls>,
    /// What the kernel layer counted in the last interval, per second, per probe (its copy
    /// figures from the session's copy role only).
    pub kernel_rates: KernelRates,
    /// Everything the kernel layer counted since the probes attached, per probe.
    pub kernel: Totals<KernelProbes>,
    /// What the io_uring layer counted in the last interval, per second.
    pub io_uring_rates: IoUringRates,
    /// Everything the io_uring layer counted since the probes attached, per opcode.
    pub io_uring: Totals<IoUringOps>,
    /// Direct children known to the model: (pid, comm).
    pub children: Vec<(u32, String)>,
    /// The flows layer's flow that moved the most bytes in the last interval (`file → tcp`,
    /// with `(sendfile)` when not by a copy) and its bytes per second; `None` when none did
    /// or the layer is off.
    pub top_flow: Option<(String, f64)>,
    /// Everything the flows layer counted since the probes attached.
    pub flows: Totals<FlowSlots>,
    /// The threads layer's split (`--threads`), most bytes first; empty without it.
    pub threads: Vec<ThreadRow>,
}

/// One thread of a process as the detail view shows it (the threads layer).
#[derive(Clone, Debug, PartialEq)]
pub struct ThreadRow {
    pub tid: u32,
    pub name: String,
    pub exited: bool,
    /// Since the probes attached: calls, bytes copied, bytes moved without a copy.
    pub calls: u64,
    pub copied: u64,
    pub zero_copy: u64,
    /// Copied bytes per second in the last interval.
    pub copied_per_s: f64,
}

impl ProcRow {
    /// Average bytes per copy-family call in the interval, if it made any.
    pub fn avg_copy(&self) -> Option<f64> {
        (self.copy_calls > 0).then(|| self.interval.copied_bytes() as f64 / self.copy_calls as f64)
    }
}

/// Copy-family calls in `t` (`Figures` counts all calls together).
pub(super) fn copy_calls(t: &Totals<Syscalls>) -> u64 {
    syscalls::SYSCALLS
        .iter()
        .zip(t.slots())
        .filter(|(sc, _)| sc.family == Family::Copy)
        .map(|(_, s)| s.calls)
        .sum()
}

/// Table columns, in display order; each can be the sort key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Column {
    Pid,
    Comm,
    Copied,
    CopyK2u,
    CopyU2k,
    ZeroCopy,
    Ratio,
    Calls,
    AvgCopy,
    /// io_uring-layer copies (completed requests), both ways.
    IoUringCopied,
    /// Kernel-layer copies, from the copy role only.
    KernelCopied,
    /// The container or unit the cgroup names, else the cgroup's last component.
    Container,
    /// The flows layer's biggest flow in the interval.
    TopFlow,
}

impl Column {
    pub const ALL: [Column; 13] = [
        Column::Pid,
        Column::Comm,
        Column::Container,
        Column::Copied,
        Column::CopyK2u,
        Column::CopyU2k,
        Column::ZeroCopy,
        Column::Ratio,
        Column::Calls,
        Column::AvgCopy,
        Column::IoUringCopied,
        Column::KernelCopied,
        Column::TopFlow,
    ];

    /// The table's columns: the kernel-copy one only when a copy role attached, the
    /// io_uring and flow ones only when their layer counts, so that no column stands empty
    /// for a probe that is not there.
    pub fn shown(copy_source: Option<Role>, io_uring: bool, flows: bool) -> Vec<Column> {
        Column::ALL
            .into_iter()
            .filter(|c| *c != Column::KernelCopied || copy_source.is_some())
            .filter(|c| *c != Column::IoUringCopied || io_uring)
            .filter(|c| *c != Column::TopFlow || flows)
            .collect()
    }

    /// The columns `shared`'s session can fill.
    pub fn of_session(shared: &Shared) -> Vec<Column> {
        Column::shown(
            shared.copy_source,
            shared.io_uring_counted(),
            shared.flows_counted(),
        )
    }

    pub fn title(self) -> &'static str {
        match self {
            Column::Pid => "PID",
            Column::Comm => "COMM",
            Column::Copied => "COPIED/s",
            Column::CopyK2u => "K→U/s",
            Column::CopyU2k => "U→K/s",
            Column::ZeroCopy => "ZERO-COPY/s",
            Column::Ratio => "ZC%",
            Column::Calls => "CALLS/s",
            Column::AvgCopy => "AVG SIZE",
            Column::IoUringCopied => "URING/s",
            Column::KernelCopied => "KERNEL/s",
            Column::Container => "CONTAINER",
            Column::TopFlow => "TOP FLOW/s",
        }
    }

    /// The next of `columns` (the ones the table has), wrapping around.
    pub fn next(self, columns: &[Column]) -> Column {
        self.step(columns, 1)
    }

    pub fn prev(self, columns: &[Column]) -> Column {
        self.step(columns, columns.len().saturating_sub(1))
    }

    fn step(self, columns: &[Column], by: usize) -> Column {
        let Some(i) = columns.iter().position(|c| *c == self) else {
            return columns.first().copied().unwrap_or(self);
        };
        columns[(i + by) % columns.len()]
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sort {
    pub column: Column,
    pub descending: bool,
}

impl Default for Sort {
    fn default() -> Self {
        Sort {
            column: Column::Copied,
            descending: true,
        }
    }
}

/// What CONTAINER shows for `row`: the container or unit its cgroup names, else the
/// cgroup's last component (`/` for the root), `?` while unknown.
pub fn container_label(row: &ProcRow) -> &str {
    if !row.container.is_empty() {
        return &row.container;
    }
    match row.cgroup.rsplit('/').next() {
        _ if row.cgroup.is_empty() => "?",
        Some("") => "/",
        Some(last) => last,
        None => "?",
    }
}

/// The figure `column` sorts by (COMM, PID and CONTAINER sort by their own order, not by
/// this).
pub(super) fn sort_value(row: &ProcRow, column: Column) -> f64 {
    let r = &row.rates;
    match column {
        Column::Copied => r.copied_per_s(),
        Column::CopyK2u => r.copy_k2u_bytes_per_s,
        Column::CopyU2k => r.copy_u2k_bytes_per_s,
        Column::ZeroCopy => r.zero_copy_bytes_per_s,
        // Processes that moved nothing sort below 0 %.
        Column::Ratio => r.zero_copy_ratio.unwrap_or(-1.0),
        Column::Calls => r.calls_per_s,
        Column::AvgCopy => row.avg_copy().unwrap_or(-1.0),
        Column::IoUringCopied => row.io_uring_rates.rates.copied_per_s(),
        Column::KernelCopied => row.kernel_rates.copied_per_s().unwrap_or(-1.0),
        Column::TopFlow => row.top_flow.as_ref().map_or(-1.0, |(_, rate)| *rate),
        Column::Pid | Column::Comm | Column::Container => 0.0,
    }
}
