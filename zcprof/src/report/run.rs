//! The summary `zcprof run` prints when the profiled command exits: per process and in
//! total, bytes/calls/errors per syscall, copy versus zero-copy, and size histograms.

use std::collections::BTreeMap;

use serde::Serialize;
use zcprof_common::{
    Counts, HIST_BUCKETS, hist,
    kernel::Role,
    syscalls::{Direction, Family},
};
use zcprof_recording::{Entry, LayerTotals, SortedMap};

use super::{
    Lost,
    figures::{self, used},
    layers_line,
};
use crate::{
    host::cgroup::Cgroup,
    model::{
        Counters, Figures, FlowSlots, IoUringOps, KernelProbes, MappedSlots, Model, Origin, ProcId,
        Process, Syscalls, Thread, Threads, Totals, errno_names,
    },
    probes::{Layer, LayerSummary, copy_source},
    units,
};

/// How the profiled command ended.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Outcome {
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// zcprof stopped early (Ctrl-C/SIGTERM) and the command may still be running.
    pub interrupted: bool,
}

/// Everything the summary needs, gathered from the model.
pub struct Summary<'a> {
    pub command: Vec<String>,
    pub outcome: Outcome,
    pub duration_s: f64,
    pub layers: &'a [LayerSummary],
    pub lost: Lost,
    pub processes: Vec<&'a Process>,
    /// Every layer's totals over those processes.
    pub total: Counters,
    /// The mapped layer's pages per file, per process (tgid) of the summary: what the
    /// kernel's marks still held at the end (`Session::mapped_files`); empty when the layer
    /// did not attach.
    pub mapped_files: Vec<MappedFile>,
    /// The cgroup of each process that has a known one (`Session::cgroups_of`).
    pub cgroups: BTreeMap<ProcId, Cgroup>,
    /// Why cgroup ids cannot be resolved on this host (no cgroup2 filesystem), if so.
    pub cgroups_unavailable: Option<String>,
    /// `--files`: every file and socket the processes moved bytes through.
    pub files: Option<Vec<FileRow>>,
    /// The probes' own cost over the run, while BPF statistics were on (`--probe-stats`).
    pub probe_stats: Option<crate::probe_stats::Cost>,
    /// `--stacks`: the stacks layer's estimate for these processes.
    pub stacks: Option<zcprof_recording::Stacks>,
    /// `--user-copies`: what the user layer counts of each process it checked (`None`
    /// without the layer).
    pub user_coverage: Option<Vec<super::user::ProcessCoverage>>,
}

/// One file or socket of one process (`run --files`).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FileRow {
    #[serde(skip)]
    pub tgid: u32,
    /// The filesystem's device, `major:minor`.
    pub dev: String,
    pub ino: u64,
    /// Its descriptor kind (`file`, `tcp`, `pipe`, …).
    pub kind: &'static str,
    /// What /proc/PID/fd said it was while the process had it open (a path; for a socket
    /// `tcp 127.0.0.1:8080 → 127.0.0.1:51234`), `null` when no read found it open.
    pub target: Option<String>,
    /// The kernel's last path component (`TCP`, `pipe:`… for sockets and pipes), read when
    /// the process first used it.
    pub kernel_name: String,
    pub calls: u64,
    pub read_bytes: u64,
    pub written_bytes: u64,
}

impl FileRow {
    pub fn of(key: &zcprof_common::mapped::FileKey, file: &crate::session::File) -> Self {
        let (major, minor) = zcprof_common::mapped::dev_parts(key.dev);
        let kind = zcprof_common::flows::KIND_NAMES
            .get(file.bytes.kind as usize)
            .copied()
            .unwrap_or("unknown");
        FileRow {
            tgid: key.tgid,
            dev: format!("{major}:{minor}"),
            ino: key.ino,
            kind,
            target: file.target.clone(),
            kernel_name: file.kernel_name(),
            calls: file.bytes.calls,
            read_bytes: file.bytes.read_bytes,
            written_bytes: file.bytes.written_bytes,
        }
    }

    fn moved(&self) -> u64 {
        self.read_bytes + self.written_bytes
    }

    /// How the text summary names it: the /proc target, else the kernel's name.
    fn name(&self) -> String {
        match &self.target {
            Some(t) => t.clone(),
            // Pipes have no name in the kernel; /proc calls them so.
            None if self.kind == "pipe" => format!("pipe:[{}]", self.ino),
            None if self.kernel_name.is_empty() => format!("dev {} ino {}", self.dev, self.ino),
            None => format!("{} (kernel's name)", self.kernel_name),
        }
    }
}

/// One file a process mapped pages of (the mapped layer's mark for it).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct MappedFile {
    #[serde(skip)]
    pub tgid: u32,
    /// The filesystem's device, `major:minor` (as /proc/PID/maps and `stat` print it).
    pub dev: String,
    pub ino: u64,
    pub pages: u64,
    /// `pages` × page size.
    pub bytes: u64,
}

impl MappedFile {
    pub fn of(key: &zcprof_common::mapped::FileKey, mark: &zcprof_common::mapped::Mark) -> Self {
        let (major, minor) = zcprof_common::mapped::dev_parts(key.dev);
        MappedFile {
            tgid: key.tgid,
            dev: format!("{major}:{minor}"),
            ino: key.ino,
            pages: mark.pages,
            bytes: mark.pages * zcprof_common::mapped::PAGE_SIZE,
        }
    }
}

impl<'a> Summary<'a> {
    /// The summary of `members` (the command and its descendants, in creation order).
    pub fn new(
        model: &'a Model,
        members: &[ProcId],
        command: Vec<String>,
        outcome: Outcome,
        duration_s: f64,
        layers: &'a [LayerSummary],
    ) -> Self {
        let processes: Vec<&Process> = members.iter().filter_map(|id| model.process(*id)).collect();
        let mut total = Counters::zero();
        for p in &processes {
            total.add(&p.totals);
        }
        Summary {
            command,
            outcome,
            duration_s,
            layers,
            lost: Lost::of(model),
            processes,
            total,
            mapped_files: Vec::new(),
            cgroups: BTreeMap::new(),
            cgroups_unavailable: None,
            files: None,
            probe_stats: None,
            stacks: None,
            user_coverage: None,
        }
    }

    /// `--files`: the files of process `tgid`, most bytes first.
    fn files_moved_by(&self, tgid: u32) -> Option<Vec<FileRow>> {
        let mut rows: Vec<FileRow> = self
            .files
            .as_ref()?
            .iter()
            .filter(|f| f.tgid == tgid)
            .cloned()
            .collect();
        rows.sort_by(|a, b| b.moved().cmp(&a.moved()).then(a.ino.cmp(&b.ino)));
        Some(rows)
    }

    /// The mapped files of process `tgid`, most pages first.
    fn files_of(&self, tgid: u32) -> Vec<MappedFile> {
        let mut files: Vec<MappedFile> = self
            .mapped_files
            .iter()
            .filter(|f| f.tgid == tgid && f.pages > 0)
            .cloned()
            .collect();
        files.sort_by(|a, b| b.pages.cmp(&a.pages).then(a.ino.cmp(&b.ino)));
        files
    }

    /// Which counters make the kernel-copy figure on this kernel (`probes::copy_source`).
    pub fn copy_source(&self) -> Option<Role> {
        copy_source(self.layers)
    }

    /// The flows layer was asked for (`--flows`): every process then carries its object.
    fn flows_asked(&self) -> bool {
        self.layers.iter().any(|l| l.layer == Layer::Flows)
    }

    /// The cpu layer was asked for (`--cpu`): every process then has its CPU shares.
    fn cpu_asked(&self) -> bool {
        self.layers.iter().any(|l| l.layer == Layer::Cpu)
    }

    /// The threads layer was asked for (`--threads`): every process then lists its threads.
    fn threads_asked(&self) -> bool {
        self.layers.iter().any(|l| l.layer == Layer::Threads)
    }

    /// The user layer was asked for (`--user-copies`).
    fn user_asked(&self) -> bool {
        self.layers.iter().any(|l| l.layer == Layer::User)
    }
}

/// Schema name of `run --json` output.
pub const SCHEMA: &str = "zcprof.run/v1";

#[derive(Serialize)]
struct JsonSummary<'a> {
    schema: &'static str,
    command: &'a [String],
    #[serde(flatten)]
    outcome: &'a Outcome,
    duration_s: f64,
    layers: &'a [LayerSummary],
    lost: Lost,
    /// Why processes' cgroups are unknown on this host; absent where they can be known.
    #[serde(skip_serializing_if = "Option::is_none")]
    cgroups_unavailable: Option<&'a str>,
    /// The probes' cost over the run; only while BPF statistics were on.
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_stats: Option<crate::probe_stats::Cost>,
    processes: Vec<JsonProcess<'a>>,
    total: JsonFigures,
    /// Only with `--stacks`: the shape of a recording's `stacks`.
    #[serde(skip_serializing_if = "Option::is_none")]
    stacks: Option<&'a zcprof_recording::Stacks>,
    /// Only with `--user-copies`: the layer's cost and what it counts of each process.
    #[serde(skip_serializing_if = "Option::is_none")]
    user_copies: Option<super::user::JsonCoverage<'a>>,
}

#[derive(Serialize)]
struct JsonProcess<'a> {
    pid: u32,
    ppid: Option<u32>,
    comm: &'a str,
    origin: Origin,
    exited: bool,
    /// `null` when unknown.
    cgroup: Option<&'a Cgroup>,
    #[serde(flatten)]
    figures: JsonFigures,
    /// Only with `--threads`: its threads, by tid.
    #[serde(skip_serializing_if = "Option::is_none")]
    threads: Option<Vec<JsonThread<'a>>>,
    /// Only with `--files`: its files and sockets, most bytes first (`by_file`: `files`
    /// is the mapped layer's).
    #[serde(skip_serializing_if = "Option::is_none")]
    by_file: Option<Vec<FileRow>>,
}

/// One thread of a process (`--threads`): the syscall layer's figures for it alone.
#[derive(Serialize)]
struct JsonThread<'a> {
    tid: u32,
    /// `?` when unknown.
    name: &'a str,
    exited: bool,
    syscall: JsonSyscall,
}

impl<'a> JsonThread<'a> {
    fn of(t: &'a Thread) -> Self {
        let syscall = figures::syscall_layer(&t.totals);
        JsonThread {
            tid: t.tid,
            name: t.name(),
            exited: t.exited,
            syscall: JsonSyscall {
                totals: syscall.totals,
                syscalls: syscall.syscalls,
            },
        }
    }
}

/// Every process and the total carry both layers' objects, whatever they counted, so that
/// a reader finds the same fields everywhere (`kernel.copy_source` says whether its copy
/// totals could count anything). The shapes inside are those of recordings
/// (`schema/recording.v1.json`'s `totals` and `entry`), without the fields a layer never
/// fills (a syscall layer's `probes`, a kernel layer's `syscalls`).
#[derive(Serialize)]
struct JsonFigures {
    syscall: JsonSyscall,
    kernel: JsonKernel,
    io_uring: JsonIoUring,
    mapped: JsonMapped,
    /// Only with `--flows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    flows: Option<JsonFlows>,
    /// Only with `--user-copies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<super::user::JsonUser>,
    /// Only with `--cpu`.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu: Option<super::cpu::JsonCpu>,
}

/// The flows layer: the syscall layer's bytes by descriptor kinds, one entry per flow
/// under `probes`; its totals carry `delivered_bytes`.
#[derive(Serialize)]
struct JsonFlows {
    totals: LayerTotals,
    probes: SortedMap<Entry>,
}

/// The mapped layer: file pages mapped in (its own figure, never copied or zero-copy
/// bytes), per slot under `probes`, and per file (a process's; the total's is every
/// process's files).
#[derive(Serialize)]
struct JsonMapped {
    pages: u64,
    bytes: u64,
    events: u64,
    /// A recording's layer totals (calls = events, no bytes moved), so that the figures
    /// validate as a recording's layers.
    totals: LayerTotals,
    probes: SortedMap<Entry>,
    files: Vec<MappedFile>,
}

/// The io_uring layer: its totals (copies that count as copies, beside the syscall
/// layer's) and one entry per opcode under `probes`.
#[derive(Serialize)]
struct JsonIoUring {
    totals: LayerTotals,
    probes: SortedMap<Entry>,
}

#[derive(Serialize)]
struct JsonSyscall {
    totals: LayerTotals,
    syscalls: SortedMap<Entry>,
}

#[derive(Serialize)]
struct JsonKernel {
    /// `primitive`, `cross_check`, or `null` when no copy probe attached.
    copy_source: Option<String>,
    totals: LayerTotals,
    probes: SortedMap<Entry>,
}

impl JsonFigures {
    fn of(
        c: &Counters,
        copy_source: Option<Role>,
        files: Vec<MappedFile>,
        flows: bool,
        user: bool,
        cpu: bool,
    ) -> JsonFigures {
        let syscall = figures::syscall_layer(&c.syscall);
        let kernel = figures::kernel_layer(&c.kernel, copy_source);
        let io_uring = figures::io_uring_layer(&c.io_uring);
        JsonFigures {
            syscall: JsonSyscall {
                totals: syscall.totals,
                syscalls: syscall.syscalls,
            },
            kernel: JsonKernel {
                copy_source: kernel.copy_source.flatten(),
                totals: kernel.totals,
                probes: kernel.probes,
            },
            io_uring: JsonIoUring {
                totals: io_uring.totals,
                probes: io_uring.probes,
            },
            mapped: {
                let layer = figures::mapped_layer(&c.mapped);
                JsonMapped {
                    pages: c.mapped.pages(),
                    bytes: c.mapped.bytes(),
                    events: c.mapped.events(),
                    totals: layer.totals,
                    probes: layer.probes,
                    files,
                }
            },
            flows: flows.then(|| {
                let layer = figures::flows_layer(&c.flows);
                JsonFlows {
                    totals: layer.totals,
                    probes: layer.probes,
                }
            }),
            user: user.then(|| super::user::JsonUser::of(&c.user)),
            cpu: cpu.then(|| super::cpu::JsonCpu::of(&c.cpu)),
        }
    }
}

fn family(f: Family) -> &'static str {
    figures::family(f).as_str()
}

fn direction(d: Direction) -> &'static str {
    figures::direction(d).as_str()
}

/// The summary as one JSON document.
pub fn json(s: &Summary) -> String {
    let doc = JsonSummary {
        schema: SCHEMA,
        command: &s.command,
        outcome: &s.outcome,
        duration_s: s.duration_s,
        layers: s.layers,
        lost: s.lost,
        cgroups_unavailable: s.cgroups_unavailable.as_deref(),
        probe_stats: s.probe_stats,
        processes: s
            .processes
            .iter()
            .map(|p| JsonProcess {
                pid: p.tgid,
                ppid: p.ppid,
                comm: &p.comm,
                origin: p.origin,
                exited: p.exited,
                cgroup: s.cgroups.get(&p.id),
                figures: JsonFigures::of(
                    &p.totals,
                    s.copy_source(),
                    s.files_of(p.tgid),
                    s.flows_asked(),
                    s.user_asked(),
                    s.cpu_asked(),
                ),
                threads: s
                    .threads_asked()
                    .then(|| p.threads.iter().map(JsonThread::of).collect()),
                by_file: s.files_moved_by(p.tgid),
            })
            .collect(),
        total: JsonFigures::of(
            &s.total,
            s.copy_source(),
            s.processes
                .iter()
                .flat_map(|p| s.files_of(p.tgid))
                .collect(),
            s.flows_asked(),
            s.user_asked(),
            s.cpu_asked(),
        ),
        stacks: s.stacks.as_ref(),
        user_copies: s
            .user_coverage
            .as_deref()
            .map(super::user::JsonCoverage::of),
    };
    serde_json::to_string_pretty(&doc).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
}

/// The summary for a terminal.
pub fn text(s: &Summary) -> String {
    let mut out = String::new();
    let ended = match (&s.outcome.exit_code, &s.outcome.signal) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(sig)) => format!("was killed by signal {sig}"),
        (None, None) => "was still running".into(),
    };
    out.push_str(&format!(
        "zcprof run: `{}` {ended} after {:.2} s{}\n{} · {}\n",
        zcprof_recording::command_line(&s.command),
        s.duration_s,
        if s.outcome.interrupted {
            " (zcprof interrupted: partial figures)"
        } else {
            ""
        },
        layers_line(s.layers),
        s.lost.line(),
    ));
    out.push_str("figures from the syscall layer (bytes are sums of syscall return values) and the io_uring layer (sums of completion results)\n");
    if s.total.io_uring.unseen_calls() > 0 {
        out.push_str(&format!(
            "CAVEAT: {}\n",
            zcprof_recording::diff::IO_URING_CAVEAT
        ));
    }
    if let Some(why) = &s.cgroups_unavailable {
        out.push_str(&format!("cgroups: unavailable ({why})\n"));
    }
    if let Some(cost) = &s.probe_stats {
        out.push_str(&super::top::probes_line(cost));
        out.push('\n');
    }
    for caveat in lifecycle_caveats(s.layers) {
        out.push_str(caveat);
        out.push('\n');
    }
    for p in &s.processes {
        let parent = p
            .ppid
            .map(|pp| format!(", parent {pp}"))
            .unwrap_or_default();
        let state = if p.exited { "" } else { ", still running" };
        out.push_str(&format!(
            "\nprocess {} {}{parent}{state}\n",
            p.tgid,
            p.name()
        ));
        if let Some(line) = s.cgroups.get(&p.id).and_then(cgroup_line) {
            out.push_str(&line);
        }
        table(&mut out, &p.totals.syscall);
        threads_table(&mut out, &p.threads);
        flows_table(&mut out, &p.totals.flows);
        if let Some(files) = s.files_moved_by(p.tgid) {
            files_table(&mut out, &files);
        }
        io_uring_table(&mut out, &p.totals.io_uring);
        mapped_line(&mut out, &p.totals.mapped, &s.files_of(p.tgid));
        super::user::line(&mut out, &p.totals.user);
        out.push_str(&super::cpu::line(&p.totals.cpu).unwrap_or_default());
        kernel_table(&mut out, &p.totals.kernel, s.copy_source());
    }
    cgroup_totals(&mut out, s);
    if s.processes.len() != 1 {
        out.push_str(&format!("\ntotal of {} processes\n", s.processes.len()));
        table(&mut out, &s.total.syscall);
        flows_table(&mut out, &s.total.flows);
        io_uring_table(&mut out, &s.total.io_uring);
        mapped_line(&mut out, &s.total.mapped, &[]);
        super::user::line(&mut out, &s.total.user);
        out.push_str(&super::cpu::line(&s.total.cpu).unwrap_or_default());
        kernel_table(&mut out, &s.total.kernel, s.copy_source());
    }
    if let Some(coverage) = &s.user_coverage {
        out.push_str(&format!(
            "\nuser-space copies: {} (the user layer)\n",
            crate::probes::user::COST
        ));
        super::user::not_counted_lines(&mut out, coverage);
    }
    if let Some(stacks) = &s.stacks {
        out.push_str(&super::stacks::text(stacks, CALL_SITES_SHOWN));
    }
    out
}

/// Call sites listed per process in the text summary (`--json` has every stack).
const CALL_SITES_SHOWN: usize = 5;

/// What the run cannot see because a lifecycle probe is missing: saying nothing would pass a
/// partial total off as complete.
fn lifecycle_caveats(layers: &[LayerSummary]) -> Vec<&'static str> {
    let Some(l) = layers.iter().find(|l| l.layer == Layer::Lifecycle) else {
        return Vec::new();
    };
    let missing = |probe: &str| l.unavailable.iter().any(|u| u == probe);
    let mut out = Vec::new();
    if missing("task:task_newtask") {
        // Descendants are found through fork records; without them only from /proc.
        out.push(
            "no fork records (task_newtask unavailable): processes the command starts are found only from /proc while they run, so short-lived ones are missed",
        );
    }
    if missing("sched:sched_process_exit") {
        out.push(
            "no exit records (sched_process_exit unavailable): an exited process's totals are read from the kernel map until zcprof finds it gone, and a reused PID in between would be merged with it",
        );
    }
    out
}

/// The mapped layer's figure (what replaced a read copy when a file is read through mmap),
/// by slot, then its files (at most [`FILES_SHOWN`], most pages first).
fn mapped_line(out: &mut String, t: &Totals<MappedSlots>, files: &[MappedFile]) {
    if t.is_zero() {
        return;
    }
    let slots: Vec<String> = t
        .named()
        .map(|(name, s)| {
            format!(
                "{name} {}",
                units::count(s.bytes / zcprof_common::mapped::PAGE_SIZE)
            )
        })
        .collect();
    out.push_str(&format!(
        "  mapped layer: {} pages ({} B) of files mapped in: {} (not copies: pages the kernel mapped into the process)\n",
        units::count(t.pages()),
        units::count(t.bytes()),
        slots.join(", "),
    ));
    for f in files.iter().take(FILES_SHOWN) {
        out.push_str(&format!(
            "    file dev {} ino {}: {} pages ({} B)\n",
            f.dev,
            f.ino,
            units::count(f.pages),
            units::count(f.bytes)
        ));
    }
    if files.len() > FILES_SHOWN {
        out.push_str(&format!(
            "    … and {} more files (run --json lists all)\n",
            files.len() - FILES_SHOWN
        ));
    }
}

/// `  cgroup PATH (CONTAINER)`, for a process outside the root cgroup.
fn cgroup_line(c: &Cgroup) -> Option<String> {
    let path = match (&c.path, c.id) {
        (Some(path), _) if path == "/" => return None,
        (Some(path), _) => path.clone(),
        (None, Some(id)) => format!("id {id} (removed before zcprof resolved it)"),
        (None, None) => return None,
    };
    let container = c
        .container
        .as_ref()
        .map(|k| format!(" ({k})"))
        .unwrap_or_default();
    Some(format!("  cgroup {path}{container}\n"))
}

/// Per cgroup, when the processes ran in more than one: their copied and zero-copy bytes
/// (syscall and io_uring layers), biggest copier first.
fn cgroup_totals(out: &mut String, s: &Summary) {
    let mut by: BTreeMap<String, Figures> = BTreeMap::new();
    for p in &s.processes {
        let name = match s.cgroups.get(&p.id) {
            Some(Cgroup {
                path: Some(path), ..
            }) => path.clone(),
            Some(Cgroup { id: Some(id), .. }) => format!("id {id}"),
            _ => "unknown".into(),
        };
        let mut f = p.totals.syscall.figures();
        f.add(&p.totals.io_uring.figures());
        by.entry(name).or_default().add(&f);
    }
    if by.len() < 2 {
        return;
    }
    let mut rows: Vec<(String, Figures)> = by.into_iter().collect();
    rows.sort_by(|a, b| {
        b.1.copied_bytes()
            .cmp(&a.1.copied_bytes())
            .then(a.0.cmp(&b.0))
    });
    out.push_str("\nby cgroup (syscall and io_uring layers)\n");
    for (path, f) in rows {
        out.push_str(&format!(
            "  {path}: copied {} B, zero-copy {} B\n",
            units::count(f.copied_bytes()),
            units::count(f.zero_copy_bytes),
        ));
    }
}

/// The threads layer's threads, most bytes moved first; nothing for a single thread (the
/// process's own table says it all; JSON lists it).
fn threads_table(out: &mut String, threads: &Threads) {
    if threads.len() < 2 {
        return;
    }
    let mut rows: Vec<(&Thread, Figures)> =
        threads.iter().map(|t| (t, t.totals.figures())).collect();
    let moved = |f: &Figures| f.copied_bytes() + f.zero_copy_bytes;
    rows.sort_by(|a, b| moved(&b.1).cmp(&moved(&a.1)).then(a.0.tid.cmp(&b.0.tid)));
    out.push_str(&format!(
        "  threads layer (the syscall layer per thread): {} threads\n    {:>8}  {:<16} {:>12} {:>16} {:>16} {:>16}\n",
        threads.len(),
        "TID",
        "NAME",
        "CALLS",
        "COPIED K→U",
        "COPIED U→K",
        "ZERO-COPY",
    ));
    for (t, f) in rows {
        out.push_str(&format!(
            "    {:>8}  {:<16} {:>12} {:>16} {:>16} {:>16}{}\n",
            t.tid,
            t.name(),
            units::count(f.calls),
            units::count(f.copy_k2u_bytes),
            units::count(f.copy_u2k_bytes),
            units::count(f.zero_copy_bytes),
            if t.exited { "  (exited)" } else { "" },
        ));
    }
}

/// Files listed per process by `run --files` in the text summary.
const FILES_LISTED: usize = 10;

/// `run --files`: a process's busiest files and sockets.
fn files_table(out: &mut String, files: &[FileRow]) {
    if files.is_empty() {
        return;
    }
    out.push_str(&format!(
        "  files and sockets (--files; named from /proc while open, else by the kernel's name: best effort): {}\n    {:>16} {:>16} {:>10}  {:<7} NAME\n",
        files.len(),
        "READ",
        "WRITTEN",
        "CALLS",
        "KIND",
    ));
    for f in files.iter().take(FILES_LISTED) {
        out.push_str(&format!(
            "    {:>16} {:>16} {:>10}  {:<7} {}\n",
            units::count(f.read_bytes),
            units::count(f.written_bytes),
            units::count(f.calls),
            f.kind,
            f.name(),
        ));
    }
    if files.len() > FILES_LISTED {
        out.push_str(&format!(
            "    … and {} more (run --json lists all)\n",
            files.len() - FILES_LISTED
        ));
    }
}

/// The flows layer's flows, most bytes first, and the bytes delivered through sockets.
fn flows_table(out: &mut String, t: &Totals<FlowSlots>) {
    if t.is_zero() {
        return;
    }
    let mut flows: Vec<_> = t.fired().collect();
    flows.sort_by(|a, b| b.2.bytes.cmp(&a.2.bytes).then(a.0.cmp(&b.0)));
    out.push_str(&format!(
        "  flows layer (the syscalls' bytes by descriptor kind): {} B delivered through sockets\n",
        units::count(t.delivered_bytes())
    ));
    for (_, f, s) in flows {
        out.push_str(&format!(
            "    {:>7} → {:<7} {:>16} B in {} calls{}\n",
            f.from,
            f.to,
            units::count(s.bytes),
            units::count(s.calls),
            crate::model::flow_how(&f),
        ));
    }
}

/// Files listed per process in the text summary.
const FILES_SHOWN: usize = 5;

/// The io_uring layer's opcodes that completed, and its copy figures; the caveat when the
/// process used io_uring while the layer was unavailable.
fn io_uring_table(out: &mut String, t: &Totals<IoUringOps>) {
    if t.is_zero() {
        return;
    }
    if t.unseen_calls() > 0 {
        out.push_str(&format!(
            "  io_uring layer: {} io_uring_setup/io_uring_enter calls; CAVEAT: {}\n",
            units::count(t.unseen_calls()),
            zcprof_recording::diff::IO_URING_CAVEAT
        ));
    }
    let ops: Vec<_> = t.requests().collect();
    if ops.is_empty() {
        return;
    }
    out.push_str("  io_uring layer (per opcode, one call per completion):\n");
    counts_table(
        out,
        [("OPCODE", 30), ("FAMILY", 19)],
        ops.into_iter()
            .map(|(op, st)| ([op.name, family(op.family)], direction(op.direction), st)),
    );
    let f = t.figures();
    out.push_str(&format!(
        "  io_uring copied k→u {} ({}), u→k {} ({}); zero-copy {} ({})\n",
        units::count(f.copy_k2u_bytes),
        units::bytes(f.copy_k2u_bytes as f64),
        units::count(f.copy_u2k_bytes),
        units::bytes(f.copy_u2k_bytes as f64),
        units::count(f.zero_copy_bytes),
        units::bytes(f.zero_copy_bytes as f64),
    ));
    if !f.msg_zerocopy.is_zero() {
        let unreported = t.unreported_notifications();
        out.push_str(&format!(
            "  io_uring {}{}\n",
            f.msg_zerocopy
                .summary("SEND_ZC", |b| units::bytes(b as f64)),
            if unreported > 0 {
                format!(
                    " ({} notifications carried no usage report (IORING_SEND_ZC_REPORT_USAGE), so they say nothing of a copy)",
                    units::count(unreported)
                )
            } else {
                String::new()
            }
        ));
    }
    if let Some(errors) = zcprof_recording::errno_summary(&errno_names(&f.errno)) {
        out.push_str(&format!("  io_uring errors: {errors}\n"));
    }
}

/// The kernel layer's probes that fired, labelled with their role so nobody adds up rows
/// that overlap.
fn kernel_table(out: &mut String, k: &Totals<KernelProbes>, source: Option<Role>) {
    if k.is_zero() {
        return;
    }
    out.push_str("  kernel layer (per probe; role says how rows relate, see README):\n");
    counts_table(
        out,
        [("PROBE", 30), ("ROLE", 18)],
        k.fired()
            .map(|(p, st)| ([p.name, p.role.name()], direction(p.direction), st)),
    );
    if let Some(role) = source {
        let (k2u, u2k) = k.copied(role);
        out.push_str(&format!(
            "  kernel copies (from {} probes): k→u {} ({}), u→k {} ({})\n",
            role.name(),
            units::count(k2u),
            units::bytes(k2u as f64),
            units::count(u2k),
            units::bytes(u2k as f64),
        ));
        if let Some((_, long)) = role.blind_spot() {
            out.push_str(&format!("  ({long})\n"));
        }
    }
}

/// A layer's rows: two labelled columns (name and family or role) at their widths, the
/// direction, then the counts, one layout for every layer's table.
fn counts_table<'a>(
    out: &mut String,
    [(head1, w1), (head2, w2)]: [(&str, usize); 2],
    rows: impl Iterator<Item = ([&'a str; 2], &'a str, &'a Counts)>,
) {
    out.push_str(&format!(
        "  {head1:<w1$} {head2:<w2$} {:<4} {:>10} {:>16} {:>7}  {}\n",
        "DIR", "CALLS", "BYTES", "ERRORS", "SIZES (bytes per call: calls)"
    ));
    for ([name, label], dir, st) in rows {
        out.push_str(&format!(
            "  {name:<w1$} {label:<w2$} {dir:<4} {:>10} {:>16} {:>7}  {}\n",
            units::count(st.calls),
            units::count(st.bytes),
            units::count(st.errors),
            sizes(st),
        ));
    }
}

fn table(out: &mut String, totals: &Totals<Syscalls>) {
    counts_table(
        out,
        [("SYSCALL", 16), ("FAMILY", 9)],
        used(totals).map(|(sc, st)| ([sc.name, family(sc.family)], direction(sc.direction), st)),
    );
    let f = totals.figures();
    out.push_str(&format!(
        "  copied k→u {} ({}), u→k {} ({}); zero-copy {} ({}); zero-copy ratio {}\n",
        units::count(f.copy_k2u_bytes),
        units::bytes(f.copy_k2u_bytes as f64),
        units::count(f.copy_u2k_bytes),
        units::bytes(f.copy_u2k_bytes as f64),
        units::count(f.zero_copy_bytes),
        units::bytes(f.zero_copy_bytes as f64),
        units::percent(f.zero_copy_ratio()),
    ));
    if !f.msg_zerocopy.is_zero() {
        out.push_str(&format!(
            "  {}\n",
            f.msg_zerocopy
                .summary("MSG_ZEROCOPY", |b| units::bytes(b as f64))
        ));
    }
    if let Some(errors) = zcprof_recording::errno_summary(&errno_names(&f.errno)) {
        out.push_str(&format!("  errors: {errors}\n"));
    }
}

/// `64K-128K:1000 512-1K:3`, largest buckets by count first, at most four.
fn sizes(s: &Counts) -> String {
    let mut used: Vec<usize> = (0..HIST_BUCKETS).filter(|&k| s.hist[k] > 0).collect();
    used.sort_by(|&a, &b| s.hist[b].cmp(&s.hist[a]).then(a.cmp(&b)));
    let mut parts: Vec<String> = used
        .iter()
        .take(4)
        .map(|&k| format!("{}:{}", bucket_label(k), s.hist[k]))
        .collect();
    if used.len() > 4 {
        parts.push("…".into());
    }
    parts.join(" ")
}

/// `0`, `1`, `2-4`, `64K-128K`, `1G+`: a size bucket by its half-open bounds (the run
/// summary and the dashboard's detail view).
pub(crate) fn bucket_label(k: usize) -> String {
    if k == 0 {
        return "0".into();
    }
    let short = |n: u64| -> String {
        match n {
            n if n >= 1 << 30 => format!("{}G", n >> 30),
            n if n >= 1 << 20 => format!("{}M", n >> 20),
            n if n >= 1 << 10 => format!("{}K", n >> 10),
            n => n.to_string(),
        }
    };
    let low = hist::bucket_low(k);
    if k == HIST_BUCKETS - 1 {
        format!("{}+", short(low))
    } else if low == hist::bucket_high(k) {
        short(low)
    } else {
        // The bucket is [low, 2*low): label it by its half-open bounds.
        format!("{}-{}", short(low), short(low * 2))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probes::{State, lifecycle::exit_flush_probe};

    #[test]
    fn bucket_labels() {
        assert_eq!(bucket_label(0), "0");
        assert_eq!(bucket_label(1), "1");
        assert_eq!(bucket_label(17), "64K-128K");
        assert_eq!(bucket_label(HIST_BUCKETS - 1), "1G+");
    }

    #[test]
    fn sizes_lists_biggest_buckets_first() {
        let mut s = Counts::ZERO;
        s.hist[17] = 1000;
        s.hist[10] = 3;
        assert_eq!(sizes(&s), "64K-128K:1000 512-1K:3");
    }

    #[test]
    fn each_missing_lifecycle_probe_has_its_caveat() {
        let lifecycle = |unavailable: &[&str]| {
            vec![LayerSummary {
                layer: Layer::Lifecycle,
                state: if unavailable.is_empty() {
                    State::Live
                } else {
                    State::Partial
                },
                via: "tracepoint".into(),
                attached: 4 - unavailable.len(),
                unavailable: unavailable.iter().map(|s| s.to_string()).collect(),
            }]
        };
        assert!(lifecycle_caveats(&lifecycle(&[])).is_empty());
        let exit = lifecycle_caveats(&lifecycle(&["sched:sched_process_exit"]));
        assert_eq!(exit.len(), 1);
        assert!(exit[0].starts_with("no exit records"), "{exit:?}");
        let fork = lifecycle_caveats(&lifecycle(&["task:task_newtask"]));
        assert!(fork[0].starts_with("no fork records"), "{fork:?}");
        // The kernel layer's own flush missing costs nothing the user would notice.
        let flush = exit_flush_probe(Layer::Kernel);
        assert!(lifecycle_caveats(&lifecycle(&[flush.as_str()])).is_empty());
    }

    #[test]
    fn cgroup_lines_name_the_path_and_what_it_is() {
        let c = |id: Option<u64>, path: Option<&str>, container: Option<&str>| Cgroup {
            id,
            path: path.map(String::from),
            container: container.map(String::from),
        };
        assert_eq!(cgroup_line(&c(Some(1), Some("/"), None)), None, "the root");
        assert_eq!(
            cgroup_line(&c(
                Some(9),
                Some("/system.slice/nginx.service"),
                Some("unit nginx.service")
            ))
            .as_deref(),
            Some("  cgroup /system.slice/nginx.service (unit nginx.service)\n")
        );
        assert_eq!(
            cgroup_line(&c(Some(42), None, None)).as_deref(),
            Some("  cgroup id 42 (removed before zcprof resolved it)\n")
        );
        assert_eq!(cgroup_line(&c(None, None, None)), None);
    }
}
