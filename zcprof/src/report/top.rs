//! `zcprof top` frames: processes ranked by copied bytes per second over the last interval.

use std::collections::BTreeMap;

use serde::Serialize;
use zcprof_common::kernel::Role;

use super::{Lost, Rates, clock, layers_line, per_second, unix_time};
use crate::{
    model::{
        Figures, FlowSlots, IoUringOps, KernelProbes, MappedSlots, Model, Process, Slots, Totals,
        UserSlots,
    },
    probe_stats::{Cost, EnabledBy},
    probes::{Layer, LayerSummary, State, copy_source},
    units,
};

/// Which processes a frame shows.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Only these PIDs (empty: all).
    pub pids: Vec<u32>,
    /// Only processes whose comm contains this.
    pub comm: Option<String>,
    /// Only processes in these cgroup v2 paths or below (empty: all); a process whose
    /// cgroup is unknown is left out.
    pub cgroups: Vec<String>,
}

impl Filter {
    pub fn matches(&self, p: &Process) -> bool {
        (self.pids.is_empty() || self.pids.contains(&p.tgid))
            && self
                .comm
                .as_ref()
                .is_none_or(|c| p.comm.contains(c.as_str()))
            && (self.cgroups.is_empty()
                || p.cgroup_path.as_deref().is_some_and(|path| {
                    self.cgroups
                        .iter()
                        .any(|under| crate::host::cgroup::is_under(path, under))
                }))
    }
}

/// zcprof's own process in a frame. zcprof reads /proc and the kernel's BTF like any
/// program, and its probes count that: left in, its own reads would top the table it draws
/// and swell the machine total. So by default it is left out of the rows and the machine
/// total, and its cost is shown apart (`--include-self` lists and counts it like any other).
/// One tgid: its threads (the collector's among them) are counted under it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Own {
    /// Its pid; `None` when the frame does not know it (then nothing is left out).
    pub pid: Option<u32>,
    /// `--include-self`: listed and counted like any other process.
    pub listed: bool,
    /// Its CPU time over the last interval, percent of one CPU (`/proc/self/stat`).
    pub cpu_percent: Option<f64>,
    /// Its probes' run time, when BPF statistics are on (`--probe-stats`; not part of
    /// `cpu_percent`, the process's own clock), over what the frame covers: the last
    /// interval in `top` and the dashboard, everything since the probes attached in `serve`.
    pub probes: Option<Cost>,
}

impl Own {
    /// zcprof's own process, as `top` and the dashboard see it.
    pub fn this_process(listed: bool) -> Own {
        Own {
            pid: Some(std::process::id()),
            listed,
            cpu_percent: None,
            probes: None,
        }
    }

    /// Whether `p` is left out of the rows and the machine total.
    pub fn hides(&self, p: &Process) -> bool {
        !self.listed && self.pid == Some(p.tgid)
    }

    /// What zcprof itself moved in the last interval (syscall layer); zero when it moved
    /// nothing yet, `None` when the frame does not know its pid.
    pub fn figures(&self, model: &Model) -> Option<Figures> {
        let pid = self.pid?;
        let mut total = Figures::default();
        for p in model.processes().filter(|p| p.tgid == pid) {
            total.add(&p.interval.syscall.figures());
        }
        Some(total)
    }
}

/// One row: a process and what it did in the interval.
pub struct Row<'a> {
    pub process: &'a Process,
    /// Syscall-layer figures.
    pub figures: Figures,
    /// io_uring-layer figures (requests that completed in the interval).
    pub io_uring: Figures,
}

impl Row<'_> {
    /// Bytes copied in the interval by both counting layers (syscalls and io_uring
    /// requests are disjoint: a process that moved from read/write to io_uring keeps its
    /// place in the table).
    fn copied(&self) -> u64 {
        self.figures.copied_bytes() + self.io_uring.copied_bytes()
    }

    fn zero_copied(&self) -> u64 {
        self.figures.zero_copy_bytes + self.io_uring.zero_copy_bytes
    }
}

/// Processes active in the last interval that pass `filter`, zcprof itself left out unless
/// `own` lists it, most copied bytes first (syscall and io_uring layers together; then
/// most zero-copied bytes, then PID, so the order is stable between frames).
pub fn rows<'a>(model: &'a Model, filter: &Filter, own: &Own) -> Vec<Row<'a>> {
    let mut rows: Vec<Row> = model
        .processes()
        .filter(|p| p.active() && filter.matches(p) && !own.hides(p))
        .map(|p| Row {
            process: p,
            figures: p.interval.syscall.figures(),
            io_uring: p.interval.io_uring.figures(),
        })
        .collect();
    rows.sort_by(|a, b| {
        b.copied()
            .cmp(&a.copied())
            .then(b.zero_copied().cmp(&a.zero_copied()))
            .then(a.process.tgid.cmp(&b.process.tgid))
    });
    rows
}

/// Whether the io_uring layer counts in this session (live or partial): its columns are
/// shown only then, and without it a process's io_uring use is a caveat, not a zero.
pub fn io_uring_counted(layers: &[LayerSummary]) -> bool {
    counted(layers, Layer::IoUring)
}

/// Whether `layer` counts in this session (live or partial).
pub fn counted(layers: &[LayerSummary], layer: Layer) -> bool {
    layers
        .iter()
        .any(|l| l.layer == layer && l.state != State::Unavailable)
}

/// Machine-wide mapped-layer counts for the interval (zcprof itself as in [`machine`]).
pub fn machine_mapped(model: &Model, own: &Own) -> Totals<MappedSlots> {
    machine_layer(model, own, |p| &p.interval.mapped)
}

/// The mapped layer's figure per second: file pages mapped in (and those pages in bytes).
/// Never copied or zero-copy bytes: what replaced a read copy.
#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
pub struct MappedRates {
    pub pages_per_s: f64,
    pub bytes_per_s: f64,
}

impl MappedRates {
    pub fn of(t: &Totals<MappedSlots>, seconds: f64) -> MappedRates {
        MappedRates {
            pages_per_s: per_second(t.pages(), seconds),
            bytes_per_s: per_second(t.bytes(), seconds),
        }
    }
}

/// Machine-wide user-layer counts for the interval (zcprof itself as in [`machine`]).
pub fn machine_user(model: &Model, own: &Own) -> Totals<UserSlots> {
    machine_layer(model, own, |p| &p.interval.user)
}

/// The user layer's figure per second (`--user-copies`): bytes copied inside processes
/// through their copy routines, and the calls; never the syscall layer's copies.
#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
pub struct UserRates {
    pub bytes_per_s: f64,
    pub calls_per_s: f64,
}

impl UserRates {
    pub fn of(t: &Totals<UserSlots>, seconds: f64) -> UserRates {
        UserRates {
            bytes_per_s: per_second(t.bytes(), seconds),
            calls_per_s: per_second(t.calls(), seconds),
        }
    }
}

/// The flows layer's interval per second (`--flows`): bytes delivered through sockets, and
/// each flow that moved bytes.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct FlowRates {
    pub delivered_bytes_per_s: f64,
    /// By flow name (`copy file -> user`, `sendfile file -> tcp`, …).
    pub by_flow: std::collections::BTreeMap<String, FlowRate>,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq)]
pub struct FlowRate {
    pub bytes_per_s: f64,
    pub calls_per_s: f64,
}

impl FlowRates {
    pub fn of(t: &Totals<FlowSlots>, seconds: f64) -> FlowRates {
        FlowRates {
            delivered_bytes_per_s: per_second(t.delivered_bytes(), seconds),
            by_flow: t
                .fired()
                .map(|(_, flow, s)| {
                    (
                        crate::model::flow_name(&flow),
                        FlowRate {
                            bytes_per_s: per_second(s.bytes, seconds),
                            calls_per_s: per_second(s.calls, seconds),
                        },
                    )
                })
                .collect(),
        }
    }
}

/// Machine-wide flows-layer counts for the interval (zcprof itself as in [`machine`]).
pub fn machine_flows(model: &Model, own: &Own) -> Totals<FlowSlots> {
    machine_layer(model, own, |p| &p.interval.flows)
}

/// Machine-wide io_uring-layer counts for the interval (zcprof itself as in [`machine`]).
pub fn machine_io_uring(model: &Model, own: &Own) -> Totals<IoUringOps> {
    machine_layer(model, own, |p| &p.interval.io_uring)
}

/// One layer's counts for the interval, every process together (zcprof itself as in
/// [`machine`]).
fn machine_layer<S: Slots>(
    model: &Model,
    own: &Own,
    layer: impl Fn(&Process) -> &Totals<S>,
) -> Totals<S> {
    let mut total = Totals::zero();
    for p in model.processes().filter(|p| !own.hides(p)) {
        total.add(layer(p));
    }
    total
}

/// The io_uring layer's rates: the syscall layer's shape (sums of completion results, per
/// second), and the `io_uring_setup`/`io_uring_enter` calls seen while the layer was
/// unavailable (non-zero only then: those requests' bytes are not counted anywhere).
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct IoUringRates {
    #[serde(flatten)]
    pub rates: Rates,
    pub unseen_calls_per_s: f64,
}

impl IoUringRates {
    pub fn of(t: &Totals<IoUringOps>, seconds: f64) -> IoUringRates {
        IoUringRates {
            rates: Rates::of(&t.figures(), seconds),
            unseen_calls_per_s: per_second(t.unseen_calls(), seconds),
        }
    }
}

/// `CAVEAT: io_uring_enter seen, io_uring layer unavailable: its bytes are not counted
/// (pid 42 fio, pid 43 fio)`, when a process in the interval used io_uring unseen.
pub fn io_uring_caveat(model: &Model, own: &Own) -> Option<String> {
    let pids: Vec<String> = model
        .processes()
        .filter(|p| !own.hides(p) && p.interval.io_uring.unseen_calls() > 0)
        .map(|p| format!("pid {} {}", p.tgid, p.name()))
        .collect();
    if pids.is_empty() {
        return None;
    }
    let shown = pids.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
    let more = if pids.len() > 5 {
        format!(", … {} more", pids.len() - 5)
    } else {
        String::new()
    };
    Some(format!(
        "CAVEAT: {} ({shown}{more})",
        zcprof_recording::diff::IO_URING_CAVEAT
    ))
}

/// Machine-wide figures for the interval (every process, filtered or not; zcprof itself
/// only when `own` lists it).
pub fn machine(model: &Model, own: &Own) -> Figures {
    let mut total = Figures::default();
    for p in model.processes().filter(|p| !own.hides(p)) {
        total.add(&p.interval.syscall.figures());
    }
    total
}

/// Machine-wide kernel-layer counts for the interval (zcprof itself as in [`machine`]).
pub fn machine_kernel(model: &Model, own: &Own) -> Totals<KernelProbes> {
    machine_layer(model, own, |p| &p.interval.kernel)
}

/// Kernel-layer figures per second. The copy rates come from one set of counters
/// (`copy_source`: the copy primitives, else `__check_object_size`) and are `null` when
/// neither attached; every counter that fired is listed under `probes`.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct KernelRates {
    pub copy_source: Option<&'static str>,
    pub copy_k2u_bytes_per_s: Option<f64>,
    pub copy_u2k_bytes_per_s: Option<f64>,
    pub probes: BTreeMap<&'static str, ProbeRates>,
}

#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct ProbeRates {
    pub calls_per_s: f64,
    pub bytes_per_s: f64,
}

/// Kernel copies k→u and u→k per second from `source`'s probes (never from overlapping
/// ones); `None` when no copy role attached. For the text and CSV rows, which need only
/// these two of [`KernelRates`].
pub fn copy_rates(
    k: &Totals<KernelProbes>,
    source: Option<Role>,
    seconds: f64,
) -> Option<(f64, f64)> {
    let (k2u, u2k) = k.copied(source?);
    Some((per_second(k2u, seconds), per_second(u2k, seconds)))
}

impl KernelRates {
    pub fn of(k: &Totals<KernelProbes>, source: Option<Role>, seconds: f64) -> KernelRates {
        let per = |n: u64| per_second(n, seconds);
        let copied = copy_rates(k, source, seconds);
        KernelRates {
            copy_source: source.map(Role::name),
            copy_k2u_bytes_per_s: copied.map(|(k2u, _)| k2u),
            copy_u2k_bytes_per_s: copied.map(|(_, u2k)| u2k),
            probes: k
                .fired()
                .map(|(p, s)| {
                    (
                        p.name,
                        ProbeRates {
                            calls_per_s: per(s.calls),
                            bytes_per_s: per(s.bytes),
                        },
                    )
                })
                .collect(),
        }
    }

    /// Kernel copies both ways, per second; `None` when no copy role attached.
    pub fn copied_per_s(&self) -> Option<f64> {
        Some(self.copy_k2u_bytes_per_s? + self.copy_u2k_bytes_per_s?)
    }
}

#[derive(Serialize)]
struct JsonFrame<'a> {
    schema: &'static str,
    unix_time: f64,
    interval_s: f64,
    /// The frame was cut short by Ctrl-C/SIGTERM.
    partial: bool,
    layers: &'a [LayerSummary],
    lost: Lost,
    machine: JsonFigures,
    /// zcprof's own cost; absent when the frame does not know its pid.
    #[serde(rename = "self", skip_serializing_if = "Option::is_none")]
    own: Option<JsonOwn>,
    /// The probes' own cost; only while BPF statistics are on (`--probe-stats`).
    #[serde(skip_serializing_if = "Option::is_none")]
    probe_stats: Option<Cost>,
    processes: Vec<JsonProcess<'a>>,
}

#[derive(Serialize)]
struct JsonOwn {
    pid: u32,
    /// Listed in `processes` and counted in `machine` (`--include-self`).
    listed: bool,
    syscall: Rates,
    cpu_percent: Option<f64>,
}

#[derive(Serialize)]
struct JsonFigures {
    syscall: Rates,
    kernel: KernelRates,
    io_uring: IoUringRates,
    mapped: MappedRates,
    /// Only with `--user-copies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserRates>,
}

#[derive(Serialize)]
struct JsonProcess<'a> {
    pid: u32,
    ppid: Option<u32>,
    comm: &'a str,
    exited: bool,
    /// Its cgroup v2 path, `null` while unknown.
    cgroup: Option<&'a str>,
    /// The container or unit that path names, `null` when none.
    container: Option<String>,
    syscall: Rates,
    kernel: KernelRates,
    io_uring: IoUringRates,
    mapped: MappedRates,
    /// Only with `--user-copies`.
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<UserRates>,
    /// Only with `--flows`.
    #[serde(skip_serializing_if = "Option::is_none")]
    flows: Option<FlowRates>,
    /// Only with `--threads`: the threads that made a counted syscall in the interval.
    #[serde(skip_serializing_if = "Option::is_none")]
    threads: Option<Vec<ThreadRates<'a>>>,
}

/// One thread's syscall-layer rates over the interval (`--threads`).
#[derive(Serialize)]
struct ThreadRates<'a> {
    tid: u32,
    /// `?` while unknown.
    name: &'a str,
    exited: bool,
    syscall: Rates,
}

impl<'a> ThreadRates<'a> {
    /// The threads of `p` active in the last interval.
    fn of(p: &'a Process, seconds: f64) -> Vec<Self> {
        p.threads
            .iter()
            .filter(|t| t.active())
            .map(|t| ThreadRates {
                tid: t.tid,
                name: t.name(),
                exited: t.exited,
                syscall: Rates::of(&t.interval.figures(), seconds),
            })
            .collect()
    }
}

/// Schema name of `top --json` lines.
pub const SCHEMA: &str = "zcprof.top/v1";

/// One JSON object (one line) for the last interval.
pub fn json(
    model: &Model,
    layers: &[LayerSummary],
    filter: &Filter,
    own: &Own,
    partial: bool,
) -> String {
    let seconds = interval_seconds(model);
    let source = copy_source(layers);
    let flows = counted(layers, Layer::Flows);
    let threads = counted(layers, Layer::Threads);
    let user = counted(layers, Layer::User);
    let frame = JsonFrame {
        schema: SCHEMA,
        unix_time: unix_time(),
        interval_s: seconds,
        partial,
        layers,
        lost: Lost::of(model),
        machine: JsonFigures {
            syscall: Rates::of(&machine(model, own), seconds),
            kernel: KernelRates::of(&machine_kernel(model, own), source, seconds),
            io_uring: IoUringRates::of(&machine_io_uring(model, own), seconds),
            mapped: MappedRates::of(&machine_mapped(model, own), seconds),
            user: user.then(|| UserRates::of(&machine_user(model, own), seconds)),
        },
        own: own.pid.zip(own.figures(model)).map(|(pid, f)| JsonOwn {
            pid,
            listed: own.listed,
            syscall: Rates::of(&f, seconds),
            cpu_percent: own.cpu_percent,
        }),
        probe_stats: own.probes,
        processes: rows(model, filter, own)
            .into_iter()
            .map(|r| JsonProcess {
                pid: r.process.tgid,
                ppid: r.process.ppid,
                comm: &r.process.comm,
                exited: r.process.exited,
                cgroup: r.process.cgroup_path.as_deref(),
                container: r.process.container(),
                syscall: Rates::of(&r.figures, seconds),
                kernel: KernelRates::of(&r.process.interval.kernel, source, seconds),
                io_uring: IoUringRates::of(&r.process.interval.io_uring, seconds),
                mapped: MappedRates::of(&r.process.interval.mapped, seconds),
                user: user.then(|| UserRates::of(&r.process.interval.user, seconds)),
                flows: flows.then(|| FlowRates::of(&r.process.interval.flows, seconds)),
                threads: threads.then(|| ThreadRates::of(r.process, seconds)),
            })
            .collect(),
    };
    serde_json::to_string(&frame).unwrap_or_else(|err| format!("{{\"error\":\"{err}\"}}"))
}

fn interval_seconds(model: &Model) -> f64 {
    model.interval.map(|d| d.as_secs_f64()).unwrap_or(0.0)
}

/// A text frame: header (with zcprof's own cost), column titles, at most `limit` rows,
/// machine total; with the flows layer, each row's biggest flow on a line under it.
pub fn text(
    model: &Model,
    layers: &[LayerSummary],
    filter: &Filter,
    own: &Own,
    limit: usize,
    partial: bool,
) -> String {
    let seconds = interval_seconds(model);
    let mut out = String::new();
    out.push_str(&format!(
        "zcprof top · {} · interval {seconds:.2} s{} · {}\n{}\n",
        clock(),
        if partial { " (partial)" } else { "" },
        Lost::of(model).line(),
        layers_line(layers),
    ));
    if let Some(line) = own_line(model, own, seconds) {
        out.push_str(&line);
        out.push('\n');
    }
    if let Some(cost) = &own.probes {
        out.push_str(&probes_line(cost));
        out.push('\n');
    }
    if layers.iter().any(|l| l.layer == Layer::User) {
        out.push_str(crate::probes::user::MACHINE_COVERAGE);
        out.push('\n');
    }
    let source = copy_source(layers);
    let uring = io_uring_counted(layers);
    let uring_columns = if uring {
        "; URING COPY and URING ZC from the io_uring layer (completed requests)"
    } else {
        ""
    };
    match source {
        Some(role) => out.push_str(&format!(
            "figures per second: COPY, ZERO-COPY, CALLS and ZC RATIO from the syscall layer{uring_columns}; KERNEL K→U and U→K from the kernel layer's {} probes{}\n",
            role.name(),
            role.blind_spot().map(|(_, long)| format!(" ({long})")).unwrap_or_default()
        )),
        None => out.push_str(&format!(
            "figures per second from the syscall layer{uring_columns} (no kernel-layer copy probe attached here: `zcprof doctor` says why)\n",
        )),
    }
    let flows = counted(layers, Layer::Flows);
    if flows {
        out.push_str("↳ under a row: its biggest flow in the interval (flows layer, --flows)\n");
    }
    if let Some(caveat) = io_uring_caveat(model, own) {
        out.push_str(&caveat);
        out.push('\n');
    }
    let mut titles = format!(
        "{:>8} {:<16} {:>13} {:>13} {:>13} {:>10} {:>8}",
        "PID", "COMM", "COPY K→U", "COPY U→K", "ZERO-COPY", "CALLS", "ZC RATIO"
    );
    if uring {
        titles.push_str(&format!(" {:>13} {:>13}", "URING COPY", "URING ZC"));
    }
    if source.is_some() {
        titles.push_str(&format!(" {:>13} {:>13}", "KERNEL K→U", "KERNEL U→K"));
    }
    out.push_str(titles.trim_end());
    out.push('\n');
    let rows = rows(model, filter, own);
    for r in rows.iter().take(limit) {
        out.push_str(&line(
            &r.process.tgid.to_string(),
            r.process.name(),
            (&r.figures, uring.then_some(&r.io_uring)),
            (&r.process.interval.kernel, source),
            seconds,
        ));
        if flows {
            out.push_str(&flow_line(&r.process.interval.flows, seconds));
        }
    }
    if rows.len() > limit {
        out.push_str(&format!("{:>8} … {} more\n", "", rows.len() - limit));
    }
    let machine_syscall = machine(model, own);
    let machine_uring = machine_io_uring(model, own).figures();
    out.push_str(&line(
        "machine",
        "(all processes)",
        (&machine_syscall, uring.then_some(&machine_uring)),
        (&machine_kernel(model, own), source),
        seconds,
    ));
    if flows {
        out.push_str(&flow_line(&machine_flows(model, own), seconds));
    }
    if let Some(r) = super::ZeroCopySendRates::of_both(&machine_syscall, &machine_uring, seconds) {
        out.push_str(&zero_copy_sends_line(&r));
    }
    if counted(layers, Layer::User) {
        let user = UserRates::of(&machine_user(model, own), seconds);
        out.push_str(&format!(
            "user-space copies (user layer, machine): {} in {:.0} calls/s of memcpy/memmove/mempcpy: copies inside the processes, not syscall copies\n",
            units::rate(user.bytes_per_s),
            user.calls_per_s
        ));
    }
    let mapped = MappedRates::of(&machine_mapped(model, own), seconds);
    if mapped.pages_per_s > 0.0 {
        out.push_str(&format!(
            "mapped file pages (mapped layer, machine): {:.0}/s ({}): what replaced read copies, not bytes moved; a lower bound\n",
            mapped.pages_per_s,
            units::rate(mapped.bytes_per_s)
        ));
    }
    out
}

/// `         ↳ file → user 2.9 MiB/s`, under a row: the flow that moved the most bytes in
/// the interval, and how when not by a copy (`(sendfile)`); empty when no flow moved a
/// byte. Its own line, so the row stays as wide as without `--flows`.
fn flow_line(t: &Totals<FlowSlots>, seconds: f64) -> String {
    let Some((f, s)) = t.biggest() else {
        return String::new();
    };
    format!(
        "{:>8} ↳ {} → {} {}{}\n",
        "",
        f.from,
        f.to,
        units::rate(per_second(s.bytes, seconds)),
        crate::model::flow_how(&f)
    )
}

/// `zero-copy sends (…): 8/s requested (512.0 KiB/s), 8/s copied anyway, 0/s without a
/// copy`: the sends' bytes are in COPY U→K until a notification says the kernel did not
/// copy.
fn zero_copy_sends_line(r: &super::ZeroCopySendRates) -> String {
    format!(
        "zero-copy sends (MSG_ZEROCOPY and SEND_ZC, machine): {:.0}/s requested ({}), {:.0}/s copied anyway, {:.0}/s without a copy (notifications); their bytes count as copied unless notified\n",
        r.requested_sends_per_s,
        units::rate(r.requested_bytes_per_s),
        r.copied_sends_per_s,
        r.done_sends_per_s
    )
}

/// `zcprof itself (pid 4242): copied k→u 5.2 MiB/s, u→k 106 B/s, zero-copy 0 B/s, CPU 1.3%;
/// not in the table or the machine total (--include-self lists it)`.
pub fn own_line(model: &Model, own: &Own, seconds: f64) -> Option<String> {
    let pid = own.pid?;
    let r = Rates::of(&own.figures(model)?, seconds);
    Some(format!(
        "zcprof itself (pid {pid}): copied k→u {}, u→k {}, zero-copy {}, CPU {}; {}",
        units::rate(r.copy_k2u_bytes_per_s),
        units::rate(r.copy_u2k_bytes_per_s),
        units::rate(r.zero_copy_bytes_per_s),
        own.cpu_percent
            .map_or_else(|| "-".to_string(), |c| format!("{c:.1}%")),
        if own.listed {
            "listed and counted like any process (--include-self)"
        } else {
            "not in the table or the machine total (--include-self lists it)"
        }
    ))
}

/// `probes: 52 ns/call, 0.8% CPU over 1,234,567 runs (BPF run-time statistics, on for
/// --probe-stats)`: the CPU is percent of one CPU, as zcprof's own.
pub fn probes_line(cost: &Cost) -> String {
    format!(
        "probes: {} over {} runs (BPF run-time statistics, {})",
        cost.line(),
        units::count(cost.runs),
        match cost.enabled_by {
            EnabledBy::Zcprof => "on for --probe-stats",
            EnabledBy::Sysctl => "on by kernel.bpf_stats_enabled=1",
        }
    )
}

/// One text row: the syscall layer's columns, the io_uring layer's (when it counts) and the
/// kernel layer's (when a copy role attached).
fn line(
    pid: &str,
    comm: &str,
    (f, uring): (&Figures, Option<&Figures>),
    (k, source): (&Totals<KernelProbes>, Option<Role>),
    seconds: f64,
) -> String {
    let r = Rates::of(f, seconds);
    let mut s = format!(
        "{:>8} {:<16} {:>13} {:>13} {:>13} {:>10} {:>8}",
        pid,
        truncate(comm, 16),
        units::rate(r.copy_k2u_bytes_per_s),
        units::rate(r.copy_u2k_bytes_per_s),
        units::rate(r.zero_copy_bytes_per_s),
        format!("{:.0}", r.calls_per_s),
        units::percent(r.zero_copy_ratio),
    );
    if let Some(u) = uring {
        let u = Rates::of(u, seconds);
        s.push_str(&format!(
            " {:>13} {:>13}",
            units::rate(u.copied_per_s()),
            units::rate(u.zero_copy_bytes_per_s)
        ));
    }
    if let Some((k2u, u2k)) = copy_rates(k, source, seconds) {
        s.push_str(&format!(
            " {:>13} {:>13}",
            units::rate(k2u),
            units::rate(u2k)
        ));
    }
    s.push('\n');
    s
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use zcprof_common::{
        Counts, Key, io_uring,
        kernel::{self, id},
        syscalls,
    };

    use super::*;
    use crate::{
        model::{Batch, tests::FakeProc},
        probes::{Layer, State},
    };

    fn stats(calls: u64, bytes: u64) -> Counts {
        Counts {
            calls,
            bytes,
            ..Counts::ZERO
        }
    }

    /// Two batches 2 s apart: in the second interval process 7 received 4 MB by recvfrom,
    /// which the kernel layer saw as 4 MB through `__check_object_size` and 4 MB through
    /// `skb_copy_datagram_iter`.
    fn model() -> Model {
        let recvfrom = syscalls::index_named("recvfrom").expect("recvfrom") as u32;
        let key = |slot| Key { tgid: 7, slot };
        let start = Instant::now();
        let batch = |secs: u64, n: u64| Batch {
            counts: vec![
                (Layer::Syscall, key(recvfrom), stats(n, n * 1_000_000)),
                (
                    Layer::Kernel,
                    key(id::CHECK_OBJECT_SIZE_TO_USER),
                    stats(n, n * 1_000_000),
                ),
                (
                    Layer::Kernel,
                    key(id::SKB_COPY_DATAGRAM_ITER),
                    stats(n, n * 1_000_000),
                ),
            ],
            ..Batch::empty(start + Duration::from_secs(secs))
        };
        let mut m = Model::new();
        m.start_at(start);
        let proc = FakeProc::default().with(7, "nc", 1);
        m.apply(&batch(1, 1), &proc);
        m.apply(&batch(3, 5), &proc);
        m
    }

    fn layers(kernel_unavailable: &[&str]) -> Vec<LayerSummary> {
        vec![LayerSummary {
            layer: Layer::Kernel,
            state: State::Partial,
            via: "fentry".into(),
            attached: 1,
            unavailable: kernel_unavailable.iter().map(|s| s.to_string()).collect(),
        }]
    }

    /// Every kernel function but `__check_object_size` and the skb path is unavailable.
    fn cross_check_only() -> Vec<LayerSummary> {
        let missing: Vec<&str> = kernel::FUNCTIONS
            .iter()
            .map(|f| f.function)
            .filter(|f| !["__check_object_size", "skb_copy_datagram_iter"].contains(f))
            .collect();
        layers(&missing)
    }

    #[test]
    fn kernel_rates_come_from_one_role_and_list_every_probe() {
        let m = model();
        let frame: serde_json::Value = serde_json::from_str(&json(
            &m,
            &cross_check_only(),
            &Filter::default(),
            &Own::default(),
            false,
        ))
        .expect("JSON");
        let p = &frame["processes"][0];
        assert_eq!(p["syscall"]["copy_k2u_bytes_per_s"], 2_000_000.0);
        assert_eq!(p["kernel"]["copy_source"], "cross_check");
        // The skb counter is a breakdown of the same bytes: listed, not added.
        assert_eq!(p["kernel"]["copy_k2u_bytes_per_s"], 2_000_000.0);
        assert_eq!(p["kernel"]["copy_u2k_bytes_per_s"], 0.0);
        assert_eq!(
            p["kernel"]["probes"]["skb_copy_datagram_iter"]["bytes_per_s"],
            2_000_000.0
        );
        assert_eq!(
            p["kernel"]["probes"]["__check_object_size:to_user"]["calls_per_s"],
            2.0
        );
        assert_eq!(frame["machine"]["kernel"], p["kernel"]);
    }

    /// `top --csv` carries the same kernel copy rates, in the three columns after
    /// `lost_events` (the errno columns follow them).
    #[test]
    fn csv_carries_the_kernel_copy_rates() {
        let out = crate::report::csv::rows(
            &model(),
            &cross_check_only(),
            &Filter::default(),
            &Own::default(),
            false,
        );
        let nc: Vec<&str> = out
            .lines()
            .find(|l| l.contains(",nc,"))
            .expect("nc row")
            .split(',')
            .collect();
        assert_eq!(nc.len(), crate::report::csv::HEADER.split(',').count());
        assert_eq!(nc[15..18], ["cross_check", "2000000.0", "0.0"]);
        assert_eq!(
            nc[18..21],
            ["0.0", "", ""],
            "nc had no errors (and is not zcprof)"
        );
    }

    #[test]
    fn text_labels_each_column_with_its_layer() {
        let m = model();
        let with = text(
            &m,
            &cross_check_only(),
            &Filter::default(),
            &Own::default(),
            10,
            false,
        );
        assert!(
            with.contains("KERNEL K→U and U→K from the kernel layer's cross_check probes"),
            "{with}"
        );
        assert!(
            with.contains(
                "(a lower bound: __check_object_size does not see page-cache or pipe copies"
            ),
            "the cross_check figure says what it misses: {with}"
        );
        let row = with.lines().find(|l| l.contains(" nc ")).expect("nc row");
        assert_eq!(row.matches("1.9 MiB/s").count(), 2, "{row}");

        let all_missing: Vec<&str> = kernel::FUNCTIONS.iter().map(|f| f.function).collect();
        let without = text(
            &m,
            &layers(&all_missing),
            &Filter::default(),
            &Own::default(),
            10,
            false,
        );
        assert!(!without.contains("KERNEL K→U"), "{without}");
        assert!(
            without.contains("no kernel-layer copy probe attached here"),
            "{without}"
        );
        // The JSON says the same with nulls rather than zeros.
        let frame: serde_json::Value = serde_json::from_str(&json(
            &m,
            &layers(&all_missing),
            &Filter::default(),
            &Own::default(),
            false,
        ))
        .expect("JSON");
        assert!(frame["processes"][0]["kernel"]["copy_k2u_bytes_per_s"].is_null());
    }

    /// fio (pid 8), which writes 6 MB in the second interval of 2 s
    /// through io_uring (WRITE completions) or, with the layer unavailable, only calls
    /// io_uring_enter (the detector's slot).
    fn uring_model(counted: bool) -> (Model, Vec<LayerSummary>) {
        let slot = if counted {
            io_uring::opcode::WRITE as u32
        } else {
            io_uring::ENTER_SEEN
        };
        let bytes = if counted { 1_000_000 } else { 0 };
        let start = Instant::now();
        let mut m = Model::new();
        m.start_at(start);
        let proc = FakeProc::default().with(7, "nc", 1).with(8, "fio", 1);
        for (secs, n) in [(1, 0), (3, 6)] {
            let batch = Batch {
                counts: vec![(Layer::IoUring, Key { tgid: 8, slot }, stats(n, n * bytes))],
                ..Batch::empty(start + Duration::from_secs(secs))
            };
            m.apply(&batch, &proc);
        }
        let mut layers = cross_check_only();
        layers.push(LayerSummary {
            layer: Layer::IoUring,
            state: if counted {
                State::Live
            } else {
                State::Unavailable
            },
            via: "tracepoint".into(),
            attached: if counted { 2 } else { 0 },
            unavailable: vec![],
        });
        (m, layers)
    }

    /// A SEND_ZC server over loopback (4 sends of 64 KiB in 2 s, every notification
    /// reporting a copy) that also mapped 6 file pages: the text frame says both under the
    /// machine line, the JSON carries them per process.
    #[test]
    fn zero_copy_sends_and_mapped_pages_are_in_every_frame() {
        let start = Instant::now();
        let mut m = Model::new();
        m.start_at(start);
        let proc = FakeProc::default().with(9, "server", 1);
        let key = |slot: u32| Key { tgid: 9, slot };
        for (secs, n) in [(1, 0), (3, 4)] {
            let batch = Batch {
                counts: vec![
                    (
                        Layer::IoUring,
                        key(u32::from(io_uring::opcode::SEND_ZC)),
                        stats(n, n << 16),
                    ),
                    (Layer::IoUring, key(io_uring::NOTIF), stats(n, 0)),
                    (Layer::IoUring, key(io_uring::NOTIF_REPORTED), stats(n, 0)),
                    (Layer::IoUring, key(io_uring::NOTIF_COPIED), stats(n, 0)),
                    (
                        Layer::Mapped,
                        key(zcprof_common::mapped::FAULT),
                        stats(n, (n + n / 2) * zcprof_common::mapped::PAGE_SIZE),
                    ),
                ],
                ..Batch::empty(start + Duration::from_secs(secs))
            };
            m.apply(&batch, &proc);
        }
        let layers = cross_check_only();
        let text = text(&m, &layers, &Filter::default(), &Own::default(), 10, false);
        let frame = frame_of(&m, &layers);
        assert!(
            text.contains(
                "zero-copy sends (MSG_ZEROCOPY and SEND_ZC, machine): 2/s requested (128.0 KiB/s), 2/s copied anyway, 0/s without a copy"
            ),
            "{text}{frame:#}"
        );
        assert!(
            text.contains("mapped file pages (mapped layer, machine): 3/s (12.0 KiB/s)"),
            "{text}"
        );
        let server = &frame["processes"][0];
        let z = &server["io_uring"]["zero_copy_sends"];
        assert_eq!(z["requested_sends_per_s"], 2.0, "{server:#}");
        assert_eq!(z["copied_sends_per_s"], 2.0);
        assert_eq!(z["done_sends_per_s"], 0.0);
        assert!(
            server["syscall"].get("zero_copy_sends").is_none(),
            "none by syscalls"
        );
        assert_eq!(server["mapped"]["pages_per_s"], 3.0);
        assert_eq!(frame["machine"]["mapped"]["bytes_per_s"], 12288.0);
    }

    /// The `top --json` frame of `m`, unfiltered.
    fn frame_of(m: &Model, layers: &[LayerSummary]) -> serde_json::Value {
        serde_json::from_str(&json(m, layers, &Filter::default(), &Own::default(), false))
            .expect("JSON")
    }

    #[test]
    fn io_uring_rates_have_their_columns_and_rank_the_rows() {
        let (m, layers) = uring_model(true);
        let frame = frame_of(&m, &layers);
        // fio copied 3 MB/s through io_uring, nc nothing in this interval: fio first.
        let fio = &frame["processes"][0];
        assert_eq!(fio["comm"], "fio", "{frame:#}");
        assert_eq!(fio["io_uring"]["copy_u2k_bytes_per_s"], 3_000_000.0);
        assert_eq!(fio["io_uring"]["calls_per_s"], 3.0);
        assert_eq!(fio["io_uring"]["unseen_calls_per_s"], 0.0);
        assert_eq!(fio["syscall"]["copy_u2k_bytes_per_s"], 0.0);
        assert_eq!(
            frame["machine"]["io_uring"]["copy_u2k_bytes_per_s"],
            3_000_000.0
        );
        let text = text(&m, &layers, &Filter::default(), &Own::default(), 10, false);
        assert!(
            text.contains("URING COPY and URING ZC from the io_uring layer"),
            "{text}"
        );
        assert!(!text.contains("CAVEAT"), "{text}");
        let titles = text.lines().find(|l| l.contains("COMM")).expect("titles");
        assert!(
            titles.contains("URING COPY") && titles.contains("URING ZC"),
            "{titles}"
        );
        let row = text.lines().find(|l| l.contains(" fio ")).expect("fio row");
        assert!(row.contains("2.9 MiB/s"), "{row}");
        let csv = crate::report::csv::rows(&m, &layers, &Filter::default(), &Own::default(), false);
        let fio: Vec<&str> = csv
            .lines()
            .find(|l| l.contains(",fio,"))
            .expect("fio row")
            .split(',')
            .collect();
        assert_eq!(
            fio[21..27],
            ["0.0", "3000000.0", "0.0", "3.0", "0.0", "0.0"]
        );
    }

    /// With the flows layer, in 2 s: nginx sent 6 MB from a file to TCP by sendfile and
    /// read 2 MB from a file; cat read 1 MB from a file and then hit EOF; true only hit EOF
    /// (a call of a flow, no bytes). Each row with bytes has its biggest flow on a line of
    /// its own, the machine's too, and the header says where they come from; nothing of it
    /// without the layer.
    #[test]
    fn text_shows_each_rows_biggest_flow_with_the_flows_layer() {
        use zcprof_common::flows::{self, kind};

        let start = Instant::now();
        let mut m = Model::new();
        m.start_at(start);
        let proc = FakeProc::default()
            .with(9, "nginx", 1)
            .with(10, "cat", 1)
            .with(11, "true", 1);
        let sendfile = flows::sendfile(kind::FILE, kind::TCP);
        for (secs, n) in [(1, 0), (3, 1)] {
            let key = |tgid, slot| Key { tgid, slot };
            let counts = vec![
                (Layer::Flows, key(9, sendfile), stats(6 * n, 6_000_000 * n)),
                (
                    Layer::Flows,
                    key(9, kind::FILE),
                    stats(2 * n, 2_000_000 * n),
                ),
                (
                    Layer::Flows,
                    key(10, kind::FILE),
                    stats(2 * n, 1_000_000 * n),
                ),
                (Layer::Flows, key(11, kind::FILE), stats(n, 0)),
                // Rows are those active in the syscall layer too.
                (Layer::Syscall, key(9, 0), stats(8 * n, 8_000_000 * n)),
                (Layer::Syscall, key(10, 0), stats(2 * n, 1_000_000 * n)),
                (Layer::Syscall, key(11, 0), stats(n, 0)),
            ];
            let batch = Batch {
                counts,
                ..Batch::empty(start + Duration::from_secs(secs))
            };
            m.apply(&batch, &proc);
        }
        let mut layers = cross_check_only();
        let without = text(&m, &layers, &Filter::default(), &Own::default(), 10, false);
        layers.push(LayerSummary {
            layer: Layer::Flows,
            state: State::Live,
            via: "btf".into(),
            attached: 1,
            unavailable: vec![],
        });
        let with = text(&m, &layers, &Filter::default(), &Own::default(), 10, false);
        assert!(!without.contains('↳'), "{without}");
        let lines: Vec<&str> = with.lines().collect();
        let under = |row: &str| {
            let at = lines
                .iter()
                .position(|l| l.contains(row))
                .unwrap_or_else(|| panic!("no {row} row in\n{with}"));
            lines.get(at + 1).copied().unwrap_or_default()
        };
        assert_eq!(
            under(" nginx "),
            "         ↳ file → tcp 2.9 MiB/s (sendfile)"
        );
        assert_eq!(under(" cat "), "         ↳ file → user 488.3 KiB/s");
        assert!(!under(" true ").contains('↳'), "no byte, no flow: {with}");
        assert_eq!(
            under("machine "),
            "         ↳ file → tcp 2.9 MiB/s (sendfile)"
        );
        assert!(
            lines.contains(
                &"↳ under a row: its biggest flow in the interval (flows layer, --flows)"
            ),
            "{with}"
        );
        // Only the flow lines are new, and none of them is wider than 80 columns.
        let new: Vec<&&str> = lines.iter().filter(|l| l.contains('↳')).collect();
        assert_eq!(new.len(), 4, "{with}");
        assert!(new.iter().all(|l| l.chars().count() <= 80), "{with}");
        let old: Vec<&&str> = lines.iter().filter(|l| !l.contains('↳')).collect();
        let before: Vec<&str> = without.lines().collect();
        assert_eq!(old.len(), before.len(), "{with}");
        // From the column titles on (the header's clock and layer lines differ: they now
        // name the flows layer), the rest is as it was.
        let titles = |lines: &[&str]| lines.iter().position(|l| l.contains("COMM"));
        let old: Vec<&str> = old.into_iter().copied().collect();
        let (a, b) = (
            titles(&old).expect("titles"),
            titles(&before).expect("titles"),
        );
        assert_eq!(old[a..], before[b..], "{with}");
    }

    #[test]
    fn io_uring_unseen_is_a_caveat_in_every_frame() {
        let (m, layers) = uring_model(false);
        let text = text(&m, &layers, &Filter::default(), &Own::default(), 10, false);
        assert!(
            text.contains(
                "CAVEAT: io_uring_enter seen, io_uring layer unavailable: its bytes are not counted (pid 8 fio)"
            ),
            "{text}"
        );
        assert!(!text.contains("URING COPY"), "{text}");
        let frame = frame_of(&m, &layers);
        let fio = frame["processes"]
            .as_array()
            .expect("processes")
            .iter()
            .find(|p| p["comm"] == "fio")
            .expect("fio is active: it called io_uring_enter");
        assert_eq!(fio["io_uring"]["unseen_calls_per_s"], 3.0);
        assert_eq!(fio["io_uring"]["calls_per_s"], 0.0);
        let csv = crate::report::csv::rows(&m, &layers, &Filter::default(), &Own::default(), false);
        let fio: Vec<&str> = csv
            .lines()
            .find(|l| l.contains(",fio,"))
            .expect("fio row")
            .split(',')
            .collect();
        assert_eq!(
            fio[21..27],
            ["", "", "", "", "", "3.0"],
            "unknown, not zero"
        );
    }
}
